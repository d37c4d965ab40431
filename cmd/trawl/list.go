package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/store"
)

// listedURL is one URL of `trawl list --json`: its state and what the state file knows of it.
type listedURL struct {
	URL      string     `json:"url"`
	State    string     `json:"state"`              // done, failed, pending or skipped
	Status   int        `json:"status,omitempty"`   // the last HTTP status
	Class    string     `json:"class,omitempty"`    // failed, or pending a retry: the error's class
	Attempts int        `json:"attempts,omitempty"` // fetch attempts made
	Error    string     `json:"error,omitempty"`    // failed, or pending a retry: the last error
	Due      *time.Time `json:"due,omitempty"`      // pending: not before this time
	Reason   string     `json:"reason,omitempty"`   // skipped: why (off scope, robots.txt, depth...)
	Bytes    int64      `json:"bytes,omitempty"`    // done: the file's size
	Path     string     `json:"path,omitempty"`     // done: the file, under the output directory
}

func listedOf(r queue.Record) listedURL {
	l := listedURL{URL: redact(r.URL), Status: r.Status, Attempts: r.Attempts}
	switch r.State {
	case queue.Done:
		l.State, l.Bytes, l.Path = "done", r.Bytes, r.Path
	case queue.Failed:
		l.State, l.Class, l.Error = "failed", r.ErrorClass, r.LastError
	case queue.Skipped:
		l.State, l.Reason, l.Status, l.Attempts = "skipped", r.LastError, 0, 0
	default: // pending, or leased by a run that died (it is pending again at the next open)
		l.State, l.Class, l.Error = "pending", r.ErrorClass, r.LastError
		if !r.NextAttempt.IsZero() {
			due := r.NextAttempt.UTC()
			l.Due = &due
		}
	}
	return l
}

// text is the URL's line: tab-separated, the URL first (cut -f1 gives the URLs), its state, then
// what the state says.
func (l listedURL) text() string {
	f := []string{l.URL, l.State}
	switch l.State {
	case "done":
		f = append(f, strconv.FormatInt(l.Bytes, 10), l.Path)
	case "failed":
		status := "-"
		if l.Status != 0 {
			status = strconv.Itoa(l.Status)
		}
		f = append(f, status, l.Class, strconv.Itoa(l.Attempts), strings.TrimPrefix(l.Error, l.URL+": "))
	case "skipped":
		f = append(f, l.Reason)
	case "pending":
		due := "now"
		if l.Due != nil {
			due = l.Due.Format(time.RFC3339)
		}
		f = append(f, strconv.Itoa(l.Attempts), due, strings.TrimPrefix(l.Error, l.URL+": "))
	}
	for i, s := range f {
		f[i] = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, s)
	}
	return strings.TrimRight(strings.Join(f, "\t"), "\t")
}

// listSource opens the job whose records trawl list reads: a shared job on NATS JetStream, or the
// state file at path, read-only. closeJob ends the reading.
func listSource(cmd *cobra.Command, shared *sharedFlags, path string) (forEach func(func(queue.Record) error) error, closeJob func(), err error) {
	if isShared, err := shared.given(cmd); err != nil {
		return nil, nil, err
	} else if isShared {
		q, closeConn, err := shared.attach(cmd.Context())
		if err != nil {
			return nil, nil, err
		}
		return q.ForEach, closeConn, nil
	}
	st, err := store.Open(path, &store.Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, usageErr("no trawl job at %s (give -o DIR or --state FILE)", path)
	case errors.Is(err, store.ErrLocked):
		return nil, nil, fatalErr("%v; list its URLs once the run ends (trawl status shows its progress now)", err)
	case err != nil:
		return nil, nil, fatalErr("%v", err)
	}
	return st.ForEach, func() { st.Close() }, nil
}

func newListCmd(stdout io.Writer) *cobra.Command {
	var out, state, host string
	var done, failed, pending, skipped, asJSON bool
	var shared sharedFlags
	cmd := &cobra.Command{
		Use:   "list [-o DIR | --state FILE | --queue nats://HOST:PORT --job NAME] [--failed] [--skipped] [--pending] [--done] [--host H] [--json]",
		Short: "List a job's URLs by state: what failed and why, what was skipped and why, what is left",
		Long: `List the job's URLs, one per line, tab-separated: the URL, its state, then
  done     its size in bytes and its path under the output directory
  failed   its HTTP status (- if none), error class, attempts and last error
  skipped  the reason (off-scope, excluded, robots.txt, depth, max-pages...)
  pending  attempts so far, when it is due (now, or a time), and its last error if any
--failed, --skipped, --pending and --done choose states (any number of them; none: all), --host
one host. --json prints one JSON object per line. The state file is read while no run holds it.
With --queue and --job, the URLs of a job shared on NATS JetStream, at any time (a URL a worker
holds is pending; a done one's path is under the --out of the worker that fetched it).`,
		Example: `  trawl list --failed -o images/
  trawl list --failed -o images/ | cut -f1 > again.txt
  trawl list --skipped --json -o mirror/ | jq -r .reason | sort | uniq -c`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			want := map[queue.State]bool{queue.Done: done, queue.Failed: failed, queue.Pending: pending,
				queue.Leased: pending, queue.Skipped: skipped}
			all := !done && !failed && !pending && !skipped
			forEach, closeJob, err := listSource(cmd, &shared, statePathOf(out, state))
			if err != nil {
				return err
			}
			defer closeJob()
			w := bufio.NewWriter(stdout)
			enc := json.NewEncoder(w)
			err = forEach(func(r queue.Record) error {
				if (!all && !want[r.State]) || (host != "" && r.Host != host) {
					return nil
				}
				l := listedOf(r)
				if asJSON {
					return enc.Encode(l)
				}
				_, err := fmt.Fprintln(w, l.text())
				return err
			})
			if err != nil {
				return fatalErr("%v", err)
			}
			if err := w.Flush(); err != nil {
				return fatalErr("%v", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "out", "o", ".", "the job's output `DIR`")
	f.StringVar(&state, "state", "", "the job's state `FILE` (default <out>/.trawl/state.db)")
	f.BoolVar(&failed, "failed", false, "URLs that failed, with status, class, attempts and error")
	f.BoolVar(&skipped, "skipped", false, "URLs recorded but not fetched, with the reason")
	f.BoolVar(&pending, "pending", false, "URLs still queued, with when they are due")
	f.BoolVar(&done, "done", false, "URLs done, with size and path")
	f.StringVar(&host, "host", "", "only URLs of host `H` (host[:port] as in trawl status)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per line")
	shared.add(f)
	return cmd
}
