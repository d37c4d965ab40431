package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestTuneRuntime: the collector's goals are trawl's unless $GOGC and $GOMEMLIMIT set them.
func TestTuneRuntime(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	for _, tc := range []struct {
		gogc, memlimit string
		wantGC         int
		wantLimit      int64
	}{
		{"", "", gcPercent, softMemoryLimit},
		{"50", "", 100, softMemoryLimit}, // left as the runtime read it ($GOGC)
		{"", "1GiB", gcPercent, math.MaxInt64},
	} {
		t.Setenv("GOGC", tc.gogc)
		t.Setenv("GOMEMLIMIT", tc.memlimit)
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
		tuneRuntime()
		if gc := debug.SetGCPercent(100); gc != tc.wantGC {
			t.Errorf("GOGC=%q: GC percent %d, want %d", tc.gogc, gc, tc.wantGC)
		}
		if limit := debug.SetMemoryLimit(-1); limit != tc.wantLimit {
			t.Errorf("GOMEMLIMIT=%q: memory limit %d, want %d", tc.memlimit, limit, tc.wantLimit)
		}
	}
}
