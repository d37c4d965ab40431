package main

import (
	"fmt"
	"strings"
	"time"
)

// runSummary is what a run did, told at its end.
type runSummary struct {
	counts   runCounts
	pending  int   // URLs left queued
	bad      int64 // bad input lines and arguments skipped
	received int64 // body bytes received
	elapsed  time.Duration
}

// sentence tells a person at a terminal what the run did: "Fetched 497 new files and 2 changed
// (1.0 GiB) in 5m12s at 3.3 MiB/s; 10 unchanged." Failures follow, grouped (failureGroups).
func (s runSummary) sentence() string {
	c := s.counts
	var fetched []string
	if c.New > 0 {
		fetched = append(fetched, plural(c.New, "new file"))
	}
	if c.Changed > 0 {
		fetched = append(fetched, fmt.Sprintf("%d changed", c.Changed))
	}
	var b strings.Builder
	took := shortDuration(s.elapsed)
	if len(fetched) > 0 {
		fmt.Fprintf(&b, "Fetched %s (%s) in %s at %s", strings.Join(fetched, " and "), humanBytes(c.Bytes), took, humanRate(s.received, s.elapsed))
	} else {
		fmt.Fprintf(&b, "Nothing new fetched in %s", took)
	}
	var also []string
	if c.Unchanged > 0 {
		also = append(also, fmt.Sprintf("%d unchanged", c.Unchanged))
	}
	if c.Failed > 0 {
		also = append(also, fmt.Sprintf("%d failed", c.Failed))
	}
	if s.bad > 0 {
		also = append(also, plural(s.bad, "bad input line")+" skipped")
	}
	if s.pending > 0 {
		also = append(also, plural(int64(s.pending), "URL")+" left queued for the next run")
	}
	if len(also) > 0 {
		b.WriteString("; " + strings.Join(also, ", "))
	}
	b.WriteString(".")
	return b.String()
}
