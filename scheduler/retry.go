package scheduler

import (
	"math/rand/v2"
	"time"
)

func randFloat() float64 { return rand.Float64() }

// backoff is the delay before retry number attempt (1-based): exponential from BackoffBase,
// capped at BackoffMax, with jitter over its upper half so that many URLs failing together
// (a host restarting) don't come back together.
func (o *Options) backoff(attempt int) time.Duration {
	d := o.BackoffBase
	for i := 1; i < attempt && d < o.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, o.BackoffMax)
	return d/2 + time.Duration(o.Jitter()*float64(d/2))
}
