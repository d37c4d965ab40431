package main

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/queue"
)

func TestFailureReason(t *testing.T) {
	for _, tc := range []struct{ err, want string }{
		{"https://h:8443/a.jpg: tls: certificate signed by unknown authority (use --ca-cert to trust it): tls: failed to verify certificate: x509: certificate signed by unknown authority",
			"tls: certificate signed by unknown authority (use --ca-cert to trust it)"},
		{"https://h/x: HTTP 404 Not Found", "HTTP 404 Not Found"},
		{"dial tcp 127.0.0.1:1: connect: connection refused", "dial tcp 127.0.0.1:1: connect: connection refused"},
		{"", "network"},
		{"https://h/x: " + strings.Repeat("é", 200), strings.Repeat("é", 100) + "..."},
	} {
		if got := failureReason(queue.Record{LastError: tc.err, ErrorClass: "network"}); got != tc.want {
			t.Errorf("failureReason(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestFailureGroups: failures group by host, class and status, the largest group first; a group
// of one names its URL.
func TestFailureGroups(t *testing.T) {
	g := newFailureGroups()
	rec := func(host, u, class string, status int, err string) queue.Record {
		return queue.Record{Host: host, URL: "https://" + host + u, ErrorClass: class, Status: status, LastError: "https://" + host + u + ": " + err}
	}
	var firsts int
	for _, r := range []queue.Record{
		rec("a", "/1", "http", 404, "HTTP 404 Not Found"),
		rec("b", "/1", "tls", 0, "tls: expired"),
		rec("a", "/2", "http", 404, "HTTP 404 Not Found"),
		rec("a", "/3", "http", 403, "HTTP 403 Forbidden"),
		rec("b", "/2", "tls", 0, "tls: expired"),
		rec("b", "/3", "tls", 0, "tls: expired"),
	} {
		if _, first := g.add(r); first {
			firsts++
		}
	}
	want := []string{"3 URLs on b: tls: expired", "2 URLs on a: HTTP 404 Not Found", "https://a/3: HTTP 403 Forbidden"}
	if got := g.lines(); strings.Join(got, "\n") != strings.Join(want, "\n") || firsts != 3 {
		t.Errorf("lines %q (%d firsts), want %q (3)", got, firsts, want)
	}
}

func TestSummarySentence(t *testing.T) {
	for _, tc := range []struct {
		s    runSummary
		want string
	}{
		{runSummary{counts: runCounts{New: 497, Changed: 2, Unchanged: 10, Bytes: 1 << 30}, received: 1 << 30, elapsed: 5*time.Minute + 12*time.Second},
			"Fetched 497 new files and 2 changed (1.0 GiB) in 5m12s at 3.3 MiB/s; 10 unchanged."},
		{runSummary{counts: runCounts{New: 1, Failed: 23, Bytes: 4096}, received: 4096, elapsed: time.Second},
			"Fetched 1 new file (4.0 KiB) in 1s at 4.0 KiB/s; 23 failed."},
		{runSummary{counts: runCounts{Unchanged: 3}, bad: 2, pending: 5, elapsed: 40 * time.Millisecond},
			"Nothing new fetched in 40ms; 3 unchanged, 2 bad input lines skipped, 5 URLs left queued for the next run."},
	} {
		if got := tc.s.sentence(); got != tc.want {
			t.Errorf("sentence:\n got %q\nwant %q", got, tc.want)
		}
	}
}

func TestHumanHandler(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(&humanHandler{w: &b, level: slog.LevelInfo, mu: new(sync.Mutex)})
	log.Debug("hidden")
	log.Info("list unchanged", "file", "urls.txt", "bad_lines_then", 2)
	log.With("file", "u.txt").Error("skipping bad line", "line", 3, "err", "not a URL: no scheme")
	log.WithGroup("g").Warn("odd", "k", "")
	want := "list unchanged file=urls.txt bad_lines_then=2\n" +
		"error: skipping bad line file=u.txt line=3 err=\"not a URL: no scheme\"\n" +
		"warning: odd g.k=\"\"\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
