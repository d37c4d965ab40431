package scheduler

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/trawl-dev/trawl/queue"
)

// committer groups outcomes into batched store commits. One bbolt transaction (and its fsyncs) per
// file would cap small-file throughput, so outcomes wait up to CommitInterval, and before a batch
// that records files done is committed, the output file system is flushed once for all of them:
// a done record never exists without its durable file.
type committer struct {
	q     Queue
	opts  Options
	stats *Stats

	mu      sync.Mutex
	space   sync.Cond       // on mu: the run loop took outcomes off pending
	pending []pendingUpdate // outcomes waiting for a commit, in the order added
	closed  bool
	alarm   chan struct{} // capacity 1, the committer's: a batch began or filled up, or it was closed
	batch   []pendingUpdate

	committed atomic.Int64  // outcomes committed so far
	changed   chan struct{} // capacity 1, the dispatcher's: a commit or enqueue may have made work ready
	hurry     chan struct{} // capacity 1, the committer's: workers are idle; commit what is waiting now
	failed    chan struct{} // closed when a flush or commit failed; err says why
	err       error
	done      chan struct{}

	counted   time.Time     // when the counters last took a shared job's counts (countShared)
	countNext time.Duration // how long after counted they take them again
}

// sharedCountsEvery is how often a worker of a shared job takes the job's counts for its
// counters: other workers settle the job's URLs too, and the progress shown is the job's. A job
// whose counts take long to read (the engine walks its records) is read less often: at most a
// tenth of the time goes to it (sharedCountsShare).
const (
	sharedCountsEvery = 5 * time.Second
	sharedCountsShare = 10
)

// maxPendingBatches bounds how many batches' outcomes may wait: past that, add waits for the
// commit in progress, so a slow disk holds back the downloads instead of piling up outcomes a
// crash would lose.
const maxPendingBatches = 4

func newCommitter(q Queue, opts Options, stats *Stats) *committer {
	c := &committer{
		q:       q,
		opts:    opts,
		stats:   stats,
		alarm:   make(chan struct{}, 1),
		changed: make(chan struct{}, 1),
		hurry:   make(chan struct{}, 1),
		failed:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	c.space.L = &c.mu
	return c
}

// pendingUpdate is an outcome waiting for its commit.
type pendingUpdate struct {
	kind Kind
	u    queue.Update
}

// add queues one outcome for the next commit. It wakes the committer only when the outcome begins
// a batch (which starts the interval) or fills one: waking it for every outcome would cost as much
// as the commits, with small files.
func (c *committer) add(kind Kind, u queue.Update) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		panic("scheduler: outcome added after the committer was closed")
	}
	for len(c.pending) >= maxPendingBatches*c.opts.CommitMax {
		c.space.Wait()
	}
	c.pending = append(c.pending, pendingUpdate{kind, u})
	n := len(c.pending)
	c.mu.Unlock()
	if n == 1 || n == c.opts.CommitMax {
		notify(c.alarm)
	}
}

// notify sends on a channel of capacity 1 without blocking: a signal already waiting will do.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// storeChanged tells the dispatcher that the store may hold new ready work, without blocking.
func (c *committer) storeChanged() { notify(c.changed) }

// commitNow asks for the waiting outcomes to be committed now rather than at the end of the
// interval: in a crawl, workers may be idle until the links they wait for are committed.
func (c *committer) commitNow() { notify(c.hurry) }

// close commits what is queued and stops the committer; it returns the first error.
func (c *committer) close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	notify(c.alarm)
	<-c.done
	return c.err
}

func (c *committer) run() {
	defer close(c.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	for {
		due := false // commit whatever is waiting
		select {
		case <-c.alarm:
		case <-timer.C:
			armed, due = false, true
		case <-c.hurry:
			due = true
		}
		for {
			c.mu.Lock()
			n, closed := len(c.pending), c.closed
			c.mu.Unlock()
			if n == 0 && closed {
				return
			}
			if n == 0 || n < c.opts.CommitMax && !due && !closed {
				if n > 0 && !armed {
					// Outcomes that arrived during the last commit start their interval now.
					timer.Reset(c.opts.CommitInterval)
					armed = true
				}
				break
			}
			if armed {
				timer.Stop()
				armed = false
			}
			c.flush()
			due = false // what arrived during the commit waits for its own interval
		}
	}
}

// flush commits the oldest pending outcomes, at most CommitMax of them.
func (c *committer) flush() {
	c.mu.Lock()
	n := min(len(c.pending), c.opts.CommitMax)
	c.batch = append(c.batch[:0], c.pending[:n]...)
	rest := copy(c.pending, c.pending[n:])
	clear(c.pending[rest:])
	c.pending = c.pending[:rest]
	c.space.Broadcast()
	c.mu.Unlock()

	if c.err == nil {
		if err := c.commit(c.batch); err != nil {
			c.err = err
			close(c.failed)
		}
	}
	// After a failure outcomes are dropped: their URLs stay leased in the store and return to the
	// queue when it is next opened, so nothing is lost.
	c.committed.Add(int64(n))
	if c.err == nil && c.opts.OnOutcome != nil {
		// After the count: whoever hears of an outcome finds it counted as committed.
		for _, p := range c.batch {
			c.opts.OnOutcome(Outcome{Kind: p.kind, Record: p.u.Record})
		}
	}
	clear(c.batch)
	c.storeChanged()
}

func (c *committer) commit(batch []pendingUpdate) error {
	if c.opts.Flush != nil {
		for _, p := range batch {
			if p.u.Record.State == queue.Done {
				if err := c.opts.Flush(); err != nil {
					return err
				}
				break
			}
		}
	}
	updates := make([]queue.Update, len(batch))
	for i, p := range batch {
		updates[i] = p.u
	}
	if err := c.q.Commit(updates); err != nil {
		return err
	}
	for _, p := range batch {
		switch p.kind {
		case KindNew, KindChanged, KindUnchanged:
			c.stats.Done.Add(1)
		case KindFailed:
			c.stats.Failed.Add(1)
		}
	}
	if _, shared := c.q.(queue.Shared); shared {
		c.countShared()
	} else {
		c.countLinks(updates)
	}
	return nil
}

// countLinks takes the job's total again if updates queued links (those not known before): the
// job grew. A shared job's counts are read by countShared instead, at most every
// sharedCountsEvery: reading them walks the engine's records, and a crawl commits links all the time.
func (c *committer) countLinks(updates []queue.Update) {
	for _, u := range updates {
		if len(u.Links) > 0 {
			c.stats.enqueuing.Lock() // not between a feed's enqueue and its count
			defer c.stats.enqueuing.Unlock()
			if n, err := c.q.Counts(); err == nil {
				c.stats.Total.Store(int64(n.Total()))
			}
			return
		}
	}
}

// countShared sets the counters to a shared job's counts, every sharedCountsEvery: between two
// reads they count this worker's outcomes on top of the last.
func (c *committer) countShared() {
	now := c.opts.Now()
	if now.Sub(c.counted) < max(c.countNext, sharedCountsEvery) {
		return
	}
	if !c.stats.enqueuing.TryLock() {
		return // the feed is enqueuing: read after its count, at a later commit
	}
	defer c.stats.enqueuing.Unlock()
	n, err := c.q.Counts()
	// A read that failed is paced as one that succeeded: it may have been as slow. One that
	// waited out an outage says little of the next: ten minutes at most.
	c.counted, c.countNext = now, min(sharedCountsShare*c.opts.Now().Sub(now), 10*time.Minute)
	if err != nil {
		return // shown a little late; a later commit tries again
	}
	c.stats.Total.Store(int64(n.Total()))
	c.stats.Done.Store(int64(n.Done))
	c.stats.Failed.Store(int64(n.Failed))
}
