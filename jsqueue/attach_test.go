package jsqueue

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/trawl-dev/trawl/queue"
)

// TestAttach: a job can be read and managed without joining it. Attach refuses a job the system
// does not have, and creates nothing; on a job it sees the records and counts, and the workers
// as their heartbeats describe them (host, pid, the partitions dealt to each); a failed URL it
// queues again reaches the worker serving the URL's host; a worker that closes leaves the list.
func TestAttach(t *testing.T) {
	s := runServer(t)
	nc := connect(t, s)
	ctx := context.Background()
	if _, err := Attach(ctx, nc, "nosuch"); !errors.Is(err, ErrNoJob) {
		t.Fatalf("Attach of an unknown job: %v, want ErrNoJob", err)
	}
	if _, err := Attach(ctx, nc, "nosuch"); !errors.Is(err, ErrNoJob) {
		t.Fatalf("Attach of an unknown job, twice: %v, want ErrNoJob (the first made it)", err)
	}

	// A job being made (its stream, not yet its consumers) is no job yet either.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TRAWL_half", Subjects: []string{"trawl.half.q.*"},
		Metadata: map[string]string{metaPartitions: "4"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := Attach(ctx, nc, "half"); !errors.Is(err, ErrNoJob) {
		t.Fatalf("Attach of a job being made: %v, want ErrNoJob", err)
	}

	const parts = 4
	a, err := Open(ctx, connect(t, s), Options{Job: "seen", Partitions: parts, AckWait: testAckWait})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, connect(t, s), Options{Job: "seen", Partitions: parts, AckWait: testAckWait})
	if err != nil {
		t.Fatal(err)
	}
	urls := fleetURLs(3, 2)
	if _, err := a.Enqueue(urls); err != nil {
		t.Fatal(err)
	}
	// One URL fails for good.
	var failed queue.Record
	for deadline := time.Now().Add(10 * time.Second); failed.URL == ""; {
		for _, q := range []*Queue{a, b} {
			got, err := q.LeaseEach([]string{urls[0].Host}, 1, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if len(got[0]) == 1 {
				failed = got[0][0]
				failed.State, failed.Status, failed.LastError = queue.Failed, 404, "gone"
				if err := q.Commit([]queue.Update{{Record: failed}}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no worker leased the URL in 10s")
		}
	}

	ob, err := Attach(ctx, connect(t, s), "seen")
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	if c, err := ob.Counts(); err != nil || c.Failed != 1 || c.Pending != len(urls)-1 {
		t.Fatalf("Counts: %+v, %v; want 1 failed, %d pending", c, err, len(urls)-1)
	}
	// Both workers pulled, so each knows its deal; each beats it.
	for deadline := time.Now().Add(10 * time.Second); ; {
		for _, q := range []*Queue{a, b} {
			if _, err := q.PendingHosts(); err != nil {
				t.Fatal(err)
			}
		}
		ws, err := ob.Workers()
		if err != nil {
			t.Fatal(err)
		}
		var dealt []int
		for _, w := range ws {
			dealt = append(dealt, w.Partitions...)
		}
		slices.Sort(dealt)
		if len(ws) == 2 && slices.Equal(dealt, []int{0, 1, 2, 3}) {
			host, _ := os.Hostname()
			for _, w := range ws {
				if w.Host != host || w.PID != os.Getpid() || w.Seen.IsZero() || w.Started.IsZero() || len(w.Partitions) != 2 {
					t.Errorf("worker %+v: want host %s, pid %d, 2 partitions, times", w, host, os.Getpid())
				}
			}
			if ids := []string{ws[0].ID, ws[1].ID}; !slices.Contains(ids, a.id) || !slices.Contains(ids, b.id) {
				t.Errorf("workers %v, want %s and %s", ids, a.id, b.id)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers %+v: want two, dealt the 4 partitions between them", ws)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if ws, err := ob.Workers(); err != nil || len(ws) != 1 || ws[0].ID != a.id {
		t.Fatalf("workers after one closed: %+v, %v; want a alone", ws, err)
	}

	// Queued again from outside, the failed URL reaches a worker (now a serves every partition).
	if n, err := ob.Requeue(func(r queue.Record) bool { return r.Status == 404 }); err != nil || n != 1 {
		t.Fatalf("Requeue: %d, %v", n, err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		got, err := a.LeaseEach([]string{failed.Host}, len(urls), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(got[0], func(r queue.Record) bool { return r.URL == failed.URL }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the URL queued again was not delivered in 10s")
		}
	}
}

// TestWorkerHeld: a worker's heartbeat counts the URLs it holds as `trawl status` says: leased
// (in flight) or waiting here for a retry, not those only buffered, not yet taken up.
func TestWorkerHeld(t *testing.T) {
	s := runServer(t)
	q, err := Open(context.Background(), connect(t, s), Options{Job: "held", Partitions: 1, AckWait: testAckWait})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	urls := fleetURLs(1, 5)
	if _, err := q.Enqueue(urls); err != nil {
		t.Fatal(err)
	}
	// The worker buffers every URL first.
	for deadline := time.Now().Add(10 * time.Second); ; {
		hq, err := q.PendingHosts()
		if err != nil {
			t.Fatal(err)
		}
		if len(hq) == 1 && hq[0].Pending == len(urls) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("buffered %+v in 10s, want all %d URLs", hq, len(urls))
		}
	}
	var got []queue.Record
	for deadline := time.Now().Add(10 * time.Second); len(got) < 2; {
		l, err := q.LeaseEach([]string{urls[0].Host}, 2-len(got), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, l[0]...)
		if time.Now().After(deadline) {
			t.Fatalf("leased %d of 2 in 10s", len(got))
		}
	}
	// One goes back to wait for a retry a minute away; the other stays leased.
	r := got[0]
	r.State, r.Attempts, r.NextAttempt, r.LastError = queue.Pending, 1, time.Now().Add(time.Minute), "503"
	if err := q.Commit([]queue.Update{{Record: r}}); err != nil {
		t.Fatal(err)
	}
	if err := q.heartbeat(); err != nil {
		t.Fatal(err)
	}
	ob, err := Attach(context.Background(), connect(t, s), "held")
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	ws, err := ob.Workers()
	if err != nil || len(ws) != 1 || ws[0].Held != 2 {
		t.Fatalf("workers %+v, %v; want one holding 2 (1 leased, 1 waiting for a retry)", ws, err)
	}
}
