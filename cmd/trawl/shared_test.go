package main

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/trawl-dev/trawl/internal/natstest"
	"github.com/trawl-dev/trawl/jsqueue"
	"github.com/trawl-dev/trawl/queue"
)

// TestPrepareRunJoined: a worker joining a shared job whose other worker is under way takes the
// run as begun when that worker started: it retries only the failures from before then, and
// --refresh revalidates only the files done before then, not what its fellow settled since (each
// joining worker would otherwise make a pass over the whole job).
func TestPrepareRunJoined(t *testing.T) {
	s := natstest.Server(t)
	open := func() *jsqueue.Queue {
		nc, err := nats.Connect(s.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		q, err := jsqueue.Open(context.Background(), nc, jsqueue.Options{Job: "joined"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q
	}
	a := open()
	began := a.Self().Started
	outcome := map[string]struct {
		state   queue.State
		updated time.Time
		want    queue.State // after the joining worker's prepareRun
	}{
		"/failed-before": {queue.Failed, began.Add(-time.Hour), queue.Pending},
		"/failed-since":  {queue.Failed, began.Add(time.Millisecond), queue.Failed},
		"/done-before":   {queue.Done, began.Add(-time.Hour), queue.Pending},
		"/done-since":    {queue.Done, began.Add(time.Millisecond), queue.Done},
	}
	var urls []queue.NewURL
	for p := range outcome {
		urls = append(urls, queue.NewURL{URL: "https://h.test" + p, Host: "h.test", Path: "h.test" + p})
	}
	if _, err := a.Enqueue(urls); err != nil {
		t.Fatal(err)
	}
	var updates []queue.Update
	for try := 0; len(updates) < len(outcome); try++ {
		if try == 1000 {
			t.Fatalf("leased %d of %d URLs", len(updates), len(outcome))
		}
		got, err := a.LeaseEach([]string{"h.test"}, 16, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range got[0] {
			o := outcome[r.URL[len("https://h.test"):]]
			r.State, r.Updated, r.Status = o.state, o.updated, 404
			updates = append(updates, queue.Update{Record: r})
		}
		if len(got[0]) == 0 {
			time.Sleep(time.Millisecond) // the engine delivers to a's buffer asynchronously
		}
	}
	if err := a.Commit(updates); err != nil {
		t.Fatal(err)
	}

	b := open()
	if err := prepareRun(b, &Config{Refresh: true}, time.Now().UTC(), false); err != nil {
		t.Fatal(err)
	}
	for p, o := range outcome {
		r, ok, err := b.Get("https://h.test" + p)
		if err != nil || !ok {
			t.Fatalf("%s: %v %v", p, ok, err)
		}
		if r.State != o.want {
			t.Errorf("%s: %v after the joining worker's start, want %v", p, r.State, o.want)
		}
	}
	if v, err := b.Meta(metaRunStart); err != nil || v != began.Format(time.RFC3339) {
		t.Errorf("the run's recorded start %q (%v), want a's start %s", v, err, began.Format(time.RFC3339))
	}
	if began2, joined, err := runBegan(b, time.Now()); err != nil || !joined || !began2.Equal(began) {
		t.Errorf("runBegan: %v %v %v, want a's start %v", began2, joined, err, began)
	}
	if _, joined, err := runBegan(a, began); err != nil || joined {
		t.Errorf("a, the first worker, joined=%v (%v): b started after it", joined, err)
	}
}
