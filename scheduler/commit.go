package scheduler

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/trawl-dev/trawl/store"
)

// committer groups outcomes into batched store commits. One bbolt transaction (and its fsyncs) per
// file would cap small-file throughput, so outcomes wait up to CommitInterval, and before a batch
// that records files done is committed, the output file system is flushed once for all of them:
// a done record never exists without its durable file.
type committer struct {
	q     Queue
	opts  Options
	stats *Stats

	in        chan pendingUpdate
	committed atomic.Int64  // outcomes committed so far
	wake      chan struct{} // capacity 1: the store may hold new ready work
	urgent    chan struct{} // capacity 1: workers are idle; commit what is waiting now
	failed    chan struct{} // closed when a flush or commit failed; err says why
	err       error
	done      chan struct{}
	closeOnce sync.Once
}

func newCommitter(q Queue, opts Options, stats *Stats) *committer {
	return &committer{
		q:      q,
		opts:   opts,
		stats:  stats,
		in:     make(chan pendingUpdate, 4*opts.CommitMax),
		wake:   make(chan struct{}, 1),
		urgent: make(chan struct{}, 1),
		failed: make(chan struct{}),
		done:   make(chan struct{}),
	}
}

// pendingUpdate is an outcome waiting for its commit.
type pendingUpdate struct {
	kind Kind
	u    store.Update
}

// add queues one outcome for the next commit.
func (c *committer) add(kind Kind, u store.Update) { c.in <- pendingUpdate{kind, u} }

// poke tells the dispatcher that the store may have new ready work, without blocking.
func (c *committer) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// urge asks for the waiting outcomes to be committed now rather than at the end of the interval:
// in a crawl, workers may be idle until the links they wait for are committed.
func (c *committer) urge() {
	select {
	case c.urgent <- struct{}{}:
	default:
	}
}

// close commits what is queued and stops the committer; it returns the first error.
func (c *committer) close() error {
	c.closeOnce.Do(func() { close(c.in) })
	<-c.done
	return c.err
}

func (c *committer) run() {
	defer close(c.done)
	var batch []pendingUpdate
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	flush := func() {
		if armed {
			timer.Stop()
			armed = false
		}
		if len(batch) == 0 {
			return
		}
		if c.err == nil {
			if err := c.commit(batch); err != nil {
				c.err = err
				close(c.failed)
			}
		}
		// After a failure outcomes are dropped: their URLs stay leased in the store and return
		// to the queue when it is next opened, so nothing is lost.
		c.committed.Add(int64(len(batch)))
		clear(batch)
		batch = batch[:0]
		c.poke()
	}
	for {
		select {
		case u, ok := <-c.in:
			if !ok {
				flush()
				return
			}
			batch = append(batch, u)
			if len(batch) >= c.opts.CommitMax {
				flush()
			} else if !armed {
				timer.Reset(c.opts.CommitInterval)
				armed = true
			}
		case <-timer.C:
			armed = false
			flush()
		case <-c.urgent:
			// Take what has already arrived, then commit.
			for len(batch) < c.opts.CommitMax {
				select {
				case u, ok := <-c.in:
					if !ok {
						flush()
						return
					}
					batch = append(batch, u)
					continue
				default:
				}
				break
			}
			flush()
		}
	}
}

func (c *committer) commit(batch []pendingUpdate) error {
	if c.opts.Flush != nil {
		for _, p := range batch {
			if p.u.Record.State == store.Done {
				if err := c.opts.Flush(); err != nil {
					return err
				}
				break
			}
		}
	}
	updates := make([]store.Update, len(batch))
	for i, p := range batch {
		updates[i] = p.u
	}
	if err := c.q.Commit(updates); err != nil {
		return err
	}
	for _, u := range updates {
		if len(u.Links) > 0 {
			// Links were queued (those not known before): the job grew.
			if n, err := c.q.Counts(); err == nil {
				c.stats.Total.Store(int64(n.Total()))
			}
			break
		}
	}
	for _, p := range batch {
		switch p.kind {
		case KindNew, KindChanged, KindUnchanged:
			c.stats.Done.Add(1)
		case KindFailed:
			c.stats.Failed.Add(1)
		}
		if c.opts.OnOutcome != nil {
			c.opts.OnOutcome(Outcome{Kind: p.kind, Record: p.u.Record})
		}
	}
	return nil
}
