package jsqueue

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/trawl-dev/trawl/queue"
)

// TestPinLostDuringFill: a pin another worker took is found lost by the fill after, or by a
// keepPins that runs while a fill holds pullMu: the client forgets the pin on the engine's "pin
// ID mismatch", so the fill after pulls with none, which the engine neither serves nor refuses;
// the worker must not go on offering the hosts of a partition another worker is pinned to now.
func TestPinLostDuringFill(t *testing.T) {
	for _, during := range []bool{false, true} {
		name := "fill-after"
		if during {
			name = "keepPins-during-fill"
		}
		t.Run(name, func(t *testing.T) {
			s := runServer(t)
			q, err := Open(context.Background(), connect(t, s), Options{Job: "pinlost", Partitions: 1, AckWait: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			if _, err := q.Enqueue([]queue.NewURL{{URL: "https://a.test/1", Host: "a.test", Path: "a.test/1"}}); err != nil {
				t.Fatal(err)
			}
			if hq, err := q.PendingHosts(); err != nil || len(hq) != 1 {
				t.Fatalf("PendingHosts: %v, %v", hq, err)
			}
			takePin(t, q) // another worker takes the partition
			if during {
				q.pullMu.Lock() // a fill under way
				q.keepPins()
				q.pullMu.Unlock()
			}
			hq, err := q.PendingHosts()
			if err != nil {
				t.Fatal(err)
			}
			if len(hq) != 0 {
				t.Fatalf("after another worker took the pin, this worker still offers %v", hq)
			}
		})
	}
}

// TestHandedAtAfterPinLost: a partition whose pin another worker took, and then gave back,
// is handed over again: its hosts are said handed over from when it came back, not from when
// the deal first brought it.
func TestHandedAtAfterPinLost(t *testing.T) {
	s := runServer(t)
	q, err := Open(context.Background(), connect(t, s), Options{Job: "pinback", Partitions: 1, AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := q.Enqueue([]queue.NewURL{{URL: "https://a.test/1", Host: "a.test", Path: "a.test/1"}}); err != nil {
		t.Fatal(err)
	}
	hq, err := q.PendingHosts()
	if err != nil || len(hq) != 1 {
		t.Fatalf("PendingHosts: %v, %v", hq, err)
	}
	first := hq[0].HandedAt
	// The other worker serves b.test's host and gives the partition back.
	_ = takePin(t, q).Nak()
	served := time.Now()
	if _, err := q.PendingHosts(); err != nil { // pin lost here
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.stream.UnpinConsumer(ctx, "p0", group); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		hq, err = q.PendingHosts()
		if err != nil {
			t.Fatal(err)
		}
		if len(hq) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("partition not back in 10s")
		}
	}
	for _, h := range hq {
		if !h.HandedAt.After(served) {
			t.Errorf("%s: HandedAt %v (first %v), before the other worker last served the partition (%v)", h.Host, h.HandedAt, first, served)
		}
	}
}

// takePin has another worker take q's partition p0: q's pin is given up and a client of its own
// pulls, after b.test's URL is queued, which it gets and returns.
func takePin(t *testing.T, q *Queue) jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.stream.UnpinConsumer(ctx, "p0", group); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue([]queue.NewURL{{URL: "https://b.test/1", Host: "b.test", Path: "b.test/1"}}); err != nil {
		t.Fatal(err)
	}
	thief, err := q.stream.Consumer(ctx, "p0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := thief.Fetch(1, jetstream.FetchMaxWait(time.Second), jetstream.FetchPriorityGroup(group))
	if err != nil {
		t.Fatal(err)
	}
	var got []jetstream.Msg
	for m := range b.Messages() {
		got = append(got, m)
	}
	if len(got) != 1 {
		t.Fatalf("the other worker got %d messages (%v)", len(got), b.Error())
	}
	return got[0]
}
