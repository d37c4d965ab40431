package jsqueue

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/ratelimit"
	"github.com/trawl-dev/trawl/scheduler"
)

// fleetFetcher records which worker fetched each URL; fetches of a URL in stop block until the
// test lets them go (or their worker is cancelled).
type fleetFetcher struct {
	mu      sync.Mutex
	by      map[string][]string // URL -> workers that fetched it to the end
	started chan string
	stop    map[string]bool
}

func (f *fleetFetcher) worker(name string) scheduler.Fetcher {
	return fetchFunc(func(ctx context.Context, req fetcher.Request) (fetcher.Response, error) {
		if f.stop[req.URL] {
			f.started <- req.URL
			<-ctx.Done()
			return fetcher.Response{}, &fetcher.Error{Class: fetcher.ClassCanceled, Err: ctx.Err()}
		}
		f.mu.Lock()
		f.by[req.URL] = append(f.by[req.URL], name)
		f.mu.Unlock()
		return fetcher.Response{Status: 200, Bytes: 1, SHA256: fmt.Sprintf("%064x", 1), Path: req.Path}, nil
	})
}

type fetchFunc func(context.Context, fetcher.Request) (fetcher.Response, error)

func (f fetchFunc) Fetch(ctx context.Context, _ *os.Root, req fetcher.Request) (fetcher.Response, error) {
	return f(ctx, req)
}

func fleetURLs(hosts, per int) []queue.NewURL {
	var out []queue.NewURL
	for h := range hosts {
		for i := range per {
			host := fmt.Sprintf("h%d.test", h)
			out = append(out, queue.NewURL{URL: fmt.Sprintf("https://%s/%d", host, i), Host: host, Path: fmt.Sprintf("%s/%d", host, i)})
		}
	}
	return out
}

func runWorker(ctx context.Context, q *Queue, f scheduler.Fetcher) error {
	lim := ratelimit.New(ratelimit.Options{PerHost: 2})
	return scheduler.New(q, f, lim, nil, scheduler.Options{Workers: 4, PerHost: 2, CommitInterval: time.Millisecond,
		BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, Grace: 50 * time.Millisecond}).Run(ctx, nil)
}

// TestFleetWorkerDies: two workers share a job; one dies (its connection drops) holding leases,
// one of them a URL it was fetching. The other finishes the job: every URL done, none lost, what
// the dead worker recorded done not fetched again, and the rest — its leases, and outcomes it had
// not yet recorded — fetched by the survivor.
func TestFleetWorkerDies(t *testing.T) {
	s := runServer(t)
	const job = "fleet"
	open := func() *Queue {
		q, err := Open(context.Background(), connect(t, s), Options{Job: job, Partitions: 4, AckWait: testAckWait})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q
	}
	urls := fleetURLs(6, 5)
	a := open()
	if _, err := a.Enqueue(urls); err != nil {
		t.Fatal(err)
	}
	f := &fleetFetcher{by: map[string][]string{}, started: make(chan string, 1), stop: map[string]bool{urls[7].URL: true}}

	// Worker A takes work and blocks on one URL; it is killed there: its connection drops with the
	// URL leased, as kill -9 would leave it.
	ctxA, cancelA := context.WithCancel(context.Background())
	doneA := make(chan error, 1)
	go func() { doneA <- runWorker(ctxA, a, f.worker("a")) }()
	select {
	case <-f.started:
	case <-time.After(20 * time.Second):
		t.Fatal("worker a never reached the blocking URL")
	}
	// Its other workers go on: let it record some of the job done first.
	for deadline := time.Now().Add(20 * time.Second); ; {
		c, err := a.Counts()
		if err != nil {
			t.Fatal(err)
		}
		if c.Done >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker a recorded %d done in 20s", c.Done)
		}
	}
	a.nc.Close()
	cancelA()
	<-doneA
	delete(f.stop, urls[7].URL)

	// Worker B, on its own connection, takes over once the dead worker's leases and pins lapse.
	b := open()
	doneBefore := map[string]bool{}
	if err := b.ForEach(func(r queue.Record) error {
		doneBefore[r.URL] = r.State == queue.Done
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if err := runWorker(ctx, b, f.worker("b")); err != nil {
			t.Fatal(err)
		}
		c, err := b.Counts()
		if err != nil {
			t.Fatal(err)
		}
		if c.Done == len(urls) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("job not finished in 30s: %+v", c)
		}
	}
	for _, u := range urls {
		got := f.by[u.URL]
		switch {
		case doneBefore[u.URL] && len(got) != 1:
			t.Errorf("%s, recorded done by a, was fetched again: by %v", u.URL, got)
		case !doneBefore[u.URL] && (len(got) == 0 || got[len(got)-1] != "b"):
			t.Errorf("%s, not recorded done by a, fetched by %v: b must fetch it", u.URL, got)
		}
	}
	n := 0
	for _, d := range doneBefore {
		if d {
			n++
		}
	}
	if n == 0 || n == len(urls) {
		t.Errorf("a recorded %d of %d done before it died: the test shows no takeover", n, len(urls))
	}
	if got := f.by[urls[7].URL]; len(got) != 1 || got[0] != "b" {
		t.Errorf("the URL the dead worker held was fetched by %v, want b", got)
	}
}

// TestFleetShares: two live workers deal the partitions out between them: each serves its own
// hosts, no host is served by both, and together they serve them all.
func TestFleetShares(t *testing.T) {
	s := runServer(t)
	open := func() *Queue {
		q, err := Open(context.Background(), connect(t, s), Options{Job: "share", Partitions: 8, AckWait: testAckWait})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q
	}
	a, b := open(), open()
	urls := fleetURLs(16, 2)
	if _, err := a.Enqueue(urls); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for deadline := time.Now().Add(10 * time.Second); len(seen) < 16; {
		for name, q := range map[string]*Queue{"a": a, "b": b} {
			hq, err := q.PendingHosts()
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hq {
				if other, ok := seen[h.Host]; ok && other != name {
					t.Fatalf("%s is served by both workers", h.Host)
				}
				seen[h.Host] = name
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("in 10s the workers were dealt %d of 16 hosts: %v", len(seen), seen)
		}
	}
	count := map[string]int{}
	for _, w := range seen {
		count[w]++
	}
	if count["a"] == 0 || count["b"] == 0 {
		t.Fatalf("hosts per worker %v: both must serve some", count)
	}
}

// TestFleetHandoffAfterLeases: when a worker joins, the partitions are dealt again, and a
// partition may move from a worker that still holds leases of its hosts (URLs its run has taken
// and will fetch at the host's pace). The new worker must not serve those hosts until the old one
// has settled them: two workers on one host at once would each keep the host's rate, and the host
// would see twice it. Once the old worker has settled its leases, the new one takes the partition.
// So too when the old worker's buffer is full, as it is on any job larger than its buffer while
// nothing settles (big files, a cooldown): it pulls nothing then, and must keep its pins all the
// same, and learn of the new deal.
func TestFleetHandoffAfterLeases(t *testing.T) {
	for _, tc := range []struct {
		name          string
		buffer        int // a's
		hosts, perURL int // hosts per partition, URLs per host
	}{
		{"buffer with room", 0, 4, 3},
		{"buffer full", 4, 1, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testHandoffAfterLeases(t, tc.buffer, tc.hosts, tc.perURL)
		})
	}
}

// partitionHosts lists n hosts of each of q's partitions, and perHost URLs of each.
func partitionHosts(q *Queue, n, perHost int) []queue.NewURL {
	var urls []queue.NewURL
	count := make([]int, q.opts.Partitions)
	for i, left := 0, n*q.opts.Partitions; left > 0; i++ {
		h := fmt.Sprintf("h%d.test", i)
		if p := q.partitionOf(h); count[p] < n {
			count[p]++
			left--
			for j := range perHost {
				urls = append(urls, queue.NewURL{URL: fmt.Sprintf("https://%s/%d", h, j), Host: h, Path: fmt.Sprintf("%s/%d", h, j)})
			}
		}
	}
	return urls
}

func testHandoffAfterLeases(t *testing.T, buffer, hostsPer, perHost int) {
	s := runServer(t)
	open := func(buffer int) *Queue {
		q, err := Open(context.Background(), connect(t, s), Options{Job: "handoff", Partitions: 2, AckWait: testAckWait, Buffer: buffer})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q
	}
	a := open(buffer)
	urls := partitionHosts(a, hostsPer, perHost)
	if _, err := a.Enqueue(urls); err != nil {
		t.Fatal(err)
	}
	hosts := map[string]bool{}
	for _, u := range urls {
		hosts[u.Host] = true
	}
	// a serves both partitions alone, and leases one URL of every host.
	leased := leaseEachHost(t, a, slices.Collect(maps.Keys(hosts)))
	if buffer > 0 {
		a.mu.Lock()
		held := len(a.held)
		a.mu.Unlock()
		if held < buffer {
			t.Fatalf("a holds %d, its buffer (%d) is not full", held, buffer)
		}
	}

	// b joins: one partition is dealt to it, whose hosts a still holds leases of.
	b := open(0)
	var moved []string // hosts of b's partition
	for deadline := time.Now().Add(10 * time.Second); len(moved) == 0; {
		if _, err := a.PendingHosts(); err != nil {
			t.Fatal(err)
		}
		if _, err := b.PendingHosts(); err != nil {
			t.Fatal(err)
		}
		// Both know the new deal (each reads the live workers at most every dealEvery).
		b.mu.Lock()
		mine := b.self.Partitions
		b.mu.Unlock()
		a.mu.Lock()
		theirs := a.self.Partitions
		a.mu.Unlock()
		for h := range hosts {
			if len(mine) == 1 && len(theirs) == 1 && slices.Contains(mine, a.partitionOf(h)) {
				moved = append(moved, h)
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("b was dealt no partition in 10s")
		}
	}
	// For several lease times, while a holds its leases, b serves none of those hosts, and a
	// takes no more of their URLs. This waits on the engine's clock: a pin lapses PinnedTTL (the
	// lease time) after the last pull that carried it, and nothing tells a worker that it has.
	for until := time.Now().Add(4 * testAckWait); time.Now().Before(until); {
		for name, q := range map[string]*Queue{"a": a, "b": b} {
			hq, err := q.PendingHosts()
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hq {
				if slices.Contains(moved, h.Host) {
					a.mu.Lock()
					da := a.self.Partitions
					a.mu.Unlock()
					b.mu.Lock()
					db := b.self.Partitions
					b.mu.Unlock()
					t.Fatalf("%s offers %s while a still holds a lease of it (deals: a %v, b %v)", name, h.Host, da, db)
				}
			}
		}
	}
	// a settles its leases; then b serves the moved hosts.
	var done []queue.Update
	for _, r := range leased {
		r.State, r.Bytes = queue.Done, 1
		done = append(done, queue.Update{Record: r})
	}
	if err := a.Commit(done); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := a.PendingHosts(); err != nil {
			t.Fatal(err)
		}
		hq, err := b.PendingHosts()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, h := range hq {
			if slices.Contains(moved, h.Host) {
				n++
			}
		}
		if n == len(moved) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b serves %d of the %d hosts it was dealt, 10s after a settled its leases", n, len(moved))
		}
	}
}

// TestFleetHandoffUnpins: a worker gives a partition dealt to another up a second after it has
// settled what it leased of it, and its partitions when it closes: the other takes them then,
// not a lease time (here a minute) later when the pins would lapse, and never while the first
// still offers their hosts.
func TestFleetHandoffUnpins(t *testing.T) {
	s := runServer(t)
	open := func() *Queue {
		q, err := Open(context.Background(), connect(t, s), Options{Job: "unpin", Partitions: 2, AckWait: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q
	}
	a := open()
	urls := partitionHosts(a, 1, 4)
	if _, err := a.Enqueue(urls); err != nil {
		t.Fatal(err)
	}
	hostOf := map[int]string{}
	for _, u := range urls {
		hostOf[a.partitionOf(u.Host)] = u.Host
	}
	// a serves both partitions alone, and leases one URL of each host.
	leased := leaseEachHost(t, a, slices.Collect(maps.Values(hostOf)))
	b := open()
	// offers polls both workers: it fails if both offer one host, and returns the hosts b offers.
	// It keeps when b says each host was handed over to it.
	handed := map[string]time.Time{}
	offers := func() map[string]bool {
		ha, err := a.PendingHosts()
		if err != nil {
			t.Fatal(err)
		}
		hb, err := b.PendingHosts()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, h := range hb {
			out[h.Host] = true
			handed[h.Host] = h.HandedAt
		}
		for _, h := range ha {
			if out[h.Host] {
				t.Fatalf("a and b both offer %s", h.Host)
			}
		}
		return out
	}
	var moved string // once both know the new deal (each reads the live workers every dealEvery)
	for deadline := time.Now().Add(10 * time.Second); moved == ""; {
		offers()
		a.mu.Lock()
		theirs := len(a.self.Partitions)
		a.mu.Unlock()
		b.mu.Lock()
		if len(b.self.Partitions) == 1 && theirs == 1 {
			moved = hostOf[b.self.Partitions[0]]
		}
		b.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("b was dealt no partition in 10s")
		}
	}
	// a settles what it leased of b's partition: b serves it a second later (handGap: the host's
	// rate holds over the hand-over), not a lease time.
	var settled time.Time
	for _, r := range leased {
		if r.Host == moved {
			r.State, r.Bytes = queue.Done, 1
			if err := a.Commit([]queue.Update{{Record: r}}); err != nil {
				t.Fatal(err)
			}
			settled = time.Now()
		}
	}
	for deadline := time.Now().Add(10 * time.Second); !offers()[moved]; {
		if time.Now().After(deadline) {
			t.Fatalf("b does not offer %s 10s after a settled its lease of it (the lease time is a minute)", moved)
		}
	}
	if gap := time.Since(settled); gap < a.handGap() {
		t.Fatalf("b offers %s %v after a settled its last URL of it, want at least %v", moved, gap, a.handGap())
	}
	// b says when it got the host, for its scheduler to space the host's first request from
	// then: after a settled its last URL of it.
	if at := handed[moved]; !at.After(settled) {
		t.Fatalf("b says %s was handed over to it at %v, want after a settled its last URL of it (%v)", moved, at, settled)
	}
	// a closes, its lease of the other host handed back: b takes that partition at once too.
	closed := time.Now()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		hb, err := b.PendingHosts()
		if err != nil {
			t.Fatal(err)
		}
		if len(hb) == 2 {
			for _, h := range hb {
				if h.Host != moved && !h.HandedAt.After(closed) {
					t.Fatalf("b says %s was handed over to it at %v, want after a closed (%v)", h.Host, h.HandedAt, closed)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b offers %v 10s after a closed (the lease time is a minute), want both hosts", hb)
		}
	}
}

// leaseEachHost leases one URL of each of hosts from q, failing the test after 10s.
func leaseEachHost(t *testing.T, q *Queue, hosts []string) []queue.Record {
	t.Helper()
	var leased []queue.Record
	for deadline := time.Now().Add(10 * time.Second); len(leased) < len(hosts); {
		var ask []string
		for _, h := range hosts {
			if !slices.ContainsFunc(leased, func(r queue.Record) bool { return r.Host == h }) {
				ask = append(ask, h)
			}
		}
		got, err := q.LeaseEach(ask, 1, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range got {
			leased = append(leased, g...)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d hosts' URLs leased in 10s", len(leased), len(hosts))
		}
	}
	return leased
}
