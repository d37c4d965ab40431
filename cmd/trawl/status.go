package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/trawl-dev/trawl/store"
)

// Keys of the run metadata kept in the state file.
const (
	metaRunStart   = "run.start"
	metaRunEnd     = "run.end"
	metaRunOutcome = "run.outcome"
	metaRunExit    = "run.exit"
	metaRunPID     = "run.pid"
)

// statusReport is what `trawl status` shows. A running job writes it every few seconds next to
// its state file (statusFile), because the state file itself is locked while a run holds it.
type statusReport struct {
	StateFile string `json:"state_file,omitempty"`
	// A job shared on NATS JetStream (--queue) has no state file: its server, its name, and the
	// workers alive on it, each as its last heartbeat describes it.
	Queue   string         `json:"queue,omitempty"`
	JobName string         `json:"job_name,omitempty"`
	Workers []workerStatus `json:"workers,omitzero"`
	Running bool           `json:"running"`
	Holder  string         `json:"holder,omitempty"` // "pid N since T" while running
	Taken   time.Time      `json:"taken"`            // when these numbers were read
	Job     jobCounts      `json:"job"`
	// SkippedBy counts the skipped URLs (Job.Skipped) by reason: off-scope, depth, robots.txt,
	// max-pages... (store.SkipReasons). Absent for a state file an older trawl wrote last.
	SkippedBy map[string]int `json:"skipped_by,omitempty"`
	// Hosts are the hosts with URLs to fetch; a host whose URLs were all skipped (a site a crawl
	// links to but does not enter) is only counted, in HostsSkippedOnly.
	Hosts            map[string]jobCounts `json:"hosts"`
	HostsSkippedOnly int                  `json:"hosts_skipped_only,omitempty"`
	// HostsOmitted counts hosts left out of a live snapshot, which keeps the busiest
	// maxLiveHosts so that publishing every few seconds stays cheap with many hosts.
	HostsOmitted int          `json:"hosts_omitted,omitempty"`
	LastRun      lastRun      `json:"last_run"`
	Run          *runCounts   `json:"run,omitempty"` // the running run's counts so far, or the last run's (its report's "counts")
	TopErrors    []errorCount `json:"top_errors"`
}

// lastRun is the latest run's start, end, outcome and exit code, as its report gives them; while
// it runs, outcome "running" and no end or exit code.
type lastRun struct {
	Start    string `json:"start,omitempty"`
	End      string `json:"end,omitempty"`
	Outcome  string `json:"outcome,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	PID      int    `json:"pid,omitempty"`
}

func statusFile(statePath string) string { return statePath + ".status.json" }

const maxLiveHosts = 100

// topHosts keeps the n hosts with the most URLs.
func topHosts(hosts map[string]jobCounts, n int) map[string]jobCounts {
	names := make([]string, 0, len(hosts))
	for h := range hosts {
		names = append(names, h)
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(hosts[b].Total, hosts[a].Total), cmp.Compare(a, b))
	})
	out := make(map[string]jobCounts, n)
	for _, h := range names[:n] {
		out[h] = hosts[h]
	}
	return out
}

// readStatus reads the job's status from an open store.
func readStatus(st *store.Store) (*statusReport, error) {
	c, err := st.Counts()
	if err != nil {
		return nil, err
	}
	hc, err := st.HostCounts()
	if err != nil {
		return nil, err
	}
	r := &statusReport{StateFile: st.Path(), Taken: time.Now().UTC(), Job: jobCountsOf(c),
		Hosts: make(map[string]jobCounts, len(hc))}
	for h, c := range hc {
		if c.Total() == 0 {
			r.HostsSkippedOnly++
			continue
		}
		r.Hosts[h] = jobCountsOf(c)
	}
	if c.Skipped > 0 {
		if r.SkippedBy, err = st.SkipReasons(); err != nil {
			return nil, err
		}
	}
	if r.LastRun, err = readLastRun(st.Meta); err != nil {
		return nil, err
	}
	return r, nil
}

// readLastRun reads the last run's start, end, outcome, exit code and process ID from the job's
// metadata.
func readLastRun(meta func(key string) (string, error)) (lastRun, error) {
	var lr lastRun
	var exit, pid string
	for key, dst := range map[string]*string{metaRunStart: &lr.Start, metaRunEnd: &lr.End,
		metaRunOutcome: &lr.Outcome, metaRunExit: &exit, metaRunPID: &pid} {
		var err error
		if *dst, err = meta(key); err != nil {
			return lastRun{}, err
		}
	}
	if n, err := strconv.Atoi(exit); err == nil {
		lr.ExitCode = &n
	}
	lr.PID, _ = strconv.Atoi(pid)
	return lr, nil
}

func newStatusCmd(stdout io.Writer) *cobra.Command {
	var out, state string
	var asJSON bool
	var shared sharedFlags
	cmd := &cobra.Command{
		Use:   "status [-o DIR | --state FILE | --queue nats://HOST:PORT --job NAME] [--json]",
		Short: "Show a job's progress: counts by state and host, last run, most common errors",
		Long: `Show a job's state: URLs by state, per host, bytes on disk, the last run's start, end and
outcome, and the most common errors. It can be run while a job is running (it then shows the live
numbers the run publishes every few seconds) and never disturbs it.

With --queue and --job, the job shared by trawl workers on NATS JetStream: the whole job's
numbers, read from the engine, and each live worker (its machine, process, the partitions of the
job's hosts it serves, the URLs it holds, when it was last heard from).`,
		Example: `  trawl status -o images/
  trawl status --queue nats://nats.internal:4222 --job nightly-pull --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r *statusReport
			isShared, err := shared.given(cmd)
			switch {
			case err != nil:
				return err
			case isShared:
				r, err = loadSharedStatus(cmd.Context(), &shared)
			default:
				r, err = loadStatus(statePathOf(out, state))
			}
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			printStatus(stdout, r)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", ".", "the job's output `DIR`")
	cmd.Flags().StringVar(&state, "state", "", "the job's state `FILE` (default <out>/.trawl/state.db)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	shared.add(cmd.Flags())
	return cmd
}

func statePathOf(out, state string) string {
	if state != "" {
		return state
	}
	return filepath.Join(out, ".trawl", "state.db")
}

// loadStatus reads the state file if no run holds it, or else the snapshot the run publishes.
func loadStatus(path string) (*statusReport, error) {
	st, err := store.Open(path, &store.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	switch {
	case err == nil:
		// Read and let go at once: while status holds the file, a run starting (cron) would
		// find it locked.
		r, err := readStatus(st)
		st.Close()
		if err != nil {
			return nil, fatalErr("%v", err)
		}
		// The last run's counts and most common errors come from its snapshot instead of a scan
		// of every record under the lock: every run retries the failures before it, so the last
		// run's failures are the job's (unless `trawl retry` requeued some since).
		var snap statusReport
		if data, err := os.ReadFile(statusFile(path)); err == nil && json.Unmarshal(data, &snap) == nil {
			r.Run, r.TopErrors = snap.Run, snap.TopErrors
		}
		return r, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, usageErr("no trawl job at %s (give -o DIR or --state FILE)", path)
	case !errors.Is(err, store.ErrLocked):
		return nil, fatalErr("%v", err)
	}
	// A run holds the state file: read what it publishes.
	r := &statusReport{}
	data, rerr := os.ReadFile(statusFile(path))
	if rerr != nil || json.Unmarshal(data, r) != nil {
		r = &statusReport{StateFile: path}
	}
	r.Running = true
	if holder, herr := os.ReadFile(path + ".lock"); herr == nil {
		r.Holder = strings.TrimSpace(string(holder))
	}
	return r, nil
}

func printStatus(w io.Writer, r *statusReport) {
	switch {
	case r.Queue != "":
		fmt.Fprintf(w, "job:        %s, shared on %s\n", r.JobName, r.Queue)
		if r.Running {
			fmt.Fprintf(w, "running:    yes (%s); numbers as of %s\n", plural(int64(len(r.Workers)), "worker"), r.Taken.Format(time.RFC3339))
		} else {
			fmt.Fprintln(w, "running:    no (no live worker)")
		}
	case r.Running:
		fmt.Fprintf(w, "state file: %s\n", r.StateFile)
		fmt.Fprintf(w, "running:    yes (%s); numbers as of %s\n", cmp.Or(r.Holder, "holder unknown"), r.Taken.Format(time.RFC3339))
	default:
		fmt.Fprintf(w, "state file: %s\n", r.StateFile)
		fmt.Fprintln(w, "running:    no")
	}
	j := r.Job
	fmt.Fprintf(w, "urls:       %d total, %d done, %d failed, %d pending\n", j.Total, j.Done, j.Failed, j.Pending)
	if j.Skipped > 0 {
		fmt.Fprintf(w, "skipped:    %d, not counted above: %s\n", j.Skipped, skipReasons(r.SkippedBy))
	}
	if r.Queue != "" {
		fmt.Fprintf(w, "on disk:    %s in done files, over the workers' output directories\n", humanBytes(j.Bytes))
	} else {
		fmt.Fprintf(w, "on disk:    %s in done files\n", humanBytes(j.Bytes))
	}
	lr := r.LastRun
	if lr.Start != "" {
		fmt.Fprintf(w, "last run:   started %s", lr.Start)
		if lr.End != "" {
			fmt.Fprintf(w, ", ended %s, %s", lr.End, lr.Outcome)
			if lr.ExitCode != nil {
				fmt.Fprintf(w, " (exit %d)", *lr.ExitCode)
			}
		}
		fmt.Fprintln(w)
	}
	if r.Run != nil {
		c, which := r.Run, "this run:  "
		if !r.Running {
			which = "it did:    "
		}
		fmt.Fprintf(w, "%s %d new, %d changed, %d unchanged, %d failed, %d retries\n",
			which, c.New, c.Changed, c.Unchanged, c.Failed, c.Retries)
	}
	if len(r.Workers) > 0 {
		printWorkers(w, r)
	}
	if len(r.Hosts) > 0 {
		fmt.Fprintln(w, "\nhosts:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "host\ttotal\tdone\tfailed\tpending\tbytes\t")
		hosts := make([]string, 0, len(r.Hosts))
		for h := range r.Hosts {
			hosts = append(hosts, h)
		}
		slices.Sort(hosts)
		for _, h := range hosts {
			c := r.Hosts[h]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t\n", h, c.Total, c.Done, c.Failed, c.Pending, humanBytes(c.Bytes))
		}
		tw.Flush()
		if r.HostsOmitted > 0 {
			fmt.Fprintf(w, "  (and %d more hosts)\n", r.HostsOmitted)
		}
	}
	if r.HostsSkippedOnly > 0 {
		fmt.Fprintf(w, "  (%s with skipped URLs only not shown)\n", plural(int64(r.HostsSkippedOnly), "host"))
	}
	if len(r.TopErrors) > 0 {
		fmt.Fprintln(w, "\nmost common errors:")
		for _, e := range r.TopErrors {
			fmt.Fprintf(w, "  %6d  %s\n", e.Count, e.Error)
		}
	}
}

// skipReasons says why URLs were skipped: by reason, the commonest first, or, for a state file
// without the counts, which reasons there are.
func skipReasons(by map[string]int) string {
	if len(by) == 0 {
		return "off scope or excluded, too deep (--depth, chains of requisites), robots.txt, over --max-pages or the requisite budget"
	}
	reasons := make([]string, 0, len(by))
	for reason := range by {
		reasons = append(reasons, reason)
	}
	slices.SortFunc(reasons, func(a, b string) int { return cmp.Or(cmp.Compare(by[b], by[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(reasons))
	for i, reason := range reasons {
		parts[i] = fmt.Sprintf("%d %s", by[reason], cmp.Or(reason, "(no reason)"))
	}
	return strings.Join(parts, ", ")
}

// publishStatus writes the job's status snapshot for `trawl status`: while it runs, and once more
// when it ends (running false), so the snapshot never claims a run that is over.
func publishStatus(st *store.Store, t *tally, running bool) error {
	r, err := readStatus(st)
	if err != nil {
		return err
	}
	r.Running = running
	if running && len(r.Hosts) > maxLiveHosts {
		r.Hosts, r.HostsOmitted = topHosts(r.Hosts, maxLiveHosts), len(r.Hosts)-maxLiveHosts
	}
	total, _, top := t.snapshot()
	r.Run = &total
	r.TopErrors = top
	return writeJSON(statusFile(st.Path()), r)
}
