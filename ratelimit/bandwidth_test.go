package ratelimit

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestNewBandwidthUnlimited(t *testing.T) {
	for _, bps := range []int64{0, -1, -1 << 40} {
		b := NewBandwidth(bps)
		if b != nil {
			t.Fatalf("NewBandwidth(%d) = %v; want nil (unlimited)", bps, b)
		}
		if err := b.WaitN(context.Background(), 1<<30); err != nil {
			t.Fatalf("nil WaitN = %v; want nil", err)
		}
		if got := b.Burst(); got != 0 {
			t.Fatalf("nil Burst = %d; want 0", got)
		}
	}
}

func TestBandwidthBurst(t *testing.T) {
	tests := []struct {
		bps  int64
		want int
	}{
		{1, 1},                     // at most one second of traffic
		{10 << 10, 10 << 10},       // slow cap: one second, below the 64 KiB floor
		{100 << 10, 64 << 10},      // the floor
		{10 << 20, 1 << 20},        // a tenth of a second
		{1 << 40, (1 << 31) - 1},   // clamped to fit an int anywhere
		{1<<63 - 1, (1 << 31) - 1}, // no overflow at the extreme
		{640 << 10, 64 << 10},      // the crossover
		{(640 << 10) + 10, 65537},  // just above it
		{minBandwidthBurst - 1, minBandwidthBurst - 1},
	}
	for _, tt := range tests {
		if got := NewBandwidth(tt.bps).Burst(); got != tt.want {
			t.Errorf("NewBandwidth(%d).Burst() = %d; want %d", tt.bps, got, tt.want)
		}
	}
}

func TestBandwidthWaitN(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := NewBandwidth(100 << 20) // burst 10 MiB
	tests := []struct {
		name string
		n    int
	}{
		{"zero", 0},
		{"negative", -5},
		{"one byte", 1},
		{"exactly the burst", b.Burst()},
		// rate.Limiter.WaitN alone refuses n > burst; chunking makes it succeed (~250ms here).
		{"2.5 bursts", 5 * b.Burst() / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := b.WaitN(ctx, tt.n); err != nil {
				t.Fatalf("WaitN(%d) = %v; want nil", tt.n, err)
			}
		})
	}
}

func TestBandwidthCancel(t *testing.T) {
	b := NewBandwidth(1024) // burst 1 KiB: 1 MiB would take 17 minutes
	if err := b.WaitN(context.Background(), b.Burst()); err != nil {
		t.Fatal(err) // drains the bucket so the next wait must block
	}

	t.Run("cancel during wait", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.WaitN(ctx, 1<<20) }()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("WaitN = %v; want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("WaitN did not return after cancel")
		}
	})
	t.Run("deadline too short", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		start := time.Now()
		if err := b.WaitN(ctx, 1<<30); err == nil {
			t.Fatal("WaitN = nil; want an error: the deadline cannot be met")
		}
		// rate.Limiter refuses at once when the wait would pass the deadline.
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("WaitN took %v; want prompt refusal", d)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := b.WaitN(ctx, 1); !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitN = %v; want context.Canceled", err)
		}
	})
}
