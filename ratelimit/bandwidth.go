package ratelimit

import (
	"context"
	"fmt"
	"math"
	"time"

	"golang.org/x/time/rate"
)

// minBandwidthBurst keeps the burst at least as large as a typical read buffer, so one read of a
// response body costs one wait instead of several.
const minBandwidthBurst = 64 << 10

// Bandwidth is the global bandwidth cap shared by every transfer. A nil *Bandwidth is valid and
// means unlimited, so callers need no "is there a cap" branch.
type Bandwidth struct {
	lim *rate.Limiter
}

// NewBandwidth returns a cap of bytesPerSecond, or nil (unlimited) when bytesPerSecond <= 0.
//
// The burst is a tenth of a second of traffic, so throughput stays smooth, but at least
// minBandwidthBurst and at most one second of traffic, so a slow cap is not exceeded by bursts.
func NewBandwidth(bytesPerSecond int64) *Bandwidth {
	if bytesPerSecond <= 0 {
		return nil
	}
	burst := min(bytesPerSecond, max(minBandwidthBurst, bytesPerSecond/10))
	burst = min(burst, math.MaxInt32) // rate.Limiter's burst is an int; stay portable
	return &Bandwidth{lim: rate.NewLimiter(rate.Limit(bytesPerSecond), int(burst))}
}

// WaitN blocks until n bytes may be transferred or ctx is done. It waits in chunks no larger
// than the burst, because rate.Limiter.WaitN refuses a request bigger than its burst, and it
// waits on the caller's context so a cancelled transfer stops waiting at once. A nil receiver
// returns nil immediately.
func (b *Bandwidth) WaitN(ctx context.Context, n int) error {
	if b == nil {
		return nil
	}
	if n <= 0 {
		return nil
	}
	// Chunking hides n from rate.Limiter's own "would exceed the deadline" check, so do it here
	// for the whole of n: a transfer that cannot finish in time fails now, not at the deadline.
	if deadline, ok := ctx.Deadline(); ok {
		need := (float64(n) - b.lim.Tokens()) / float64(b.lim.Limit())
		if need > time.Until(deadline).Seconds() {
			return fmt.Errorf("ratelimit: waiting for %d bytes would exceed the context deadline", n)
		}
	}
	burst := b.lim.Burst()
	for n > 0 {
		chunk := min(n, burst)
		if err := b.lim.WaitN(ctx, chunk); err != nil {
			return err
		}
		n -= chunk
	}
	return nil
}

// Burst returns the largest number of bytes one underlying wait covers; a read buffer of this
// size or smaller costs at most one wait. A nil receiver returns 0 (no cap, no chunking).
func (b *Bandwidth) Burst() int {
	if b == nil {
		return 0
	}
	return b.lim.Burst()
}
