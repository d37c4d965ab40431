package queuetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/queue"
)

// benchHosts is how many hosts Bench spreads its URLs over.
const benchHosts = 100

// Bench measures what the queue costs a URL on its way through a run: enqueued in batches of a
// thousand, leased 16 at a time per host, settled done in commits of up to 256, as the scheduler
// does it. ns/op is per URL, so it says how many URLs a second the backend could feed one worker
// if fetching cost nothing. open returns a fresh, empty job.
func Bench(b *testing.B, open func(b *testing.B) queue.Backend) {
	q := open(b)
	urls := make([]queue.NewURL, 0, 1000)
	b.ResetTimer()
	for i := 0; i < b.N; i += len(urls) {
		urls = urls[:0]
		for j := i; j < min(i+1000, b.N); j++ {
			host := fmt.Sprintf("h%03d.test", j%benchHosts)
			urls = append(urls, queue.NewURL{URL: fmt.Sprintf("https://%s/f%07d", host, j), Host: host,
				Path: fmt.Sprintf("%s/f%07d", host, j)})
		}
		if _, err := q.Enqueue(urls); err != nil {
			b.Fatal(err)
		}
	}
	settled := 0
	var batch []queue.Update
	commit := func() {
		if err := q.Commit(batch); err != nil {
			b.Fatal(err)
		}
		settled += len(batch)
		batch = batch[:0]
	}
	for idle := 0; settled+len(batch) < b.N; {
		hq, err := q.PendingHosts()
		if err != nil {
			b.Fatal(err)
		}
		hosts := make([]string, len(hq))
		for i, h := range hq {
			hosts[i] = h.Host
		}
		leased, err := q.LeaseEach(hosts, 16, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, recs := range leased {
			for _, r := range recs {
				r.State, r.Bytes, r.Status = queue.Done, 1, 200
				batch = append(batch, queue.Update{Record: r})
				if len(batch) == 256 {
					commit()
				}
				n++
			}
		}
		if n == 0 {
			if idle++; idle > 1000 {
				b.Fatalf("%d of %d URLs settled, then nothing more to lease", settled, b.N)
			}
			time.Sleep(time.Millisecond) // a backend that delivers asynchronously catches up
		}
	}
	if len(batch) > 0 {
		commit()
	}
	b.StopTimer()
	if c, err := q.Counts(); err != nil || c.Done != b.N {
		b.Fatalf("counts %+v, %v; want %d done", c, err, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "urls/s")
}
