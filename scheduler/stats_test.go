package scheduler

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/ratelimit"
)

// TestFileShare: a transfer's part of Stats.Partial follows its bytes against the declared length
// (the part on disk counts from the start), is shared safely by the connections of a segmented
// download, never passes a whole file, and is taken back when the transfer ends.
func TestFileShare(t *testing.T) {
	var st Stats
	f := &fileShare{stats: &st}
	f.add(100) // before the length is known: nothing to count against
	if got := st.Partial.Load(); got != 0 {
		t.Fatalf("Partial %d before the length is known", got)
	}
	f.length(1000, 250)
	if got := st.Partial.Load(); got != 250_000 {
		t.Fatalf("Partial %d after a resume with a quarter on disk, want 250000", got)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				f.add(1)
			}
		}()
	}
	wg.Wait()
	if got := st.Partial.Load(); got != 450_000 {
		t.Fatalf("Partial %d after 200 more bytes from 4 goroutines, want 450000", got)
	}
	f.add(10_000)
	if got := st.Partial.Load(); got != 1_000_000 {
		t.Fatalf("Partial %d past the declared length, want one whole file", got)
	}
	other := &fileShare{stats: &st}
	other.length(10, 0)
	other.add(5)
	f.done()
	if got := st.Partial.Load(); got != 500_000 {
		t.Fatalf("Partial %d after the first transfer ended, want the other's half file", got)
	}
}

// TestStatsPendingHosts: Stats show the hosts the run last saw with pending work — here, at the
// end of a run that stops waiting for a host cooling down for an hour, that host alone (the
// other host's work is done), with the URLs it still has queued.
func TestStatsPendingHosts(t *testing.T) {
	st := openStore(t)
	enqueueAll(t, st, urls(2, 5))
	f := newFakeFetcher(func(u string, _ int) error {
		if hostOf(u) == "h0.test" {
			return &fetcher.Error{Class: fetcher.ClassHTTP, Status: 429, Retryable: true, RetryAfter: time.Hour}
		}
		return nil
	})
	opts := fastOptions()
	opts.MaxWait = 5 * time.Minute
	lim := ratelimit.New(ratelimit.Options{PerHost: opts.PerHost})
	s := New(st, f, lim, nil, opts)
	if got := s.Stats().PendingHosts(); got != nil {
		t.Fatalf("PendingHosts before the run: %v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var we *WaitingError
	if err := s.Run(ctx, nil); !errors.As(err, &we) {
		t.Fatalf("Run: %v, want a WaitingError", err)
	}
	got := s.Stats().PendingHosts()
	if len(got) != 1 || got[0].Host != "h0.test" || got[0].Pending < 1 || got[0].Pending > 5 {
		t.Fatalf("PendingHosts after the run: %+v, want h0.test alone with 1 to 5 URLs", got)
	}
}
