package fetcher

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

func TestTLSFailures(t *testing.T) {
	past := time.Now().Add(-48 * time.Hour)
	for _, tc := range []struct {
		name    string
		srvOpts []testserver.Option
		trust   bool
		want    string
	}{
		{"unknown authority", nil, false, "unknown authority"},
		{"expired", []testserver.Option{testserver.GeneratedCert([]string{"127.0.0.1"}, past, past.Add(time.Hour))}, true, "expired"},
		{"wrong host name", []testserver.Option{testserver.GeneratedCert([]string{"example.org"}, past, time.Now().Add(time.Hour))}, true, "host name"},
		{"protocol version", []testserver.Option{testserver.TLSMaxVersion(tls.VersionTLS11)}, true, "protocol version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.New(t, tc.srvOpts...)
			var f *Fetcher
			if tc.trust {
				f = newFetcher(t, srv)
			} else {
				f = newFetcher(t, nil)
			}
			root, _ := newRoot(t)
			_, err := fetch(t, f, root, srv.URL("/f"), "f")
			e := wantError(t, err, ClassTLS, false)
			if !strings.Contains(e.Error(), tc.want) {
				t.Fatalf("message %q does not say %q", e, tc.want)
			}
		})
	}
	t.Run("insecure skips verification", func(t *testing.T) {
		srv := testserver.New(t)
		f := newFetcher(t, nil, func(o *Options) { o.Insecure = true })
		root, _ := newRoot(t)
		if _, err := fetch(t, f, root, srv.URL("/f"), "f"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestClientCert(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, proto func(*Options)) {
		ca, err := testserver.NewCA()
		if err != nil {
			t.Fatal(err)
		}
		certFile, keyFile, err := ca.WriteClientCert(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name    string
			version uint16
		}{{"tls1.2", tls.VersionTLS12}, {"tls1.3", tls.VersionTLS13}} {
			t.Run(tc.name, func(t *testing.T) {
				srv := testserver.New(t, testserver.RequireClientCert(ca.Pool()), testserver.TLSMaxVersion(tc.version))
				root, _ := newRoot(t)
				with := newFetcher(t, srv, proto, func(o *Options) { o.ClientCertFile, o.ClientKeyFile = certFile, keyFile })
				if _, err := fetch(t, with, root, srv.URL("/f"), "f"); err != nil {
					t.Fatalf("with client cert: %v", err)
				}
				without := newFetcher(t, srv, proto)
				_, err = fetch(t, without, root, srv.URL("/g"), "g")
				if tc.version == tls.VersionTLS12 {
					// The refusal is part of the handshake.
					wantError(t, err, ClassTLS, false)
				} else if err == nil {
					// TLS 1.3 clients finish the handshake before the server checks the
					// certificate; the refusal races the request write (alert or reset).
					t.Fatal("fetch without a client certificate succeeded")
				}
			})
		}
	})
}

func TestNewRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not a certificate"), 0o644)
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"missing CA", Options{CACertFile: filepath.Join(dir, "nope.pem")}, "CA certificate"},
		{"CA without PEM", Options{CACertFile: junk}, "no PEM"},
		{"bad client cert", Options{ClientCertFile: junk, ClientKeyFile: junk}, "client certificate"},
		{"cert without key", Options{ClientCertFile: junk}, "key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestRedirects(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, proto func(*Options)) {
		srv := testserver.New(t)
		f := newFetcher(t, srv, proto, func(o *Options) { o.MaxRedirects = 3 })
		root, _ := newRoot(t)
		for i := 1; i <= 5; i++ {
			srv.Handle("/hop"+itoa(int64(i)), testserver.Redirect("/hop"+itoa(int64(i+1))))
		}
		t.Run("within the limit", func(t *testing.T) {
			resp, err := fetch(t, f, root, srv.URL("/hop4"), "a")
			if err != nil {
				t.Fatal(err)
			}
			if resp.FinalURL != srv.URL("/hop6") {
				t.Fatalf("FinalURL %s", resp.FinalURL)
			}
		})
		t.Run("over the limit", func(t *testing.T) {
			_, err := fetch(t, f, root, srv.URL("/hop1"), "b")
			wantError(t, err, ClassRedirect, false)
		})
		t.Run("to a refusal", func(t *testing.T) {
			srv.Handle("/to-locked", testserver.Redirect("/locked"))
			srv.Handle("/locked", testserver.Statuses(http.StatusUnauthorized))
			_, err := fetch(t, f, root, srv.URL("/to-locked"), "d")
			e := wantError(t, err, ClassHTTP, false)
			if want := srv.URL("/to-locked") + ": HTTP 401 Unauthorized: from " + srv.URL("/locked") + ", where a redirect led"; e.Error() != want {
				t.Fatalf("message %q, want %q", e, want)
			}
			srv.Handle("/locked-here", testserver.Statuses(http.StatusUnauthorized))
			_, err = fetch(t, f, root, srv.URL("/locked-here"), "e")
			if e := wantError(t, err, ClassHTTP, false); strings.Contains(e.Error(), "redirect") {
				t.Fatalf("no redirect, but: %q", e)
			}
		})
		t.Run("to ftp", func(t *testing.T) {
			srv.Handle("/ftp", testserver.Redirect("ftp://127.0.0.1/file"))
			_, err := fetch(t, f, root, srv.URL("/ftp"), "c")
			e := wantError(t, err, ClassRedirect, false)
			if !strings.Contains(e.Error(), "ftp") {
				t.Fatalf("message %q", e)
			}
		})
	})
}

func TestRedirectCredentials(t *testing.T) {
	a := testserver.New(t)
	b := testserver.New(t)
	creds := map[string]string{"Authorization": "Bearer secret", "Cookie": "session=1", "X-Api-Key": "k"}

	// hostAlias maps test host names to the two servers (the shared test certificate
	// covers *.example.com), so the redirect crosses host *names* as well as ports.
	alias := func(f *Fetcher) {
		d := f.dial
		f.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			switch {
			case strings.HasPrefix(addr, "a.example.com:"):
				addr = a.Addr()
			case strings.HasPrefix(addr, "b.example.com:"):
				addr = b.Addr()
			}
			return d(ctx, network, addr)
		}
	}
	port := func(s *testserver.Server) string { _, p, _ := net.SplitHostPort(s.Addr()); return p }

	for _, tc := range []struct {
		name      string
		from, to  string // URL of /start on a, and its redirect target on b (or a)
		stripped  bool
		userinfo  bool
		withAlias bool
	}{
		{"cross port", a.URL("/start"), b.URL("/dst"), true, false, false},
		{"cross host name", "https://a.example.com:" + port(a) + "/start", "https://b.example.com:" + port(b) + "/dst", true, false, true},
		{"same host", a.URL("/start"), a.URL("/dst"), false, false, false},
		{"userinfo only for the original host", strings.Replace(a.URL("/start"), "https://", "https://user:pw@", 1), b.URL("/dst"), true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string][]string{}
			if !tc.userinfo {
				for k, v := range creds {
					hdr[k] = []string{v}
				}
			}
			f := newFetcher(t, a, func(o *Options) { o.Header = hdr })
			if tc.withAlias {
				alias(f)
			}
			root, _ := newRoot(t)
			a.Handle("/start", testserver.Redirect(tc.to))
			nA, nB := len(a.Requests()), len(b.Requests())
			if _, err := fetch(t, f, root, tc.from, "f"); err != nil {
				t.Fatal(err)
			}
			first := a.Requests()[nA].Header
			var second = a.Requests()[len(a.Requests())-1].Header
			if tc.to != a.URL("/dst") {
				second = b.Requests()[nB].Header
			}
			if tc.userinfo {
				if !strings.HasPrefix(first.Get("Authorization"), "Basic ") {
					t.Fatalf("original host got no basic auth: %v", first)
				}
				if second.Get("Authorization") != "" {
					t.Fatalf("basic auth leaked across hosts: %v", second)
				}
				return
			}
			for k, v := range creds {
				if first.Get(k) != v {
					t.Fatalf("original host: %s = %q", k, first.Get(k))
				}
				if got := second.Get(k); tc.stripped && got != "" || !tc.stripped && got != v {
					t.Fatalf("after redirect: %s = %q (stripped=%v)", k, got, tc.stripped)
				}
			}
		})
	}
}

func TestCrossHost(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		cross    bool
	}{
		{"https://a/x", "https://a/y", false},
		{"https://a/x", "https://A:443/y", false},
		{"http://a/x", "https://a/y", false},
		{"https://a/x", "http://a/y", true},
		{"https://a/x", "https://b/y", true},
		{"https://a:1/x", "https://a:2/y", true},
		{"http://a:8080/x", "https://a/y", true},
		{"https://a/x", "https://sub.a/y", true},
	} {
		from, _ := url.Parse(tc.from)
		to, _ := url.Parse(tc.to)
		if got := crossHost(from, to); got != tc.cross {
			t.Errorf("crossHost(%s, %s) = %v", tc.from, tc.to, got)
		}
	}
}

// TestProtocols: by default a host that offers HTTP/2 gets small bodies as streams of one
// connection and big ones over HTTP/1.1 connections of their own; a forced protocol is used for
// everything, and forced HTTP/2 fails against a server without it.
func TestProtocols(t *testing.T) {
	const small, big = 10 << 10, BulkBodySize
	for _, tc := range []struct {
		name       string
		proto      Protocol
		http1Only  bool
		wantSmall  []string // protocols of the requests for the small file, in order
		wantBig    []string
		multiplex  bool // what Request.OnAnswer is told
		wantFailed bool
	}{
		{"auto", ProtocolAuto, false, []string{"HTTP/2.0"}, []string{"HTTP/2.0", "HTTP/1.1"}, true, false},
		{"auto, server without h2", ProtocolAuto, true, []string{"HTTP/1.1"}, []string{"HTTP/1.1"}, false, false},
		{"http1.1", ProtocolHTTP1, false, []string{"HTTP/1.1"}, []string{"HTTP/1.1"}, false, false},
		{"http2", ProtocolHTTP2, false, []string{"HTTP/2.0"}, []string{"HTTP/2.0"}, true, false},
		{"http2, server without it", ProtocolHTTP2, true, nil, nil, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []testserver.Option{}
			if tc.http1Only {
				opts = append(opts, testserver.HTTP1Only())
			}
			srv := testserver.New(t, opts...)
			srv.Handle("/small", testserver.Size(small))
			srv.Handle("/big", testserver.Size(big))
			f := newFetcher(t, srv, func(o *Options) { o.Protocol = tc.proto })
			root, dir := newRoot(t)
			for _, p := range []struct {
				path string
				want []string
			}{{"/small", tc.wantSmall}, {"/big", tc.wantBig}} {
				var answered []bool
				var sent atomic.Int32
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				resp, err := f.Fetch(ctx, root, Request{URL: srv.URL(p.path), Path: p.path[1:],
					OnAnswer: func(m bool) { answered = append(answered, m) },
					OnSent:   func() { sent.Add(1) }})
				cancel()
				if tc.wantFailed {
					if err == nil {
						t.Fatalf("%s: fetched over forced HTTP/2 from a server without it", p.path)
					}
					continue
				}
				if err != nil || resp.SHA256 != srv.SHA256(p.path) || !bytes.Equal(readFile(t, dir, p.path[1:]), srv.Body(p.path)) {
					t.Fatalf("%s: %+v %v", p.path, resp, err)
				}
				if len(answered) != 1 || answered[0] != tc.multiplex {
					t.Errorf("%s: OnAnswer told %v, want once %v", p.path, answered, tc.multiplex)
				}
				var got []string
				for _, r := range srv.RequestsFor(p.path) {
					got = append(got, r.Proto)
				}
				if !slices.Equal(got, p.want) {
					t.Errorf("%s: requests over %v, want %v", p.path, got, p.want)
				}
				if int(sent.Load()) != len(got) {
					t.Errorf("%s: OnSent told of %d requests sent, the server saw %d", p.path, sent.Load(), len(got))
				}
			}
		})
	}
}

// TestBulkResume: with HTTP/2 offered, a resume whose remainder is big goes over HTTP/1.1 at once,
// not first as an HTTP/2 stream that would be asked again.
func TestBulkResume(t *testing.T) {
	const size, cut = BulkBodySize + 1<<20, 1 << 20
	srv := testserver.New(t, testserver.Size(size))
	f := newFetcher(t, srv, func(o *Options) { o.Protocol = ProtocolAuto })
	root, dir := newRoot(t)
	partial(t, srv, f, root, dir, "/f", "f", cut)
	resp, err := fetch(t, f, root, srv.URL("/f"), "f")
	if err != nil || !resp.Resumed || resp.SHA256 != srv.SHA256("/f") {
		t.Fatalf("resume: %+v %v", resp, err)
	}
	var got []string
	for _, r := range srv.RequestsFor("/f") {
		got = append(got, r.Proto+" "+r.Header.Get("Range"))
	}
	if want := []string{"HTTP/2.0 ", "HTTP/1.1 ", "HTTP/1.1 bytes=1048576-"}; !slices.Equal(got, want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
}

// TestBulkAskAgainPolite: asking a big body again over HTTP/1.1 is a second request to the host,
// so it is made only when the host's politeness grants one (Request.MoreConns); refused, the body
// stays on its HTTP/2 stream.
func TestBulkAskAgainPolite(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grant int
		want  []string
	}{{"granted", 1, []string{"HTTP/2.0", "HTTP/1.1"}}, {"refused", 0, []string{"HTTP/2.0"}}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.New(t, testserver.Size(BulkBodySize))
			f := newFetcher(t, srv, func(o *Options) { o.Protocol = ProtocolAuto })
			root, dir := newRoot(t)
			asked, given := 0, 0
			req := Request{URL: srv.URL("/f"), Path: "f",
				MoreConns: func(n int) int { asked++; return min(n, tc.grant) },
				ConnDone:  func() { given++ }}
			resp, err := f.Fetch(context.Background(), root, req)
			if err != nil || !bytes.Equal(readFile(t, dir, "f"), srv.Body("/f")) {
				t.Fatalf("%+v %v", resp, err)
			}
			var got []string
			for _, r := range srv.RequestsFor("/f") {
				got = append(got, r.Proto)
			}
			if !slices.Equal(got, tc.want) || given != tc.grant || asked == 0 {
				t.Fatalf("requests %v (want %v); asked %d, given back %d", got, tc.want, asked, given)
			}
		})
	}
}
