package jsqueue

import (
	"context"
	"fmt"
	"testing"

	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/queue/queuetest"
)

// BenchmarkQueueCycle is the JetStream backend's cost per URL through a run (queuetest.Bench):
// published, delivered, acknowledged and recorded, on an embedded server, one worker.
func BenchmarkQueueCycle(b *testing.B) {
	s := runServer(b)
	queuetest.Bench(b, func(b *testing.B) queue.Backend {
		q, err := Open(context.Background(), connect(b, s), Options{Job: fmt.Sprintf("bench%d", jobs.Add(1)), Partitions: 4})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { q.Close() })
		return q
	})
}

// BenchmarkEngineCalls is what one call to the engine costs a URL, made alone (a round trip
// each, as the backend made them before it batched) and as a batch makes it (reads by the
// thousand in one request, writes in flight together): ns/op is per key read or message written.
func BenchmarkEngineCalls(b *testing.B) {
	s := runServer(b)
	q, err := Open(context.Background(), connect(b, s), Options{Job: fmt.Sprintf("calls%d", jobs.Add(1)), Partitions: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { q.Close() })
	urls := make([]string, 1000)
	for i := range urls {
		urls[i] = fmt.Sprintf("https://c.test/f%07d", i)
		if err := q.putRecord(queue.Record{URL: urls[i], Host: "c.test", State: queue.Pending}); err != nil {
			b.Fatal(err)
		}
	}
	rec := func(i int) queue.Record {
		return queue.Record{URL: urls[i%len(urls)], Host: "c.test", Path: "c.test/f", State: queue.Done, Status: 200, Bytes: 1}
	}
	b.Run("read/alone", func(b *testing.B) {
		for i := range b.N {
			if _, _, _, err := q.getRecordRev(urls[i%len(urls)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("read/batched", func(b *testing.B) {
		for i := 0; i < b.N; i += len(urls) {
			for _, rd := range q.getRecords(urls[:min(len(urls), b.N-i)]) {
				if rd.err != nil || !rd.ok {
					b.Fatal(rd.err)
				}
			}
		}
	})
	b.Run("write/alone", func(b *testing.B) {
		for i := range b.N {
			if err := q.putRecord(rec(i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("write/batched", func(b *testing.B) {
		for i := 0; i < b.N; i += len(urls) {
			var ps []*pub
			for j := i; j < min(i+len(urls), b.N); j++ {
				p, err := q.putRecordPub(rec(j), 0, false)
				if err != nil {
					b.Fatal(err)
				}
				ps = append(ps, p)
			}
			q.publishAll(ps)
			for _, p := range ps {
				if p.err != nil {
					b.Fatal(p.err)
				}
			}
		}
	})
}
