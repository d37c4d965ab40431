package store

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rssFileKiB is the process's resident file-backed memory (RssFile in /proc/self/status).
func rssFileKiB(t *testing.T) int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "RssFile:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

// TestDropMapped: pages of the state file read once stop counting as the process's memory, and
// the store reads the same afterwards.
func TestDropMapped(t *testing.T) {
	s := mustOpen(t)
	for i := 0; i < 40_000; i += 10_000 {
		mustEnqueue(t, s.Store, urls("h", i, 10_000))
	}
	n := 0
	if err := s.ForEach(func(Record) error { n++; return nil }); err != nil || n != 40_000 {
		t.Fatalf("read %d records, %v", n, err)
	}
	before := rssFileKiB(t)
	s.dropMapped()
	after := rssFileKiB(t)
	if before-after < 2<<10 {
		t.Errorf("RssFile %d KiB before dropping the mapping, %d after: want at least 2 MiB less", before, after)
	}
	s.check()
	if c := mustCounts(t, s.Store); c.Pending != 40_000 {
		t.Fatalf("after dropping the mapping: %+v", c)
	}
}

// TestMaybeDrop: a big enqueue gives the mapping back at once; other transactions do at most once
// every dropEvery.
func TestMaybeDrop(t *testing.T) {
	s := mustOpen(t)
	s.dropped.Store(-int64(dropEvery)) // a drop is due
	d0 := s.drops.Load()
	mustEnqueue(t, s.Store, urls("h", 0, dropBatch-1))
	if s.drops.Load() != d0+1 {
		t.Fatal("no drop after the first transaction")
	}
	s.dropped.Store(int64(time.Since(s.opened) + time.Hour)) // as if the last drop were just now
	mustEnqueue(t, s.Store, urls("h", dropBatch, 10))
	if s.drops.Load() != d0+1 {
		t.Error("a small enqueue within dropEvery of the last drop dropped again")
	}
	mustEnqueue(t, s.Store, urls("h", 2*dropBatch, dropBatch))
	if s.drops.Load() != d0+2 {
		t.Errorf("a big enqueue dropped the mapping %d times, want once", s.drops.Load()-d0-1)
	}
	s.check()
}
