package jsqueue

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/trawl-dev/trawl/internal/natstest"
	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/queue/queuetest"
)

// runServer starts an embedded JetStream server for the test.
func runServer(t testing.TB) *server.Server { return natstest.Server(t) }

func connect(t testing.TB, s *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// testAckWait is the lease lifetime in tests: a crashed worker's leases come back after it.
const testAckWait = 500 * time.Millisecond

var jobs atomic.Int64

// TestConformance runs the queue backends' conformance suite on JetStream. A crash is a worker
// whose connection drops with its leases unsettled; the next worker gets them back once their
// AckWait has passed and the dead worker's pins have lapsed.
func TestConformance(t *testing.T) {
	s := runServer(t)
	open := func(t *testing.T, nc *nats.Conn, job string) *Queue {
		q, err := Open(context.Background(), nc, Options{Job: job, Partitions: 4, AckWait: testAckWait})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q
	}
	queuetest.Run(t, queuetest.Harness{
		Open: func(t *testing.T) queue.Backend {
			return open(t, connect(t, s), fmt.Sprintf("job%d", jobs.Add(1)))
		},
		Crash: func(t *testing.T, b queue.Backend) queue.Backend {
			old := b.(*Queue)
			old.nc.Close() // no Nak, no Ack: as a killed process leaves them
			q := open(t, connect(t, s), old.opts.Job)
			// Wait for the redelivery: every pending record buffered again.
			deadline := time.Now().Add(10 * time.Second)
			for {
				c, err := q.Counts()
				if err != nil {
					t.Fatal(err)
				}
				hq, err := q.PendingHosts()
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, h := range hq {
					n += h.Pending
				}
				if n >= c.Pending {
					return q
				}
				if time.Now().After(deadline) {
					t.Fatalf("after the crash %d of %d pending records came back in 10s", n, c.Pending)
				}
			}
		},
	})
}
