package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/scheduler"
)

// runCounts tally one run's outcomes: the report's "counts" and status's "run". URLs not fetched
// are counted once, for the whole job (jobCounts.Skipped, by reason in skipped_by); bad input
// lines in the report's bad_input_count.
type runCounts struct {
	New       int64 `json:"new"`
	Changed   int64 `json:"changed"`
	Unchanged int64 `json:"unchanged"`
	Failed    int64 `json:"failed"`
	Transient int64 `json:"failed_transient"` // of Failed: out of retries on errors that may pass
	Retries   int64 `json:"retries"`
	Bytes     int64 `json:"bytes"` // size of the files written (new and changed)
}

func (c *runCounts) add(o scheduler.Outcome) {
	switch o.Kind {
	case scheduler.KindNew:
		c.New++
		c.Bytes += o.Record.Bytes
	case scheduler.KindChanged:
		c.Changed++
		c.Bytes += o.Record.Bytes
	case scheduler.KindUnchanged:
		c.Unchanged++
	case scheduler.KindRetry:
		c.Retries++
	case scheduler.KindFailed:
		c.Failed++
		if o.Record.Transient {
			c.Transient++
		}
	}
}

// errorKey groups failures for "most common errors".
func errorKey(r queue.Record) string {
	if r.Status != 0 {
		return r.ErrorClass + " " + strconv.Itoa(r.Status)
	}
	return r.ErrorClass
}

// tally collects a run's outcomes, safe for concurrent use: the committer adds, the status
// snapshot and the report read.
type tally struct {
	mu     sync.Mutex
	total  runCounts
	hosts  map[string]*runCounts
	errors map[string]int64
}

func newTally() *tally {
	return &tally{hosts: map[string]*runCounts{}, errors: map[string]int64{}}
}

func (t *tally) add(o scheduler.Outcome) {
	if o.Kind == scheduler.KindReleased {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total.add(o)
	h := t.hosts[o.Record.Host]
	if h == nil {
		h = &runCounts{}
		t.hosts[o.Record.Host] = h
	}
	h.add(o)
	if o.Kind == scheduler.KindFailed {
		t.errors[errorKey(o.Record)]++
	}
}

// totals are the run's counts so far.
func (t *tally) totals() runCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total
}

func (t *tally) snapshot() (runCounts, map[string]runCounts, []errorCount) {
	t.mu.Lock()
	defer t.mu.Unlock()
	hosts := make(map[string]runCounts, len(t.hosts))
	for h, c := range t.hosts {
		hosts[h] = *c
	}
	return t.total, hosts, topErrors(t.errors, 10)
}

type errorCount struct {
	Error string `json:"error"`
	Count int64  `json:"count"`
}

func topErrors(m map[string]int64, n int) []errorCount {
	out := make([]errorCount, 0, len(m))
	for k, v := range m {
		out = append(out, errorCount{k, v})
	}
	slices.SortFunc(out, func(a, b errorCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Error, b.Error))
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// report is the JSON written by --report at the end of every run.
type report struct {
	Command         string               `json:"command"`
	StateFile       string               `json:"state_file"`
	Out             string               `json:"out"`
	Start           time.Time            `json:"start"`
	End             time.Time            `json:"end"`
	DurationSeconds float64              `json:"duration_seconds"`
	Outcome         string               `json:"outcome"` // done, failed, transient, waiting, interrupted, fatal, usage
	ExitCode        int                  `json:"exit_code"`
	Error           string               `json:"error,omitempty"`
	Counts          runCounts            `json:"counts"`
	ReceivedBytes   int64                `json:"received_bytes"` // body bytes received, partial transfers included
	Hosts           map[string]runCounts `json:"hosts"`
	Job             jobCounts            `json:"job"`
	SkippedBy       map[string]int       `json:"skipped_by,omitempty"` // job.skipped by reason, as in status
	Failures        []failure            `json:"failures"`
	// BadInputCount counts the list lines and arguments skipped as unusable, in this run or, for
	// a list unchanged since, when it was read; BadInput lists up to 1,000 of them.
	BadInputCount int64      `json:"bad_input_count"`
	BadInput      []badInput `json:"bad_input"`
	Waiting       []waiting  `json:"waiting,omitempty"` // a run ended by --max-wait: the URLs it left queued
}

// jobCounts are the whole job's records by state.
type jobCounts struct {
	Total   int `json:"total"`
	Done    int `json:"done"`
	Failed  int `json:"failed"`
	Pending int `json:"pending"`
	// Skipped counts the URLs known but not fetched: off scope (off-scope, off-host-asset,
	// excluded, not-included), beyond a limit (depth, requisite-depth, max-pages,
	// requisite-budget, too-long), robots.txt, invalid or unmappable, or a directory whose page
	// was saved when a link without its slash was redirected to it (redirect-target). `trawl
	// status` counts them by reason.
	Skipped int   `json:"skipped"`
	Bytes   int64 `json:"bytes"` // size of the done files
}

func jobCountsOf(c queue.Counts) jobCounts {
	return jobCounts{Total: c.Total(), Done: c.Done, Failed: c.Failed, Pending: c.Pending + c.Leased,
		Skipped: c.Skipped, Bytes: c.Bytes}
}

type failure struct {
	URL       string `json:"url"`
	Status    int    `json:"status,omitempty"`
	Class     string `json:"class"`
	Error     string `json:"error"`
	Attempts  int    `json:"attempts"`
	Transient bool   `json:"transient"`
}

// write completes rep with the run's error and the job's leftovers, and writes it to path.
func (rep *report) write(path string, st queue.Backend, exit runExit) error {
	if exit.err != nil {
		rep.Error = exit.err.Error()
	}
	var err error
	if rep.Failures, rep.Waiting, err = leftovers(st, exit.outcome == "waiting"); err != nil {
		return err
	}
	return writeJSON(path, rep)
}

// waiting is a URL left queued by a run that ended because the rest of its work was not due.
type waiting struct {
	URL      string     `json:"url"`
	Due      *time.Time `json:"due,omitempty"` // its retry time; none: due now, its host cooling down
	Class    string     `json:"class,omitempty"`
	Error    string     `json:"error,omitempty"`
	Attempts int        `json:"attempts"`
}

// maxWaitingListed bounds the report's list of queued URLs (job.pending counts them all).
const maxWaitingListed = 1000

// leftovers lists every failed record of the job and, when listQueued, up to maxWaitingListed
// records still queued.
func leftovers(st queue.Backend, listQueued bool) ([]failure, []waiting, error) {
	fails, waits := []failure{}, []waiting{}
	err := st.ForEach(func(r queue.Record) error {
		switch {
		case r.State == queue.Failed:
			fails = append(fails, failure{URL: redact(r.URL), Status: r.Status, Class: r.ErrorClass,
				Error: r.LastError, Attempts: r.Attempts, Transient: r.Transient})
		case listQueued && (r.State == queue.Pending || r.State == queue.Leased) && len(waits) < maxWaitingListed:
			w := waiting{URL: redact(r.URL), Class: r.ErrorClass, Error: r.LastError, Attempts: r.Attempts}
			if !r.NextAttempt.IsZero() {
				due := r.NextAttempt.UTC()
				w.Due = &due
			}
			waits = append(waits, w)
		}
		return nil
	})
	return fails, waits, err
}

// writeJSON writes v to path atomically: a reader sees the old file or the new one, never half.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
