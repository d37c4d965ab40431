package integration_test

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestTLSFailuresE2E: a self-signed certificate without --ca-cert, an expired one, one for
// another name, and a server stuck below TLS 1.2 each fail the URL permanently (exit 1) with a
// message that says which, after one handshake — no retry loop — while --insecure is the only
// thing that gets past a certificate problem.
func TestTLSFailuresE2E(t *testing.T) {
	t.Parallel()
	past := time.Now().Add(-48 * time.Hour)
	tests := []struct {
		name  string
		opts  []testserver.Option
		trust bool // pass the server's CA with --ca-cert
		want  string
	}{
		{"self-signed without --ca-cert", nil, false, "unknown authority"},
		{"expired", []testserver.Option{testserver.GeneratedCert([]string{"127.0.0.1"}, past, past.Add(time.Hour))}, true, "expired"},
		{"wrong host name", []testserver.Option{testserver.GeneratedCert([]string{"other.example"}, past, time.Now().Add(time.Hour))}, true, "host name"},
		{"TLS 1.1", []testserver.Option{testserver.TLSMaxVersion(tls.VersionTLS11)}, true, "protocol version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := testserver.New(t, tt.opts...)
			args := []string{"get", "-o", t.TempDir(), "--retries", "3"}
			if tt.trust {
				args = append(args, "--ca-cert", s.CAFile(t))
			}
			r := runTrawl(t, append(args, s.URL("/a.bin"))...)
			wantExit(t, r, exitFailed)
			if !strings.Contains(lastLine(r.stderr, "msg=failed"), tt.want) {
				t.Errorf("failure does not say %q:\n%s", tt.want, tail(r.stderr))
			}
			if n := s.Handshakes(); n != 1 {
				t.Errorf("%d handshakes, want 1: a TLS verdict is not worth a retry", n)
			}
			if n := len(s.Requests()); n != 0 {
				t.Errorf("%d requests got through", n)
			}
			if tt.want == "protocol version" {
				return // --insecure does not lower the minimum version
			}
			out := t.TempDir()
			r = runTrawl(t, "get", "-o", out, "--insecure", s.URL("/a.bin"))
			wantExit(t, r, exitOK)
			if !strings.Contains(r.stderr, "WARNING") || !strings.Contains(r.stderr, "insecure") {
				t.Errorf("--insecure without a loud warning:\n%s", tail(r.stderr))
			}
			wantFile(t, out, s, "/a.bin")
		})
	}
	t.Run("TLS 1.1 with --insecure", func(t *testing.T) {
		t.Parallel()
		s := testserver.New(t, testserver.TLSMaxVersion(tls.VersionTLS11))
		r := runTrawl(t, "get", "-o", t.TempDir(), "--insecure", s.URL("/a.bin"))
		wantExit(t, r, exitFailed)
	})
}

// TestHostileServersE2E: servers that send Retry-After as seconds, a past date or garbage, that
// never answer, stall after the headers, drip under the idle timeout, or send a hostile
// Content-Disposition; the job ends done, each URL fetched a bounded number of times.
func TestHostileServersE2E(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	hang := testserver.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	cases := []struct {
		path     string
		opts     []testserver.Option
		requests int
	}{
		{"/ra-seconds.bin", []testserver.Option{testserver.Statuses(429), testserver.RetryAfter("1")}, 2},
		{"/ra-date.bin", []testserver.Option{testserver.Statuses(503), testserver.RetryAfter(past)}, 2},
		{"/ra-garbage.bin", []testserver.Option{testserver.Statuses(503), testserver.RetryAfter("soon, maybe; -1e9")}, 2},
		{"/ra-negative.bin", []testserver.Option{testserver.Statuses(429), testserver.RetryAfter("-5")}, 2},
		{"/never-answers.bin", []testserver.Option{firstOnly(s, "/never-answers.bin", hang)}, 2},
		{"/stalls-after-headers.bin", []testserver.Option{testserver.Size(100_000), firstOnly(s, "/stalls-after-headers.bin", testserver.StallAfter(0))}, 2},
		{"/stalls-mid-body.bin", []testserver.Option{testserver.Size(100_000), firstOnly(s, "/stalls-mid-body.bin", testserver.StallAfter(30_000))}, 2},
		{"/drip.bin", []testserver.Option{testserver.Size(8), testserver.Drip(1, 200*time.Millisecond)}, 1},
		{"/disposition.bin", []testserver.Option{testserver.Header("Content-Disposition", `attachment; filename="../../../tmp/evil"`)}, 1},
	}
	var urls []string
	for _, c := range cases {
		s.Handle(c.path, c.opts...)
		urls = append(urls, s.URL(c.path))
	}
	out := t.TempDir()
	start := time.Now()
	r := runTrawl(t, append([]string{"get", "-o", out, "--ca-cert", ca, "--idle-timeout", "2s", "--retries", "2"}, urls...)...)
	wantExit(t, r, exitOK)
	t.Logf("done in %s", time.Since(start).Round(time.Millisecond))
	for _, c := range cases {
		wantFile(t, out, s, c.path)
		if n := len(s.RequestsFor(c.path)); n != c.requests {
			t.Errorf("%s: %d requests, want %d", c.path, n, c.requests)
		}
	}
	done := checkDoneRecords(t, out, stateRecords(t, defaultState(out)))
	checkNoStrayFiles(t, out, done)
}

// TestHostileCrossHostRedirectE2E: a redirect to another host (here: another port) carries
// none of the credentials given for the first — -H headers, Authorization, Cookie, userinfo.
func TestHostileCrossHostRedirectE2E(t *testing.T) {
	t.Parallel()
	ss, ca := servers(t, 2)
	a, b := ss[0], ss[1]
	a.Handle("/start", testserver.Redirect(b.URL("/dst")))
	a.Handle("/start-userinfo", testserver.Redirect(b.URL("/dst-userinfo")))
	withUser := strings.Replace(a.URL("/start-userinfo"), "https://", "https://alice:pw@", 1)
	out := t.TempDir()
	r := runTrawl(t, "get", "-o", out, "--ca-cert", ca,
		"-H", "Authorization: Bearer s3cret-token", "-H", "Cookie: session=s3cret", "-H", "X-Api-Key: s3cret-key",
		a.URL("/start"), withUser)
	wantExit(t, r, exitOK)
	for _, p := range []string{"/dst", "/dst-userinfo"} {
		reqs := b.RequestsFor(p)
		if len(reqs) != 1 {
			t.Fatalf("%s: %d requests", p, len(reqs))
		}
		for _, h := range []string{"Authorization", "Cookie", "X-Api-Key"} {
			if v := reqs[0].Header.Get(h); v != "" {
				t.Errorf("%s on the other host received %s: %q", p, h, v)
			}
		}
	}
	first := a.RequestsFor("/start")
	if len(first) != 1 || first[0].Header.Get("X-Api-Key") != "s3cret-key" || first[0].Header.Get("Authorization") != "Bearer s3cret-token" {
		t.Errorf("the original host did not get the credentials: %v", first)
	}
}
