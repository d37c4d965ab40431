package jsqueue

import (
	"context"
	"fmt"
	"testing"

	"github.com/trawl-dev/trawl/queue"
)

// TestGetMulti: a batched read of records (one request for many keys) gives what reading each
// key alone gives: the record and its revision, nothing for an unknown or deleted key.
func TestGetMulti(t *testing.T) {
	s := runServer(t)
	q, err := Open(context.Background(), connect(t, s), Options{Job: "multi", Partitions: 2, AckWait: testAckWait})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var urls []queue.NewURL
	for i := range 30 {
		urls = append(urls, queue.NewURL{URL: fmt.Sprintf("https://m%d.test/%d", i%3, i), Host: fmt.Sprintf("m%d.test", i%3),
			Path: fmt.Sprintf("m/%d", i)})
	}
	if n, err := q.Enqueue(urls); err != nil || n != len(urls) {
		t.Fatalf("Enqueue: %d, %v", n, err)
	}
	// A record rewritten (a later revision), and one deleted.
	done := queue.Record{URL: urls[4].URL, Host: urls[4].Host, Path: urls[4].Path, State: queue.Done, Bytes: 7}
	if err := q.putRecord(done); err != nil {
		t.Fatal(err)
	}
	if err := q.records.Delete(context.Background(), key(urls[5].URL)); err != nil {
		t.Fatal(err)
	}
	ask := []string{"https://unknown.test/x"}
	for _, u := range urls {
		ask = append(ask, u.URL)
	}
	got := make([]read, len(ask))
	if !q.getMulti(ask, got) {
		t.Fatal("the engine did not answer a batched read")
	}
	for i, u := range ask {
		r, rev, ok, err := q.getRecordRev(u)
		if err != nil {
			t.Fatal(err)
		}
		g := got[i]
		if g.err != nil || g.ok != ok || g.rev != rev || g.r.URL != r.URL || g.r.State != r.State || g.r.Bytes != r.Bytes {
			t.Errorf("%s: batched read %+v; alone: %+v rev %d ok %v", u, g, r, rev, ok)
		}
	}
	none := make([]read, 2)
	if !q.getMulti([]string{"https://unknown.test/x", "https://unknown.test/y"}, none) || none[0].ok || none[1].ok {
		t.Errorf("a batched read of unknown keys: %+v", none)
	}
	if q.noMulti.Load() {
		t.Error("batched reads given up")
	}
	if got[0].ok || got[6].ok || !got[5].ok || got[5].r.State != queue.Done {
		t.Errorf("unknown %v, deleted %v, rewritten %+v", got[0].ok, got[6].ok, got[5])
	}
}

// TestEnqueueCreateRace: Enqueue creates a batch's records together, each expecting its key to be
// new. A URL another worker recorded after the batch's read keeps that worker's record and is not
// counted as added; one whose record was deleted is recorded and added, as KV Create has it.
func TestEnqueueCreateRace(t *testing.T) {
	s := runServer(t)
	q, err := Open(context.Background(), connect(t, s), Options{Job: "race", Partitions: 1, AckWait: testAckWait})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	u := func(i int) queue.NewURL {
		return queue.NewURL{URL: fmt.Sprintf("https://r.test/%d", i), Host: "r.test", Path: fmt.Sprintf("r.test/%d", i)}
	}
	if n, err := q.Enqueue([]queue.NewURL{u(0)}); err != nil || n != 1 {
		t.Fatalf("Enqueue: %d, %v", n, err)
	}
	if err := q.records.Delete(context.Background(), key(u(0).URL)); err != nil {
		t.Fatal(err)
	}
	other := queue.Record{URL: u(1).URL, Host: "r.test", Path: "theirs", State: queue.Pending}
	q.testBeforeCreate = func() {
		q.testBeforeCreate = nil
		b, err := encodeRecord(other)
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := q.records.Create(context.Background(), key(other.URL), b); err != nil {
			t.Error(err)
		}
	}
	n, err := q.Enqueue([]queue.NewURL{u(0), u(1), u(2)})
	if err != nil || n != 2 {
		t.Fatalf("Enqueue of a deleted, a raced and a new URL: %d added, %v; want 2", n, err)
	}
	for i, want := range []string{u(0).Path, "theirs", u(2).Path} {
		r, ok, err := q.Get(u(i).URL)
		if err != nil || !ok || r.Path != want || r.State != queue.Pending {
			t.Errorf("%s: %+v, %v, %v; want pending, path %q", u(i).URL, r, ok, err, want)
		}
	}
}
