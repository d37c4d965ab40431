// Package store owns trawl's state file: one bbolt database that holds every URL's record, the
// per-host ready queues, the leases handed to workers, the output-path reservations that keep two
// URLs from writing the same file, run metadata, the counters the progress bar and `trawl status`
// read, and, for a breadth-first crawl, the links that wait for their level (levels.go).
//
// Everything that must survive a crash lives here, and every change is one bbolt transaction, so
// an interrupted run resumes exactly where the last committed batch left it: a job is leased, not
// popped, and leases found at Open (left by a dead process) go back to their queue.
//
// Nothing outside this package sees a bbolt type; values are copied out of the memory map before
// a transaction ends. The package imports no other trawl package but queue, whose job types
// (Record, NewURL, Update, Counts) it stores and whose conformance suite (queuetest) it passes.
package store
