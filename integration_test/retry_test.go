package integration_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestRetryAfterCoolsDownOneHost: a 429 with Retry-After: 2 silences that host for 2 s, while
// the other host keeps being served inside that window.
func TestRetryAfterCoolsDownOneHost(t *testing.T) {
	t.Parallel()
	ss, ca := servers(t, 2)
	busy, other := ss[0], ss[1]
	const limited = "/a/00.bin"
	busy.Handle(limited, testserver.Statuses(429), testserver.RetryAfter("2"))
	lines := []string{busy.URL(limited)}
	var busyPaths, otherPaths []string
	for i := 1; i < 6; i++ {
		busyPaths = append(busyPaths, fmt.Sprintf("/a/%02d.bin", i))
	}
	// The other host's files take ~100 ms each, one at a time: it is busy for ~4 s.
	for i := range 40 {
		p := fmt.Sprintf("/b/%02d.bin", i)
		other.Handle(p, testserver.Size(4096), testserver.Drip(1024, 33*time.Millisecond))
		otherPaths = append(otherPaths, p)
	}
	for _, p := range busyPaths {
		lines = append(lines, busy.URL(p))
	}
	for _, p := range otherPaths {
		lines = append(lines, other.URL(p))
	}
	out := t.TempDir()
	// One request per host at a time: the host's next request cannot be one that was already
	// on its way when the 429 arrived.
	r := runTrawl(t, "get", "-i", writeList(t, lines...), "-o", out, "--ca-cert", ca, "--per-host", "1")
	wantExit(t, r, exitOK)

	for _, p := range append([]string{limited}, busyPaths...) {
		wantFile(t, out, busy, p)
	}
	for _, p := range otherPaths {
		wantFile(t, out, other, p)
	}

	reqs := busy.Requests()
	at := -1
	for i, q := range reqs {
		if q.Path == limited {
			at = i
			break
		}
	}
	if at < 0 {
		t.Fatalf("%s never requested", limited)
	}
	t429 := reqs[at].Time
	window := t429.Add(2 * time.Second)
	after := 0
	for _, q := range reqs[at+1:] {
		after++
		if q.Time.Before(window) {
			t.Errorf("%s requested %s after the 429 with Retry-After: 2", q.Path, q.Time.Sub(t429).Round(time.Millisecond))
		}
	}
	if after == 0 {
		t.Fatalf("no request to the limited host after its 429 (not even the retry)")
	}
	during := 0
	for _, q := range other.Requests() {
		if q.Time.After(t429) && q.Time.Before(window) {
			during++
		}
	}
	if during == 0 {
		t.Errorf("the other host got no request in the 2 s after the 429: the cooldown held it up too")
	}
	t.Logf("other host: %d requests during the cooldown", during)
}

// TestHTTPStatuses: transient statuses are retried, permanent ones fail the URL at once, name it
// in the log and make the exit code 1.
func TestHTTPStatuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     []testserver.Option
		args     []string
		exit     int
		requests int
		done     bool
	}{
		{"503 then 200", []testserver.Option{testserver.Statuses(503)}, nil, exitOK, 2, true},
		{"500 twice then 200", []testserver.Option{testserver.Statuses(500, 500)}, nil, exitOK, 3, true},
		{"503 every time, --retries 1", []testserver.Option{testserver.Statuses(503, 503, 503)}, []string{"--retries", "1"}, exitTransient, 2, false},
		{"404", []testserver.Option{testserver.Statuses(404)}, nil, exitFailed, 1, false},
		{"403", []testserver.Option{testserver.Statuses(403)}, nil, exitFailed, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, ca := server(t)
			const path, fine = "/x/file.bin", "/x/fine.bin"
			s.Handle(path, tt.opts...)
			out := t.TempDir()
			args := append([]string{"get", "-o", out, "--ca-cert", ca}, tt.args...)
			r := runTrawl(t, append(args, s.URL(path), s.URL(fine))...)
			wantExit(t, r, tt.exit)
			if n := len(s.RequestsFor(path)); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			wantFile(t, out, s, fine)
			if tt.done {
				wantFile(t, out, s, path)
				return
			}
			wantNoFile(t, mirrorPath(out, s, path))
			failed := lastLine(r.stderr, "msg=failed")
			if !strings.Contains(failed, "url="+s.URL(path)) {
				t.Errorf("no failure line naming the URL %s; stderr:\n%s", s.URL(path), tail(r.stderr))
			}
			if !logHas(lastLine(r.stderr, "msg=summary"), "failed", "1") {
				t.Errorf("summary does not count 1 failed URL; stderr:\n%s", tail(r.stderr))
			}
		})
	}
}

// TestBrokenBodies: a body cut short (fewer bytes than Content-Length, or a connection reset)
// is retried until it is whole; one that is always cut short fails the URL, which is never
// published under its final name nor recorded done.
func TestBrokenBodies(t *testing.T) {
	t.Parallel()
	const size = 256 << 10
	tests := []struct {
		name   string
		server []testserver.Option
		fault  func(s *testserver.Server, path string) testserver.Option
		args   []string
		exit   int
	}{
		{"truncated once, HTTP/2", nil, func(s *testserver.Server, p string) testserver.Option {
			return firstOnly(s, p, testserver.TruncateAfter(size/3))
		}, []string{"--http2"}, exitOK},
		{"truncated once, HTTP/1.1", []testserver.Option{testserver.HTTP1Only()}, func(s *testserver.Server, p string) testserver.Option {
			return firstOnly(s, p, testserver.TruncateAfter(size/3))
		}, nil, exitOK},
		{"reset once, HTTP/2", nil, func(s *testserver.Server, p string) testserver.Option {
			return firstOnly(s, p, testserver.ResetAfter(size/2))
		}, []string{"--http2"}, exitOK},
		{"reset once, HTTP/1.1", []testserver.Option{testserver.HTTP1Only()}, func(s *testserver.Server, p string) testserver.Option {
			return firstOnly(s, p, testserver.ResetAfter(size/2))
		}, nil, exitOK},
		{"reset before any body byte", []testserver.Option{testserver.HTTP1Only()}, func(s *testserver.Server, p string) testserver.Option {
			return firstOnly(s, p, testserver.ResetAfter(0))
		}, nil, exitOK},
		{"stalled once, --idle-timeout 2s", nil, func(s *testserver.Server, p string) testserver.Option {
			return firstOnly(s, p, testserver.StallAfter(size/4))
		}, []string{"--idle-timeout", "2s"}, exitOK},
		{"stalled once, HTTP/2, --idle-timeout 2s", nil, func(s *testserver.Server, p string) testserver.Option {
			return firstOnly(s, p, testserver.StallAfter(size/4))
		}, []string{"--http2", "--idle-timeout", "2s"}, exitOK},
		{"always truncated, HTTP/2, --retries 1", nil, func(*testserver.Server, string) testserver.Option {
			return testserver.TruncateAfter(size / 3)
		}, []string{"--http2", "--retries", "1"}, exitTransient},
		{"always truncated, HTTP/1.1, --retries 1", []testserver.Option{testserver.HTTP1Only()}, func(*testserver.Server, string) testserver.Option {
			return testserver.TruncateAfter(size / 3)
		}, []string{"--retries", "1"}, exitTransient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, ca := server(t, tt.server...)
			const path = "/data/file.bin"
			s.Handle(path, testserver.Size(size), tt.fault(s, path))
			out := t.TempDir()
			args := append([]string{"get", "-o", out, "--ca-cert", ca}, tt.args...)
			r := runTrawl(t, append(args, s.URL(path))...)
			wantExit(t, r, tt.exit)
			proto := "HTTP/2.0" // offered by default, and by the server unless it is HTTP1Only
			if tt.server != nil {
				proto = "HTTP/1.1"
			}
			for _, req := range s.RequestsFor(path) {
				if req.Proto != proto {
					t.Errorf("request over %s, want %s", req.Proto, proto)
				}
			}
			n := len(s.RequestsFor(path))
			if tt.exit == exitOK {
				if n != 2 {
					t.Errorf("%d requests, want 2 (the broken one, the retry)", n)
				}
				wantFile(t, out, s, path)
				if parts := partFiles(t, out); len(parts) > 0 {
					t.Errorf("temporary files left behind: %s", strings.Join(parts, ", "))
				}
				return
			}
			if n != 2 {
				t.Errorf("%d requests, want 2 (first attempt and one retry)", n)
			}
			final := mirrorPath(out, s, path)
			wantNoFile(t, final)
			if !logHas(lastLine(r.stderr, "msg=summary"), "failed", "1") {
				t.Errorf("summary does not count 1 failed URL; stderr:\n%s", tail(r.stderr))
			}
			if !strings.Contains(lastLine(r.stderr, "msg=failed"), "url="+s.URL(path)) {
				t.Errorf("no failure line naming %s; stderr:\n%s", s.URL(path), tail(r.stderr))
			}
			// Not recorded done: once the server is healthy, the same command fetches it again.
			s.Handle(path, testserver.TruncateAfter(-1))
			r = runTrawl(t, append(args, s.URL(path))...)
			wantExit(t, r, exitOK)
			if m := len(s.RequestsFor(path)); m != n+1 {
				t.Errorf("rerun sent %d requests for the failed URL, want 1", m-n)
			}
			wantFile(t, out, s, path)
		})
	}
}
