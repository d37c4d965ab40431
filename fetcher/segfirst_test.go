package fetcher

import (
	"bytes"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestSegmentedFirstAnswerLetGo: once a split has taken the back of the first answer's range and
// the first answer has delivered the front, its request is ended, not left open with the rest of
// the body unread until the whole file is done. An open one holds a connection (and a server
// worker) the host's grants no longer count, on top of the connection the Fetch's slot now uses
// for another range. Here the range request's handler waits for the first answer's request to end
// before it sends anything; if the first is left open until the file is done, it waits in vain.
func TestSegmentedFirstAnswerLetGo(t *testing.T) {
	body := testserver.Content(7, segSize)
	modTime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	const etag = `"v1"`
	var (
		once      sync.Once
		firstGone = make(chan struct{})
		mu        sync.Mutex
		late      bool
	)
	srv := testserver.New(t, testserver.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", etag)
		w.Header().Set("Accept-Ranges", "bytes")
		if r.Header.Get("Range") == "" {
			w.Header().Set("Last-Modified", modTime.Format(http.TimeFormat))
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusOK)
			// The front half, which the split leaves this answer; then as much of the rest as
			// the client reads before it lets the request go.
			_, _ = w.Write(body[:segSize/2])
			http.NewResponseController(w).Flush()
			select {
			case <-r.Context().Done():
				once.Do(func() { close(firstGone) })
				return
			case <-time.After(20 * time.Second):
			}
			_, _ = w.Write(body[segSize/2:])
			return
		}
		select {
		case <-firstGone:
		case <-time.After(5 * time.Second):
			mu.Lock()
			late = true
			mu.Unlock()
		}
		http.ServeContent(w, r, "", modTime, bytes.NewReader(body))
	}))
	f := newSegFetcher(t, srv, forceSplit(2))
	root, dir := newRoot(t)
	c := &conns{t: t, limit: 1}
	resp, err := fetchReq(t, f, root, c.request(srv.URL("/big.iso"), "big.iso"))
	if err != nil {
		t.Fatal(err)
	}
	c.balanced()
	if !bytes.Equal(readFile(t, dir, "big.iso"), body) || resp.Bytes != segSize {
		t.Fatal("file differs from the server's")
	}
	if n := len(srv.RequestsFor("/big.iso")); n < 2 {
		t.Fatalf("%d requests: the file was not segmented", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if late {
		t.Fatal("the first answer's request stayed open after its range was written")
	}
}
