package integration_test

import (
	"sync"
	"testing"
	"time"
)

// stallWatch records the stalls of this process: spells in which a goroutine that wants to run
// every stallTick does not (a garbage collection, two cores busy with other processes). A test
// server in this process stamps a request that arrived during a stall only once the stall is
// over, so such requests look closer together than they came.
type stallWatch struct {
	mu     sync.Mutex
	stalls []stall
}

type stall struct {
	end time.Time     // when the watch ran again
	d   time.Duration // how long it was kept from running
}

const (
	stallTick = 5 * time.Millisecond
	stallMin  = 15 * time.Millisecond // a longer gap between ticks is a stall
	// stallSlack is how far from a stall's end a request may be stamped and still have been
	// held by it: the goroutines let run again after a stall run in some order.
	stallSlack = 30 * time.Millisecond
)

// watchStalls watches this process until the test ends.
func watchStalls(t *testing.T) *stallWatch {
	w := &stallWatch{}
	stop, done := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(stallTick)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			now := time.Now()
			if gap := now.Sub(last); gap > stallMin {
				w.mu.Lock()
				w.stalls = append(w.stalls, stall{end: now, d: gap - stallTick})
				w.mu.Unlock()
			}
			last = now
		}
	}()
	return w
}

// lateness is how late a request stamped at may have been stamped: from the start of a stall that
// ended near it (a request that came as the stall began) to the stamp.
func (w *stallWatch) lateness(at time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var late time.Duration
	for _, s := range w.stalls {
		if d := at.Sub(s.end); d > -stallSlack && d < stallSlack {
			late = max(late, s.d+d)
		}
	}
	return late
}

// overRate finds, in ts (in order), limit+1 requests that certainly came within one second:
// their stamps span less than a second even with the first one's lateness added. It returns
// the first of them (-1: none), and how many windows of limit+1 requests only stamped within a
// second, which a stall of this process explains.
func (w *stallWatch) overRate(ts []time.Time, limit int) (first, excused int) {
	first = -1
	for i := 0; i+limit < len(ts); i++ {
		span := ts[i+limit].Sub(ts[i])
		if span >= time.Second {
			continue
		}
		if span+w.lateness(ts[i]) < time.Second {
			return i, excused
		}
		excused++
	}
	return first, excused
}

// TestOverRate: the rate check fails a window of requests stamped within a second unless a stall
// of the stamping process explains it.
func TestOverRate(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	// 4 requests sent 370 ms apart (3 in any second), the first stamped 150 ms late: 4 in a
	// second of the stamps.
	late := []time.Time{ms(150), ms(370), ms(740), ms(1110)}
	for _, tc := range []struct {
		name        string
		stalls      []stall
		ts          []time.Time
		wantFirst   int
		wantExcused int
	}{
		{"spaced", nil, []time.Time{ms(0), ms(370), ms(740), ms(1110)}, -1, 0},
		{"too close, no stall", nil, late, 0, 0},
		{"too close, a stall ended at the first stamp", []stall{{ms(150), 160 * time.Millisecond}}, late, -1, 1},
		{"a stall too short to explain it", []stall{{ms(150), 30 * time.Millisecond}}, late, 0, 0},
		{"a stall long before", []stall{{ms(-400), 500 * time.Millisecond}}, late, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &stallWatch{stalls: tc.stalls}
			first, excused := w.overRate(tc.ts, 3)
			if first != tc.wantFirst || excused != tc.wantExcused {
				t.Fatalf("overRate = %d, %d excused; want %d, %d", first, excused, tc.wantFirst, tc.wantExcused)
			}
		})
	}
}
