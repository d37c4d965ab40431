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
