package ratelimit

import (
	"testing"
	"time"
)

// fill acquires as many requests for host as its cap allows at the clock's time, returning how
// many it got.
func fill(l *Limiter, c *fakeClock, host string) int {
	n := 0
	for {
		if ok, _ := l.TryAcquire(host, c.now); !ok {
			return n
		}
		n++
	}
}

// rounds drives host for n rounds: each round fills the cap, advances the clock by rtt, and ends
// every request with the signal sig gives for it. It returns the cap after each round.
func rounds(l *Limiter, c *fakeClock, host string, n int, rtt time.Duration, sig func(round, i int) Signal) []int {
	var caps []int
	for r := range n {
		k := fill(l, c, host)
		c.now = c.now.Add(rtt)
		for i := range k {
			l.Done(host, sig(r, i))
		}
		caps = append(caps, l.Cap(host))
	}
	return caps
}

func TestAdaptiveGrowsOnHealthyHost(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rtt     time.Duration
		ceiling int
	}{
		{"50ms round trips", 50 * time.Millisecond, 64},
		{"loopback", 200 * time.Microsecond, 64},
		{"ceiling below the start", 50 * time.Millisecond, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, c := newTestLimiter(Options{Adaptive: true, PerHost: tc.ceiling})
			ok := func(int, int) Signal { return Signal{Latency: tc.rtt} }
			caps := rounds(l, c, "h", 6, tc.rtt, ok)
			if got := caps[len(caps)-1]; got != tc.ceiling {
				t.Fatalf("caps by round %v: want the ceiling %d in 6 rounds", caps, tc.ceiling)
			}
			for i := 1; i < len(caps); i++ {
				if caps[i] < caps[i-1] {
					t.Fatalf("caps by round %v: shrank on a healthy host", caps)
				}
			}
		})
	}
}

func TestAdaptiveShrinksOn503(t *testing.T) {
	l, c := newTestLimiter(Options{Adaptive: true, PerHost: 64})
	const rtt = 50 * time.Millisecond
	rounds(l, c, "h", 4, rtt, func(int, int) Signal { return Signal{Latency: rtt} })
	high := l.Cap("h")
	// Every answer of a round is a 503: the round counts once, halving the cap.
	caps := rounds(l, c, "h", 3, rtt, func(int, int) Signal { return Signal{Overloaded: true} })
	if caps[0] != high/2 || caps[1] != high/4 || caps[2] != high/8 {
		t.Fatalf("cap %d, then by round of 503s %v: want halved once per round", high, caps)
	}
	for range 10 {
		rounds(l, c, "h", 1, rtt, func(int, int) Signal { return Signal{Overloaded: true} })
	}
	if got := l.Cap("h"); got != 1 {
		t.Fatalf("cap after many rounds of 503s: %d, want 1", got)
	}
	// Healthy again: it grows, but by about one per round now (past slow start).
	caps = rounds(l, c, "h", 5, rtt, func(int, int) Signal { return Signal{Latency: rtt} })
	if caps[4] <= 1 || caps[4] > 6 {
		t.Fatalf("caps by healthy round after the 503s %v: want a slow climb", caps)
	}
}

func TestAdaptiveRisingLatency(t *testing.T) {
	l, c := newTestLimiter(Options{Adaptive: true, PerHost: 64, Start: 16})
	const rtt = 50 * time.Millisecond
	rounds(l, c, "h", 1, rtt, func(int, int) Signal { return Signal{Latency: rtt} })
	before := l.Cap("h")
	// Latency at ten times the best: the host is queueing; the cap is trimmed, not grown.
	caps := rounds(l, c, "h", 8, 10*rtt, func(int, int) Signal { return Signal{Latency: 10 * rtt} })
	if caps[len(caps)-1] >= before {
		t.Fatalf("cap %d, then with rising latency %v: want it trimmed", before, caps)
	}
}

func TestAdaptiveNotGrownUnlessFull(t *testing.T) {
	l, c := newTestLimiter(Options{Adaptive: true, PerHost: 64})
	for range 100 {
		mustAcquire(t, l, "h", c.now)
		l.Done("h", Signal{Latency: time.Millisecond})
	}
	if got := l.Cap("h"); got != DefaultAdaptiveStart {
		t.Fatalf("cap %d after 100 requests one at a time, want the start %d: a cap the work does not fill is not grown", got, DefaultAdaptiveStart)
	}
}

func TestSetHostMax(t *testing.T) {
	l, c := newTestLimiter(Options{Adaptive: true, PerHost: 64})
	l.SetHostMax("h1", 6)
	rounds(l, c, "h1", 5, time.Millisecond, func(int, int) Signal { return Signal{Latency: time.Millisecond} })
	if got := l.Cap("h1"); got != 6 {
		t.Fatalf("cap %d, want the host's ceiling 6", got)
	}
	fixed, _ := newTestLimiter(Options{PerHost: 3})
	fixed.SetHostMax("h", 1)
	if got := fixed.Cap("h"); got != 3 {
		t.Fatalf("a fixed cap changed by SetHostMax: %d", got)
	}
}

func TestRaise(t *testing.T) {
	l, _ := newTestLimiter(Options{Adaptive: true, PerHost: 20, Start: 4})
	l.Raise("h", 16)
	if got := l.Cap("h"); got != 16 {
		t.Fatalf("cap %d after Raise(16), want 16", got)
	}
	l.Raise("h", 8)
	if got := l.Cap("h"); got != 16 {
		t.Fatalf("cap %d after Raise(8), want it left at 16", got)
	}
	l.Raise("h", 99)
	if got := l.Cap("h"); got != 20 {
		t.Fatalf("cap %d after Raise(99), want the ceiling 20", got)
	}
	fixed, _ := newTestLimiter(Options{PerHost: 3})
	fixed.Raise("h", 10)
	if got := fixed.Cap("h"); got != 3 {
		t.Fatalf("a fixed cap raised to %d", got)
	}
}

// TestRaiseAfterOverload: the scheduler raises a host at every answer over HTTP/2 (OnAnswer comes
// with each response's headers, a 503's too, before its Done); a cap the host's overload lowered
// must stay lowered, halving once per round of 503s as without the raises.
func TestRaiseAfterOverload(t *testing.T) {
	l, c := newTestLimiter(Options{Adaptive: true, PerHost: 64, Start: 8})
	l.Raise("h", 16) // the first answer
	caps := rounds(l, c, "h", 3, 50*time.Millisecond, func(int, int) Signal {
		l.Raise("h", 16)
		return Signal{Overloaded: true}
	})
	if caps[0] != 8 || caps[1] != 4 || caps[2] != 2 {
		t.Fatalf("cap 16, then by round of 503s over HTTP/2 %v: want 8, 4, 2", caps)
	}
}
