package jsqueue

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestOpenTogether: workers started together open the same job at once. Each must join the job
// as it is, not update its stream and consumers under the others: the engine's own code races
// when a stream is updated while a consumer is added (the race detector catches it in nats-server),
// and a job's settings are the job's, whoever comes first.
func TestOpenTogether(t *testing.T) {
	s := runServer(t)
	for round := range 5 {
		job := fmt.Sprintf("together%d", round)
		var wg sync.WaitGroup
		errs := make(chan error, 6)
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				q, err := Open(context.Background(), connect(t, s), Options{Job: job, Partitions: 4, AckWait: testAckWait})
				if err != nil {
					errs <- err
					return
				}
				q.Close()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
}

// TestOpenKeepsJobSettings: a worker joining a job with other options takes the job's: its
// partitions (a host's URLs must go to the partition every worker pulls) and its lease time (a
// worker beating less often than the job's lease would be taken for dead while alive).
func TestOpenKeepsJobSettings(t *testing.T) {
	s := runServer(t)
	a, err := Open(context.Background(), connect(t, s), Options{Job: "set", Partitions: 3, AckWait: testAckWait})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(context.Background(), connect(t, s), Options{Job: "set", Partitions: 16, AckWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.opts.Partitions != 3 || len(b.consumers) != 3 || b.opts.AckWait != testAckWait {
		t.Fatalf("the second worker has %d partitions (%d consumers) and a lease of %v; want the job's 3 and %v",
			b.opts.Partitions, len(b.consumers), b.opts.AckWait, testAckWait)
	}
	// What either worker queues, the other is dealt.
	if _, err := b.Enqueue(fleetURLs(6, 1)); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for deadline := time.Now().Add(10 * time.Second); len(seen) < 6; {
		for _, q := range []*Queue{a, b} {
			hq, err := q.PendingHosts()
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hq {
				seen[h.Host] = true
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("in 10s the workers were offered %d of the 6 hosts queued", len(seen))
		}
	}
}

// dropFirst forwards connections to addr, but drops the first request whose subject begins with
// prefix: an engine that, loaded or starting, does not answer a worker's first call.
func dropFirst(t *testing.T, addr, prefix string) string {
	t.Helper()
	var dropped atomic.Bool
	return relay(t, addr, func(c, s net.Conn) {
		defer s.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			op := strings.Fields(line)
			var payload []byte
			if len(op) >= 3 && (op[0] == "PUB" || op[0] == "HPUB") {
				n, _ := strconv.Atoi(op[len(op)-1])
				payload = make([]byte, n+2) // and its CRLF
				if _, err := io.ReadFull(r, payload); err != nil {
					return
				}
				if strings.HasPrefix(op[1], prefix) && dropped.CompareAndSwap(false, true) {
					continue
				}
			}
			if _, err := s.Write(append([]byte(line), payload...)); err != nil {
				return
			}
		}
	}, copyAll)
}

// TestOpenSlowEngine: a worker whose first call to the engine goes unanswered (a server slow to
// start, or loaded) makes it again, rather than failing to join; so does a client of Attach.
func TestOpenSlowEngine(t *testing.T) {
	s := runServer(t)
	old := joinTimeout
	joinTimeout = 200 * time.Millisecond
	t.Cleanup(func() { joinTimeout = old })
	nc, err := nats.Connect(dropFirst(t, s.Addr().String(), "$JS.API.STREAM.INFO."))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	q, err := Open(context.Background(), nc, Options{Job: "slow", Partitions: 2, AckWait: testAckWait})
	if err != nil {
		t.Fatalf("Open with its first call unanswered: %v", err)
	}
	defer q.Close()
	nc2, err := nats.Connect(dropFirst(t, s.Addr().String(), "$JS.API.STREAM.INFO."))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc2.Close)
	ob, err := Attach(context.Background(), nc2, "slow")
	if err != nil {
		t.Fatalf("Attach with its first call unanswered: %v", err)
	}
	ob.Close()
}
