package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trawl-dev/trawl/jsqueue"
	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/store"
)

// workerStatus is one live worker of a shared job in `trawl status`.
type workerStatus struct {
	ID         string    `json:"id"`
	Host       string    `json:"host"`       // its machine's host name
	PID        int       `json:"pid"`        // its process on that machine
	Partitions []int     `json:"partitions"` // the partitions of the job's hosts it serves
	Held       int       `json:"held"`       // URLs it holds: leased, in flight, or waiting for a retry
	Started    time.Time `json:"started"`
	LastSeen   time.Time `json:"last_seen"` // its last heartbeat, by the NATS server's clock
}

// loadSharedStatus reads a shared job's status from the engine: the whole job's records (every
// worker's), and its live workers. Nothing is cached: a shared job has no snapshot file.
func loadSharedStatus(ctx context.Context, s *sharedFlags) (*statusReport, error) {
	q, closeConn, err := s.attach(ctx)
	if err != nil {
		return nil, err
	}
	defer closeConn()
	r, err := readSharedStatus(q)
	if err != nil {
		return nil, fatalErr("--queue %s: %v", redact(s.url), err)
	}
	r.Queue, r.JobName = redact(s.url), s.job
	return r, nil
}

func readSharedStatus(q *jsqueue.Queue) (*statusReport, error) {
	r := &statusReport{Taken: time.Now().UTC(), Hosts: map[string]jobCounts{}}
	var c queue.Counts
	hosts := map[string]queue.Counts{}
	skips := map[string]int{}
	errs := map[string]int64{}
	// One pass over the records gives what the state file keeps counted: the counts, per host,
	// the skips by reason; and the failures by error, which it takes from the last run.
	err := q.ForEach(func(rec queue.Record) error {
		c.Add(rec)
		hc := hosts[rec.Host]
		hc.Add(rec)
		hosts[rec.Host] = hc
		switch rec.State {
		case queue.Skipped:
			skips[store.SkipReason(rec.LastError)]++
		case queue.Failed:
			errs[errorKey(rec)]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.Job = jobCountsOf(c)
	for h, hc := range hosts {
		if hc.Total() == 0 {
			r.HostsSkippedOnly++
			continue
		}
		r.Hosts[h] = jobCountsOf(hc)
	}
	if len(skips) > 0 {
		r.SkippedBy = skips
	}
	r.TopErrors = topErrors(errs, 10)
	ws, err := q.Workers()
	if err != nil {
		return nil, err
	}
	r.Workers = []workerStatus{} // listed when there are none too: a shared job's status has the key
	for _, w := range ws {
		r.Workers = append(r.Workers, workerStatus{ID: w.ID, Host: w.Host, PID: w.PID, Partitions: w.Partitions,
			Held: w.Held, Started: w.Started.UTC(), LastSeen: w.Seen.UTC()})
	}
	r.Running = len(r.Workers) > 0
	// The last run began when its earliest worker started, and ends with the last worker's end:
	// every worker records its own. (Its process ID is that of a process on some machine: the
	// workers list says which.)
	if r.LastRun, err = readLastRun(q.Meta); err != nil {
		return nil, err
	}
	r.LastRun.PID = 0
	return r, nil
}

// printWorkers lists a shared job's live workers.
func printWorkers(w io.Writer, r *statusReport) {
	fmt.Fprintln(w, "\nworkers:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  id\thost\tpid\tpartitions\theld\tstarted\tlast seen")
	for _, x := range r.Workers {
		parts := make([]string, len(x.Partitions))
		for i, p := range x.Partitions {
			parts[i] = strconv.Itoa(p)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%d\t%s\t%s ago\n", x.ID, x.Host, x.PID, cmp.Or(strings.Join(parts, ","), "-"),
			x.Held, x.Started.Format(time.RFC3339), max(r.Taken.Sub(x.LastSeen), 0).Round(100*time.Millisecond))
	}
	tw.Flush()
}
