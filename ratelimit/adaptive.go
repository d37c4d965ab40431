package ratelimit

import "time"

// Adaptive per-host concurrency: each host's cap moves between 1 and its ceiling with what the
// host says about its load. It grows while the host answers well and its latency stays flat —
// quickly at first (one more per good answer, doubling per round trip, like TCP's slow start),
// then by about one per round of answers — and halves on overload (429/503, timeouts, resets,
// stalls), at most once per round trip so that a burst of failures of requests sent together
// counts once. A rise in latency to several times the host's best stops the growth and trims
// the cap.

// Defaults of the adaptive cap.
const (
	DefaultAdaptiveStart = 8
	DefaultAdaptiveMax   = 64
)

// Latency thresholds, against the best latency seen from the host: flat enough to keep growing,
// and high enough to count as rising. The slack keeps the jitter of fast (LAN, loopback) hosts,
// whose best is well under a millisecond, from counting as a rise.
const (
	flatFactor = 2
	flatSlack  = 20 * time.Millisecond
	riseFactor = 4
	riseSlack  = 50 * time.Millisecond
)

// minRound is the shortest interval between two decreases of a host's cap.
const minRound = 50 * time.Millisecond

// Signal is what one finished request says about its host's load.
type Signal struct {
	// Overloaded: the host refused (429, 503) or failed in a way load causes (a timeout, a
	// reset, a stall).
	Overloaded bool
	// Latency is how long the request took to answer, when it was small enough for that to be
	// its round trip; 0 when unknown (a big body, an error).
	Latency time.Duration
}

// adaptive is a host's adaptive cap. Callers hold Limiter.mu.
type adaptive struct {
	limit     float64       // the cap, fractional between increases
	ceiling   int           // the most it may grow to
	best      time.Duration // lowest latency seen
	avg       time.Duration // moving average of the latency
	steady    bool          // past slow start: an overload or a rise was seen
	lastDecay time.Time     // the last decrease
	fullAt    time.Time     // the last time the host's requests in flight reached the cap
}

// cap is the number of requests the host may have in flight now.
func (a *adaptive) cap() int { return max(1, int(a.limit)) }

// observe updates the cap with one request's signal. Only a cap the host's work filled within
// the last round trips or so is grown: one the work does not fill says nothing about the host.
func (a *adaptive) observe(s Signal, now time.Time) {
	full := !a.fullAt.IsZero() && now.Sub(a.fullAt) <= 2*max(a.avg, minRound)
	if s.Overloaded {
		a.decrease(0.5, now)
		return
	}
	if s.Latency > 0 {
		if a.best == 0 || s.Latency < a.best {
			a.best = s.Latency
		}
		if a.avg == 0 {
			a.avg = s.Latency
		} else {
			a.avg += (s.Latency - a.avg) / 8
		}
		if a.avg > riseFactor*a.best+riseSlack {
			a.decrease(0.9, now)
			return
		}
		if a.avg > flatFactor*a.best+flatSlack {
			return // not rising enough to back off, not flat enough to grow
		}
	}
	if !full {
		return
	}
	if a.steady {
		a.limit += 1 / a.limit
	} else {
		a.limit++
	}
	a.limit = min(a.limit, float64(a.ceiling))
}

// decrease multiplies the cap by factor, once per round trip at most.
func (a *adaptive) decrease(factor float64, now time.Time) {
	a.steady = true
	if now.Sub(a.lastDecay) < max(a.avg, minRound) {
		return
	}
	a.lastDecay = now
	a.limit = max(1, a.limit*factor)
}

// setCeiling bounds the cap (a host's protocol: many streams on one HTTP/2 connection, or a
// connection per request over HTTP/1.1).
func (a *adaptive) setCeiling(n int) {
	a.ceiling = max(1, n)
	a.limit = min(a.limit, float64(a.ceiling))
}
