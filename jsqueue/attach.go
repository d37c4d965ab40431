package jsqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrNoJob is returned by Attach for a job the NATS system does not have.
var ErrNoJob = errors.New("no such job")

// Worker is a live worker of a job, as its last heartbeat describes it.
type Worker struct {
	ID         string    `json:"id"`
	Host       string    `json:"host"`       // the machine's host name
	PID        int       `json:"pid"`        // the process ID on that machine
	Partitions []int     `json:"partitions"` // the partitions it serves (each host hashes to one)
	Held       int       `json:"held"`       // the URLs it holds: leased, in flight, or waiting for a retry
	Started    time.Time `json:"started"`
	// Seen is the engine's time of the worker's last heartbeat; the entry lapses the lease time
	// after it, when the worker is taken for dead.
	Seen time.Time `json:"-"`
}

// Attach opens the existing job named job on nc to read and manage it — its records, counts,
// workers, and failed URLs to queue again — without joining it as a worker: it pulls nothing,
// holds no lease and is not dealt partitions. It never creates a job; one the system does not
// have is ErrNoJob.
func Attach(ctx context.Context, nc *nats.Conn, job string) (*Queue, error) {
	opts := Options{Job: job}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(callTimeout))
	if err != nil {
		return nil, fmt.Errorf("jsqueue: %w", err)
	}
	q := &Queue{opts: opts, nc: nc, js: js, subject: "trawl." + job + ".q.", timeout: callTimeout,
		held: map[string]*item{}, cool: map[string]time.Time{}, coolNew: map[string]time.Time{}, coolRead: map[string]bool{},
		gained:  map[int]time.Time{},
		settled: map[string]bool{}}
	if err := q.join(ctx, false, attachWait); err != nil {
		return nil, err
	}
	q.link = newLink(nc) // outage 0: a call the engine does not answer fails at once
	return q, nil
}

// Workers are the job's live workers, in the order of their IDs (the order they deal the
// partitions in).
func (q *Queue) Workers() ([]Worker, error) {
	lctx, _ := q.link.current()
	ctx, cancel := context.WithTimeout(lctx, q.timeout)
	defer cancel()
	w, err := q.workers.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("jsqueue: workers: %w", err)
	}
	defer w.Stop()
	var out []Worker
	for {
		var e jetstream.KeyValueEntry
		select {
		case e = <-w.Updates():
		case <-ctx.Done():
			return nil, fmt.Errorf("jsqueue: workers: %w", ctx.Err())
		}
		if e == nil {
			break
		}
		var wk Worker
		if json.Unmarshal(e.Value(), &wk) != nil {
			wk = Worker{} // a beat without a description: only its ID and time are known
		}
		wk.ID, wk.Seen = e.Key(), e.Created()
		out = slices.DeleteFunc(out, func(o Worker) bool { return o.ID == wk.ID }) // a newer beat
		out = append(out, wk)
	}
	slices.SortFunc(out, func(a, b Worker) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// attachWait is how long Attach waits for an engine slow to answer (a server starting, or
// loaded): `trawl status` and the like answer within about it.
const attachWait = 30 * time.Second

// Self is this worker as its heartbeats describe it (the zero Worker for a job Attach opened).
func (q *Queue) Self() Worker { return q.self }
