package integration_test

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// maxInWindow is the most timestamps in any half-open window [t, t+d). (A window holding the
// most can always start at a timestamp.)
func maxInWindow(ts []time.Time, d time.Duration) int {
	ts = slices.Clone(ts)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	best, j := 0, 0
	for i := range ts {
		for j < len(ts) && ts[j].Sub(ts[i]) < d {
			j++
		}
		best = max(best, j-i)
	}
	return best
}

// tightest describes the k consecutive timestamps of ts that span the least time: that span and
// the gaps between them, to tell a burst from arrival jitter at a window's edge.
func tightest(ts []time.Time, k int) string {
	ts = slices.Clone(ts)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	best := 0
	for i := 0; i+k <= len(ts); i++ {
		if ts[i+k-1].Sub(ts[i]) < ts[best+k-1].Sub(ts[best]) {
			best = i
		}
	}
	gaps := make([]string, 0, k-1)
	for i := best + 1; i < best+k; i++ {
		gaps = append(gaps, fmt.Sprintf("%.1f", float64(ts[i].Sub(ts[i-1]).Microseconds())/1000))
	}
	return fmt.Sprintf("requests %d-%d of %d span %s, gaps (ms) %s", best+1, best+k, len(ts),
		ts[best+k-1].Sub(ts[best]).Round(time.Microsecond), strings.Join(gaps, " "))
}
