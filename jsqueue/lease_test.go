package jsqueue

import (
	"context"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/queue"
)

// TestRedeliveredLeaseKept: when a lease outlives AckWait (its keep-alive came late: a stalled
// process) the engine redelivers the message to the worker that holds it. That is the same work,
// not a duplicate: acknowledging it would take it out of the stream while the worker still has it,
// so a release of the URL afterwards would hand back nothing, and the URL would never be fetched.
func TestRedeliveredLeaseKept(t *testing.T) {
	s := runServer(t)
	q, err := Open(context.Background(), connect(t, s), Options{Job: "lapse", Partitions: 1, AckWait: testAckWait})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	u := queue.NewURL{URL: "https://a.test/1", Host: "a.test", Path: "a.test/1"}
	if _, err := q.Enqueue([]queue.NewURL{u}); err != nil {
		t.Fatal(err)
	}
	got, err := q.LeaseEach([]string{"a.test"}, 1, time.Now())
	if err != nil || len(got[0]) != 1 {
		t.Fatalf("LeaseEach: %v, %v", got, err)
	}
	// No keep-alive from here on: the lease lapses, and a pull brings the message back.
	it := q.stallKeepAlive(u.URL)
	for deadline := time.Now().Add(10 * time.Second); !q.redelivered(it); {
		if _, err := q.PendingHosts(); err != nil {
			t.Fatal(err)
		}
		if err := q.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		if n, _, err := q.Outstanding(); err != nil || n != 1 {
			t.Fatalf("after the lease lapsed %d messages outstanding (%v), want the one still held", n, err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the lapsed lease was not redelivered in 10s")
		}
	}
	// Given back (a shutdown): a lease must find it again.
	r := got[0][0]
	r.State = queue.Pending
	if err := q.Commit([]queue.Update{{Record: r}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		got, err := q.LeaseEach([]string{"a.test"}, 1, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(got[0]) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the released URL was not offered again in 10s")
		}
	}
}

// stallKeepAlive keeps the message held for url from being kept alive, as in a stalled worker,
// and returns its item.
func (q *Queue) stallKeepAlive(url string) *item {
	q.mu.Lock()
	defer q.mu.Unlock()
	it := q.held[url]
	it.touched = time.Now().Add(time.Hour)
	return it
}

// redelivered reports whether it holds a later delivery of its message than the first.
func (q *Queue) redelivered(it *item) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	md, err := it.msg.Metadata()
	return err == nil && md.NumDelivered > 1
}

// TestPinLostNotAnError: a worker whose pin on a partition has lapsed (it pulled nothing for a
// while: a stalled dispatcher, a long commit) or was taken from it gets "pin ID mismatch" on its
// next pull. That is no failure of the job: the run goes on, and the next pull pins it again.
func TestPinLostNotAnError(t *testing.T) {
	s := runServer(t)
	q, err := Open(context.Background(), connect(t, s), Options{Job: "pin", Partitions: 1, AckWait: time.Minute})
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.stream.UnpinConsumer(ctx, "p0", group); err != nil {
		t.Fatal(err)
	}
	if hq, err := q.PendingHosts(); err != nil || len(hq) != 1 {
		t.Fatalf("PendingHosts after the pin was lost: %v, %v; want a.test still buffered", hq, err)
	}
	if _, err := q.Enqueue([]queue.NewURL{{URL: "https://b.test/1", Host: "b.test", Path: "b.test/1"}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		hq, err := q.PendingHosts()
		if err != nil {
			t.Fatal(err)
		}
		if len(hq) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PendingHosts %v: the partition's new URL not pulled in 10s after the pin was lost", hq)
		}
	}
}

// TestLeaseKeptAliveWithoutCalls: a lease stays alive while its worker calls nothing (a
// dispatcher held up behind a slow commit, a run's last long downloads, the time between two
// runs): after several AckWaits without a call, the engine has not redelivered it.
func TestLeaseKeptAliveWithoutCalls(t *testing.T) {
	s := runServer(t)
	const ackWait = time.Second
	q, err := Open(context.Background(), connect(t, s), Options{Job: "quiet", Partitions: 1, AckWait: ackWait})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	u := queue.NewURL{URL: "https://a.test/1", Host: "a.test", Path: "a.test/1"}
	if _, err := q.Enqueue([]queue.NewURL{u}); err != nil {
		t.Fatal(err)
	}
	if got, err := q.LeaseEach([]string{"a.test"}, 1, time.Now()); err != nil || len(got[0]) != 1 {
		t.Fatalf("LeaseEach: %v, %v", got, err)
	}
	q.mu.Lock()
	it := q.held[u.URL]
	q.mu.Unlock()
	// Waits for the engine's clock: a lease left alone lapses after ackWait.
	time.Sleep(5 * ackWait / 2)
	for range 5 {
		if _, err := q.PendingHosts(); err != nil {
			t.Fatal(err)
		}
	}
	if q.redelivered(it) {
		t.Fatalf("a lease held %v without calls was redelivered: AckWait is %v", 5*ackWait/2, ackWait)
	}
}

// TestMadeRecordNotOverwritten: a message whose URL had no record when it was taken (a crash came
// between the publish and the record's creation, or the enqueue has not created it yet) gets its
// record made, pending. If the record was written between the read and that write — by the
// enqueue, or by another worker that took a copy of the message, fetched the URL and settled it
// — it is kept: written over, a settled URL would be pending again, fetched a second time and
// counted new twice, or never done once its last message was acknowledged. (Seen in the fleet
// benchmark with 4 workers adding one list at once: files counted twice, jobs ending not done.)
func TestMadeRecordNotOverwritten(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state queue.State // of the record written between the read and the make
		work  bool        // the message is work to offer, not a duplicate to drop
	}{
		{"settled done", queue.Done, false},
		{"settled failed", queue.Failed, false},
		{"created pending", queue.Pending, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := runServer(t)
			q, err := Open(context.Background(), connect(t, s), Options{Job: "make", Partitions: 1, AckWait: testAckWait})
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			u := fleetURLs(1, 1)[0]
			// What a crash between the publish and the record's creation leaves: a message, no record.
			if err := q.publish(newRecord(u), 0); err != nil {
				t.Fatal(err)
			}
			wrote := make(chan error, 1)
			q.testBeforeMake = func(url string) {
				if url != u.URL {
					return
				}
				q.testBeforeMake = nil
				r := newRecord(u)
				r.State, r.Attempts = tc.state, 1
				if tc.state == queue.Done {
					r.Bytes = 1
				}
				wrote <- q.putRecord(r)
			}
			for deadline := time.Now().Add(10 * time.Second); ; {
				hq, err := q.PendingHosts()
				if err != nil {
					t.Fatal(err)
				}
				if len(hq) != 0 {
					if !tc.work {
						t.Fatalf("the URL, settled meanwhile by another worker, is offered again: %+v", hq)
					}
					break
				}
				n, _, err := q.Outstanding()
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 && len(wrote) == 1 {
					if tc.work {
						t.Fatal("the message was dropped, its record pending")
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d messages outstanding after 10s (record written: %d)", n, len(wrote))
				}
			}
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
			r, ok, err := q.getRecord(u.URL)
			if err != nil || !ok {
				t.Fatalf("record: %v, %v", ok, err)
			}
			if r.State != tc.state || r.Attempts != 1 {
				t.Fatalf("record %v after %d attempts, want %v after 1: the write of another worker was lost", r.State, r.Attempts, tc.state)
			}
		})
	}
}
