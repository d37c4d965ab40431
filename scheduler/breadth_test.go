package scheduler

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
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

// heldFetcher is a siteFetcher whose fetch of the page held waits until that page is the only one
// the job has left to fetch: every other page that can be fetched without it has been, and its
// outcome committed. The crawl then meets the held page's links after all the others, whatever
// those are — the slow shallow page of a real site, as late as it can be.
type heldFetcher struct {
	*siteFetcher
	held    string
	release chan struct{}
	once    sync.Once
}

func (f *heldFetcher) Fetch(ctx context.Context, root *os.Root, req fetcher.Request) (fetcher.Response, error) {
	if req.URL == f.held {
		select {
		case <-f.release:
		case <-ctx.Done():
			return fetcher.Response{}, ctx.Err()
		}
	}
	return f.siteFetcher.Fetch(ctx, root, req)
}

// outcome is the run's OnOutcome: it releases the held page once it is the only record left to
// fetch and it is in flight (so the check cannot come before it was dispatched).
func (f *heldFetcher) outcome(st *store.Store) func(Outcome) {
	return func(Outcome) {
		c, err := st.Counts()
		r, _, _ := st.Get(f.held)
		if err == nil && c.Pending+c.Leased == 1 && r.State == queue.Leased {
			f.once.Do(func() { close(f.release) })
		}
	}
}

// crawlSite runs a crawl of pages (URL → body) from seed as trawl crawl does with --depth depth and
// --max-pages maxPages (a breadth-first store), the fetch of held (if not "") held back as
// heldFetcher does, and returns the store and the pages fetched.
func crawlSite(t *testing.T, pages map[string]string, seed, held string, depth, maxPages, workers int) (*store.Store, []string) {
	t.Helper()
	scope, err := extract.NewScope([]string{seed}, extract.ScopeOptions{MaxDepth: depth})
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	st.SetPageLimit(maxPages)
	if err := st.BreadthFirst(); err != nil {
		t.Fatal(err)
	}
	enqueueAll(t, st, []string{seed})
	root, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	f := &heldFetcher{siteFetcher: &siteFetcher{pages: pages, calls: map[string]int{}}, held: held,
		release: make(chan struct{})}
	if held == "" {
		close(f.release)
	}
	opts := fastOptions()
	opts.Workers, opts.PerHost = workers, workers
	opts.Crawl = &Crawl{Scope: scope, Layout: fetcher.Mirror, MaxPages: maxPages}
	opts.OnOutcome = f.outcome(st)
	if err := runIn(t, root, st, f, opts); err != nil {
		t.Fatal(err)
	}
	for u, n := range f.calls {
		if n != 1 {
			t.Errorf("%s fetched %d times", u, n)
		}
	}
	return st, slices.Sorted(maps.Keys(f.calls))
}

// runIn runs a crawl into root, as run does.
func runIn(t *testing.T, root *os.Root, st Queue, f Fetcher, opts Options) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := New(st, f, ratelimit.New(ratelimit.Options{PerHost: opts.PerHost}), root, opts).Run(ctx, nil)
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatal("run did not finish in 30s")
	}
	return err
}

func links(hrefs ...string) string {
	var b strings.Builder
	for _, h := range hrefs {
		fmt.Fprintf(&b, `<a href="%s">%s</a>`, h, h)
	}
	return b.String()
}

// TestDepthIsShortestWhateverTheOrder: with --depth 2, the pages fetched are those within two links
// of the seed (breadth-first search), and each is recorded at its shortest distance, whichever
// page finishes last. The case that needs it: s.html, one link from the seed, is slow; d.html is two
// links away through it, but three through a.html and b.html, which are fast. Met first at depth 3,
// d.html would be skipped for depth, and its link to e.html (depth 3) followed at 4.
func TestDepthIsShortestWhateverTheOrder(t *testing.T) {
	const h = "https://h.test/"
	pages := map[string]string{
		h:            links("s.html", "a.html"),
		h + "s.html": links("d.html"),
		h + "a.html": links("b.html"),
		h + "b.html": links("d.html"),
		h + "d.html": links("e.html"),
		h + "e.html": links("f.html"),
	}
	want := []string{h, h + "a.html", h + "b.html", h + "d.html", h + "s.html"}
	wantDepth := map[string]int{h: 0, h + "s.html": 1, h + "a.html": 1, h + "b.html": 2, h + "d.html": 2}
	for _, held := range []string{"", h + "s.html", h + "a.html"} {
		t.Run("held "+strings.TrimPrefix(held, h), func(t *testing.T) {
			st, got := crawlSite(t, pages, h, held, 2, 0, 4)
			if !slices.Equal(got, want) {
				t.Errorf("fetched %v, want %v", got, want)
			}
			recs := states(t, st)
			for u, d := range wantDepth {
				if r := recs[u]; r.State != queue.Done || r.Depth != d {
					t.Errorf("%s: %v at depth %d, want done at %d", u, r.State, r.Depth, d)
				}
			}
			if r := recs[h+"e.html"]; r.State != queue.Skipped || r.LastError != extract.ReasonDepth || r.Depth != 3 {
				t.Errorf("e.html: %v %q at depth %d, want skipped for depth at 3", r.State, r.LastError, r.Depth)
			}
		})
	}
}

// TestMaxPagesSameSetWhateverTheOrder: --max-pages takes the shallowest pages, ties in the order a
// crawl fetching one page at a time finds them, whichever page of a level finishes last and however
// many are fetched at once. x.html is linked first by a1 and later by a2: it ranks by a1's link,
// even when a2 is fetched first.
func TestMaxPagesSameSetWhateverTheOrder(t *testing.T) {
	const h = "https://h.test/"
	pages := map[string]string{
		h:             links("a1.html", "a2.html", "a3.html"),
		h + "a1.html": links("x.html", "b11.html"),
		h + "a2.html": links("b21.html", "x.html"),
		h + "a3.html": links("b31.html"),
		h + "x.html":  links("c.html"),
	}
	want := []string{h, h + "a1.html", h + "a2.html", h + "a3.html", h + "b11.html", h + "x.html"}
	for _, tc := range []struct {
		held    string
		workers int
	}{{"", 1}, {"", 4}, {"a1.html", 4}, {"a2.html", 4}, {"a3.html", 4}} {
		t.Run(fmt.Sprintf("held %s, %d workers", tc.held, tc.workers), func(t *testing.T) {
			held := ""
			if tc.held != "" {
				held = h + tc.held
			}
			st, got := crawlSite(t, pages, h, held, 0, len(want), tc.workers)
			if !slices.Equal(got, want) {
				t.Errorf("fetched %v, want %v", got, want)
			}
			if r, _, _ := st.Get(h + "b21.html"); r.State != queue.Skipped || r.LastError != store.ReasonMaxPages {
				t.Errorf("b21.html: %v %q, want skipped for max-pages", r.State, r.LastError)
			}
		})
	}
}

// TestSaveLeavesNoEmptyDirectories: files fetched and not kept (--save) leave no directory behind
// that holds nothing else; a directory with a kept file stays.
func TestSaveLeavesNoEmptyDirectories(t *testing.T) {
	const h = "https://h.test/"
	pages := map[string]string{
		h:                            links("docs/a/one.html", "docs/b/two.html") + `<img src="img/logo.png">`,
		h + "docs/a/one.html":        links("/docs/a/deep/three.html") + `<img src="../pic.png">`,
		h + "docs/b/two.html":        "",
		h + "docs/a/deep/three.html": "<p>",
	}
	pages[h+"docs/b/two.html"] = "<p>"
	scope, err := extract.NewScope([]string{h}, extract.ScopeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	enqueueAll(t, st, []string{h})
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	f := &siteFetcher{pages: pages, calls: map[string]int{}}
	opts := fastOptions()
	opts.Crawl = &Crawl{Scope: scope, Layout: fetcher.Mirror, Save: func(mt string) bool { return strings.HasPrefix(mt, "image/") }}
	if err := runIn(t, root, st, f, opts); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			got = append(got, filepath.ToSlash(rel))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"h.test", "h.test/docs", "h.test/docs/pic.png", "h.test/img", "h.test/img/logo.png"}
	if !slices.Equal(got, want) {
		t.Errorf("output tree %v, want %v", got, want)
	}
	if r, _, _ := st.Get(h + "docs/a/deep/three.html"); r.State != queue.Done {
		t.Errorf("three.html %v, want done (fetched, not kept)", r.State)
	}
}

// TestUnkept: a done record without its file is unkept for a run that keeps its type; a kept file
// (empty or not), a type the run does not keep, or a record not done is not.
func TestUnkept(t *testing.T) {
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := os.WriteFile(filepath.Join(dir, "empty.html"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sha := strings.Repeat("0", 64)
	images := func(mt string) bool { return strings.HasPrefix(mt, "image/") }
	for _, tc := range []struct {
		name string
		r    queue.Record
		keep func(string) bool
		want bool
	}{
		{"not kept, all kept now", queue.Record{State: queue.Done, Path: "gone.html", SHA256: sha, ContentType: "text/html"}, nil, true},
		{"not kept, still not", queue.Record{State: queue.Done, Path: "gone.html", SHA256: sha, ContentType: "text/html"}, images, false},
		{"not kept image", queue.Record{State: queue.Done, Path: "gone.png", SHA256: sha, ContentType: "image/png; q=1"}, images, true},
		{"kept empty file", queue.Record{State: queue.Done, Path: "empty.html", SHA256: sha, ContentType: "text/html"}, nil, false},
		{"kept file", queue.Record{State: queue.Done, Path: "gone.html", SHA256: sha, Bytes: 10}, nil, false},
		{"pending", queue.Record{State: queue.Pending, Path: "gone.html", SHA256: sha}, nil, false},
		{"never fetched", queue.Record{State: queue.Done, Path: "gone.html"}, nil, false},
	} {
		if got := Unkept(root, tc.keep, tc.r); got != tc.want {
			t.Errorf("%s: Unkept = %v, want %v", tc.name, got, tc.want)
		}
	}
}
