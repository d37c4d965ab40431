package scheduler

import (
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
}

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
