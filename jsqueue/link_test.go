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
