package jsqueue

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/trawl-dev/trawl/queue"
)

// relay forwards every connection to its listener to addr, copying client to server with up and
// server to client with down (each returns when its copy ends), and returns the listener's
// nats:// URL.
func relay(t *testing.T, addr string, up, down func(from, to net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			go up(c, s)
			go down(s, c)
		}
	}()
	return "nats://" + ln.Addr().String()
}

// copyAll copies from to to as they come.
func copyAll(from, to net.Conn) { _, _ = io.Copy(to, from) }

// slowLink forwards connections to addr, holding each chunk from the server back by delay: an
// engine a round trip of at least delay away.
func slowLink(t *testing.T, addr string, delay time.Duration) string {
	return relay(t, addr, copyAll, func(s, c net.Conn) {
		buf := make([]byte, 64<<10)
		for {
			n, err := s.Read(buf)
			if n > 0 {
				time.Sleep(delay)
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				c.Close()
				return
			}
		}
	})
}

// TestTimeoutPerCall: the engine's time limit bounds each call to it, not a whole batch. With
// every round trip at least 5 ms and the limit at 50 ms, an Enqueue of 1000 URLs takes longer than
// the limit (its reads alone, readsMax at a time, make 16 round trips one after another), and it,
// the pulls and a Commit of them must all succeed, without a call given up for want of an answer
// (the outage a worker rides out is cut short here): a batch's time grows with its size and the
// engine's distance, and a fleet's engine is often a network away.
func TestTimeoutPerCall(t *testing.T) {
	s := runServer(t)
	nc, err := nats.Connect(slowLink(t, s.Addr().String(), 5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	q, err := Open(context.Background(), nc, Options{Job: "far", Partitions: 1, AckWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	q.timeout, q.outage = 50*time.Millisecond, 2*time.Second
	var urls []queue.NewURL
	for i := range 1000 {
		urls = append(urls, queue.NewURL{URL: fmt.Sprintf("https://a.test/%d", i), Host: "a.test", Path: fmt.Sprintf("a.test/%d", i)})
	}
	began := time.Now()
	if n, err := q.Enqueue(urls); err != nil || n != len(urls) {
		t.Fatalf("Enqueue: %d, %v", n, err)
	}
	if took := time.Since(began); took < q.timeout {
		t.Fatalf("Enqueue of %d URLs took %v: too fast to show anything against a limit of %v", len(urls), took, q.timeout)
	}
	var recs []queue.Record
	for deadline := time.Now().Add(20 * time.Second); len(recs) < len(urls); {
		got, err := q.LeaseEach([]string{"a.test"}, leaseMax, time.Now())
		if err != nil {
			t.Fatalf("LeaseEach: %v", err)
		}
		recs = append(recs, got[0]...)
		if time.Now().After(deadline) {
			t.Fatalf("leased %d of %d URLs in 20s", len(recs), len(urls))
		}
	}
	var done []queue.Update
	for _, r := range recs {
		r.State, r.Bytes = queue.Done, 1
		done = append(done, queue.Update{Record: r})
	}
	if err := q.Commit(done); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}
