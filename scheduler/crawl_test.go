package scheduler

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/extract"
	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/ratelimit"
	"github.com/trawl-dev/trawl/store"
)

// linkCount counts the links each commit passes to the store, by URL and kind.
type linkCount struct {
	*store.Store
	mu         sync.Mutex
	pages, req map[string]int
}

func (q *linkCount) Commit(updates []store.Update) error {
	q.mu.Lock()
	for _, u := range updates {
		for _, l := range u.Links {
			if l.Requisite {
				q.req[l.URL]++
			} else {
				q.pages[l.URL]++
			}
		}
	}
	q.mu.Unlock()
	return q.Store.Commit(updates)
}

// siteFetcher serves pages from a map by URL, writing each into the run's root like the real
// fetcher, and giving the body in memory when asked, unless the page is in big (as the real
// fetcher does for a page too big for its buffer); a URL not in the map is an image.
type siteFetcher struct {
	pages map[string]string
	big   map[string]bool
	mu    sync.Mutex
	calls map[string]int
}

func (f *siteFetcher) Fetch(_ context.Context, root *os.Root, req fetcher.Request) (fetcher.Response, error) {
	f.mu.Lock()
	f.calls[req.URL]++
	f.mu.Unlock()
	body, ct := f.pages[req.URL], "text/html"
	if body == "" {
		body, ct = "image", "image/png"
	}
	if err := root.MkdirAll(path.Dir(req.Path), 0o755); err != nil {
		return fetcher.Response{}, err
	}
	if err := root.WriteFile(req.Path, []byte(body), 0o644); err != nil {
		return fetcher.Response{}, err
	}
	resp := fetcher.Response{Status: 200, Bytes: int64(len(body)), SHA256: strings.Repeat("0", 64),
		ContentType: ct, Path: req.Path}
	if req.KeepBody != nil && req.KeepBody(ct) && !f.big[req.URL] {
		resp.Body = []byte(body)
	}
	return resp, nil
}

// TestKnownLinksNotPassedAgain: a page link the run has already passed to the store is not passed
// again, but a requisite is, and still upgrades a URL first skipped as an off-scope page. Pages
// are parsed from the body in memory, or from the file when the fetcher kept none.
func TestKnownLinksNotPassedAgain(t *testing.T) {
	const n = 6
	var links strings.Builder
	for i := range n {
		fmt.Fprintf(&links, `<a href="/p%d.html">%d</a>`, i, i)
	}
	pages := map[string]string{}
	for i := range n {
		body := links.String() + `<img src="/logo.png">`
		switch i {
		case 0:
			body += `<a href="https://off.test/pic.png">off scope</a>`
		case 2: // parsed from its file
			body += `<a href="/big-only.html">`
		case 3: // fetched after p0's commit: p0 links to it
			body += `<img src="https://off.test/pic.png">`
		}
		pages[fmt.Sprintf("https://h.test/p%d.html", i)] = body
	}
	scope, err := extract.NewScope([]string{"https://h.test/"}, extract.ScopeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	enqueueAll(t, st, []string{"https://h.test/p0.html"})
	root, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	q := &linkCount{Store: st, pages: map[string]int{}, req: map[string]int{}}
	f := &siteFetcher{pages: pages, calls: map[string]int{}, big: map[string]bool{"https://h.test/p2.html": true}}
	opts := fastOptions()
	opts.Crawl = &Crawl{Scope: scope, Layout: fetcher.Mirror}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := New(q, f, ratelimit.New(ratelimit.Options{PerHost: 2}), root, opts).Run(ctx, nil); err != nil {
		t.Fatal(err)
	}

	got := states(t, st)
	want := []string{"https://h.test/logo.png", "https://off.test/pic.png", "https://h.test/big-only.html"}
	for u := range pages {
		want = append(want, u)
	}
	for _, u := range want {
		if got[u].State != store.Done || f.calls[u] != 1 {
			t.Errorf("%s: %v, fetched %d times; want done, fetched once", u, got[u].State, f.calls[u])
		}
	}
	for u, c := range q.pages {
		if c > 1 {
			t.Errorf("page link %s passed to the store %d times; want once", u, c)
		}
	}
	if c := q.req["https://h.test/logo.png"]; c != n {
		t.Errorf("requisite passed %d times; want %d (one per page: a requisite may upgrade a skipped URL)", c, n)
	}
}
