package jsqueue

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/trawl-dev/trawl/internal/natstest"
	"github.com/trawl-dev/trawl/queue"
)

// TestOutage: a worker rides out its NATS server going away and coming back on the same store
// and port. A commit made while the server is gone waits for it and succeeds once it is back,
// and the job is as the commit left it. A server that stays away longer than the worker waits
// fails the call, saying so.
func TestOutage(t *testing.T) {
	dir := t.TempDir()
	s, err := natstest.Start(dir, -1)
	if err != nil {
		t.Fatal(err)
	}
	port := s.Addr().(*net.TCPAddr).Port
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	status := nc.StatusChanged(nats.RECONNECTING)
	q, err := Open(context.Background(), nc, Options{Job: "outage", Partitions: 2, AckWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	urls := fleetURLs(2, 5)
	if _, err := q.Enqueue(urls); err != nil {
		t.Fatal(err)
	}
	var leased []queue.Record
	for deadline := time.Now().Add(10 * time.Second); len(leased) < len(urls); {
		got, err := q.LeaseEach([]string{urls[0].Host, urls[len(urls)-1].Host}, len(urls), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		leased = append(append(leased, got[0]...), got[1]...)
		if time.Now().After(deadline) {
			t.Fatalf("leased %d of %d in 10s", len(leased), len(urls))
		}
	}

	s.Shutdown()
	<-status // the worker knows it is gone
	committed := make(chan error, 1)
	go func() {
		var done []queue.Update
		for _, r := range leased {
			r.State, r.Bytes = queue.Done, 1
			done = append(done, queue.Update{Record: r})
		}
		committed <- q.Commit(done)
	}()
	if s, err = natstest.Start(dir, port); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	select {
	case err := <-committed:
		if err != nil {
			t.Fatalf("Commit across the restart: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Commit across the restart did not return in a minute")
	}
	if c, err := q.Counts(); err != nil || c.Done != len(urls) {
		t.Fatalf("after the restart: %+v, %v; want %d done", c, err, len(urls))
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		n, _, err := q.Outstanding()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still outstanding 10s after their commit", n)
		}
	}

	// Gone for longer than the worker waits.
	q.outage = 300 * time.Millisecond
	s.Shutdown()
	<-status
	began := time.Now()
	_, err = q.Meta("x")
	if err == nil || !strings.Contains(err.Error(), "has not answered for 300ms") {
		t.Fatalf("Meta with the server gone: %v, want it to say the server has not answered for 300ms", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("Meta with the server gone took %v, the worker waits 300ms", took)
	}
}

// TestRestartLongerThanLease: the NATS server restarts, away longer than the lease time, while
// each worker holds a lease of the host of its partition. The workers' heartbeats lapse meanwhile, and
// the restarted engine has forgotten every pin. After it is back, neither worker may serve the
// other's host while the other still holds its lease.
func TestRestartLongerThanLease(t *testing.T) {
	dir := t.TempDir()
	s, err := natstest.Start(dir, -1)
	if err != nil {
		t.Fatal(err)
	}
	port := s.Addr().(*net.TCPAddr).Port
	open := func() *Queue {
		nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		q, err := Open(context.Background(), nc, Options{Job: "restart", Partitions: 2, AckWait: testAckWait})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q
	}
	a, b := open(), open()
	if _, err := a.Enqueue(partitionHosts(a, 1, 10)); err != nil {
		t.Fatal(err)
	}
	// Each worker leases one URL of the host of its partition.
	leased := map[*Queue]string{}
	for deadline := time.Now().Add(10 * time.Second); len(leased) < 2; {
		for _, q := range []*Queue{a, b} {
			hq, err := q.PendingHosts()
			if err != nil {
				t.Fatal(err)
			}
			if len(hq) == 1 && leased[q] == "" {
				got, err := q.LeaseEach([]string{hq[0].Host}, 1, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if len(got[0]) == 1 {
					leased[q] = hq[0].Host
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("leased hosts %v in 10s, want one each", leased)
		}
	}
	s.Shutdown()
	s.WaitForShutdown()
	// The engine's clock: the server must stay away longer than the lease time (the TTL of the
	// workers' heartbeats, and of the leases), and nothing marks that but time.
	time.Sleep(3 * testAckWait)
	if s, err = natstest.Start(dir, port); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	// For several lease times (the engine's clock again: pins and leases lapse on it unannounced)
	// a must not offer b's host, as the restarted engine would let it.
	for until := time.Now().Add(4 * testAckWait); time.Now().Before(until); {
		for q, other := range map[*Queue]*Queue{a: b, b: a} {
			hq, err := q.PendingHosts()
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hq {
				if h.Host == leased[other] {
					t.Fatalf("after the restart a worker offers %s while the other still holds a lease of it", h.Host)
				}
			}
		}
	}
	// Each lease is still its worker's.
	for q, h := range leased {
		q.mu.Lock()
		var mine []string
		for _, it := range q.held {
			if it.leased {
				mine = append(mine, it.rec.URL)
			}
		}
		q.mu.Unlock()
		if len(mine) != 1 || !strings.Contains(mine[0], h) {
			t.Errorf("a worker holds leases %v after the restart, want one of %s", mine, h)
		}
	}
}
