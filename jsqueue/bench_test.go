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
