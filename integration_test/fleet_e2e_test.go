package integration_test

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/trawl-dev/trawl/internal/natstest"
	"github.com/trawl-dev/trawl/internal/testserver"
	"github.com/trawl-dev/trawl/jsqueue"
	"github.com/trawl-dev/trawl/queue"
)

// requestCounter counts the requests of many test servers, in all and by the worker that sent
// each (its X-Worker header), and lets a test wait for counts.
type requestCounter struct {
	mu     sync.Mutex
	n      int
	by     map[string]int
	notify chan struct{} // closed and replaced on every request
}

func newRequestCounter() *requestCounter {
	return &requestCounter{by: map[string]int{}, notify: make(chan struct{})}
}

// option is a server option that counts every request.
func (c *requestCounter) option() testserver.Option {
	return testserver.PerRequest(func(_ int, r *http.Request) []testserver.Option {
		c.mu.Lock()
		c.n++
		c.by[r.Header.Get("X-Worker")]++
		close(c.notify)
		c.notify = make(chan struct{})
		c.mu.Unlock()
		return nil
	})
}

// waitFor blocks until ok holds of the counts, failing the test after timeout.
func (c *requestCounter) waitFor(t *testing.T, what string, timeout time.Duration, ok func(n int, by map[string]int) bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		done, n, ch := ok(c.n, c.by), c.n, c.notify
		c.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("waiting for %s: not in %s (%d requests)", what, timeout, n)
		}
	}
}

// fleetSite is a list of files spread over many hosts (test servers, each its own host:port).
type fleetSite struct {
	ss    []*testserver.Server
	ca    string
	urls  []string
	where map[string]fleetFile // URL -> its server and path
}

type fleetFile struct {
	s    *testserver.Server
	path string
}

func newFleetSite(t *testing.T, hosts, files int, opts ...testserver.Option) *fleetSite {
	ss, ca := servers(t, hosts, opts...)
	site := &fleetSite{ss: ss, ca: ca, where: map[string]fleetFile{}}
	for i := range files {
		s := ss[i%hosts]
		p := fmt.Sprintf("/f/%04d.bin", i)
		u := s.URL(p)
		site.urls = append(site.urls, u)
		site.where[u] = fleetFile{s, p}
	}
	return site
}

// requests are every request the site's servers received, with the worker (X-Worker) that sent
// each, by URL.
func (site *fleetSite) requests() map[string][]testserver.Request {
	out := map[string][]testserver.Request{}
	for _, s := range site.ss {
		for _, r := range s.Requests() {
			u := s.URL(r.Path)
			out[u] = append(out[u], r)
		}
	}
	return out
}

// checkOutputs checks that every URL's file is in one of outs, byte-identical, and that outs hold
// nothing else (bar the .part files of a killed worker). It returns, by URL, the outputs holding
// the URL's file.
func (site *fleetSite) checkOutputs(t *testing.T, outs map[string]string) map[string][]string {
	t.Helper()
	in := map[string][]string{}
	for _, u := range site.urls {
		f := site.where[u]
		for name, out := range outs {
			if exists(mirrorPath(out, f.s, f.path)) {
				wantFile(t, out, f.s, f.path)
				in[u] = append(in[u], name)
			}
		}
		if len(in[u]) == 0 {
			t.Errorf("%s: in no worker's output", u)
		}
	}
	files := 0
	for name, out := range outs {
		err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if strings.HasSuffix(p, ".part") || strings.HasSuffix(p, ".part.meta") {
				return nil
			}
			files++
			rel, _ := filepath.Rel(out, p)
			if _, ok := site.where["https://"+filepath.ToSlash(rel)]; !ok {
				t.Errorf("worker %s wrote %s, which is no URL's file", name, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, ws := range in {
		n += len(ws)
	}
	if files != n {
		t.Errorf("%d files in the outputs, %d of them the list's", files, n)
	}
	return in
}

// checkRate fails the test if any host received more than limit requests in a one-second window
// of the server's arrival times, and returns the most any host did in the stamps. Stamps that a
// stall of this process (the servers') brought closer are not taken for requests that came
// closer (see stallWatch): a window is over the rate if its requests span less than a second
// with the first one's possible lateness added.
func (site *fleetSite) checkRate(t *testing.T, limit int, stalls *stallWatch) int {
	t.Helper()
	worst, excused := 0, 0
	for _, s := range site.ss {
		reqs := s.Requests()
		slices.SortFunc(reqs, func(a, b testserver.Request) int { return a.Time.Compare(b.Time) })
		var ts []time.Time
		for _, r := range reqs {
			ts = append(ts, r.Time)
		}
		worst = max(worst, maxInWindow(ts, time.Second))
		first, n := stalls.overRate(ts, limit)
		excused += n
		if first >= 0 {
			t.Errorf("%s: %d requests in one second (at most %d allowed): %s; by worker and connection: %s; a stall of the servers' process could have delayed the first stamp %v",
				s.Addr(), limit+1, limit, describe(ts[first:first+limit+1]), sentBy(reqs[first:first+limit+1]), stalls.lateness(ts[first]))
		}
	}
	if excused > 0 {
		t.Logf("%d windows of %d requests stamped within a second, each explained by a stall of the servers' process", excused, limit+1)
	}
	return worst
}

// describe gives the span of ts (in order) and the gaps between them.
func describe(ts []time.Time) string {
	return tightest(ts, len(ts))
}

// sentBy names the worker and the client connection of each of reqs: a hand-over between workers
// shows as two workers, a burst of one worker as its requests.
func sentBy(reqs []testserver.Request) string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Header.Get("X-Worker")+"@"+r.Remote)
	}
	return strings.Join(out, " ")
}

// doneRecords reads, from the engine, which URLs of a shared job are recorded done.
func doneRecords(t *testing.T, natsURL, job string) map[string]bool {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	q, err := jsqueue.Attach(context.Background(), nc, job)
	if err != nil {
		t.Fatal(err)
	}
	done := map[string]bool{}
	if err := q.ForEach(func(r queue.Record) error {
		if r.State == queue.Done {
			done[r.URL] = true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return done
}

// TestFleetE2E is the fleet's promise end to end: three worker processes share one job of 5,000
// URLs over 20 hosts at --rate 10 on one NATS server, two of them joining the first once it is
// under way; one is killed with SIGKILL in the middle and another worker starts. Every file arrives whole, in one worker's output; only what the killed
// worker had in flight (requested, not yet recorded done) is fetched again, and only those files
// may be in two outputs (the killed worker may have written one before it could record it); no
// host sees more than its rate in any second of the server's clock.
//
// The rate check allows the token bucket's burst of one request (the limiter grants at most
// 1 + 0.9·rate requests in a second) and no more: rate requests in any one-second window. The
// servers run in this process, loaded: requests that came while it stalled are stamped together
// once it runs again, and the check allows for what such a stall, watched, explains (checkRate).
//
// The lease time is 5s, long enough that no worker of a loaded machine (a -race run of the whole
// suite on two cores) stalls past it; a worker that did would have its URLs handed to another
// while it still holds them, and both would fetch them. At 200 requests a second over the fleet
// the job takes 25s, and the hand-overs (when b and c join, and after the kill) a lease time each.
func TestFleetE2E(t *testing.T) {
	t.Parallel()
	const hosts, files, rate = 20, 5000, 10
	stalls := watchStalls(t)
	natsURL := natstest.Server(t).ClientURL()
	count := newRequestCounter()
	site := newFleetSite(t, hosts, files, count.option())
	list := writeList(t, site.urls...)
	const job = "e2e"
	outs := map[string]string{}
	worker := func(name string) *proc {
		outs[name] = t.TempDir()
		return start(t, trawlCmd("get", "-i", list, "-o", outs[name], "--ca-cert", site.ca, "--queue", natsURL, "--job", job,
			"--rate", fmt.Sprint(rate), "--lease-time", "5s", "-H", "X-Worker: "+name, "--progress-interval", "1s"))
	}
	// a starts alone and takes every host; b and c join once it is under way, and the hosts are
	// dealt again: some move from a, which holds URLs of them it has taken.
	began := time.Now()
	a := worker("a")
	count.waitFor(t, "a under way", time.Minute, func(n int, _ map[string]int) bool { return n >= 2*hosts })
	b, c := worker("b"), worker("c")

	// b dies with SIGKILL in the middle of the job, at work.
	count.waitFor(t, "two fifths of the job asked for, b at work", 2*time.Minute, func(n int, by map[string]int) bool {
		return n >= files*2/5 && by["b"] >= 2*hosts
	})
	b.kill9()
	done := doneRecords(t, natsURL, job)
	inFlight := map[string]bool{} // asked for by b and not recorded done: b's work in flight
	for u, reqs := range site.requests() {
		for _, r := range reqs {
			if r.Header.Get("X-Worker") == "b" && !done[u] {
				inFlight[u] = true
			}
		}
	}
	d := worker("d")

	for name, p := range map[string]*proc{"a": a, "c": c, "d": d} {
		if r := p.wait(3 * time.Minute); r.code != exitOK {
			t.Fatalf("worker %s exited %d:\n%s", name, r.code, tail(r.stderr))
		}
	}
	took := time.Since(began)

	in := site.checkOutputs(t, outs)
	dups, byD := 0, 0
	for u, reqs := range site.requests() {
		if len(reqs) > 1 {
			dups += len(reqs) - 1
			if !inFlight[u] || len(reqs) > 2 || reqs[0].Header.Get("X-Worker") != "b" {
				t.Errorf("%s fetched %d times, by %s: only what the killed worker had in flight may be fetched again", u, len(reqs), workersOf(reqs))
			}
		}
		if len(in[u]) > 1 && !inFlight[u] {
			t.Errorf("%s is in the outputs of %v: only what the killed worker had in flight may be in two", u, in[u])
		}
		for _, r := range reqs {
			if r.Header.Get("X-Worker") == "d" {
				byD++
			}
		}
	}
	if byD == 0 {
		t.Error("the worker started after the kill fetched nothing: the test shows no takeover")
	}
	worst := site.checkRate(t, rate, stalls)
	t.Logf("%d URLs over %d hosts at --rate %d: %s; b had %d in flight at the kill, %d fetched again; d fetched %d; most requests to a host in a second: %d",
		files, hosts, rate, took.Round(100*time.Millisecond), len(inFlight), dups, byD, worst)
}

func workersOf(reqs []testserver.Request) string {
	var w []string
	for _, r := range reqs {
		w = append(w, r.Header.Get("X-Worker"))
	}
	return strings.Join(w, ",")
}
