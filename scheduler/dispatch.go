package scheduler

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trawl-dev/trawl/extract"
	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/ratelimit"
)

// rescanEvery bounds how stale the dispatcher's view of the store's per-host queues may get.
const rescanEvery = 500 * time.Millisecond

// place is where a host is in the dispatcher.
type place uint8

const (
	idle     place = iota // nothing buffered and not scheduled: the next store scan may wake it
	ready                 // in the ready ring: try it now
	sleeping              // in the sleep heap until wake (rate limit, cooldown, retry time)
	capped                // at its concurrency cap: the next finished request of the host readies it
	awaiting              // waiting for its robots.txt
)

func (p place) String() string {
	return [...]string{"idle", "ready", "sleeping", "capped", "awaiting"}[p]
}

type hostState struct {
	name      string
	buf       []queue.Record // leased, not yet dispatched
	where     place
	wake      time.Time
	index     int // in the sleep heap
	inflight  int
	robots    *extract.Robots // crawl: the host's rules, once known (nil allows everything)
	robotsOK  bool            // robots is settled (fetched, cached, or not wanted)
	unchecked bool            // buf was leased and not yet checked against robots
	drained   bool            // a lease for another host found none due for this one
	fetching  bool            // its robots.txt is being fetched
	fails     int             // failed robots.txt fetches in a row
	gaveUp    string          // non-empty: robots.txt could not be had; its URLs fail for this reason
	coolUntil time.Time       // the end of the latest cooldown the run gave it (Retry-After, 429, 503)
	paced     bool            // sleeping only for its next request's turn (rate, Crawl-delay): its work is due
}

// dispatcher is the run loop's single owner of scheduling state: hosts never wait inside a
// worker; a host that must wait sleeps in a heap while the workers serve the others.
type dispatcher struct {
	s       *Scheduler
	jobs    chan<- queue.Record
	cm      *committer
	hosts   map[string]*hostState
	ready   []*hostState // FIFO ring: round-robin over hosts
	sleep   sleepHeap
	free    int   // idle workers
	sent    int64 // outcomes handed to the committer
	window  int   // most jobs leased per host at a time
	holding int   // hosts with leased jobs in buf (setBuf keeps it)
	fatal   error

	robotsDone chan robotsResult // robots.txt fetches report here
	stop       chan struct{}     // closed when the loop ends: pending robots fetches give up
	ctx        context.Context   // for robots.txt fetches: the fetches' context
	feeding    bool              // the feed may still add URLs (and their credentials)
	// sitemapsFirst holds every page back while the feed runs: a breadth-first crawl's sitemaps
	// are read before its first page is fetched (Crawl.Levels). feedFirst does so for a list read
	// again (Options.FeedFirst).
	sitemapsFirst, feedFirst bool
}

func newDispatcher(s *Scheduler, jobs chan<- queue.Record, cm *committer) *dispatcher {
	return &dispatcher{
		s:      s,
		jobs:   jobs,
		cm:     cm,
		hosts:  make(map[string]*hostState),
		free:   s.opts.Workers,
		window: min(max(8*s.opts.PerHost, 32), 256),

		robotsDone: make(chan robotsResult),
		stop:       make(chan struct{}),
		ctx:        context.Background(),

		sitemapsFirst: s.opts.Crawl.readsSitemaps() && s.opts.Crawl.Levels,
	}
}

// loop dispatches until the job is finished, ctx is cancelled (nil is returned; Run reports the
// interruption) or a fatal error occurs.
func (d *dispatcher) loop(ctx context.Context, results <-chan outcome, feedDone <-chan error) error {
	opts := &d.s.opts
	defer close(d.stop)
	d.feeding = true
	scan := true
	var lastScan time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if d.fatal != nil {
			return d.fatal
		}
		if ctx.Err() != nil {
			return nil
		}
		now := opts.Now()
		if scan || now.Sub(lastScan) >= rescanEvery {
			scan, lastScan = false, now
			if end, err := d.rescan(now); end {
				return err
			}
		}
		d.wakeSleepers(now)
		if err := d.dispatch(now); err != nil {
			return &FatalError{err}
		}

		if d.free > 0 && len(d.ready) == 0 && d.cm.committed.Load() < d.sent {
			// Idle workers and outcomes waiting to be committed: in a crawl the next work is
			// the links those outcomes carry, so don't let them wait for the interval.
			d.cm.commitNow()
		}
		wait := rescanEvery
		if len(d.sleep) > 0 {
			// From the clock, not now: the scan and dispatch since may have taken a while.
			wait = min(wait, d.sleep[0].wake.Sub(opts.Now()))
		}
		timer.Reset(max(wait, time.Millisecond))
		select {
		case r := <-results:
			d.finish(r)
		case <-d.cm.changed:
			scan = true
		case rr := <-d.robotsDone:
			d.setRobots(rr, opts.Now())
		case <-timer.C:
		case err := <-feedDone:
			var fe *FatalError
			switch {
			case errors.As(err, &fe):
				return fe
			case err != nil && !errors.Is(err, context.Canceled):
				return &FatalError{fmt.Errorf("reading input: %w", err)}
			}
			d.feeding, feedDone, scan = false, nil, true
		case <-d.cm.failed:
			return &FatalError{d.cm.err}
		case <-ctx.Done():
			return nil
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// rescan takes a fresh look at the queue's hosts and says whether the run ends here: finished
// (end, nil), waiting past MaxWait (a WaitingError) or failed (a FatalError).
func (d *dispatcher) rescan(now time.Time) (end bool, err error) {
	// Read the commit count before the scan: an outcome committed after the scan's snapshot (a
	// retry, a page's links) must keep the loop going.
	committed := d.cm.committed.Load()
	n, err := d.scan(now)
	if err != nil {
		return true, &FatalError{err}
	}
	if !d.settled(committed) {
		return false, nil
	}
	switch done, others, err := d.finished(n); {
	case err != nil:
		return true, &FatalError{err}
	case done:
		return true, nil
	case d.waitTooLong(now):
		return true, &WaitingError{Next: d.sleep[0].wake}
	case d.tooFar(others, now):
		return true, &WaitingError{Next: others}
	}
	return false, nil
}

func (d *dispatcher) inflight() int { return d.s.opts.Workers - d.free }

// othersWorking reports whether other workers of a shared job still hold or will be given work
// (leases that may come back, retries due later): a worker with nothing of its own then waits for
// the rest, polling, rather than ending its run while the job is unfinished. When all of that
// work waits in the queue for a retry, next is when the first is due.
func (d *dispatcher) othersWorking() (working bool, next time.Time, err error) {
	sq, ok := d.s.q.(queue.Shared)
	if !ok {
		return false, time.Time{}, nil
	}
	n, next, err := sq.Outstanding()
	return n > 0, next, err
}

// settled reports whether nothing is moving: the feed is over, no request is in flight or ready
// to go, and every outcome sent has been committed (committed, read before the latest scan, so
// that the scan saw what they queued).
func (d *dispatcher) settled(committed int64) bool {
	return !d.feeding && d.inflight() == 0 && len(d.ready) == 0 && committed == d.sent
}

// finished reports whether a settled run has no work left: the latest scan found no host with
// pending work (n), no host sleeps or holds leased jobs, and no other worker of a shared queue
// is working (its outcomes could queue more). When all that is left is a shared queue's work
// waiting for a retry, others is when the first is due.
func (d *dispatcher) finished(n int) (done bool, others time.Time, err error) {
	if n > 0 || len(d.sleep) > 0 || d.holding > 0 {
		return false, time.Time{}, nil
	}
	working, others, err := d.othersWorking()
	return !working, others, err
}

// tooFar reports whether the shared queue's work, all of it waiting for a retry until next (zero:
// not all of it), is due later than MaxWait allows this run to wait.
func (d *dispatcher) tooFar(next, now time.Time) bool {
	limit := d.s.opts.MaxWait
	return limit != 0 && !next.IsZero() && next.Sub(now) > max(limit, 0)
}

// waitTooLong reports whether, with nothing in flight or ready, every host left sleeps past
// MaxWait: no robots.txt is being fetched, no host holds due work that only waits for its turn
// under the host's rate (spacing the requests is the run, not a wait for the work to come due),
// and the earliest wake-up is further away than allowed.
func (d *dispatcher) waitTooLong(now time.Time) bool {
	limit := d.s.opts.MaxWait
	if limit == 0 || len(d.sleep) == 0 {
		return false
	}
	for _, h := range d.hosts {
		if h.fetching || h.where == awaiting || h.where == sleeping && h.paced {
			return false
		}
	}
	return d.sleep[0].wake.Sub(now) > max(limit, 0)
}

// leaseSize is how many jobs a host leases at a time when k hosts lease together: big batches
// for the few hosts of a bulk download (fewer transactions), small ones when many hosts are
// active, so that the leased jobs held in memory stay near a few per worker whatever the number
// of hosts.
func (d *dispatcher) leaseSize(k int) int {
	n := 8 * d.s.opts.Workers / (d.holding + k)
	return min(max(n, 2*d.s.opts.PerHost, 4), d.window)
}

// leaseHosts is how many hosts one lease transaction serves at most, and leaseLook how far down
// the ready ring it looks for them.
const (
	leaseHosts = 32
	leaseLook  = 4 * leaseHosts
)

// lease fills h's buffer and, in the same transaction, those of the next hosts in the ready ring
// that have none: over many hosts each lease is a few jobs, and a transaction (with its fsync) per
// host would hold the dispatcher up. A host that gets nothing here is marked drained, and goes
// idle when its turn comes.
func (d *dispatcher) lease(h *hostState, now time.Time) error {
	batch, names := []*hostState{h}, []string{h.name}
	for i := 0; i < len(d.ready) && i < leaseLook && len(batch) < leaseHosts; i++ {
		if o := d.ready[i]; len(o.buf) == 0 && !o.drained && o != h {
			batch, names = append(batch, o), append(names, o.name)
		}
	}
	got, err := d.s.q.LeaseEach(names, d.leaseSize(len(batch)), now)
	if err != nil {
		return err
	}
	for i, o := range batch {
		if len(got[i]) == 0 {
			o.drained = o != h
			continue
		}
		d.setBuf(o, got[i])
		o.unchecked = true
	}
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// setBuf replaces h's buffer of leased jobs, keeping count of the hosts that hold one.
func (d *dispatcher) setBuf(h *hostState, buf []queue.Record) {
	switch had, has := len(h.buf) > 0, len(buf) > 0; {
	case has && !had:
		d.holding++
	case had && !has:
		d.holding--
	}
	h.buf = buf
}

func (d *dispatcher) host(name string) *hostState {
	h := d.hosts[name]
	if h == nil {
		h = &hostState{name: name, index: -1}
		d.hosts[name] = h
	}
	return h
}

// scan reads the store's per-host summaries and schedules idle hosts that have pending work. It
// returns the number of hosts with pending work.
func (d *dispatcher) scan(now time.Time) (int, error) {
	hq, err := d.s.q.PendingHosts()
	if err != nil {
		return 0, err
	}
	d.s.stats.hosts.Store(&hq) // read, never changed, here or by progress reporting
	for _, q := range hq {
		h := d.host(q.Host)
		if !q.HandedAt.IsZero() {
			// Another worker may have sent it a request until then: a full interval first.
			d.s.lim.Sent(q.Host, q.HandedAt)
		}
		if h.where == sleeping && h.fails == 0 {
			// New work due before the host's wake-up (a link, a listed URL): wake it then, but
			// not before the end of a cooldown the run gave it, which holds new work back as
			// much as old. The limiter still decides when it may really go.
			if at := maxTime(maxTime(q.Next, now), h.coolUntil); at.Before(h.wake) {
				h.wake = at
				heap.Fix(&d.sleep, h.index)
			}
			continue
		}
		if h.where == ready && h.drained && !q.Next.After(now) {
			h.drained = false // work came due since a lease for another host found none here
			continue
		}
		if h.where != idle {
			continue
		}
		if q.Next.After(now) {
			d.sleepUntil(h, q.Next)
		} else {
			d.pushReady(h)
		}
	}
	// Forget idle hosts with nothing buffered or in flight: memory tracks active hosts only.
	if len(d.hosts) > 4*len(hq)+64 {
		for name, h := range d.hosts {
			if h.where == idle && h.inflight == 0 && len(h.buf) == 0 && !h.fetching {
				delete(d.hosts, name)
				d.s.lim.Forget(name)
			}
		}
	}
	return len(hq), nil
}

func (d *dispatcher) pushReady(h *hostState) {
	h.where = ready
	d.ready = append(d.ready, h)
}

func (d *dispatcher) sleepUntil(h *hostState, t time.Time) {
	h.where = sleeping
	h.wake = t
	h.paced = false
	heap.Push(&d.sleep, h)
}

func (d *dispatcher) wakeSleepers(now time.Time) {
	for len(d.sleep) > 0 && !d.sleep[0].wake.After(now) {
		h := heap.Pop(&d.sleep).(*hostState)
		d.pushReady(h)
	}
}

// dispatch hands jobs to idle workers, round-robin over ready hosts, asking the limiter first.
func (d *dispatcher) dispatch(now time.Time) error {
	if d.feeding && (d.sitemapsFirst || d.feedFirst) {
		return nil // nothing leased yet: the feed goes first
	}
	for d.free > 0 && len(d.ready) > 0 {
		h := d.ready[0]
		d.ready[0] = nil
		d.ready = d.ready[1:]
		if len(h.buf) == 0 {
			if !h.drained {
				if err := d.lease(h, now); err != nil {
					return err
				}
			}
			if len(h.buf) == 0 {
				h.drained = false
				h.where = idle // the next scan brings it back if it has future work
				continue
			}
		}
		if h.gaveUp != "" {
			d.failBuffered(h, h.gaveUp, now)
			d.pushReady(h) // lease the rest, to fail it too
			continue
		}
		if !h.robotsOK && !d.loadRobots(h, now) {
			if h.where != sleeping {
				h.where = awaiting // setRobots readies it
			}
			continue
		}
		if h.unchecked {
			d.skipDisallowed(h, now)
			d.holdUncredentialed(h, now)
			h.unchecked = false
		}
		if len(h.buf) == 0 {
			d.pushReady(h) // lease more, or go idle
			continue
		}
		// Asked at the time the job goes out, not when the dispatch began: a scan or a lease
		// since then (a write transaction, which may wait behind a commit's flush) would date
		// the request early, and let the host's next one go out too soon after it.
		at := d.s.opts.Now()
		ok, wait := d.s.lim.TryAcquire(h.name, at)
		if !ok {
			if wait > 0 {
				d.sleepUntil(h, at.Add(wait))
				h.paced = !at.Before(h.coolUntil) // no cooldown of ours: the rate's spacing
			} else {
				h.where = capped
			}
			continue
		}
		rec := h.buf[0]
		h.buf[0] = queue.Record{}
		d.setBuf(h, h.buf[1:])
		h.inflight++
		d.free--
		d.jobs <- rec // never blocks: the channel holds Workers jobs and a worker is free
		d.pushReady(h)
	}
	if len(d.ready) == 0 {
		d.ready = d.ready[:0:0] // let the ring's backing array go
	}
	return nil
}

// finish records one fetch outcome.
func (d *dispatcher) finish(r outcome) {
	now := d.s.opts.Now()
	d.free++
	h := d.host(r.rec.Host)
	h.inflight--
	d.s.lim.Done(h.name, d.signal(r))
	if h.where == capped {
		d.pushReady(h)
	}
	kind, u := d.update(r, now)
	var links []queue.NewURL
	if kind == KindNew || kind == KindChanged || kind == KindUnchanged {
		links = r.links
		if r.notKept {
			// Nothing on disk (--save). The path stays reserved for the next refresh, and the
			// sha256 still says what the file was.
			u.Bytes = 0
		}
	}
	d.cm.add(kind, queue.Update{Record: u, Links: links})
	d.sent++
}

// latencyBody is the largest body whose fetch time is taken as its host's latency: a larger one's
// is mostly its transfer.
const latencyBody = 64 << 10

// signal is what an outcome says about its host's load, for the host's adaptive cap.
func (d *dispatcher) signal(r outcome) ratelimit.Signal {
	if r.err == nil {
		if r.resp.Bytes <= latencyBody && !r.resp.Resumed {
			return ratelimit.Signal{Latency: r.took}
		}
		return ratelimit.Signal{}
	}
	fe := fetcher.Classify(r.err)
	return ratelimit.Signal{Overloaded: fe.Overloaded()}
}

// update turns an outcome into the record to commit, deciding retries.
func (d *dispatcher) update(r outcome, now time.Time) (Kind, queue.Record) {
	opts := &d.s.opts
	rec := r.rec
	rec.Updated = now
	if r.err == nil {
		kind := KindNew
		if rec.SHA256 != "" {
			kind = KindChanged
			if r.resp.NotModified || r.resp.SHA256 == rec.SHA256 {
				kind = KindUnchanged
			}
		}
		rec.State = queue.Done
		rec.Attempts++
		rec.Status = r.resp.Status
		if !r.resp.NotModified {
			// A 304 leaves the file, its size and its hash as they were.
			rec.Bytes = r.resp.Bytes
			rec.SHA256 = r.resp.SHA256
			rec.ContentType = r.resp.ContentType
			if r.resp.Path != "" {
				rec.Path = r.resp.Path
			}
		}
		rec.ETag = r.resp.ETag
		rec.LastModified = r.resp.LastModified
		rec.LastError, rec.ErrorClass, rec.Transient = "", "", false
		return kind, rec
	}
	fe := fetcher.Classify(r.err)
	if fe.Class == fetcher.ClassCanceled || errors.Is(r.err, context.Canceled) {
		// Cut off by the shutdown, not the URL's fault: back to the queue as it was.
		rec.State = queue.Pending
		return KindReleased, rec
	}
	rec.LastError = fe.Error()
	rec.ErrorClass = string(fe.Class)
	rec.Status = fe.Status
	if fe.Fatal {
		if d.fatal == nil {
			d.fatal = &FatalError{fe}
		}
		rec.State = queue.Pending
		return KindReleased, rec
	}
	rec.Attempts++
	// The server's word on load holds for the whole host, whether or not this URL gets
	// another attempt.
	cool := time.Duration(0)
	switch {
	case fe.RetryAfter > 0:
		cool = fe.RetryAfter
	case fe.ServerBusy():
		cool = opts.backoff(1) // overloaded without saying for how long: a breather
	}
	if cool > 0 {
		d.s.lim.Cooldown(rec.Host, now.Add(cool))
		h := d.host(rec.Host)
		h.coolUntil = maxTime(h.coolUntil, now.Add(cool))
		if sq, ok := d.s.q.(queue.Shared); ok {
			sq.Cooldown(rec.Host, now.Add(cool)) // for whichever worker serves the host next
		}
	}
	if !fe.Retryable || rec.Attempts > opts.Retries {
		rec.State = queue.Failed
		// Out of retries on an error that may well go away: the next run tries again.
		rec.Transient = fe.Retryable
		return KindFailed, rec
	}
	delay := opts.backoff(rec.Attempts)
	if fe.RetryAfter > 0 {
		delay = max(delay, cool)
	}
	rec.State = queue.Pending
	rec.NextAttempt = now.Add(delay)
	d.s.stats.Retries.Add(1)
	return KindRetry, rec
}

// releaseBuffered gives leased, undispatched jobs back to the queue unchanged.
func (d *dispatcher) releaseBuffered() {
	for _, h := range d.hosts {
		for _, rec := range h.buf {
			rec.State = queue.Pending
			d.cm.add(KindReleased, queue.Update{Record: rec})
			d.sent++
		}
		d.setBuf(h, nil)
	}
}

// sleepHeap orders sleeping hosts by wake time.
type sleepHeap []*hostState

func (s sleepHeap) Len() int           { return len(s) }
func (s sleepHeap) Less(i, j int) bool { return s[i].wake.Before(s[j].wake) }
func (s sleepHeap) Swap(i, j int) {
	s[i], s[j] = s[j], s[i]
	s[i].index, s[j].index = i, j
}
func (s *sleepHeap) Push(x any) {
	h := x.(*hostState)
	h.index = len(*s)
	*s = append(*s, h)
}
func (s *sleepHeap) Pop() any {
	old := *s
	h := old[len(old)-1]
	old[len(old)-1] = nil
	h.index = -1
	*s = old[:len(old)-1]
	return h
}
