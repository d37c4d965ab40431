package scheduler

import (
	"testing"

	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/ratelimit"
)

// TestMaxWaitNotForRate: a host whose URLs are due and only wait their turn under its rate
// (--rate, Crawl-delay) is not waiting for its work: even with MaxWait at "nothing not due now"
// the run fetches all of it, rather than ending (exit 4) after the first request.
func TestMaxWaitNotForRate(t *testing.T) {
	st := openStore(t)
	enqueueAll(t, st, urls(1, 4))
	f := newFakeFetcher(func(string, int) error { return nil })
	opts := fastOptions()
	opts.MaxWait = -1
	lim := ratelimit.New(ratelimit.Options{PerHost: opts.PerHost, Rate: 5})
	if err := run(t, st, f, lim, opts, nil); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for u, r := range states(t, st) {
		if r.State != queue.Done {
			t.Errorf("%s: %v, want done", u, r.State)
		}
	}
}
