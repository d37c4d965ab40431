package scheduler

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/extract"
	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/ratelimit"
)

// fakeRobots answers robots.txt fetches from a script, one entry per fetch (the last repeats).
type fakeRobots struct {
	mu      sync.Mutex
	answers []robotsResult
	calls   int
}

func (f *fakeRobots) Get(_ context.Context, _ string, _ int64) (int, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.answers[min(f.calls, len(f.answers)-1)]
	f.calls++
	return a.status, a.body, a.err
}

func TestRobots(t *testing.T) {
	disallow := robotsResult{status: 200, body: []byte("User-agent: *\nDisallow: /private/\n")}
	down := robotsResult{status: 503}
	unreachable := robotsResult{err: errors.New("connection refused")}
	tests := []struct {
		name       string
		answers    []robotsResult
		wantCalls  int
		wantPublic queue.State
		wantSecret queue.State
	}{
		{"rules obeyed", []robotsResult{disallow}, 1, queue.Done, queue.Skipped},
		{"404 means no rules", []robotsResult{{status: 404}}, 1, queue.Done, queue.Done},
		{"5xx then rules: asked again, not taken as permission", []robotsResult{down, down, disallow}, 3, queue.Done, queue.Skipped},
		{"never reachable: the host's URLs fail for this run", []robotsResult{unreachable}, robotsTries, queue.Failed, queue.Failed},
		{"5xx throughout", []robotsResult{down}, robotsTries, queue.Failed, queue.Failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t)
			enqueueAll(t, st, []string{"https://h.test/public/a.html", "https://h.test/private/b.html"})
			scope, err := extract.NewScope([]string{"https://h.test/"}, extract.ScopeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			robots := &fakeRobots{answers: tt.answers}
			opts := fastOptions()
			opts.Crawl = &Crawl{Scope: scope, Layout: fetcher.Mirror, Robots: robots, Agent: "trawl", Cache: st}
			f := newFakeFetcher(nil)
			if err := run(t, st, f, ratelimit.New(ratelimit.Options{PerHost: 2}), opts, nil); err != nil {
				t.Fatal(err)
			}
			if robots.calls != tt.wantCalls {
				t.Errorf("robots.txt fetched %d times, want %d", robots.calls, tt.wantCalls)
			}
			pub, _, _ := st.Get("https://h.test/public/a.html")
			sec, _, _ := st.Get("https://h.test/private/b.html")
			if pub.State != tt.wantPublic || sec.State != tt.wantSecret {
				t.Errorf("public %v, private %v; want %v, %v", pub.State, sec.State, tt.wantPublic, tt.wantSecret)
			}
			if sec.State == queue.Skipped && f.attempts(sec.URL) != 0 {
				t.Errorf("a disallowed URL was requested")
			}
			if pub.State == queue.Failed && !pub.Transient {
				t.Errorf("failure for want of robots.txt is not transient: %+v", pub)
			}
			cached, _ := st.Meta(robotsKey("h.test"))
			if definite := tt.wantPublic != queue.Failed; definite != (cached != "") {
				t.Errorf("cached robots.txt %q; want cached only for a definite answer", cached)
			}
		})
	}
}

func TestRobotsCacheTTL(t *testing.T) {
	now := time.Now()
	v := encodeRobots(now.Add(-robotsTTL-time.Minute), 200, []byte("User-agent: *\nDisallow: /\n"))
	at, status, body, ok := decodeRobots(v)
	if !ok || status != 200 || string(body) != "User-agent: *\nDisallow: /\n" || now.Sub(at) < robotsTTL {
		t.Fatalf("decodeRobots = %v %d %q %v", at, status, body, ok)
	}
	if _, _, _, ok := decodeRobots("garbage"); ok {
		t.Error("garbage decoded")
	}
}

func TestCredentialsHeldForListedUserinfo(t *testing.T) {
	e, _, err := ParseListLine("https://u:pw@h.test/private/x")
	if err != nil {
		t.Fatal(err)
	}
	nu, _ := e.NewURL(fetcher.Mirror, 0)
	t.Run("credentials given: used", func(t *testing.T) {
		st := openStore(t)
		if _, err := st.Enqueue([]queue.NewURL{nu}); err != nil {
			t.Fatal(err)
		}
		var got string
		f := &funcFetcher{fn: func(_ context.Context, req fetcher.Request) (fetcher.Response, error) {
			got = req.URL
			return fetcher.Response{Status: 200, Path: req.Path}, nil
		}}
		opts := fastOptions()
		opts.Credentials = NewCredentials()
		opts.Credentials.Add(e)
		if err := run(t, st, f, nil, opts, nil); err != nil {
			t.Fatal(err)
		}
		if got != "https://u:pw@h.test/private/x" {
			t.Errorf("requested %q, want the userinfo put back", got)
		}
		if r, _, _ := st.Get(nu.URL); r.State != queue.Done || !r.Auth {
			t.Errorf("record %+v", r)
		}
	})
	t.Run("credentials not given: not requested without them", func(t *testing.T) {
		st := openStore(t)
		if _, err := st.Enqueue([]queue.NewURL{nu}); err != nil {
			t.Fatal(err)
		}
		f := newFakeFetcher(nil)
		opts := fastOptions()
		opts.Credentials = NewCredentials()
		if err := run(t, st, f, nil, opts, nil); err != nil {
			t.Fatal(err)
		}
		if n := f.attempts(nu.URL); n != 0 {
			t.Errorf("requested %d times without its credentials", n)
		}
		if r, _, _ := st.Get(nu.URL); r.State != queue.Failed || r.ErrorClass != "credentials" {
			t.Errorf("record %+v, want failed for want of credentials", r)
		}
	})
}
