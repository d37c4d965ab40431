package main

import (
	"testing"
	"time"

	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/ratelimit"
	"github.com/trawl-dev/trawl/scheduler"
)

// TestMeterRecentRate: the rate shown is the one of the last rateWindow, so a stall shows within
// seconds; the ETA comes from the files finished in that window, and there is none while nothing
// finishes (a run that has finished nothing yet does not claim "ETA 0s").
func TestMeterRecentRate(t *testing.T) {
	const mib = 1 << 20
	type step struct {
		after        time.Duration // since the start
		bytes, files int64         // totals at that time
	}
	for _, tc := range []struct {
		name     string
		total    int64
		steps    []step
		rate     int64
		etaKnown bool
		eta      time.Duration
	}{
		{"steady", 10, []step{{0, 0, 0}, {5 * time.Second, 5 * mib, 1}, {10 * time.Second, 10 * mib, 2}}, mib, true, 40 * time.Second},
		{"stalled after a fast start", 10, []step{{0, 0, 0}, {10 * time.Second, 100 * mib, 5}, {20 * time.Second, 100 * mib, 5}}, 0, false, 0},
		{"nothing finished yet", 2, []step{{0, 0, 0}, {4 * time.Second, 8 * mib, 0}}, 2 * mib, false, 0},
		{"all finished", 2, []step{{0, 0, 0}, {2 * time.Second, 2 * mib, 2}}, mib, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var st scheduler.Stats
			st.Total.Store(tc.total)
			t0 := time.Now()
			m := newMeter(&st, nil, nil, t0)
			var v view
			for _, s := range tc.steps {
				st.Bytes.Store(s.bytes)
				st.Done.Store(s.files)
				v = m.read(t0.Add(s.after))
			}
			if v.rate != tc.rate || v.etaKnown != tc.etaKnown || (tc.etaKnown && v.eta != tc.eta) {
				t.Errorf("rate %d, eta %v (known %v); want %d, %v (known %v)", v.rate, v.eta, v.etaKnown, tc.rate, tc.eta, tc.etaKnown)
			}
		})
	}
}

// TestMeterPercentHolds: between a file's end (its part of Partial gone) and its commit (Done
// counted) the percent shown does not step back; a bigger total may lower it.
func TestMeterPercentHolds(t *testing.T) {
	var st scheduler.Stats
	st.Total.Store(4)
	t0 := time.Now()
	m := newMeter(&st, nil, nil, t0)
	st.Partial.Store(500_000) // half of one file
	if v := m.read(t0.Add(time.Second)); v.percent != 12.5 {
		t.Fatalf("percent %v with half a file of 4, want 12.5", v.percent)
	}
	st.Partial.Store(0) // the file ended; its outcome waits for the commit
	if v := m.read(t0.Add(2 * time.Second)); v.percent != 12.5 {
		t.Errorf("percent %v between the file's end and its commit, want it held at 12.5", v.percent)
	}
	st.Done.Store(1)
	if v := m.read(t0.Add(3 * time.Second)); v.percent != 25 {
		t.Errorf("percent %v with 1 of 4 done, want 25", v.percent)
	}
	st.Total.Store(8) // the list's next batch
	if v := m.read(t0.Add(4 * time.Second)); v.percent != 12.5 {
		t.Errorf("percent %v with 1 of 8 done, want 12.5", v.percent)
	}
}

// TestRetryWatch: a retry waits from its outcome until the URL's next one.
func TestRetryWatch(t *testing.T) {
	now := time.Now()
	w := newRetryWatch()
	retry := func(u string, in time.Duration) scheduler.Outcome {
		return scheduler.Outcome{Kind: scheduler.KindRetry, Record: queue.Record{URL: u, NextAttempt: now.Add(in)}}
	}
	w.add(retry("https://a/1", 5*time.Second))
	w.add(retry("https://a/2", 2*time.Second))
	w.add(retry("https://a/3", -time.Second)) // due already: not waiting
	if n, next := w.waiting(now); n != 2 || next != 2*time.Second {
		t.Errorf("waiting %d, next in %v; want 2, 2s", n, next)
	}
	w.add(scheduler.Outcome{Kind: scheduler.KindNew, Record: queue.Record{URL: "https://a/2"}})
	w.add(scheduler.Outcome{Kind: scheduler.KindReleased, Record: queue.Record{URL: "https://a/1"}})
	if n, next := w.waiting(now); n != 1 || next != 5*time.Second {
		t.Errorf("after an outcome: waiting %d, next in %v; want 1, 5s", n, next)
	}
}

// TestLimiterWatch: the hosts cooling down are counted until their cooldown ends.
func TestLimiterWatch(t *testing.T) {
	now := time.Now()
	l := newLimiterWatch(ratelimit.New(ratelimit.Options{}))
	l.Cooldown("a", now.Add(10*time.Second))
	l.Cooldown("b", now.Add(time.Minute))
	l.Cooldown("a", now.Add(5*time.Second)) // a shorter one does not shorten it
	if n, longest := l.cooling(now); n != 2 || longest != time.Minute {
		t.Errorf("cooling %d, longest %v; want 2, 1m", n, longest)
	}
	if n, _ := l.cooling(now.Add(30 * time.Second)); n != 1 {
		t.Errorf("after a's cooldown: %d cooling, want 1", n)
	}
	l.Forget("b")
	if n, _ := l.cooling(now); n != 0 {
		t.Errorf("after Forget: %d cooling, want 0", n)
	}
}
