package integration_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/natstest"
	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestFleetCooldownHandover: a host's Retry-After binds the worker that takes the host over. The
// host answers a 429 with Retry-After: 4 to worker a, which records it and is then killed with
// SIGKILL; worker b takes the host's URLs over a lease time later, and asks the host nothing
// before the 4 seconds are over; then it fetches them all.
func TestFleetCooldownHandover(t *testing.T) {
	t.Parallel()
	nats := natstest.Server(t).ClientURL()
	s, ca := server(t)
	var lines []string
	for i := range 6 {
		lines = append(lines, s.URL(fmt.Sprintf("/h/%d.bin", i)))
	}
	s.Handle("/h/0.bin", testserver.Statuses(http.StatusTooManyRequests), testserver.RetryAfter("4"))
	list := writeList(t, lines...)
	outA, outB := t.TempDir(), t.TempDir()
	worker := func(out string) *proc {
		return start(t, trawlCmd("get", "-i", list, "-o", out, "--ca-cert", ca, "--queue", nats, "--job", "cool",
			"--lease-time", "1s", "--per-host", "1", "--progress-interval", "50ms"))
	}
	// One request at a time, the 429 first: nothing else of the host is on its way when it comes.
	a := worker(outA)
	a.waitStderr("a progress line with the retry recorded", func(s string) bool {
		return logInt(lastLine(s, "msg=progress"), "retries") >= 1
	}, 30*time.Second)
	a.kill9()
	reqs := s.Requests()
	t429 := reqs[0].Time
	if reqs[0].Path != "/h/0.bin" {
		t.Fatalf("first request %s, want /h/0.bin", reqs[0].Path)
	}

	r := start(t, trawlCmd("get", "-i", list, "-o", outB, "--ca-cert", ca, "--queue", nats, "--job", "cool",
		"--lease-time", "1s", "--per-host", "1")).wait(runTimeout)
	wantExit(t, r, exitOK)
	for _, q := range s.Requests()[len(reqs):] {
		if q.Time.Before(t429.Add(4 * time.Second)) {
			t.Errorf("%s requested %v after the 429 with Retry-After: 4", q.Path, q.Time.Sub(t429).Round(time.Millisecond))
		}
	}
	for i := range 6 {
		p := fmt.Sprintf("/h/%d.bin", i)
		if !exists(mirrorPath(outA, s, p)) && !exists(mirrorPath(outB, s, p)) {
			t.Errorf("%s saved by neither worker", p)
		}
	}
}

// TestFleetMaxWait: --max-wait ends a shared job's runs as it ends one machine's. A host answers
// a 429 with Retry-After: 3600; once the rest is done, both workers exit 4 (waiting), saying when
// the URL left is due, rather than waiting the hour for it.
func TestFleetMaxWait(t *testing.T) {
	t.Parallel()
	nats := natstest.Server(t).ClientURL()
	ss, ca := servers(t, 2)
	var lines []string
	for _, s := range ss {
		for i := range 3 {
			lines = append(lines, s.URL(fmt.Sprintf("/w/%d.bin", i)))
		}
	}
	ss[0].Handle("/w/0.bin", testserver.Statuses(http.StatusTooManyRequests), testserver.RetryAfter("3600"))
	list := writeList(t, lines...)
	var ws []*proc
	for range 2 {
		ws = append(ws, start(t, trawlCmd("get", "-i", list, "-o", t.TempDir(), "--ca-cert", ca, "--queue", nats, "--job", "wait",
			"--lease-time", "1s", "--max-wait", "1m")))
	}
	for _, w := range ws {
		r := w.wait(runTimeout)
		wantExit(t, r, exitTransient)
		if !strings.Contains(r.stderr, "1 URL(s) not due before") {
			t.Errorf("stderr does not say what is left and when:\n%s", tail(r.stderr))
		}
	}
	if n := len(ss[0].RequestsFor("/w/0.bin")); n != 1 {
		t.Errorf("/w/0.bin requested %d times, want once", n)
	}
}
