package jsqueue

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/ratelimit"
	"github.com/trawl-dev/trawl/scheduler"
)

// TestCooldownShared: a host's cooldown (a Retry-After) given by one worker holds for the worker
// that serves the host next. Worker a leases a URL of the host, gives the host a cooldown, settles
// the URL and leaves; worker b, taking the host over, offers it as due only when the cooldown ends
// and leases none of its URLs before then.
func TestCooldownShared(t *testing.T) {
	s := runServer(t)
	open := func() *Queue {
		q, err := Open(context.Background(), connect(t, s), Options{Job: "cool", Partitions: 1, AckWait: testAckWait})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q
	}
	a := open()
	urls := fleetURLs(1, 4)
	host := urls[0].Host
	if _, err := a.Enqueue(urls); err != nil {
		t.Fatal(err)
	}
	var got [][]queue.Record
	for deadline := time.Now().Add(10 * time.Second); len(got) == 0 || len(got[0]) == 0; {
		var err error
		if got, err = a.LeaseEach([]string{host}, 1, time.Now()); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("a leased nothing in 10s")
		}
	}
	until := time.Now().Add(3 * time.Second)
	a.Cooldown(host, until)
	r := got[0][0]
	r.State, r.Bytes = queue.Done, 1
	if err := a.Commit([]queue.Update{{Record: r}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	b := open()
	for deadline := time.Now().Add(10 * time.Second); ; {
		hq, err := b.PendingHosts()
		if err != nil {
			t.Fatal(err)
		}
		if len(hq) == 1 {
			if hq[0].Next.Before(until) {
				t.Fatalf("b offers %s as due at %v, before the end of a's cooldown %v", host, hq[0].Next, until)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b was offered nothing in 10s")
		}
	}
	if got, err := b.LeaseEach([]string{host}, 4, time.Now()); err != nil || len(got[0]) != 0 {
		t.Fatalf("b leased %v (%v) during the cooldown", got, err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		got, err := b.LeaseEach([]string{host}, 4, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(got[0]) > 0 {
			if time.Now().Before(until) {
				t.Fatalf("b leased %s's URLs before the cooldown ended", host)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b leased nothing in 10s after the cooldown")
		}
	}
}

// TestFleetMaxWait: a worker whose job's only work left was handed back to the engine for an hour
// (a Retry-After) ends its run with a WaitingError at once, as on one machine, rather than waiting
// the hour for the URL to come back.
func TestFleetMaxWait(t *testing.T) {
	s := runServer(t)
	q, err := Open(context.Background(), connect(t, s), Options{Job: "wait", Partitions: 2, AckWait: testAckWait})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	urls := fleetURLs(2, 2)
	if _, err := q.Enqueue(urls); err != nil {
		t.Fatal(err)
	}
	busy := urls[0].URL
	f := fetchFunc(func(_ context.Context, req fetcher.Request) (fetcher.Response, error) {
		if req.URL == busy {
			return fetcher.Response{}, &fetcher.Error{URL: req.URL, Class: fetcher.ClassHTTP, Status: http.StatusTooManyRequests,
				Retryable: true, RetryAfter: time.Hour}
		}
		return fetcher.Response{Status: 200, Bytes: 1, SHA256: fmt.Sprintf("%064x", 1), Path: req.Path}, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	began := time.Now()
	err = scheduler.New(q, f, ratelimit.New(ratelimit.Options{PerHost: 2}), nil, scheduler.Options{Workers: 4, PerHost: 2,
		CommitInterval: time.Millisecond, MaxWait: time.Minute, Grace: 50 * time.Millisecond}).Run(ctx, nil)
	var waiting *scheduler.WaitingError
	if !errors.As(err, &waiting) {
		t.Fatalf("Run: %v after %v, want a WaitingError", err, time.Since(began))
	}
	if d := time.Until(waiting.Next); d < 50*time.Minute || d > time.Hour {
		t.Errorf("the work left is due in %v, want about an hour", d)
	}
	n, next, err := q.Outstanding()
	if err != nil || n != 1 || !next.Equal(waiting.Next) {
		t.Errorf("Outstanding: %d, %v, %v; want the one URL, due %v", n, next, err, waiting.Next)
	}
}

// TestRequeueBeforeRecord: a failed URL queued again (trawl retry, a new run's retry of the
// failures, --refresh) is published before its record is written pending. A worker that takes the
// message in between, or after the requeuer died in between, must take it as work, not drop it as
// a duplicate of the settled record: the URL would then be pending for ever, with no message.
func TestRequeueBeforeRecord(t *testing.T) {
	q, u, r := oneLeased(t, "requeue")
	r.State, r.Status, r.Attempts = queue.Failed, 500, 3
	if err := q.Commit([]queue.Update{{Record: r}}); err != nil {
		t.Fatal(err)
	}
	// The requeue's publish, and nothing more: its record still says failed.
	_, rev, _, err := q.getRecordRev(u.URL)
	if err != nil {
		t.Fatal(err)
	}
	r.State, r.Attempts = queue.Pending, 0
	if err := q.publish(r, rev); err != nil {
		t.Fatal(err)
	}
	// The worker leases it, with a fresh budget.
	leaseOne(t, q, u.Host, func(r queue.Record) bool { return r.Attempts == 0 })
}

// oneLeased opens job on a server of its own, with one partition, queues one URL and leases it.
func oneLeased(t *testing.T, job string) (*Queue, queue.NewURL, queue.Record) {
	t.Helper()
	s := runServer(t)
	q, err := Open(context.Background(), connect(t, s), Options{Job: job, Partitions: 1, AckWait: testAckWait})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	u := fleetURLs(1, 1)[0]
	if _, err := q.Enqueue([]queue.NewURL{u}); err != nil {
		t.Fatal(err)
	}
	return q, u, leaseOne(t, q, u.Host, func(queue.Record) bool { return true })
}

// leaseOne leases a URL of host that ok accepts, failing the test after 10s.
func leaseOne(t *testing.T, q *Queue, host string, ok func(queue.Record) bool) queue.Record {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		got, err := q.LeaseEach([]string{host}, 1, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(got[0]) == 1 && ok(got[0][0]) {
			return got[0][0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no URL of %s was leased in 10s", host)
		}
	}
}

// TestDuplicateWhileSettled: a URL queued twice (workers adding it at once) has two messages. A
// worker taking the second while it settles the first reads the record before the outcome is
// written, and finds the first no longer held once it is: the second is a duplicate all the same,
// acknowledged, not fetched again.
func TestDuplicateWhileSettled(t *testing.T) {
	q, u, r := oneLeased(t, "dup")
	// The second copy, as another worker's Enqueue would have published it.
	copy2 := r
	copy2.State = queue.Pending
	if err := q.publish(copy2, 0); err != nil {
		t.Fatal(err)
	}
	settled := make(chan error, 1)
	q.testAfterRead = func(url string) {
		if url != u.URL {
			return
		}
		q.testAfterRead = nil
		done := r
		done.State, done.Bytes = queue.Done, 1
		settled <- q.Commit([]queue.Update{{Record: done}})
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		hq, err := q.PendingHosts()
		if err != nil {
			t.Fatal(err)
		}
		if len(hq) != 0 {
			t.Fatalf("after the URL was settled its second message is offered: %+v", hq)
		}
		n, _, err := q.Outstanding()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 && len(settled) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages outstanding after 10s (settled: %d)", n, len(settled))
		}
	}
	if err := <-settled; err != nil {
		t.Fatal(err)
	}
}

// TestRequeueRecordChanged: a requeue (trawl retry) publishes a failed URL, then writes its record
// pending over the revision it read. If the record was written in between, the requeue reads it
// again: still failed (a sitemap's word changed it), it is queued all the same and counted; settled
// otherwise (another worker fetched it), it keeps its outcome and is not counted.
func TestRequeueRecordChanged(t *testing.T) {
	for _, tc := range []struct {
		name      string
		meanwhile func(q *Queue, r queue.Record) error
		want      queue.State
		wantN     int
	}{
		{"still failed", func(q *Queue, r queue.Record) error {
			_, err := q.Enqueue([]queue.NewURL{{URL: r.URL, Host: r.Host, Path: r.Path,
				Lastmod: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Listed: time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)}})
			return err
		}, queue.Pending, 1},
		{"settled", func(q *Queue, r queue.Record) error {
			r.State, r.Status, r.Bytes = queue.Done, 200, 1
			return q.putRecord(r)
		}, queue.Done, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, u, r := oneLeased(t, "requeue")
			r.State, r.Status, r.Attempts = queue.Failed, 500, 3
			if err := q.Commit([]queue.Update{{Record: r}}); err != nil {
				t.Fatal(err)
			}
			once := false
			q.testBeforeRequeue = func(string) {
				if !once {
					once = true
					if err := tc.meanwhile(q, r); err != nil {
						t.Error(err)
					}
				}
			}
			n, err := q.Requeue(nil)
			if err != nil || n != tc.wantN {
				t.Fatalf("Requeue: %d, %v; want %d", n, err, tc.wantN)
			}
			got, _, err := q.getRecord(u.URL)
			if err != nil || got.State != tc.want {
				t.Fatalf("after the requeue the record is %v (%v), want %v", got.State, err, tc.want)
			}
			if tc.want != queue.Pending {
				return
			}
			// Queued: a worker leases it, with a fresh budget.
			leaseOne(t, q, u.Host, func(r queue.Record) bool { return r.Attempts == 0 })
		})
	}
}

// stuckFill queues a second URL of u's host and has a fill take it in for three lease times (a
// round trip each on a loaded engine would make it as slow), calling during before it ends.
func stuckFill(t *testing.T, q *Queue, u queue.NewURL, during func()) {
	t.Helper()
	u2 := u
	u2.URL, u2.Path = u.URL+"-2", u.Path+"-2"
	if _, err := q.Enqueue([]queue.NewURL{u2}); err != nil {
		t.Fatal(err)
	}
	stuck, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	q.testAfterRead = func(url string) {
		if url == u2.URL {
			once.Do(func() { close(stuck); <-release })
		}
	}
	filled := make(chan error, 1)
	go func() { _, err := q.PendingHosts(); filled <- err }()
	<-stuck
	time.Sleep(3 * testAckWait) // a lease's, and a pin's, time to live
	during()
	close(release)
	if err := <-filled; err != nil {
		t.Fatal(err)
	}
}

// TestSlowFillKeepsLeases: a pull whose messages take long to take in (a round trip each on a
// loaded engine) does not hold up the keep-alives of the leases already out: a lease must not
// lapse, or the engine hands its URL to another worker (here, being the only worker, back to it).
func TestSlowFillKeepsLeases(t *testing.T) {
	q, u, r := oneLeased(t, "slowfill")
	stuckFill(t, q, u, func() {})
	// The pulls that would bring a lapsed lease back.
	for range 5 {
		if _, err := q.PendingHosts(); err != nil {
			t.Fatal(err)
		}
	}
	q.mu.Lock()
	it := q.held[r.URL]
	q.mu.Unlock()
	if it == nil {
		t.Fatal("the leased URL is no longer held")
	}
	if md, err := it.msg.Metadata(); err != nil || md.NumDelivered != 1 {
		t.Fatalf("the leased URL's message was delivered %d times (%v): its lease lapsed while a fill was under way", md.NumDelivered, err)
	}
}

// TestSlowFillKeepsPin: a worker whose fill takes its messages in slowly stays pinned to its
// partition meanwhile: the pin lapsing would hand its hosts to another worker while it still
// offers them, and what the fill took in back to the engine.
func TestSlowFillKeepsPin(t *testing.T) {
	q, u, _ := oneLeased(t, "slowfillpin")
	pin := func() string {
		info, err := q.consumers[0].Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range info.PriorityGroups {
			if g.Group == group {
				return g.PinnedClientID
			}
		}
		return ""
	}
	before := pin()
	var during string
	stuckFill(t, q, u, func() { during = pin() })
	if before == "" || during != before {
		t.Fatalf("pinned as %q before a fill stuck for three lease times, as %q after", before, during)
	}
}
