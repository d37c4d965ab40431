package store

import "github.com/trawl-dev/trawl/queue"

// The job types are the queue package's, so that a backend other than this one speaks them too;
// the names here keep the store's own code and its callers short.
type (
	State     = queue.State
	Record    = queue.Record
	NewURL    = queue.NewURL
	Update    = queue.Update
	HostQueue = queue.HostQueue
	Counts    = queue.Counts
)

// States.
const (
	Pending = queue.Pending
	Leased  = queue.Leased
	Done    = queue.Done
	Failed  = queue.Failed
	Skipped = queue.Skipped
)

// RequisiteDepth is queue.RequisiteDepth.
func RequisiteDepth(level int) int { return queue.RequisiteDepth(level) }

func requisiteLevel(requisite bool, depth int) int { return queue.RequisiteLevelOf(requisite, depth) }
