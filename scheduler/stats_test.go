package scheduler

import (
	"sync"
	"testing"
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
