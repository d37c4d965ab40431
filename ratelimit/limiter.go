package ratelimit

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults applied by New to zero (or invalid) Options fields.
const (
	DefaultBurst   = 1
	DefaultPerHost = 4
)

// minSweep is the number of deferred Forget calls that triggers the first sweep. Sweeps are
// amortised: the next one waits until the pending set has doubled, so Forget is O(1) on average.
const minSweep = 64

// sweepEvery bounds how long an idle host waits in the pending set when no more Forget calls
// come to trigger a size-based sweep.
const sweepEvery = time.Second

// Options configures a Limiter. The zero value means no rate limit and 4 requests in flight per
// host.
type Options struct {
	// Rate is the number of requests per second allowed per host. 0 (or a negative, NaN or
	// infinite value) means unlimited.
	Rate float64
	// Burst is the per-host token bucket size: how many requests may start back to back after a
	// quiet period. Default 1, which spaces requests strictly 1/Rate apart.
	Burst int
	// PerHost is the number of concurrent requests per host: the cap, or with Adaptive the
	// ceiling each host's cap grows to. Default 4, or DefaultAdaptiveMax with Adaptive.
	PerHost int
	// Adaptive makes each host's cap adapt to how the host answers (see Done): it starts at
	// Start and moves between 1 and PerHost (or the host's own ceiling, SetHostMax).
	Adaptive bool
	// Start is an adaptive host's first cap. Default DefaultAdaptiveStart (at most PerHost).
	Start int
	// Margin is the fraction of every rate (Rate and SetHostRate's) held in reserve, 0 to 0.5.
	// With none, spacing is exactly 1/r, so a closed one-second window can hold r+1 requests (at
	// 0 and at 1 s) and arrival jitter makes a server count more still; a few percent keeps a
	// host at or under r requests in any second of the server's clock. Default 0.
	Margin float64
}

// Limiter enforces per-host rate, concurrency and cooldowns. It is safe for concurrent use.
//
// In any window of length w, a host with rate r and burst b is granted at most b + r·w requests:
// the token bucket guarantees it, and TryAcquire never takes a token it does not use.
type Limiter struct {
	rate     float64 // 0 = unlimited
	margin   float64 // Options.Margin
	burst    int
	perHost  int
	adaptive bool
	start    int

	// now is the clock for the methods that take no time argument (Cooldown, SetHostRate,
	// Forget). Tests replace it so those agree with the fake times passed to TryAcquire.
	now func() time.Time

	// One mutex for all hosts: every operation is a map lookup plus a few field updates, so a
	// single lock is cheaper than per-host locking and keeps check-then-act steps atomic.
	mu        sync.Mutex
	hosts     map[string]*hostState
	pending   map[string]*hostState // Forget was called, but dropping now would lose politeness
	sweepAt   int
	lastSweep time.Time
}

// hostState is what the Limiter remembers about one host.
type hostState struct {
	bucket     *rate.Limiter // nil when the host's rate is unlimited
	inFlight   int
	until      time.Time // cooling down until this instant
	sent       time.Time // when the latest request went out (Sent)
	forgetting bool      // in Limiter.pending
	ad         *adaptive // the host's adaptive cap; nil with a fixed one
}

// cap is how many requests h may have in flight.
func (l *Limiter) cap(h *hostState) int {
	if h.ad != nil {
		return h.ad.cap()
	}
	return l.perHost
}

// New returns a Limiter configured by opts, with defaults filled in.
func New(opts Options) *Limiter {
	l := &Limiter{
		rate:     validRate(opts.Rate),
		margin:   min(max(opts.Margin, 0), 0.5),
		burst:    opts.Burst,
		perHost:  opts.PerHost,
		adaptive: opts.Adaptive,
		start:    opts.Start,
		now:      time.Now,
		hosts:    make(map[string]*hostState),
		pending:  make(map[string]*hostState),
		sweepAt:  minSweep,
	}
	if l.burst <= 0 {
		l.burst = DefaultBurst
	}
	switch {
	case l.perHost > 0:
	case l.adaptive:
		l.perHost = DefaultAdaptiveMax
	default:
		l.perHost = DefaultPerHost
	}
	if l.start <= 0 {
		l.start = DefaultAdaptiveStart
	}
	l.start = min(l.start, l.perHost)
	return l
}

// limit is the bucket rate for r requests per second, less the margin.
func (l *Limiter) limit(r float64) rate.Limit { return rate.Limit(r * (1 - l.margin)) }

// validRate maps every value that is not a usable finite positive rate to 0 (unlimited), so a
// bad config value cannot create a bucket that never refills.
func validRate(r float64) float64 {
	if r > 0 && !math.IsInf(r, 1) {
		return r
	}
	return 0
}

// TryAcquire starts a request to host at time now if the host is not cooling down, has a free
// concurrency slot and a token.
//
// ok=true: a slot is held (call Release when the request ends) and a token consumed.
// ok=false: nothing is held or consumed; wait is how long until a token or the end of a cooldown
// could allow the request, or 0 when the host is only at its concurrency cap (a Release frees it).
func (l *Limiter) TryAcquire(host string, now time.Time) (ok bool, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()

	l.maybeSweep(now)
	h := l.state(host)

	// The token is checked with TokensAt, which does not mutate the bucket, and reserved only
	// once every other condition holds. Reserving first and cancelling on failure would round
	// the bucket through float arithmetic on every refusal.
	var tokenWait time.Duration
	if h.bucket != nil {
		tokenWait = waitForToken(h.bucket, now)
	}
	if next := h.spacedUntil(); now.Before(next) {
		tokenWait = max(tokenWait, next.Sub(now))
	}
	if now.Before(h.until) {
		// Tokens refill during the cooldown, so the token wait only matters if it is longer.
		return false, max(h.until.Sub(now), tokenWait)
	}
	if tokenWait > 0 {
		// Reported before the concurrency cap: a Release alone would not let this request go.
		return false, tokenWait
	}
	if h.inFlight >= l.cap(h) {
		return false, 0
	}
	if h.bucket != nil {
		// Cannot be delayed: waitForToken just saw a whole token at now, under l.mu.
		h.bucket.ReserveN(now, 1)
	}
	h.inFlight++
	if h.ad != nil && h.inFlight >= h.ad.cap() {
		h.ad.fullAt = now
	}
	return true, 0
}

// waitForToken returns how long from now until bucket holds one whole token; 0 if it does now.
func waitForToken(bucket *rate.Limiter, now time.Time) time.Duration {
	tokens := bucket.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	secs := (1 - tokens) / float64(bucket.Limit())
	if secs >= float64(math.MaxInt64)/float64(time.Second) {
		return time.Duration(math.MaxInt64)
	}
	// Float error can leave the bucket a hair short at the rounded time; step forward until it
	// is not, so a scheduler that comes back after exactly wait finds the token there.
	wait := time.Duration(math.Round(secs * float64(time.Second)))
	for step := time.Nanosecond; bucket.TokensAt(now.Add(wait)) < 1 && step < time.Second; step *= 10 {
		wait += step
	}
	return wait
}

// Sent tells that a request to host went out at at, which may be well after its grant (a new
// connection's handshake comes between), or that another worker of a shared job may have sent
// one then (the host was just handed over): with a burst of 1, the next request waits a full
// interval of the host's rate from at, so that the host sees its requests spaced as the rate
// says. Later requests in a burst larger than 1 may go back to back anyway, and are not held.
func (l *Limiter) Sent(host string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// The state is made even without a rate: a Crawl-delay the host is given next spaces by it.
	if h := l.state(host); at.After(h.sent) {
		h.sent = at
	}
}

// spacedUntil is when a request of h may go out, a full interval of its rate after its latest
// was sent (Sent); zero when nothing holds it so. The rate is the host's current one, so that a
// Crawl-delay learnt after a request was sent spaces the next.
func (h *hostState) spacedUntil() time.Time {
	if h.bucket == nil || h.bucket.Burst() != 1 || h.sent.IsZero() {
		return time.Time{}
	}
	interval := min(float64(time.Second)/float64(h.bucket.Limit()), float64(24*time.Hour))
	return h.sent.Add(time.Duration(interval))
}

// Release ends a request started by a successful TryAcquire. Releasing a host with nothing in
// flight is a caller bug; it is ignored rather than letting the count go negative and lift the cap.
func (l *Limiter) Release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h, ok := l.hosts[host]; ok && h.inFlight > 0 {
		h.inFlight--
	}
}

// Done ends a request started by a successful TryAcquire, like Release, and lets what it says
// about the host's load adapt the host's cap (Options.Adaptive; otherwise it is Release).
func (l *Limiter) Done(host string, s Signal) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.hosts[host]
	if !ok || h.inFlight == 0 {
		return
	}
	if h.ad != nil {
		h.ad.observe(s, l.now())
	}
	h.inFlight--
}

// SetHostMax sets the ceiling of an adaptive host's cap (at most PerHost): how a host serves
// its requests — many streams on one HTTP/2 connection, or a connection each over HTTP/1.1 —
// decides how many are polite. It does nothing to a fixed cap, which the user chose.
func (l *Limiter) SetHostMax(host string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.state(host); h.ad != nil {
		h.ad.setCeiling(min(n, l.perHost))
	}
}

// Raise lifts an adaptive host's cap to at least n (within its ceiling): a host that answers over
// HTTP/2 takes many requests as streams of one connection. It does nothing to a fixed cap, nor
// to one the host has already lowered (an overload, rising latency): it is asked at every answer,
// a 503's included, and must not undo what the answers said.
func (l *Limiter) Raise(host string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.state(host); h.ad != nil && !h.ad.steady {
		h.ad.limit = max(h.ad.limit, float64(min(n, h.ad.ceiling)))
	}
}

// Cap reports host's current concurrency cap.
func (l *Limiter) Cap(host string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h, ok := l.hosts[host]; ok {
		return l.cap(h)
	}
	if l.adaptive {
		return l.start
	}
	return l.perHost
}

// Cooldown parks host until until (the caller caps it: a Retry-After is capped where it is
// parsed, in the fetcher). A later call extends the cooldown
// but never shortens it: after a 503 with Retry-After: 120, a 429 with Retry-After: 5 must not
// let requests resume early.
func (l *Limiter) Cooldown(host string, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !until.After(l.now()) {
		return // already over; no need to create state for it
	}
	if h := l.state(host); until.After(h.until) {
		h.until = until
	}
}

// SetHostRate overrides the per-host rate for host, typically from robots.txt Crawl-delay
// (perSecond = 1/delay). 0 (or a negative, NaN or infinite value) means unlimited. The burst stays
// Options.Burst. The override lasts until the host's state is dropped by Forget.
func (l *Limiter) SetHostRate(host string, perSecond float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.state(host)
	r := validRate(perSecond)
	switch {
	case r == 0:
		h.bucket = nil
	case h.bucket == nil:
		h.bucket = rate.NewLimiter(l.limit(r), l.burst)
	default:
		// Keep the tokens already spent: changing the rate must not hand out a fresh burst.
		h.bucket.SetLimitAt(l.now(), l.limit(r))
	}
}

// Forget drops the state of host, so memory tracks active hosts only. It does nothing while
// requests are in flight. A host that is still cooling down or whose bucket has not refilled is
// kept until it has (dropping it would let the next request skip the cooldown or the spacing)
// and dropped by a later Forget call, unless it is used again first. A dropped host loses its
// SetHostRate override.
func (l *Limiter) Forget(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if h, ok := l.hosts[host]; ok && h.inFlight == 0 {
		if h.idle(now) {
			l.drop(host, h)
		} else if !h.forgetting {
			h.forgetting = true
			l.pending[host] = h
		}
	}
	l.maybeSweep(now)
}

// maybeSweep drops the deferred-Forget hosts that have become idle. It runs when the pending set
// has doubled since the last sweep, so Forget stays O(1) amortised, and at least every
// sweepEvery, so hosts left pending after the last Forget are dropped too. Callers hold l.mu.
func (l *Limiter) maybeSweep(now time.Time) {
	if len(l.pending) == 0 || (len(l.pending) < l.sweepAt && now.Sub(l.lastSweep) < sweepEvery) {
		return
	}
	for name, h := range l.pending {
		if h.idle(now) {
			l.drop(name, h)
		}
	}
	l.sweepAt = max(minSweep, 2*len(l.pending))
	l.lastSweep = now
}

// InFlight reports the number of requests currently held for host.
func (l *Limiter) InFlight(host string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h, ok := l.hosts[host]; ok {
		return h.inFlight
	}
	return 0
}

// state returns the state of host, creating it if needed. Any use of a host cancels a pending
// Forget: the host is active again. Callers hold l.mu.
func (l *Limiter) state(host string) *hostState {
	h, ok := l.hosts[host]
	if !ok {
		h = &hostState{}
		if l.adaptive {
			h.ad = &adaptive{limit: float64(l.start), ceiling: l.perHost}
		}
		if l.rate > 0 {
			h.bucket = rate.NewLimiter(l.limit(l.rate), l.burst)
		}
		l.hosts[host] = h
	}
	if h.forgetting {
		h.forgetting = false
		delete(l.pending, host)
	}
	return h
}

// drop removes host from every map. Callers hold l.mu.
func (l *Limiter) drop(host string, h *hostState) {
	delete(l.hosts, host)
	if h.forgetting {
		delete(l.pending, host)
	}
}

// idle reports whether forgetting h now is indistinguishable from keeping it (apart from a rate
// override): nothing in flight, no cooldown, a full bucket.
func (h *hostState) idle(now time.Time) bool {
	if h.inFlight > 0 || now.Before(h.until) || now.Before(h.spacedUntil()) {
		return false
	}
	return h.bucket == nil || h.bucket.TokensAt(now) >= float64(h.bucket.Burst())
}
