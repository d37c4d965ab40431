package scheduler

import (
	"sync"
	"sync/atomic"

	"github.com/trawl-dev/trawl/queue"
)

// Stats are the live counters of a run, for progress reporting. Done and Failed count durable
// outcomes of the whole job (earlier runs included); Bytes counts body bytes received in this
// run, as they arrive.
type Stats struct {
	Total    atomic.Int64 // URLs known to the job
	Done     atomic.Int64
	Failed   atomic.Int64 // failed permanently
	Retries  atomic.Int64 // retries scheduled in this run
	Bytes    atomic.Int64 // body bytes received in this run
	InFlight atomic.Int64
	// Partial is how far the files in flight whose length is known have come, in millionths of a
	// file: with it, progress shows a big file moving rather than a count stuck until it ends.
	Partial atomic.Int64

	hosts atomic.Pointer[[]queue.HostQueue] // the dispatcher's latest scan of the hosts with pending work

	// enqueuing is held by the feed from an enqueue to its count in Total: a read of the job's
	// counts in between would count the batch, and the feed's Add count it again.
	enqueuing sync.Mutex
}

// PendingHosts is the run's latest look at the hosts with pending work (taken every half second
// at most, and after commits): each with the URLs queued for it and not yet leased (on a shared
// queue, those this worker holds for it). The slice is shared: read it, don't change it.
func (s *Stats) PendingHosts() []queue.HostQueue {
	if p := s.hosts.Load(); p != nil {
		return *p
	}
	return nil
}

// fileShare follows one transfer's part of Stats.Partial. It is safe for concurrent use (the
// connections of a segmented download report together).
type fileShare struct {
	stats              *Stats
	total, got, millis atomic.Int64
}

// length is the fetcher's word on the file's whole length, and on how much of it is on disk.
func (f *fileShare) length(total, have int64) {
	if total > 0 {
		f.total.Store(total)
		f.add(have)
	}
}

// add counts n more bytes of the file.
func (f *fileShare) add(n int64) {
	t := f.total.Load()
	if t <= 0 {
		return
	}
	g := min(f.got.Add(n), t)
	m := g * 1_000_000 / t
	f.stats.Partial.Add(m - f.millis.Swap(m))
}

// done takes the transfer's share back: the file is counted as finished, or not at all.
func (f *fileShare) done() { f.stats.Partial.Add(-f.millis.Swap(0)) }

// Kind says what an outcome was.
type Kind uint8

const (
	KindReleased  Kind = iota // given back to the queue unchanged (interrupted, or never started)
	KindNew                   // fetched for the first time
	KindChanged               // fetched again and its content changed
	KindUnchanged             // revalidated (304), or fetched again with identical content
	KindRetry                 // failed transiently; queued for another attempt
	KindFailed                // failed for good
	KindSkipped               // not fetched: robots.txt forbids it
)

var kindNames = [...]string{"released", "new", "changed", "unchanged", "retry", "failed", "skipped"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Outcome is one committed result of a job.
type Outcome struct {
	Kind   Kind
	Record queue.Record // as committed
}
