package scheduler

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/extract"
	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/ratelimit"
	"github.com/trawl-dev/trawl/store"
)

// linkCount counts the links each commit passes to the store, by URL and kind.
type linkCount struct {
	*store.Store
	mu         sync.Mutex
	pages, req map[string]int
}

func (q *linkCount) Commit(updates []queue.Update) error {
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
// fetcher does for a page too big for its buffer); a URL not in the map is an image. A path
// ending in .css is a stylesheet.
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
	if u, err := url.Parse(req.URL); err == nil && strings.HasSuffix(u.Path, ".css") {
		ct = "text/css"
	}
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
		if got[u].State != queue.Done || f.calls[u] != 1 {
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

func css(n int) string { return fmt.Sprintf("https://h.test/s.css?n=%d", n) }
func bg(n int) string  { return fmt.Sprintf("https://h.test/bg.png?n=%d", n) }

// addChain adds stylesheets s.css?n=0 to n-1 to pages, each importing the next and using a
// background image of its own.
func addChain(pages map[string]string, n int) {
	for i := range n {
		pages[css(i)] = fmt.Sprintf(`@import "s.css?n=%d"; body { background: url(bg.png?n=%d) }`, i+1, i)
	}
}

// runCrawl crawls the pages queued in st from a siteFetcher serving pages, to the end.
func runCrawl(t *testing.T, st *store.Store, scope *extract.Scope, pages map[string]string) *siteFetcher {
	t.Helper()
	root, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	f := &siteFetcher{pages: pages, calls: map[string]int{}}
	opts := fastOptions()
	opts.Crawl = &Crawl{Scope: scope, Layout: fetcher.Mirror}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := New(st, f, ratelimit.New(ratelimit.Options{PerHost: 2}), root, opts).Run(ctx, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestRequisiteChainBounded: a page's stylesheet that imports another, which imports another, and
// so on without end (the URLs stay short, and requisites are exempt from the page depth and page
// limit) is followed to extract.MaxRequisiteLevel and no further: a page's requisites are level
// 1, a stylesheet's imports and url()s one level deeper, and the first link beyond the limit is
// recorded skipped for the reason, never fetched.
func TestRequisiteChainBounded(t *testing.T) {
	const chain = 50 // as far as the crawl can tell, endless
	pages := map[string]string{
		"https://h.test/p0.html": `<link rel=stylesheet href="/s.css?n=0"><a href="p1.html">1</a>`,
		"https://h.test/p1.html": `<p>no requisites`,
	}
	addChain(pages, chain)
	scope, err := extract.NewScope([]string{"https://h.test/"}, extract.ScopeOptions{MaxDepth: 2})
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	st.SetPageLimit(20)
	enqueueAll(t, st, []string{"https://h.test/p0.html"})
	f := runCrawl(t, st, scope, pages)

	got := states(t, st)
	type want struct {
		state  queue.State
		level  int
		reason string
	}
	// s.css?n=N is at level N+1, and its background one deeper: fetched to the limit, recorded
	// skipped at the level after it.
	const limit = extract.MaxRequisiteLevel
	wants := map[string]want{}
	for n := 0; n < limit; n++ {
		wants[css(n)] = want{queue.Done, n + 1, ""}
		wants[bg(n)] = want{queue.Done, n + 2, ""}
	}
	wants[css(limit)] = want{queue.Skipped, limit + 1, extract.ReasonRequisiteDepth}
	wants[bg(limit-1)] = want{queue.Skipped, limit + 1, extract.ReasonRequisiteDepth}
	for u, w := range wants {
		r, ok := got[u]
		if !ok || r.State != w.state || r.RequisiteLevel() != w.level || r.LastError != w.reason {
			t.Errorf("%s: %v at level %d (%q); want %v at level %d (%q)", u, r.State, r.RequisiteLevel(), r.LastError, w.state, w.level, w.reason)
		}
		if fetched := f.calls[u]; fetched != 0 && w.state == queue.Skipped {
			t.Errorf("%s fetched %d times; want never (beyond the chain limit)", u, fetched)
		}
	}
	var beyond []string
	for u := range got {
		if _, ok := wants[u]; !ok && !strings.HasSuffix(u, ".html") {
			beyond = append(beyond, u)
		}
	}
	if len(beyond) > 0 {
		t.Errorf("%d requisites recorded beyond the first links past the chain limit (%s...); want none",
			len(beyond), beyond[0])
	}
	if r := got["https://h.test/p1.html"]; r.State != queue.Done || r.Depth != 1 || r.Requisite {
		t.Errorf("page p1: %+v; want done at depth 1", r)
	}
}

// TestRequisiteChainFromOlderState: a stylesheet queued by a trawl that recorded no chain levels
// (a requisite's Depth was its page's depth + 1) counts as a page's own: its background and
// imports are fetched, and the chain it starts still stops at the limit.
func TestRequisiteChainFromOlderState(t *testing.T) {
	pages := map[string]string{}
	addChain(pages, 50)
	scope, err := extract.NewScope([]string{"https://h.test/"}, extract.ScopeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	e, err := NormalizeURL(css(0))
	if err != nil {
		t.Fatal(err)
	}
	old, err := e.NewURL(fetcher.Mirror, 7) // found on a page at depth 6
	if err != nil {
		t.Fatal(err)
	}
	old.Requisite = true
	if _, err := st.Enqueue([]queue.NewURL{old}); err != nil {
		t.Fatal(err)
	}
	runCrawl(t, st, scope, pages)

	got := states(t, st)
	for n := 0; n < extract.MaxRequisiteLevel; n++ {
		if r := got[css(n)]; r.State != queue.Done {
			t.Errorf("%s: %v; want done", css(n), r.State)
		}
	}
	if r := got[bg(0)]; r.State != queue.Done || r.RequisiteLevel() != 2 {
		t.Errorf("%s: %v at level %d; want done at level 2", bg(0), r.State, r.RequisiteLevel())
	}
	if r := got[css(extract.MaxRequisiteLevel)]; r.State != queue.Skipped {
		t.Errorf("%s: %v; want skipped: the chain still ends", css(extract.MaxRequisiteLevel), r.State)
	}
}

// TestSharedCrawlCounts: a worker of a shared crawl reads the job's counts every few seconds of
// its clock, not after every commit that queues links: a shared job's counts walk all its
// records, and a crawl commits links with almost every page.
func TestSharedCrawlCounts(t *testing.T) {
	const n = 30
	pages := map[string]string{}
	for i := range n {
		pages[fmt.Sprintf("https://h.test/p%d.html", i)] = fmt.Sprintf(`<a href="/p%d.html">next</a>`, i+1)
	}
	scope, err := extract.NewScope([]string{"https://h.test/"}, extract.ScopeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := &sharedCounts{Store: openStore(t)}
	enqueueAll(t, st.Store, []string{"https://h.test/p0.html"})
	root, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	opts := fastOptions()
	stopped := time.Unix(1e9, 0) // the clock stands still: one read of the counts is due
	opts.Now = func() time.Time { return stopped }
	opts.Crawl = &Crawl{Scope: scope, Layout: fetcher.Mirror}
	f := &siteFetcher{pages: pages, calls: map[string]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := New(st, f, ratelimit.New(ratelimit.Options{PerHost: 2}), root, opts).Run(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.Store.Counts(); c.Done < n {
		t.Fatalf("%d pages done, want %d", c.Done, n)
	}
	st.mu.Lock()
	reads := st.others / 100
	st.mu.Unlock()
	if reads > 2 {
		t.Errorf("the job's counts were read %d times in a crawl of %d pages at one instant: want the run's first and one refresh", reads, n)
	}
}
