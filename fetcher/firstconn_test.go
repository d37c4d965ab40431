package fetcher

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestFirstRequestOpensTheConnection: with HTTP/2 on, workers that start together on one HTTPS
// host share one HTTP/2 connection, instead of each completing a TLS handshake that is then
// thrown away.
func TestFirstRequestOpensTheConnection(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []testserver.Option
		http2   bool // ProtocolAuto (HTTP/2 offered), else HTTP/1.1
		wantMax int  // TLS handshakes the server may see
	}{
		{"http2", nil, true, 1},
		// A connection per worker.
		{"http2 offered, http1 server", []testserver.Option{testserver.HTTP1Only()}, true, 16},
		{"http1", nil, false, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.New(t, append(tc.opts, testserver.Size(4<<10))...)
			f := newFetcher(t, srv, func(o *Options) { o.Protocol = protoOf(tc.http2) })
			root, _ := newRoot(t)
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for i := range 16 {
				wg.Go(func() {
					if _, err := fetch(t, f, root, srv.URL(fmt.Sprintf("/f%d", i)), fmt.Sprintf("f%d", i)); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if n := srv.Handshakes(); n < 1 || n > tc.wantMax {
				t.Errorf("%d TLS handshakes for 16 concurrent requests, want 1..%d", n, tc.wantMax)
			}
			// Over HTTP/1.1 there is no connection to share: nobody waits for the first.
			if gated := len(f.first.origins) > 0; gated != tc.http2 {
				t.Errorf("first-request gate used: %v, want %v", gated, tc.http2)
			}
		})
	}
}

func TestFirstRequestsGate(t *testing.T) {
	var g firstRequests
	done, err := g.enter(t.Context(), "a:443")
	if err != nil {
		t.Fatal(err)
	}
	// Another origin is not held up by the first.
	doneB, err := g.enter(t.Context(), "b:443")
	if err != nil {
		t.Fatal(err)
	}
	doneB()

	// A second request to a waits, and gives up with its context.
	ctx, cancel := context.WithCancelCause(t.Context())
	stop := errors.New("stopped")
	cancel(stop)
	if _, err := g.enter(ctx, "a:443"); !errors.Is(err, stop) {
		t.Fatalf("waiting with a canceled context: %v", err)
	}

	// Released (twice is harmless), everyone passes.
	entered := make(chan struct{})
	go func() {
		if d, err := g.enter(t.Context(), "a:443"); err == nil {
			d()
		}
		close(entered)
	}()
	done()
	done()
	<-entered
}

// TestFirstRequestSlowResponse: the others wait for the first request's connection, not for its
// response — a first URL that is slow to answer holds nobody up.
func TestFirstRequestSlowResponse(t *testing.T) {
	srv := testserver.New(t)
	release := make(chan struct{})
	srv.Handle("/slow", testserver.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.Write([]byte("slow"))
	}))
	f := newFetcher(t, srv, func(o *Options) { o.Protocol = ProtocolHTTP2 })
	root, _ := newRoot(t)
	slow := make(chan error, 1)
	go func() {
		_, err := fetch(t, f, root, srv.URL("/slow"), "slow")
		slow <- err
	}()
	srv.WaitRequests(1, 10*time.Second) // the slow one is at the server, unanswered
	if _, err := fetch(t, f, root, srv.URL("/fast"), "fast"); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	if n := srv.Handshakes(); n != 1 {
		t.Errorf("%d TLS handshakes, want 1", n)
	}
}

// TestSessionResumed: a second connection to a host resumes the first one's TLS session.
func TestSessionResumed(t *testing.T) {
	srv := testserver.New(t, testserver.Size(100), testserver.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close") // every request on a connection of its own
		w.Write([]byte("x"))
	}))
	f := newFetcher(t, srv)
	root, _ := newRoot(t)
	for _, name := range []string{"a", "b", "c"} {
		if _, err := fetch(t, f, root, srv.URL("/"+name), name); err != nil {
			t.Fatal(err)
		}
	}
	reqs := srv.Requests()
	if len(reqs) != 3 || srv.Handshakes() != 3 {
		t.Fatalf("%d requests over %d handshakes, want 3 over 3", len(reqs), srv.Handshakes())
	}
	for i, r := range reqs {
		if r.Resumed != (i > 0) {
			t.Errorf("request %d: resumed %v", i, r.Resumed)
		}
	}
}
