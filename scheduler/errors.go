package scheduler

import (
	"errors"
	"fmt"
	"time"
)

// ErrInterrupted is returned by Run when its context was cancelled before the job finished; every
// unfinished URL is back in the queue.
var ErrInterrupted = errors.New("interrupted")

// errNotURL: a list line or argument that does not parse as an absolute URL.
var errNotURL = errors.New("not a URL")

// FatalError wraps a condition that stopped the whole run (disk full, output not writable, the
// store failing); the queue is left consistent.
type FatalError struct{ Err error }

func (e *FatalError) Error() string { return e.Err.Error() }
func (e *FatalError) Unwrap() error { return e.Err }

// WaitingError is returned by Run when all the work left is due later than Options.MaxWait
// allows: those URLs stay queued, each with its due time, for a later run.
type WaitingError struct {
	Next time.Time // when the earliest of them is due
}

func (e *WaitingError) Error() string {
	return fmt.Sprintf("the work left is not due until %s", e.Next.Format(time.RFC3339))
}
