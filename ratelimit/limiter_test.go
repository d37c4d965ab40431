package ratelimit

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// t0 is the fake "now" every test starts from; nothing in these tests sleeps.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeClock is the clock for the methods that take no time argument.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) Set(d time.Duration)     { c.now = t0.Add(d) }
func at(d time.Duration) time.Time           { return t0.Add(d) }
func period(perSecond float64) time.Duration { return time.Duration(float64(time.Second) / perSecond) }

// newTestLimiter returns a Limiter whose internal clock is the returned fakeClock, set to t0.
func newTestLimiter(opts Options) (*Limiter, *fakeClock) {
	l := New(opts)
	c := &fakeClock{now: t0}
	l.now = c.Now
	return l, c
}

func mustAcquire(t *testing.T, l *Limiter, host string, now time.Time) {
	t.Helper()
	if ok, wait := l.TryAcquire(host, now); !ok {
		t.Fatalf("TryAcquire(%q, t0+%v) = false, wait %v; want true", host, now.Sub(t0), wait)
	}
}

func mustRefuse(t *testing.T, l *Limiter, host string, now time.Time, want time.Duration) {
	t.Helper()
	ok, wait := l.TryAcquire(host, now)
	if ok {
		t.Fatalf("TryAcquire(%q, t0+%v) = true; want false, wait %v", host, now.Sub(t0), want)
	}
	if wait != want {
		t.Fatalf("TryAcquire(%q, t0+%v) wait = %v; want %v", host, now.Sub(t0), wait, want)
	}
}

// TestSpacing drives one host the way the scheduler does (on refusal, come back after wait) and
// checks that acquisitions are at least 1/rate apart, that the wait is tight (no later than
// needed) and that coming back after exactly wait succeeds.
func TestSpacing(t *testing.T) {
	for _, r := range []float64{0.5, 1, 2, 3, 7.3, 10, 1000} {
		t.Run(fmt.Sprint(r), func(t *testing.T) {
			l := New(Options{Rate: r, Burst: 1, PerHost: 100})
			p := period(r)
			now := t0
			var last time.Time
			for i := range 50 {
				ok, wait := l.TryAcquire("h", now)
				if !ok {
					if wait <= 0 {
						t.Fatalf("acquisition %d: refused with wait %v; want > 0", i, wait)
					}
					now = now.Add(wait)
					if ok, wait = l.TryAcquire("h", now); !ok {
						t.Fatalf("acquisition %d: refused again after waiting as told (wait %v)", i, wait)
					}
				}
				if i > 0 {
					gap := now.Sub(last)
					if gap.Seconds()*r < 1-1e-9 {
						t.Fatalf("acquisition %d: gap %v < period %v", i, gap, p)
					}
					if gap > p+time.Microsecond {
						t.Fatalf("acquisition %d: gap %v; want about %v (wait not tight)", i, gap, p)
					}
				}
				last = now
				l.Release("h")
				now = now.Add(p / 3) // come back early, so most attempts are first refused
			}
		})
	}
}

// TestSent: a request that went out late (its connection's handshake came between grant and
// send) holds the host's next request a full interval from when it went out, with a burst of 1;
// with a larger burst, or no rate, it holds nothing.
func TestSent(t *testing.T) {
	tests := []struct {
		name      string
		opts      Options
		sentAfter time.Duration // after the grant at t0
		wantWait  time.Duration // of the next request at t0+1s, the rate's own turn; 0: granted
	}{
		{"late send holds the next", Options{Rate: 1, PerHost: 4}, 300 * time.Millisecond, 300 * time.Millisecond},
		{"prompt send holds nothing more", Options{Rate: 1, PerHost: 4}, 0, 0},
		{"burst 2 is not held", Options{Rate: 1, Burst: 2, PerHost: 4}, 300 * time.Millisecond, 0},
		{"no rate is not held", Options{PerHost: 4}, 300 * time.Millisecond, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := newTestLimiter(tt.opts)
			mustAcquire(t, l, "h", t0)
			l.Sent("h", at(tt.sentAfter))
			l.Sent("other", at(tt.sentAfter)) // a host never granted: nothing to hold
			if tt.wantWait == 0 {
				mustAcquire(t, l, "h", at(time.Second))
				return
			}
			mustRefuse(t, l, "h", at(time.Second), tt.wantWait)
			mustAcquire(t, l, "h", at(time.Second+tt.wantWait))
		})
	}
}

// TestSentBeforeAnyRequest: a host handed over from another worker (Sent before any request
// here) waits a full interval before its first request, at the rate it has when asked: a
// Crawl-delay learnt meanwhile lengthens the wait.
func TestSentBeforeAnyRequest(t *testing.T) {
	tests := []struct {
		name      string
		crawlRate float64 // SetHostRate after Sent; 0: none
		wantWait  time.Duration
	}{
		{"the rate's interval", 0, time.Second},
		{"a Crawl-delay's", 0.1, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := newTestLimiter(Options{Rate: 1, PerHost: 4})
			l.Sent("h", t0)
			if tt.crawlRate > 0 {
				l.SetHostRate("h", tt.crawlRate)
			}
			mustRefuse(t, l, "h", t0, tt.wantWait)
			mustAcquire(t, l, "h", at(tt.wantWait))
		})
	}
	// Without a rate there is nothing to space by, until a Crawl-delay gives the host one: then
	// it spaces from the hand-over too.
	l := New(Options{PerHost: 4})
	l.Sent("h", t0)
	mustAcquire(t, l, "h", t0)
	l.Release("h")
	l.Sent("g", t0)
	l.SetHostRate("g", 0.1)
	mustRefuse(t, l, "g", at(10*time.Millisecond), 10*time.Second-10*time.Millisecond)
}

// TestWindowBound probes a host at random times and checks the rate contract exactly: in any
// window of length w, at most Burst + Rate·w acquisitions.
func TestWindowBound(t *testing.T) {
	tests := []struct {
		rate  float64
		burst int
	}{
		{1, 1}, {2, 1}, {3, 1}, {0.7, 1}, {5, 3}, {10, 10}, {2.5, 4},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("rate=%v/burst=%d", tt.rate, tt.burst), func(t *testing.T) {
			l := New(Options{Rate: tt.rate, Burst: tt.burst, PerHost: 1000})
			rng := rand.New(rand.NewPCG(1, uint64(tt.burst)))
			now := t0
			var got []time.Time
			for range 5000 {
				if ok, _ := l.TryAcquire("h", now); ok {
					got = append(got, now)
					l.Release("h")
				}
				now = now.Add(time.Duration(rng.Int64N(int64(period(tt.rate)))) / 4)
			}
			if len(got) < 100 {
				t.Fatalf("only %d acquisitions; the probe is too sparse to test anything", len(got))
			}
			for i := range got {
				for j := i; j < len(got); j++ {
					w := got[j].Sub(got[i]).Seconds()
					if n := float64(j - i + 1); n > float64(tt.burst)+tt.rate*w+1e-9 {
						t.Fatalf("%v acquisitions in a %.6fs window; limit %v", n, w, float64(tt.burst)+tt.rate*w)
					}
					if w > 3*float64(tt.burst)/tt.rate {
						break // longer windows are implied by shorter ones
					}
				}
			}
		})
	}
}

func TestBurst(t *testing.T) {
	tests := []struct {
		name  string
		burst int
		want  int // acquisitions allowed at t0
	}{
		{"default is strict spacing", 0, 1},
		{"negative means default", -3, 1},
		{"burst 1", 1, 1},
		{"burst 3", 3, 3},
		{"burst 10", 10, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(Options{Rate: 1, Burst: tt.burst, PerHost: 100})
			for range tt.want {
				mustAcquire(t, l, "h", t0)
			}
			mustRefuse(t, l, "h", t0, time.Second)
			// One second refills one token, not the whole burst.
			mustAcquire(t, l, "h", at(time.Second))
			mustRefuse(t, l, "h", at(time.Second), time.Second)
		})
	}
}

func TestConcurrencyCap(t *testing.T) {
	tests := []struct {
		name    string
		perHost int
		want    int
	}{
		{"default", 0, DefaultPerHost},
		{"one", 1, 1},
		{"three", 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(Options{PerHost: tt.perHost}) // no rate limit: only the cap applies
			for range tt.want {
				mustAcquire(t, l, "a", t0)
			}
			mustRefuse(t, l, "a", t0, 0) // wait 0: only a Release can help
			if got := l.InFlight("a"); got != tt.want {
				t.Fatalf("InFlight = %d; want %d", got, tt.want)
			}
			mustAcquire(t, l, "b", t0) // other hosts are unaffected
			l.Release("a")
			if got := l.InFlight("a"); got != tt.want-1 {
				t.Fatalf("after Release, InFlight = %d; want %d", got, tt.want-1)
			}
			mustAcquire(t, l, "a", t0)
			mustRefuse(t, l, "a", t0, 0)
		})
	}
}

func TestCapAndTokenWait(t *testing.T) {
	// At the cap and out of tokens: the token wait is reported, because a Release alone would
	// not let the request go.
	l := New(Options{Rate: 1, PerHost: 1})
	mustAcquire(t, l, "h", t0)
	mustRefuse(t, l, "h", at(200*time.Millisecond), 800*time.Millisecond)
	mustRefuse(t, l, "h", at(time.Second), 0) // token back, still at the cap
	l.Release("h")
	mustAcquire(t, l, "h", at(time.Second))
}

func TestReleaseExtraIsIgnored(t *testing.T) {
	l := New(Options{PerHost: 1})
	l.Release("unknown")
	mustAcquire(t, l, "h", t0)
	l.Release("h")
	l.Release("h") // a double Release must not lift the cap
	if got := l.InFlight("h"); got != 0 {
		t.Fatalf("InFlight = %d; want 0", got)
	}
	mustAcquire(t, l, "h", t0)
	mustRefuse(t, l, "h", t0, 0)
}

func TestCooldown(t *testing.T) {
	type call struct {
		clock time.Duration // internal clock when Cooldown is called
		until time.Duration
	}
	tests := []struct {
		name  string
		calls []call
		end   time.Duration // cooldown should end at t0+end (0 = no cooldown)
	}{
		{"retry-after", []call{{0, 30 * time.Second}}, 30 * time.Second},
		{"later call extends", []call{{0, 30 * time.Second}, {0, time.Minute}}, time.Minute},
		{"a day is not capped here", []call{{0, 24 * time.Hour}}, 24 * time.Hour},
		{"later call never shortens", []call{{0, time.Minute}, {5 * time.Second, 10 * time.Second}}, time.Minute},
		{"until in the past is a no-op", []call{{10 * time.Second, 5 * time.Second}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, clock := newTestLimiter(Options{})
			for _, c := range tt.calls {
				clock.Set(c.clock)
				l.Cooldown("h", at(c.until))
			}
			if tt.end == 0 {
				mustAcquire(t, l, "h", at(10*time.Second))
				return
			}
			mustRefuse(t, l, "h", at(tt.end/2), tt.end-tt.end/2) // wait = until - now
			mustRefuse(t, l, "h", at(tt.end-time.Nanosecond), time.Nanosecond)
			mustAcquire(t, l, "h", at(tt.end))
			mustAcquire(t, l, "other", t0) // other hosts are unaffected
		})
	}
}

func TestCooldownWithSlowRate(t *testing.T) {
	// A cooldown shorter than the time to the next token reports the token wait: coming back
	// when the cooldown ends would only be refused again.
	l, _ := newTestLimiter(Options{Rate: 0.1}) // one request per 10s
	mustAcquire(t, l, "h", t0)
	l.Cooldown("h", at(2*time.Second))
	mustRefuse(t, l, "h", at(time.Second), 9*time.Second)
}

func TestSetHostRate(t *testing.T) {
	t.Run("limits an unlimited host", func(t *testing.T) {
		l, _ := newTestLimiter(Options{})
		l.SetHostRate("h", 2)
		mustAcquire(t, l, "h", t0)
		mustRefuse(t, l, "h", t0, 500*time.Millisecond)
		mustAcquire(t, l, "h", at(500*time.Millisecond))
		mustAcquire(t, l, "other", t0) // others stay unlimited
		mustAcquire(t, l, "other", t0)
	})
	t.Run("crawl-delay slows a limited host", func(t *testing.T) {
		l, _ := newTestLimiter(Options{Rate: 10})
		l.SetHostRate("h", 1.0/5) // Crawl-delay: 5
		mustAcquire(t, l, "h", t0)
		mustRefuse(t, l, "h", at(time.Second), 4*time.Second)
		mustAcquire(t, l, "h", at(5*time.Second))
		mustAcquire(t, l, "other", t0)
		mustRefuse(t, l, "other", t0, 100*time.Millisecond)
	})
	t.Run("zero means unlimited", func(t *testing.T) {
		l, _ := newTestLimiter(Options{Rate: 1, PerHost: 100})
		mustAcquire(t, l, "h", t0)
		l.SetHostRate("h", 0)
		for range 10 {
			mustAcquire(t, l, "h", t0)
		}
	})
	t.Run("invalid means unlimited", func(t *testing.T) {
		l, _ := newTestLimiter(Options{Rate: 1, PerHost: 100})
		l.SetHostRate("h", -1)
		for range 10 {
			mustAcquire(t, l, "h", t0)
		}
	})
	t.Run("change keeps spent tokens", func(t *testing.T) {
		l, _ := newTestLimiter(Options{Rate: 1})
		mustAcquire(t, l, "h", t0)
		l.SetHostRate("h", 10) // must not hand out a fresh token
		mustRefuse(t, l, "h", t0, 100*time.Millisecond)
	})
}

// TestRefusalConsumesNoToken checks that a false TryAcquire, whatever its reason, leaves the
// bucket as it was.
func TestRefusalConsumesNoToken(t *testing.T) {
	t.Run("out of tokens", func(t *testing.T) {
		l := New(Options{Rate: 1})
		mustAcquire(t, l, "h", t0)
		l.Release("h")
		for i := range 1000 {
			d := time.Duration(i) * time.Millisecond
			mustRefuse(t, l, "h", at(d), time.Second-d)
		}
		mustAcquire(t, l, "h", at(time.Second))
	})
	t.Run("at the concurrency cap", func(t *testing.T) {
		l := New(Options{Rate: 1, Burst: 2, PerHost: 1})
		mustAcquire(t, l, "h", t0)
		for range 100 {
			mustRefuse(t, l, "h", t0, 0)
		}
		l.Release("h")
		mustAcquire(t, l, "h", t0) // the second token of the burst is still there
	})
	t.Run("cooling down", func(t *testing.T) {
		l, _ := newTestLimiter(Options{Rate: 1, Burst: 2})
		l.Cooldown("h", at(time.Second))
		for range 100 {
			mustRefuse(t, l, "h", t0, time.Second)
		}
		mustAcquire(t, l, "h", at(time.Second))
		mustAcquire(t, l, "h", at(time.Second)) // the whole burst is still there
	})
}

func TestForget(t *testing.T) {
	t.Run("drops an idle host", func(t *testing.T) {
		l, _ := newTestLimiter(Options{Rate: 1})
		mustAcquire(t, l, "h", t0)
		l.Release("h")
		l.Forget("h")
		if _, ok := l.hosts["h"]; !ok {
			t.Fatal("dropped with an empty bucket; the next request would skip the spacing")
		}
		mustRefuse(t, l, "h", at(500*time.Millisecond), 500*time.Millisecond)
		l.Forget("h")
		if n := len(l.hosts); n != 1 {
			t.Fatalf("%d hosts; want 1", n)
		}
	})
	t.Run("drops once refilled", func(t *testing.T) {
		l, clock := newTestLimiter(Options{Rate: 1})
		mustAcquire(t, l, "h", t0)
		l.Release("h")
		clock.Set(time.Second)
		l.Forget("h")
		if n := len(l.hosts) + len(l.pending); n != 0 {
			t.Fatalf("%d entries left; want 0", n)
		}
	})
	t.Run("keeps a host with requests in flight", func(t *testing.T) {
		l, _ := newTestLimiter(Options{PerHost: 1})
		mustAcquire(t, l, "h", t0)
		l.Forget("h")
		if got := l.InFlight("h"); got != 1 {
			t.Fatalf("InFlight = %d; want 1", got)
		}
		mustRefuse(t, l, "h", t0, 0)
		l.Release("h")
		l.Forget("h")
		if n := len(l.hosts) + len(l.pending); n != 0 {
			t.Fatalf("%d entries left; want 0", n)
		}
	})
	t.Run("keeps a cooldown", func(t *testing.T) {
		l, clock := newTestLimiter(Options{})
		l.Cooldown("h", at(time.Minute))
		l.Forget("h")
		mustRefuse(t, l, "h", at(time.Second), 59*time.Second)
		clock.Set(time.Minute)
		l.Forget("h")
		if n := len(l.hosts) + len(l.pending); n != 0 {
			t.Fatalf("%d entries left after the cooldown; want 0", n)
		}
	})
	t.Run("drops the rate override", func(t *testing.T) {
		l, _ := newTestLimiter(Options{PerHost: 100})
		l.SetHostRate("h", 1)
		l.Forget("h")
		for range 10 {
			mustAcquire(t, l, "h", t0)
		}
	})
	t.Run("unknown host", func(t *testing.T) {
		l, _ := newTestLimiter(Options{})
		l.Forget("nobody")
		if got := l.InFlight("nobody"); got != 0 {
			t.Fatalf("InFlight = %d; want 0", got)
		}
	})
	t.Run("deferred forgets are swept", func(t *testing.T) {
		// Memory must track active hosts only, even when every Forget had to be deferred.
		l, clock := newTestLimiter(Options{Rate: 1})
		const n = 1000
		for i := range n {
			h := fmt.Sprint("h", i)
			mustAcquire(t, l, h, t0)
			l.Release(h)
			l.Forget(h)
		}
		if len(l.pending) != n {
			t.Fatalf("%d pending; want %d", len(l.pending), n)
		}
		clock.Set(time.Second)
		l.Forget("unrelated") // a later call sweeps them
		if m := len(l.hosts) + len(l.pending); m != 0 {
			t.Fatalf("%d entries left; want 0", m)
		}
	})
	t.Run("TryAcquire sweeps too", func(t *testing.T) {
		l, _ := newTestLimiter(Options{Rate: 1})
		for i := range 10 {
			h := fmt.Sprint("h", i)
			mustAcquire(t, l, h, t0)
			l.Release(h)
			l.Forget(h)
		}
		mustAcquire(t, l, "other", at(2*time.Second))
		if m := len(l.hosts) + len(l.pending); m != 1 {
			t.Fatalf("%d entries left; want 1 (other)", m)
		}
	})
	t.Run("size-driven sweep", func(t *testing.T) {
		// Less than sweepEvery passes, so only the doubling rule can sweep: once the pending
		// set reaches 2×64, the first 100 hosts (refilled by then) are dropped.
		l, clock := newTestLimiter(Options{Rate: 10})
		defer100 := func(prefix string, now time.Time) {
			for i := range 100 {
				h := fmt.Sprint(prefix, i)
				mustAcquire(t, l, h, now)
				l.Release(h)
				l.Forget(h)
			}
		}
		defer100("old", t0)
		clock.Set(500 * time.Millisecond)
		defer100("new", at(500*time.Millisecond))
		for i := range 100 {
			if h := fmt.Sprint("old", i); l.hosts[h] != nil || l.pending[h] != nil {
				t.Fatalf("%s still remembered after it refilled", h)
			}
		}
		if n := len(l.hosts); n != 100 {
			t.Fatalf("%d hosts remembered; want the 100 new ones", n)
		}
	})
	t.Run("use cancels a deferred forget", func(t *testing.T) {
		l, clock := newTestLimiter(Options{Rate: 1, PerHost: 1})
		mustAcquire(t, l, "h", t0)
		l.Release("h")
		l.Forget("h") // deferred: bucket empty
		mustAcquire(t, l, "h", at(time.Second))
		clock.Set(time.Hour)
		for i := range 1000 {
			l.Forget(fmt.Sprint("x", i))
		}
		if got := l.InFlight("h"); got != 1 {
			t.Fatalf("InFlight = %d; want 1: an active host was swept", got)
		}
	})
}

// TestConcurrentUse hammers a few hosts from many goroutines (run with -race) and checks that the
// cap holds at every moment and that everything is released at the end.
func TestConcurrentUse(t *testing.T) {
	const (
		goroutines = 64
		iterations = 2000
		hosts      = 8
		perHost    = 3
	)
	l := New(Options{Rate: 1e6, Burst: 100, PerHost: perHost})
	var held [hosts]atomic.Int32
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range iterations {
				n := (g + i) % hosts
				host := fmt.Sprint("host", n)
				switch i % 50 {
				case 7:
					l.Cooldown(host, time.Now().Add(time.Microsecond))
				case 13:
					l.SetHostRate(host, float64(1e5+i))
				case 29:
					l.Forget(host)
				case 31:
					if got := l.InFlight(host); got > perHost {
						t.Errorf("InFlight(%s) = %d > %d", host, got, perHost)
					}
				}
				if ok, _ := l.TryAcquire(host, time.Now()); ok {
					if c := held[n].Add(1); c > perHost {
						t.Errorf("%s: %d held > cap %d", host, c, perHost)
					}
					held[n].Add(-1)
					l.Release(host)
				}
			}
		})
	}
	wg.Wait()
	for n := range hosts {
		if got := l.InFlight(fmt.Sprint("host", n)); got != 0 {
			t.Errorf("host%d: InFlight = %d after all releases; want 0", n, got)
		}
	}
}

// BenchmarkTryAcquireRelease measures the scheduler's hot path across 1,000 hosts.
func BenchmarkTryAcquireRelease(b *testing.B) {
	const nhosts = 1000
	hosts := make([]string, nhosts)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("host%04d.example.org", i)
	}
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"unlimited", Options{}},
		{"rate", Options{Rate: 1e4, Burst: 1}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := New(bc.opts)
			now := t0
			i := 0
			for b.Loop() {
				host := hosts[i%nhosts]
				if ok, _ := l.TryAcquire(host, now); ok {
					l.Release(host)
				}
				i++
				now = now.Add(time.Microsecond) // each host comes back every 1ms: one token per visit
			}
		})
	}
	b.Run("parallel", func(b *testing.B) {
		l := New(Options{Rate: 1e4, Burst: 1})
		var next atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			i := next.Add(1) * 7919
			for pb.Next() {
				host := hosts[i%nhosts]
				if ok, _ := l.TryAcquire(host, time.Now()); ok {
					l.Release(host)
				}
				i++
			}
		})
	})
}

// TestMargin: with a margin, no one-second window (closed at both ends) holds more than Rate
// requests, which exact 1/r spacing cannot promise.
func TestMargin(t *testing.T) {
	for _, margin := range []float64{0, 0.05} {
		l := New(Options{Rate: 10, PerHost: 1000, Margin: margin})
		var got []time.Time
		for now := t0; now.Before(t0.Add(5 * time.Second)); now = now.Add(time.Millisecond) {
			if ok, _ := l.TryAcquire("h", now); ok {
				got = append(got, now)
				l.Release("h")
			}
		}
		most := 0
		for i := range got {
			n := 0
			for j := i; j < len(got) && !got[j].After(got[i].Add(time.Second)); j++ {
				n++
			}
			most = max(most, n)
		}
		if margin > 0 && most > 10 {
			t.Errorf("margin %v: %d requests in a closed one-second window, want at most 10", margin, most)
		}
		if margin == 0 && most != 11 {
			t.Errorf("no margin: %d requests in a closed one-second window; the margin test is void unless exact spacing gives 11", most)
		}
	}
}
