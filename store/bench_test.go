package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/queue/queuetest"
)

// benchURLs returns n URLs of about 60 bytes, spread over 100 hosts, numbered from `from`.
func benchURLs(from, n int) []NewURL {
	out := make([]NewURL, n)
	for i := range out {
		id := from + i
		host := fmt.Sprintf("img%03d.example-cdn.org", id%100)
		out[i] = NewURL{URL: fmt.Sprintf("https://%s/gallery/2026/photo-%08d.jpg", host, id), Host: host,
			Path: fmt.Sprintf("%s/gallery/2026/photo-%08d.jpg", host, id)}
	}
	return out
}

func benchOpen(b *testing.B, noSync bool) *Store {
	b.Helper()
	s, err := Open(filepath.Join(b.TempDir(), "state.db"), &Options{NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func syncModes(b *testing.B, fn func(b *testing.B, noSync bool)) {
	b.Run("fsync", func(b *testing.B) { fn(b, false) })
	b.Run("nosync", func(b *testing.B) { fn(b, true) })
}

// BenchmarkEnqueue enqueues new URLs in batches of 1,000, one transaction each.
func BenchmarkEnqueue(b *testing.B) {
	syncModes(b, func(b *testing.B, noSync bool) {
		s := benchOpen(b, noSync)
		batch := 1000
		if v, err := strconv.Atoi(os.Getenv("TRAWL_BENCH_BATCH")); err == nil {
			batch = v
		}
		next := 0
		for b.Loop() {
			b.StopTimer()
			u := benchURLs(next, batch)
			next += batch
			b.StartTimer()
			if _, err := s.Enqueue(u); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(next)/b.Elapsed().Seconds(), "urls/s")
	})
}

// BenchmarkLeaseCommit leases 256 jobs of one host and commits them Done, one transaction each,
// as the scheduler does with a full batch.
func BenchmarkLeaseCommit(b *testing.B) {
	syncModes(b, func(b *testing.B, noSync bool) {
		s := benchOpen(b, true)
		const batch = 256
		next := 0
		refill := func() {
			for i := 0; i < 20; i++ {
				if _, err := s.Enqueue(benchURLs(next, 1000)); err != nil {
					b.Fatal(err)
				}
				next += 1000
			}
		}
		refill()
		s.db.NoSync = noSync // fill fast, measure with the mode under test
		hosts, host := 0, 0
		jobs := 0
		updates := make([]Update, 0, batch)
		var elapsed time.Duration
		for b.Loop() {
			t := time.Now()
			recs, err := s.Lease(fmt.Sprintf("img%03d.example-cdn.org", host), batch, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			updates = updates[:0]
			for _, r := range recs {
				r.State, r.Status, r.Bytes, r.Attempts = Done, 200, 50_000, 1
				r.SHA256, r.Updated = "4f8b42c22dd3729b519ba6f68d2da7cc5b2d606d05daed5ad5128cc03e6c6358", time.Now()
				updates = append(updates, Update{Record: r})
			}
			if err := s.Commit(updates); err != nil {
				b.Fatal(err)
			}
			elapsed += time.Since(t)
			jobs += len(recs)
			if len(recs) < batch {
				host = (host + 1) % 100
				if hosts++; hosts%100 == 0 {
					b.StopTimer()
					s.db.NoSync = true
					refill()
					s.db.NoSync = noSync
					b.StartTimer()
				}
			}
		}
		b.ReportMetric(float64(jobs)/elapsed.Seconds(), "jobs/s")
	})
}

// BenchmarkFileSize reports the state file's size per URL after enqueueing 100,000 URLs in
// batches of 1,000 (all pending, paths reserved), and after leasing and committing them all Done.
func BenchmarkFileSize(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		dir := b.TempDir()
		path := filepath.Join(dir, "state.db")
		s, err := Open(path, &Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < n; i += 1000 {
			if _, err := s.Enqueue(benchURLs(i, 1000)); err != nil {
				b.Fatal(err)
			}
		}
		var used int64 // bbolt's high-water mark; the file is grown ahead of it in chunks
		s.view(func(tx *bolt.Tx) error { used = tx.Size(); return nil })
		s.Close()
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(fi.Size())/n, "bytes/url")
		b.ReportMetric(float64(used)/n, "used-bytes/url")

		s, err = Open(path, &Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		for h := 0; h < 100; h++ {
			for {
				recs, err := s.Lease(fmt.Sprintf("img%03d.example-cdn.org", h), 256, time.Now())
				if err != nil {
					b.Fatal(err)
				}
				if len(recs) == 0 {
					break
				}
				ups := make([]Update, len(recs))
				for i, r := range recs {
					r.State, r.Status, r.Bytes, r.Attempts = Done, 200, 50_000, 1
					r.SHA256, r.Updated = "4f8b42c22dd3729b519ba6f68d2da7cc5b2d606d05daed5ad5128cc03e6c6358", time.Now()
					r.ContentType, r.ETag = "image/jpeg", `"5f1e-6a2b3c4d"`
					ups[i] = Update{Record: r}
				}
				if err := s.Commit(ups); err != nil {
					b.Fatal(err)
				}
			}
		}
		s.Close()
		if fi, err = os.Stat(path); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(fi.Size())/n, "bytes/url-done")
	}
}

// BenchmarkEnqueueScale enqueues a list the way `trawl get -i` does at scale: $TRAWL_BENCH_SCALE
// URLs (default 200,000) round-robin over 1,000 hosts, in the scheduler's batches of 10,000, with
// fsync. It reports URLs/s over the whole list, and the state file's bytes per URL.
func BenchmarkEnqueueScale(b *testing.B) {
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("TRAWL_BENCH_SCALE")); err == nil && v > 0 {
		n = v
	}
	const hosts = 1000
	batch := 10_000
	if v, err := strconv.Atoi(os.Getenv("TRAWL_BENCH_BATCH")); err == nil && v > 0 {
		batch = v
	}
	urls := make([]NewURL, n)
	for i := range urls {
		host := fmt.Sprintf("host%04d.example.org", i%hosts)
		urls[i] = NewURL{URL: fmt.Sprintf("https://%s/gallery/2026/photo-%08d.jpg", host, i), Host: host,
			Path: fmt.Sprintf("%s/gallery/2026/photo-%08d.jpg", host, i)}
	}
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "state.db")
		s, err := Open(path, nil)
		if err != nil {
			b.Fatal(err)
		}
		t := time.Now()
		for i := 0; i < n; i += batch {
			if _, err := s.Enqueue(urls[i:min(i+batch, n)]); err != nil {
				b.Fatal(err)
			}
		}
		elapsed := time.Since(t)
		s.Close()
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n)/elapsed.Seconds(), "urls/s")
		b.ReportMetric(float64(fi.Size())/float64(n), "bytes/url")
	}
}

// BenchmarkQueueCycle is the queue's cost per URL through a run (queuetest.Bench), beside
// jsqueue's: go test -run '^$' -bench QueueCycle ./store/ ./jsqueue/
func BenchmarkQueueCycle(b *testing.B) {
	queuetest.Bench(b, func(b *testing.B) queue.Backend {
		s, err := Open(b.TempDir()+"/state.db", nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	})
}
