package scheduler

import "sync/atomic"

// Stats are the live counters of a run, for progress reporting. Done, Failed and DoneBytes count
// durable outcomes of the whole job (earlier runs included); Bytes counts body bytes received in
// this run, as they arrive.
type Stats struct {
	Total     atomic.Int64 // URLs known to the job
	Done      atomic.Int64
	Failed    atomic.Int64 // failed permanently
	Retries   atomic.Int64 // retries scheduled in this run
	DoneBytes atomic.Int64 // bytes of done files
	Bytes     atomic.Int64 // body bytes received in this run
	InFlight  atomic.Int64
}
