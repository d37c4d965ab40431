// Package ratelimit owns trawl's politeness: how often and how many requests at once each host
// gets, how long a host is left alone after it asked for a pause (Retry-After, 429, 503, robots
// Crawl-delay), and the global bandwidth cap.
//
// Per-host limits are non-blocking on purpose. The scheduler asks [Limiter.TryAcquire] and, when
// the answer is no, is told how long to wait; it serves other hosts meanwhile instead of parking a
// worker on one slow or throttled host. Time is passed in by the caller so the scheduler decides
// what "now" is and tests never sleep.
//
// How many requests at once a host gets may be fixed (the user's --per-host) or adapt to the host
// (Options.Adaptive, adaptive.go): each finished request reports, through [Limiter.Done], whether
// the host showed load and how long it took, and the cap grows and shrinks with that.
//
// Bandwidth is different: it is shared by every transfer and is paid while bytes are read, so
// [Bandwidth.WaitN] blocks, on the caller's context.
//
// The package imports no other trawl package.
package ratelimit
