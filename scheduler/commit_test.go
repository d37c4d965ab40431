package scheduler

import (
	"slices"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/queue"
)

// promptly bounds the wait for something that should happen at once, with room for a loaded
// -race run.
const promptly = 5 * time.Second

// batchQueue reports the size of each commit on sizes, after waiting for release (when set).
type batchQueue struct {
	Queue   // nil: only Commit is called
	sizes   chan int
	release chan struct{}
}

func (q *batchQueue) Commit(u []queue.Update) error {
	if q.release != nil {
		<-q.release
	}
	q.sizes <- len(u)
	return nil
}

func startCommitter(t *testing.T, q *batchQueue, max int, interval time.Duration) *committer {
	t.Helper()
	c := newCommitter(q, Options{CommitMax: max, CommitInterval: interval}, &Stats{})
	go c.run()
	return c
}

func addN(c *committer, n int) {
	for range n {
		c.add(KindNew, queue.Update{Record: queue.Record{URL: "https://h.test/", State: queue.Done}})
	}
}

// nextCommit waits for the next commit's size.
func nextCommit(t *testing.T, q *batchQueue) int {
	t.Helper()
	select {
	case n := <-q.sizes:
		return n
	case <-time.After(promptly):
		t.Fatal("no commit")
		return 0
	}
}

// TestCommitterBatches: outcomes wait for a full batch, the interval, an urge or the close, and
// are committed in batches of at most CommitMax.
func TestCommitterBatches(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		add      int
		urge     bool
		before   []int // commits expected before close
		after    []int // commits made by close
	}{
		{"full batches go at once", time.Hour, 25, false, []int{10, 10}, []int{5}},
		{"the interval ends a batch", 5 * time.Millisecond, 3, false, []int{3}, nil},
		{"an urge ends a batch", time.Hour, 3, true, []int{3}, nil},
		{"close commits what waits", time.Hour, 3, false, nil, []int{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &batchQueue{sizes: make(chan int, 100)}
			c := startCommitter(t, q, 10, tt.interval)
			addN(c, tt.add)
			if tt.urge {
				c.commitNow()
			}
			var got []int
			for range tt.before {
				got = append(got, nextCommit(t, q))
			}
			if !slices.Equal(got, tt.before) {
				t.Fatalf("commits before close %v, want %v", got, tt.before)
			}
			if err := c.close(); err != nil {
				t.Fatal(err)
			}
			close(q.sizes)
			got = nil
			for n := range q.sizes {
				got = append(got, n)
			}
			if !slices.Equal(got, tt.after) {
				t.Fatalf("commits at close %v, want %v", got, tt.after)
			}
			if n := c.committed.Load(); n != int64(tt.add) {
				t.Fatalf("committed %d, want %d", n, tt.add)
			}
		})
	}
}

// TestCommitterHoldsBackWhenBehind: while a commit is stuck, add takes maxPendingBatches batches'
// outcomes and then waits, instead of piling up outcomes a crash would lose; once the commit goes
// through, what waited is committed in full batches.
func TestCommitterHoldsBackWhenBehind(t *testing.T) {
	const max = 2
	q := &batchQueue{sizes: make(chan int, 100), release: make(chan struct{})}
	c := startCommitter(t, q, max, time.Hour)
	addN(c, max)                   // a full batch: its commit starts and is stuck
	addN(c, maxPendingBatches*max) // waiting, up to the bound
	added := make(chan struct{})
	go func() { addN(c, 1); close(added) }()
	select {
	case <-added:
		t.Fatal("add returned with the pending outcomes at the bound")
	case <-time.After(50 * time.Millisecond):
	}
	close(q.release)
	select {
	case <-added:
	case <-time.After(promptly):
		t.Fatal("add still waiting after the commit went through")
	}
	// The full batches that piled up go one after another; the odd outcome waits for its
	// interval, here the close.
	for i := range maxPendingBatches + 1 {
		if n := nextCommit(t, q); n != max {
			t.Fatalf("commit %d has %d outcomes, want %d", i, n, max)
		}
	}
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	if n := nextCommit(t, q); n != 1 {
		t.Fatalf("close committed %d outcomes, want 1", n)
	}
	if n := c.committed.Load(); n != (maxPendingBatches+1)*max+1 {
		t.Fatalf("committed %d, want %d", n, (maxPendingBatches+1)*max+1)
	}
}
