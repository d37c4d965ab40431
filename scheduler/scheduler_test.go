package scheduler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/ratelimit"
	"github.com/trawl-dev/trawl/store"
)

// fakeFetcher answers each URL with the outcome its plan gives for that attempt, and records
// every call: when, and how many requests were in flight for the host.
type fakeFetcher struct {
	mu       sync.Mutex
	plan     func(url string, attempt int) error // nil error = success
	calls    map[string][]time.Time
	inflight map[string]int
	maxHost  map[string]int
	block    chan struct{} // when non-nil, fetches wait on it (or their ctx)
	started  chan string   // when non-nil, receives each URL as its fetch starts
}

func newFakeFetcher(plan func(string, int) error) *fakeFetcher {
	return &fakeFetcher{plan: plan, calls: map[string][]time.Time{}, inflight: map[string]int{}, maxHost: map[string]int{}}
}

func (f *fakeFetcher) Fetch(ctx context.Context, _ *os.Root, req fetcher.Request) (fetcher.Response, error) {
	host := hostOf(req.URL)
	f.mu.Lock()
	f.calls[req.URL] = append(f.calls[req.URL], time.Now())
	attempt := len(f.calls[req.URL])
	f.inflight[host]++
	f.maxHost[host] = max(f.maxHost[host], f.inflight[host])
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight[host]--
		f.mu.Unlock()
	}()
	if f.started != nil {
		f.started <- req.URL
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return fetcher.Response{}, &fetcher.Error{Class: fetcher.ClassCanceled, Err: ctx.Err()}
		}
	}
	var err error
	if f.plan != nil {
		err = f.plan(req.URL, attempt)
	}
	if err != nil {
		return fetcher.Response{}, err
	}
	req.OnBytes(10)
	return fetcher.Response{Status: 200, Bytes: 10, SHA256: fmt.Sprintf("%064x", attempt), Path: req.Path}, nil
}

func (f *fakeFetcher) attempts(url string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls[url])
}

func hostOf(u string) string {
	e, err := NormalizeURL(u)
	if err != nil {
		panic(err)
	}
	return e.Host
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir()+"/state.db", &store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func urls(hosts, perHost int) []string {
	var out []string
	for h := range hosts {
		for i := range perHost {
			out = append(out, fmt.Sprintf("https://h%d.test/f%d.bin", h, i))
		}
	}
	return out
}

func enqueueAll(t *testing.T, st *store.Store, list []string) {
	t.Helper()
	var batch []queue.NewURL
	for _, u := range list {
		e, err := NormalizeURL(u)
		if err != nil {
			t.Fatal(err)
		}
		nu, err := e.NewURL(fetcher.Mirror, 0)
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, nu)
	}
	if _, err := st.Enqueue(batch); err != nil {
		t.Fatal(err)
	}
}

func fastOptions() Options {
	return Options{Workers: 8, PerHost: 2, BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond,
		CommitInterval: time.Millisecond, Grace: 50 * time.Millisecond}
}

func states(t *testing.T, st *store.Store) map[string]queue.Record {
	t.Helper()
	out := map[string]queue.Record{}
	if err := st.ForEach(func(r queue.Record) error { out[r.URL] = r; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func run(t *testing.T, st Queue, f Fetcher, lim Limiter, opts Options, feed Feed) error {
	t.Helper()
	if lim == nil {
		lim = ratelimit.New(ratelimit.Options{PerHost: opts.PerHost})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := New(st, f, lim, nil, opts).Run(ctx, feed)
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatal("run did not finish in 30s")
	}
	return err
}

func TestRunOutcomes(t *testing.T) {
	retryable := &fetcher.Error{Class: fetcher.ClassHTTP, Status: 503, Retryable: true}
	notFound := &fetcher.Error{Class: fetcher.ClassHTTP, Status: 404}
	tests := []struct {
		name         string
		plan         func(url string, attempt int) error
		retries      int
		wantState    queue.State
		wantAttempts int
	}{
		{"success", nil, 0, queue.Done, 1},
		{"retry then success", func(_ string, a int) error {
			if a < 3 {
				return retryable
			}
			return nil
		}, 0, queue.Done, 3},
		{"permanent failure is not retried", func(string, int) error { return notFound }, 0, queue.Failed, 1},
		{"retries run out", func(string, int) error { return retryable }, 2, queue.Failed, 3},
		{"no retries", func(string, int) error { return retryable }, -1, queue.Failed, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t)
			list := urls(3, 20)
			enqueueAll(t, st, list)
			f := newFakeFetcher(tt.plan)
			opts := fastOptions()
			opts.Retries = tt.retries
			if err := run(t, st, f, nil, opts, nil); err != nil {
				t.Fatal(err)
			}
			got := states(t, st)
			if len(got) != len(list) {
				t.Fatalf("%d records, want %d", len(got), len(list))
			}
			for _, u := range list {
				r := got[u]
				if r.State != tt.wantState || r.Attempts != tt.wantAttempts || f.attempts(u) != tt.wantAttempts {
					t.Fatalf("%s: state %v attempts %d (fetched %d), want %v %d", u, r.State, r.Attempts, f.attempts(u), tt.wantState, tt.wantAttempts)
				}
			}
			c, _ := st.Counts()
			if c.Leased != 0 || c.Pending != 0 {
				t.Fatalf("counts after run: %+v", c)
			}
		})
	}
}

func TestPerHostConcurrencyCap(t *testing.T) {
	st := openStore(t)
	enqueueAll(t, st, urls(4, 50))
	f := newFakeFetcher(nil)
	f.block = make(chan struct{})
	close(f.block)
	opts := fastOptions()
	opts.Workers, opts.PerHost = 16, 3
	if err := run(t, st, f, nil, opts, nil); err != nil {
		t.Fatal(err)
	}
	for h, n := range f.maxHost {
		if n > 3 {
			t.Errorf("host %s had %d requests in flight, cap 3", h, n)
		}
	}
}

// TestRetryAfterCoolsDownOnlyThatHost: a 429 with Retry-After stops the host's requests for
// that long, and only that host's: the other host's URLs are all fetched after the 429, while
// the first host still cools down.
// TestRetryAfterCoolsDownOnlyThatHost: a 429 with Retry-After stops the host's requests for
// that long, and only that host's: the other host's URLs are all fetched after the 429, while
// the first host still cools down, and the run ends (--max-wait) rather than wait an hour.
func TestRetryAfterCoolsDownOnlyThatHost(t *testing.T) {
	st := openStore(t)
	enqueueAll(t, st, urls(2, 30)) // more than a lease's worth per host: some wait in the store
	var slow string                // the first URL of h0.test asked for: the one answered 429
	var after []string             // h0.test URLs asked for after it
	cooling := make(chan struct{}) // closed as the 429 is answered
	f := newFakeFetcher(func(u string, a int) error {
		switch {
		case hostOf(u) == "h1.test":
			<-cooling
		case slow == "":
			slow = u
			close(cooling)
			return &fetcher.Error{Class: fetcher.ClassHTTP, Status: 429, Retryable: true, RetryAfter: time.Hour}
		default:
			after = append(after, u)
		}
		return nil
	})
	opts := fastOptions()
	opts.Workers, opts.PerHost, opts.MaxWait = 2, 1, time.Minute
	lim := ratelimit.New(ratelimit.Options{PerHost: opts.PerHost})
	var waiting *WaitingError
	if err := run(t, st, f, lim, opts, nil); !errors.As(err, &waiting) {
		t.Fatalf("Run = %v, want it to end waiting for h0.test's cooldown", err)
	}
	if len(after) > 0 {
		t.Errorf("h0.test asked for %v during its hour-long cooldown", after)
	}
	for u, r := range states(t, st) {
		if want := map[bool]queue.State{true: queue.Done, false: queue.Pending}[hostOf(u) == "h1.test"]; r.State != want {
			t.Errorf("%s: %v, want %v", u, r.State, want)
		}
	}
}

func TestInterruptReturnsEverythingToQueue(t *testing.T) {
	st := openStore(t)
	list := urls(2, 40)
	enqueueAll(t, st, list)
	f := newFakeFetcher(nil)
	f.block = make(chan struct{}) // never released: in-flight fetches are cut off by the grace period
	f.started = make(chan string, 100)
	opts := fastOptions()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- New(st, f, ratelimit.New(ratelimit.Options{PerHost: 2}), nil, opts).Run(ctx, nil)
	}()
	<-f.started
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("Run = %v, want ErrInterrupted", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop after cancel")
	}
	c, err := st.Counts()
	if err != nil {
		t.Fatal(err)
	}
	if c.Pending != len(list) || c.Leased != 0 {
		t.Fatalf("after interrupt: %+v, want all %d pending", c, len(list))
	}
	for _, r := range states(t, st) {
		if r.Attempts != 0 {
			t.Fatalf("%s: attempts %d after an interrupted fetch, want 0", r.URL, r.Attempts)
		}
	}
}

func TestFatalErrorStopsRun(t *testing.T) {
	st := openStore(t)
	enqueueAll(t, st, urls(1, 20))
	f := newFakeFetcher(func(string, int) error {
		return &fetcher.Error{Class: fetcher.ClassLocal, Fatal: true, Err: errors.New("no space left on device")}
	})
	err := run(t, st, f, nil, fastOptions(), nil)
	var fe *FatalError
	if !errors.As(err, &fe) {
		t.Fatalf("Run = %v, want *FatalError", err)
	}
	c, _ := st.Counts()
	if c.Done != 0 || c.Failed != 0 || c.Leased != 0 {
		t.Fatalf("after fatal error: %+v, want everything pending", c)
	}
}

// leaseCount wraps the store and counts lease transactions.
type leaseCount struct {
	*store.Store
	mu          sync.Mutex
	calls, most int // LeaseEach calls, and the most hosts one asked for
}

func (q *leaseCount) LeaseEach(hosts []string, n int, now time.Time) ([][]queue.Record, error) {
	q.mu.Lock()
	q.calls++
	q.most = max(q.most, len(hosts))
	q.mu.Unlock()
	return q.Store.LeaseEach(hosts, n, now)
}

// TestLeasesManyHostsTogether: a run over many hosts leases for many of them per transaction,
// not one transaction (and fsync) per host, and still fetches every URL once.
func TestLeasesManyHostsTogether(t *testing.T) {
	const hosts = 200
	st := openStore(t)
	list := urls(hosts, 2)
	enqueueAll(t, st, list)
	q := &leaseCount{Store: st}
	f := newFakeFetcher(nil)
	if err := run(t, q, f, nil, fastOptions(), nil); err != nil {
		t.Fatal(err)
	}
	got := states(t, st)
	for _, u := range list {
		if r := got[u]; r.State != queue.Done || f.attempts(u) != 1 {
			t.Fatalf("%s: state %v, fetched %d times", u, r.State, f.attempts(u))
		}
	}
	if q.calls > hosts/4 || q.most > leaseHosts {
		t.Errorf("%d lease transactions for %d hosts, at most %d hosts each; want at most %d, of at most %d", q.calls, hosts, q.most, hosts/4, leaseHosts)
	}
	t.Logf("%d lease transactions for %d hosts, at most %d hosts each", q.calls, hosts, q.most)
}

// TestDrainedHostGetsNewWork: a host that another host's lease found nothing for, and that gets
// due work before its turn (a link, a line of the list), leases it on its turn instead of going
// idle until the next scan.
func TestDrainedHostGetsNewWork(t *testing.T) {
	st := openStore(t)
	enqueueAll(t, st, []string{"https://a.test/1", "https://a.test/2", "https://a.test/3"})
	opts := fastOptions()
	s := New(st, newFakeFetcher(nil), ratelimit.New(ratelimit.Options{PerHost: opts.PerHost}), nil, opts)
	jobs := make(chan queue.Record, s.opts.Workers)
	d := newDispatcher(s, jobs, newCommitter(st, s.opts, &s.stats))
	now := time.Now()
	a, b := d.host("a.test"), d.host("b.test")
	d.pushReady(a)
	d.pushReady(b)
	d.free = 1
	if err := d.dispatch(now); err != nil {
		t.Fatal(err)
	}
	if !b.drained || b.where != ready {
		t.Fatalf("b: drained %v, where %d; want drained, in the ready ring", b.drained, b.where)
	}
	enqueueAll(t, st, []string{"https://b.test/x"})
	if _, err := d.scan(now); err != nil { // as the loop does when a commit wakes it
		t.Fatal(err)
	}
	d.free = 1
	if err := d.dispatch(now); err != nil {
		t.Fatal(err)
	}
	<-jobs // a's first, from the first dispatch
	select {
	case r := <-jobs:
		if r.URL != "https://b.test/x" {
			t.Errorf("second job %s: b's new work did not go on its turn (b drained %v, where %d)", r.URL, b.drained, b.where)
		}
	default:
		t.Error("the second dispatch sent nothing")
	}
}

// slowLease wraps the store: each lease transaction takes a second by the test's clock, as one
// queued behind a commit's flush can.
type slowLease struct {
	*store.Store
	clock *time.Time
}

func (q *slowLease) LeaseEach(hosts []string, n int, now time.Time) ([][]queue.Record, error) {
	*q.clock = q.clock.Add(time.Second)
	return q.Store.LeaseEach(hosts, n, now)
}

// askedAt is a limiter that allows everything and records the time it was asked at.
type askedAt struct {
	Limiter
	at []time.Time
}

func (l *askedAt) TryAcquire(_ string, now time.Time) (bool, time.Duration) {
	l.at = append(l.at, now)
	return true, 0
}

// TestLimiterAskedAfterLease: the limiter is asked at the time the job goes to a worker, not when
// the dispatch began. Asked at a time from before a slow lease, it would date the request early,
// and let the host's next request go out less than its interval after this one.
func TestLimiterAskedAfterLease(t *testing.T) {
	st := openStore(t)
	enqueueAll(t, st, []string{"https://a.test/1"})
	clock := time.Now()
	opts := fastOptions()
	opts.Now = func() time.Time { return clock }
	lim := &askedAt{Limiter: ratelimit.New(ratelimit.Options{PerHost: opts.PerHost})}
	q := &slowLease{Store: st, clock: &clock}
	s := New(q, newFakeFetcher(nil), lim, nil, opts)
	jobs := make(chan queue.Record, s.opts.Workers)
	d := newDispatcher(s, jobs, newCommitter(q, s.opts, &s.stats))
	began := clock
	d.pushReady(d.host("a.test"))
	d.free = 1
	if err := d.dispatch(began); err != nil {
		t.Fatal(err)
	}
	if len(lim.at) != 1 || !lim.at[0].Equal(clock) {
		t.Fatalf("limiter asked at %v, want once, at %v (after the lease; the dispatch began at %v)", lim.at, clock, began)
	}
}

// flushCheck wraps the store and fails the test if a commit records a file done whose fetch
// finished after the last Flush.
type flushCheck struct {
	*store.Store
	mu        sync.Mutex
	seq       int            // fetches finished so far
	fetchedAt map[string]int // URL -> seq when its fetch finished
	flushed   int            // seq at the last flush
	violation string
}

func (q *flushCheck) fetched(url string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	q.fetchedAt[url] = q.seq
}

func (q *flushCheck) flush() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.flushed = q.seq
}

func (q *flushCheck) Commit(updates []queue.Update) error {
	q.mu.Lock()
	for _, u := range updates {
		if u.Record.State == queue.Done && q.fetchedAt[u.Record.URL] > q.flushed && q.violation == "" {
			q.violation = u.Record.URL
		}
	}
	q.mu.Unlock()
	return q.Store.Commit(updates)
}

func TestDoneOnlyAfterFlush(t *testing.T) {
	st := openStore(t)
	enqueueAll(t, st, urls(2, 100))
	q := &flushCheck{Store: st, fetchedAt: map[string]int{}}
	f := newFakeFetcher(func(url string, _ int) error {
		q.fetched(url)
		return nil
	})
	opts := fastOptions()
	var flushes atomic.Int64
	opts.Flush = func() error {
		q.flush()
		flushes.Add(1)
		return nil
	}
	if err := run(t, q, f, nil, opts, nil); err != nil {
		t.Fatal(err)
	}
	if q.violation != "" {
		t.Fatalf("%s recorded done before a flush", q.violation)
	}
	if n := flushes.Load(); n == 0 || n >= 200 {
		t.Fatalf("%d flushes for 200 files: want batched flushes", n)
	}
}

func TestFeedRunsAlongside(t *testing.T) {
	st := openStore(t)
	f := newFakeFetcher(nil)
	list := urls(3, 100)
	feed := func(ctx context.Context, enqueue func([]queue.NewURL) error) error {
		for i := 0; i < len(list); i += 7 {
			var batch []queue.NewURL
			for _, u := range list[i:min(i+7, len(list))] {
				e, _ := NormalizeURL(u)
				nu, _ := e.NewURL(fetcher.Mirror, 0)
				batch = append(batch, nu)
			}
			if err := enqueue(batch); err != nil {
				return err
			}
		}
		return nil
	}
	if err := run(t, st, f, nil, fastOptions(), feed); err != nil {
		t.Fatal(err)
	}
	c, _ := st.Counts()
	if c.Done != len(list) {
		t.Fatalf("done %d, want %d", c.Done, len(list))
	}
}

// A fatal error on one job cancels the other in-flight fetches: Run does not wait for downloads
// that have no time limit, returns the fatal error, and the cut-off URL goes back to the queue.
func TestFatalErrorCancelsInflight(t *testing.T) {
	st := openStore(t)
	const long = "https://b.test/1"
	enqueueAll(t, st, []string{"https://a.test/1", long})
	longStarted, cancelled := make(chan struct{}), make(chan struct{})
	f := &funcFetcher{fn: func(ctx context.Context, req fetcher.Request) (fetcher.Response, error) {
		if req.URL != long {
			<-longStarted
			return fetcher.Response{}, &fetcher.Error{Class: fetcher.ClassLocal, Fatal: true, Err: errors.New("no space left on device")}
		}
		close(longStarted)
		<-ctx.Done() // a download that ends only when cancelled
		close(cancelled)
		return fetcher.Response{}, &fetcher.Error{Class: fetcher.ClassCanceled, Err: ctx.Err()}
	}}
	err := run(t, st, f, nil, fastOptions(), nil)
	var fatal *FatalError
	if !errors.As(err, &fatal) || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("Run = %v, want the fatal error", err)
	}
	select {
	case <-cancelled:
	default:
		t.Error("Run returned before the other download was cancelled")
	}
	if r, _, _ := st.Get(long); r.State != queue.Pending && r.State != queue.Leased {
		t.Errorf("the cut-off URL is %v, want back in the queue", r.State)
	}
}

type funcFetcher struct {
	fn func(ctx context.Context, req fetcher.Request) (fetcher.Response, error)
}

func (f *funcFetcher) Fetch(ctx context.Context, _ *os.Root, req fetcher.Request) (fetcher.Response, error) {
	return f.fn(ctx, req)
}

// racingQueue makes the race TestNoEarlyTermination is about happen every time: the commit of
// a retry waits until a scan of the queue has taken its snapshot, and that scan returns only once
// the retry is committed and counted, as if the dispatcher were descheduled during the commit.
type racingQueue struct {
	*store.Store
	retry    string        // the URL whose retry races the scan
	inCommit chan struct{} // closed when the retry's commit starts
	snapshot chan struct{} // closed when a scan has taken its snapshot during that commit
	counted  chan struct{} // closed when the retry's outcome is committed and counted
	raced    atomic.Bool
}

func (q *racingQueue) Commit(u []queue.Update) error {
	for _, up := range u {
		if up.Record.URL == q.retry && up.Record.State == queue.Pending && !q.raced.Load() {
			close(q.inCommit)
			<-q.snapshot
			break
		}
	}
	return q.Store.Commit(u)
}

func (q *racingQueue) PendingHosts() ([]queue.HostQueue, error) {
	hq, err := q.Store.PendingHosts()
	select {
	case <-q.inCommit:
		if q.raced.CompareAndSwap(false, true) {
			close(q.snapshot)
			<-q.counted
		}
	default:
	}
	return hq, err
}

// A commit that lands between the dispatcher's scan and its termination check (a retry queued)
// must keep the run going.
func TestNoEarlyTermination(t *testing.T) {
	st := openStore(t)
	const a = "https://a.test/1"
	enqueueAll(t, st, []string{a, "https://b.test/1"})
	f := newFakeFetcher(func(u string, attempt int) error {
		if u == a && attempt == 1 {
			return &fetcher.Error{Class: fetcher.ClassHTTP, Status: 503, Retryable: true}
		}
		return nil
	})
	q := &racingQueue{Store: st, retry: a, inCommit: make(chan struct{}), snapshot: make(chan struct{}), counted: make(chan struct{})}
	opts := fastOptions()
	opts.OnOutcome = func(o Outcome) {
		if o.Kind == KindRetry && o.Record.URL == a {
			close(q.counted)
		}
	}
	if err := run(t, q, f, nil, opts, nil); err != nil {
		t.Fatal(err)
	}
	if !q.raced.Load() {
		t.Fatal("no scan ran during the retry's commit: the race was not tried")
	}
	if c, _ := st.Counts(); c.Done != 2 || f.attempts(a) != 2 {
		t.Errorf("counts after Run: %+v, %s fetched %d times; want both done, %[2]s twice", c, a, f.attempts(a))
	}
}

// TestMaxWait: a run ends, rather than idles, when all the work left is due later than MaxWait;
// what waits stays queued with its due time.
func TestMaxWait(t *testing.T) {
	slow := "https://h0.test/f0.bin"
	for _, tc := range []struct {
		name       string
		err        *fetcher.Error // the slow URL's first answer
		maxWait    time.Duration
		backoff    time.Duration
		wantWait   bool
		wantNextGE time.Duration // the slow URL is due at least this far from the start
	}{
		{"Retry-After past the limit", &fetcher.Error{Class: fetcher.ClassHTTP, Status: 429, Retryable: true, RetryAfter: time.Hour}, 5 * time.Minute, time.Millisecond, true, 59 * time.Minute},
		{"a retry within the limit is waited for", &fetcher.Error{Class: fetcher.ClassHTTP, Status: 500, Retryable: true}, time.Minute, time.Millisecond, false, 0},
		{"no limit waits", &fetcher.Error{Class: fetcher.ClassHTTP, Status: 429, Retryable: true, RetryAfter: 20 * time.Millisecond}, 0, time.Millisecond, false, 0},
		{"negative: nothing not due now", &fetcher.Error{Class: fetcher.ClassHTTP, Status: 500, Retryable: true}, -1, 10 * time.Second, true, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			enqueueAll(t, st, urls(2, 5))
			f := newFakeFetcher(func(u string, a int) error {
				if u == slow && a == 1 {
					return tc.err
				}
				return nil
			})
			opts := fastOptions()
			opts.MaxWait, opts.BackoffBase, opts.BackoffMax = tc.maxWait, tc.backoff, tc.backoff
			lim := ratelimit.New(ratelimit.Options{PerHost: opts.PerHost})
			start := time.Now()
			err := run(t, st, f, lim, opts, nil)
			var we *WaitingError
			if got := errors.As(err, &we); got != tc.wantWait {
				t.Fatalf("Run: %v, want a WaitingError: %v", err, tc.wantWait)
			}
			recs := states(t, st)
			if !tc.wantWait {
				if err != nil {
					t.Fatal(err)
				}
				for u, r := range recs {
					if r.State != queue.Done {
						t.Errorf("%s: %v", u, r.State)
					}
				}
				return
			}
			if r := recs[slow]; r.State != queue.Pending || r.NextAttempt.Sub(start) < tc.wantNextGE || we.Next.Sub(start) < tc.wantNextGE {
				t.Errorf("slow URL: %v due %v after the start; run says next %v", r.State, r.NextAttempt.Sub(start), we.Next.Sub(start))
			}
			for u, r := range recs {
				switch {
				case hostOf(u) == "h1.test" && r.State != queue.Done:
					t.Errorf("%s on the healthy host: %v", u, r.State)
				case hostOf(u) == "h0.test" && r.State != queue.Pending && r.State != queue.Done:
					t.Errorf("%s: %v, want pending (waiting) or done", u, r.State)
				}
			}
		})
	}
}

// signals is a limiter that records what the scheduler tells it of each host's load.
type signals struct {
	*ratelimit.Limiter
	mu  sync.Mutex
	got map[string][]ratelimit.Signal
}

func (l *signals) Done(host string, s ratelimit.Signal) {
	l.mu.Lock()
	l.got[host] = append(l.got[host], s)
	l.mu.Unlock()
	l.Limiter.Done(host, s)
}

// TestLoadSignals: every finished request tells the limiter about its host's load — overloaded
// on 429/503, timeouts, stalls and resets, a latency for a small body.
func TestLoadSignals(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		overloaded bool
		latency    bool
	}{
		{"ok", nil, false, true},
		{"503", &fetcher.Error{Class: fetcher.ClassHTTP, Status: 503, Retryable: true}, true, false},
		{"429", &fetcher.Error{Class: fetcher.ClassHTTP, Status: 429, Retryable: true}, true, false},
		{"timeout", &fetcher.Error{Class: fetcher.ClassTimeout, Retryable: true}, true, false},
		{"stall", &fetcher.Error{Class: fetcher.ClassStall, Retryable: true}, true, false},
		{"reset", &fetcher.Error{Class: fetcher.ClassNetwork, Retryable: true}, true, false},
		{"404", &fetcher.Error{Class: fetcher.ClassHTTP, Status: 404}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			enqueueAll(t, st, urls(1, 1))
			f := newFakeFetcher(func(string, int) error { return tc.err })
			opts := fastOptions()
			opts.Retries, opts.HTTP1PerHost = -1, 3
			lim := &signals{Limiter: ratelimit.New(ratelimit.Options{Adaptive: true, PerHost: 16}),
				got: map[string][]ratelimit.Signal{}}
			if err := run(t, st, f, lim, opts, nil); err != nil {
				t.Fatal(err)
			}
			got := lim.got["h0.test"]
			if len(got) != 1 || got[0].Overloaded != tc.overloaded || (got[0].Latency > 0) != tc.latency {
				t.Fatalf("signals %+v, want one, overloaded %v, with a latency %v", got, tc.overloaded, tc.latency)
			}
		})
	}
}

// TestLearnProtocol: a host's answer over HTTP/1.1 bounds its adaptive cap at HTTP1PerHost; one
// over HTTP/2 raises it to HTTP2Start, as soon as the headers are in (the fetcher's OnAnswer), not
// when the body ends.
func TestLearnProtocol(t *testing.T) {
	for _, tc := range []struct {
		name        string
		multiplexed bool
		want        int
	}{{"HTTP/1.1", false, 3}, {"HTTP/2", true, 12}} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			enqueueAll(t, st, urls(1, 1))
			lim := ratelimit.New(ratelimit.Options{Adaptive: true, PerHost: 64, Start: 6})
			var during int
			f := &funcFetcher{fn: func(_ context.Context, req fetcher.Request) (fetcher.Response, error) {
				req.OnAnswer(tc.multiplexed)
				during = lim.Cap("h0.test") // the body has not ended yet
				return fetcher.Response{Status: 200, Bytes: 1 << 20, Path: req.Path}, nil
			}}
			opts := fastOptions()
			opts.HTTP1PerHost, opts.HTTP2Start = 3, 12
			if err := run(t, st, f, lim, opts, nil); err != nil {
				t.Fatal(err)
			}
			if during != tc.want {
				t.Fatalf("cap %d once the host answered over %s, want %d", during, tc.name, tc.want)
			}
		})
	}
}

// sharedCounts is a store standing in for a shared job: other workers settle its URLs too, so
// every count after the first finds 100 more done elsewhere.
type sharedCounts struct {
	*store.Store
	mu     sync.Mutex
	others int
}

func (q *sharedCounts) Outstanding() (int, time.Time, error) { return 0, time.Time{}, nil }
func (q *sharedCounts) Cooldown(string, time.Time)           {}

func (q *sharedCounts) Counts() (queue.Counts, error) {
	c, err := q.Store.Counts()
	q.mu.Lock()
	defer q.mu.Unlock()
	c.Done += q.others
	q.others += 100
	return c, err
}

// TestSharedJobCounts: a worker of a shared job shows the job's progress, read again from the
// queue as the run goes (every few seconds of its clock), not the counts it started with plus
// its own outcomes.
func TestSharedJobCounts(t *testing.T) {
	st := &sharedCounts{Store: openStore(t)}
	list := urls(2, 10)
	enqueueAll(t, st.Store, list)
	var clock atomic.Int64 // a second more at every look
	opts := fastOptions()
	opts.Now = func() time.Time { return time.Unix(1e9+clock.Add(1), 0) }
	s := New(st, newFakeFetcher(nil), ratelimit.New(ratelimit.Options{PerHost: opts.PerHost}), nil, opts)
	if err := s.Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.Store.Counts(); c.Done != len(list) {
		t.Fatalf("%d done, want %d", c.Done, len(list))
	}
	if done := s.Stats().Done.Load(); done < int64(len(list))+100 {
		t.Errorf("the worker's counters say %d done: the other workers' work was never counted", done)
	}
}

// slowCounts is a shared job whose counts take 30 seconds of clock to read (the engine walks
// every record of a big job), and with fail then fail, bar the first (the counts a run starts
// from).
type slowCounts struct {
	*sharedCounts
	clock *atomic.Int64
	fail  bool
	reads atomic.Int32
}

func (q *slowCounts) Counts() (store.Counts, error) {
	q.clock.Add(30)
	c, err := q.sharedCounts.Counts()
	if q.fail && q.reads.Add(1) > 1 && err == nil {
		err = errors.New("no answer in time")
	}
	return c, err
}

// TestSharedJobCountsSlow: a shared job's counts that are slow to read (or slow to fail) are read
// less often, so that reading them takes at most a tenth of the worker's time, not most of it.
func TestSharedJobCountsSlow(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail bool
	}{{"slow", false}, {"slow to fail", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var clock atomic.Int64 // a second more at every look
			st := &slowCounts{sharedCounts: &sharedCounts{Store: openStore(t)}, clock: &clock}
			list := urls(4, 100)
			enqueueAll(t, st.Store, list)
			st.fail = tc.fail
			opts := fastOptions()
			opts.Now = func() time.Time { return time.Unix(1e9+clock.Add(1), 0) }
			s := New(st, newFakeFetcher(nil), ratelimit.New(ratelimit.Options{PerHost: opts.PerHost}), nil, opts)
			if err := s.Run(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			st.mu.Lock()
			reads := st.others / 100
			st.mu.Unlock()
			elapsed := clock.Load()
			if spent := int64(reads) * 30; spent*sharedCountsShare > elapsed+30*sharedCountsShare {
				t.Errorf("the job's counts were read %d times (%ds of the clock's %ds): want about a tenth of it at most", reads, spent, elapsed)
			}
		})
	}
}

// feedRace is a shared job whose first enqueue of the feed, once its URLs are in, waits until
// the job's counts have been read meanwhile, or two commits have been made (their reads of the
// counts, if any, done), as a slow engine's enqueue would.
type feedRace struct {
	*store.Store
	waiting   atomic.Bool
	counted   chan struct{} // a read of the counts while the enqueue waited
	commits   chan struct{}
	countOnce sync.Once
	enqueues  atomic.Int32
}

func (q *feedRace) Outstanding() (int, time.Time, error) { return 0, time.Time{}, nil }
func (q *feedRace) Cooldown(string, time.Time)           {}

func (q *feedRace) Commit(updates []queue.Update) error {
	err := q.Store.Commit(updates)
	select {
	case q.commits <- struct{}{}:
	default:
	}
	return err
}

func (q *feedRace) Counts() (store.Counts, error) {
	if q.waiting.Load() {
		q.countOnce.Do(func() { close(q.counted) })
	}
	return q.Store.Counts()
}

func (q *feedRace) Enqueue(urls []queue.NewURL) (int, error) {
	n, err := q.Store.Enqueue(urls)
	if q.enqueues.Add(1) == 1 {
		q.waiting.Store(true)
		for made := 0; made < 2; {
			select {
			case <-q.counted:
				made = 2
			case <-q.commits:
				made++
			}
		}
		q.waiting.Store(false)
	}
	return n, err
}

// TestSharedFeedCounted: a shared worker's total counts a batch its feed enqueued once, even when
// the job's counts are read between the enqueue and the feed's count of it.
func TestSharedFeedCounted(t *testing.T) {
	q := &feedRace{Store: openStore(t), counted: make(chan struct{}), commits: make(chan struct{}, 64)}
	enqueueAll(t, q.Store, urls(2, 10))
	opts := fastOptions()
	stopped := time.Unix(1e9, 0) // the clock stands still: one read of the counts is due
	opts.Now = func() time.Time { return stopped }
	feed := func(_ context.Context, enqueue func([]queue.NewURL) error) error {
		var batch []queue.NewURL
		for i := range 10 {
			u := fmt.Sprintf("https://fed.test/%d", i)
			batch = append(batch, queue.NewURL{URL: u, Host: "fed.test", Path: fmt.Sprintf("fed.test/%d", i)})
		}
		return enqueue(batch)
	}
	s := New(q, newFakeFetcher(nil), ratelimit.New(ratelimit.Options{PerHost: opts.PerHost}), nil, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Run(ctx, feed); err != nil {
		t.Fatal(err)
	}
	c, err := q.Store.Counts()
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().Total.Load(); got != int64(c.Total()) {
		t.Fatalf("the worker's total is %d, the job has %d URLs", got, c.Total())
	}
}

// sentTold is a limiter that records the hosts it is told requests went out to.
type sentTold struct {
	*ratelimit.Limiter
	mu   sync.Mutex
	sent []string
}

func (l *sentTold) Sent(host string, at time.Time) {
	l.mu.Lock()
	l.sent = append(l.sent, host)
	l.mu.Unlock()
	l.Limiter.Sent(host, at)
}

// sendingFetcher says each request went out, as the real fetcher does once its headers are
// written.
type sendingFetcher struct{ *fakeFetcher }

func (f sendingFetcher) Fetch(ctx context.Context, root *os.Root, req fetcher.Request) (fetcher.Response, error) {
	req.OnSent()
	return f.fakeFetcher.Fetch(ctx, root, req)
}

// TestLimiterToldWhenSent: the limiter hears when each request went out, for the request's host,
// so that it spaces the next one from then (a new connection's handshake delays a request past
// its grant).
func TestLimiterToldWhenSent(t *testing.T) {
	st := openStore(t)
	list := []string{"https://a.test/1", "https://a.test/2", "https://b.test/1"}
	enqueueAll(t, st, list)
	opts := fastOptions()
	lim := &sentTold{Limiter: ratelimit.New(ratelimit.Options{Rate: 1000, PerHost: opts.PerHost})}
	if err := New(st, sendingFetcher{newFakeFetcher(nil)}, lim, nil, opts).Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	slices.Sort(lim.sent)
	if want := []string{"a.test", "a.test", "b.test"}; !slices.Equal(lim.sent, want) {
		t.Fatalf("limiter told of requests sent to %v, want %v", lim.sent, want)
	}
}

// handingOver is a queue that says its hosts were handed over to this worker at at, as a shared
// job's does for the hosts of a partition newly dealt here.
type handingOver struct {
	*store.Store
	at time.Time
}

func (q *handingOver) PendingHosts() ([]queue.HostQueue, error) {
	hq, err := q.Store.PendingHosts()
	for i := range hq {
		hq[i].HandedAt = q.at
	}
	return hq, err
}

// TestHandedOverSpaced: a host handed over from another worker waits a full interval from the
// hand-over before its first request here.
func TestHandedOverSpaced(t *testing.T) {
	st := openStore(t)
	enqueueAll(t, st, []string{"https://a.test/1", "https://a.test/2", "https://b.test/1"})
	opts := fastOptions()
	const interval = 200 * time.Millisecond
	lim := ratelimit.New(ratelimit.Options{Rate: float64(time.Second / interval), PerHost: opts.PerHost})
	q := &handingOver{Store: st, at: time.Now()}
	f := newFakeFetcher(nil)
	if err := New(q, f, lim, nil, opts).Run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for u, calls := range f.calls {
		if calls[0].Sub(q.at) < interval {
			t.Errorf("%s fetched %v after its host was handed over, want at least %v", u, calls[0].Sub(q.at), interval)
		}
	}
}
