package scheduler

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/extract"
	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/ratelimit"
	"github.com/trawl-dev/trawl/store"
)

// spellingFetcher is a siteFetcher that serves a page under any spelling of its URL, the way a
// server does, and counts the requests for each resource (by canonical URL) whatever the spelling.
type spellingFetcher struct {
	*siteFetcher
	asked map[string][]string // canonical URL → the URLs requested for it
}

func (f *spellingFetcher) Fetch(ctx context.Context, root *os.Root, req fetcher.Request) (fetcher.Response, error) {
	n, err := extract.Normalize(req.URL)
	if err != nil {
		return fetcher.Response{}, err
	}
	f.mu.Lock()
	f.asked[n] = append(f.asked[n], req.URL)
	f.mu.Unlock()
	req.URL = n
	return f.siteFetcher.Fetch(ctx, root, req)
}

func newSpellingFetcher(pages map[string]string) *spellingFetcher {
	return &spellingFetcher{siteFetcher: &siteFetcher{pages: pages, calls: map[string]int{}}, asked: map[string][]string{}}
}

// canonicalRecords groups st's records by the canonical spelling of their URL.
func canonicalRecords(t *testing.T, st *store.Store) map[string][]queue.Record {
	t.Helper()
	out := map[string][]queue.Record{}
	for _, r := range states(t, st) {
		n, err := extract.Normalize(r.URL)
		if err != nil {
			t.Fatalf("record %q: %v", r.URL, err)
		}
		out[n] = append(out[n], r)
	}
	return out
}

// TestSeedAndLinkSpellingsOneRecord: a crawl's seed and every spelling of a link to it, on its own
// page and on another, are one record, fetched once, kept under the canonical spelling.
func TestSeedAndLinkSpellingsOneRecord(t *testing.T) {
	const (
		seed = "https://h.test/%7Euser/a/../b?"
		page = "https://h.test/~user/b"
		next = "https://h.test/~user/c.html"
	)
	spellings := []string{"/~user/b", "/%7euser/./b", "/%7Euser/b?", "b", "../%7Euser/b#top", "./b?",
		"HTTPS://H.TEST:443/~user/b", "/~user/a/../b?", "/%7E%75ser/%62", "https://h.test:0443/~user/b",
		"//h.test/%7euser/b"}
	var links strings.Builder
	for _, s := range spellings {
		links.WriteString(`<a href="` + s + `">me</a>`)
	}
	pages := map[string]string{
		page: links.String() + `<a href="c.html">next</a>`,
		next: links.String(),
	}
	scope, err := extract.NewScope([]string{seed}, extract.ScopeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	c := &Crawl{Scope: scope, Layout: fetcher.Mirror}
	seeds, err := c.Seeds([]string{seed})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Enqueue(seeds); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	f := newSpellingFetcher(pages)
	opts := fastOptions()
	opts.Crawl = c
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := New(st, f, ratelimit.New(ratelimit.Options{PerHost: 2}), root, opts).Run(ctx, nil); err != nil {
		t.Fatal(err)
	}

	recs := canonicalRecords(t, st)
	if got := recs[page]; len(got) != 1 || got[0].URL != page || got[0].State != queue.Done {
		t.Errorf("records of %s: %+v; want one, done, under that spelling", page, got)
	}
	if got := f.asked[page]; len(got) != 1 {
		t.Errorf("%s fetched %d times (%q); want once", page, len(got), got)
	}
	if got := f.asked[next]; len(got) != 1 {
		t.Errorf("%s fetched %d times; want once", next, len(got))
	}
	if len(recs) != 2 {
		t.Errorf("records of %d URLs, want 2: %v", len(recs), recs)
	}
}

// TestListSpellingsOneRecord: a list naming one URL in several spellings queues one record and
// fetches it once.
func TestListSpellingsOneRecord(t *testing.T) {
	list := strings.Join([]string{"https://h.test/%7Euser/a/../b?", "https://h.test/~user/b",
		"https://H.test:443/%7euser/./b#x", "https://h.test/%7E%75ser/b", "https://u:p@h.test/~user/b"}, "\n")
	st := openStore(t)
	f := newFakeFetcher(nil)
	feed := ListFeed(strings.NewReader(list), fetcher.Mirror, NewCredentials(), nil, func(b BadLine) { t.Error(b) })
	if err := run(t, st, f, nil, fastOptions(), feed); err != nil {
		t.Fatal(err)
	}
	const want = "https://h.test/~user/b"
	if got := states(t, st); len(got) != 1 || got[want].State != queue.Done {
		t.Errorf("records %v; want one, %s, done", got, want)
	}
	if n := f.attempts(want); n != 1 || len(f.calls) != 1 {
		t.Errorf("%d fetches of %s, %d URLs fetched; want one", n, want, len(f.calls))
	}
}

// TestOldStateNotFetchedAgain: a state file an older trawl wrote, keying records by the old list
// normalizer's spelling (%7E kept, a trailing "?" kept), opened with Respell: the URL it holds
// done is not fetched again, under any spelling, and the one it holds pending is fetched once,
// under the canonical spelling, to the path it reserved.
func TestOldStateNotFetchedAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	old, err := store.Open(path, &store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Enqueue([]queue.NewURL{
		{URL: "https://h.test/%7Euser/x", Host: "h.test", Path: "h.test/~user/x"},
		{URL: "https://h.test/%7euser/y?", Host: "h.test", Path: "h.test/~user/y"},
	}); err != nil {
		t.Fatal(err)
	}
	leased, err := old.Lease("h.test", 1, time.Now())
	if err != nil || len(leased) != 1 {
		t.Fatal(leased, err)
	}
	done := leased[0]
	done.State, done.Status, done.Bytes, done.SHA256 = queue.Done, 200, 10, strings.Repeat("0", 64)
	if err := old.Commit([]queue.Update{{Record: done}}); err != nil {
		t.Fatal(err)
	}
	old.Close()

	st, err := store.Open(path, &store.Options{NoSync: true, Respell: Respell})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	list := strings.Join([]string{"https://h.test/%7Euser/x", "https://h.test/~user/x", "https://h.test/%7euser/./x?",
		"https://h.test/%7euser/y?", "https://h.test/~user/y"}, "\n")
	f := newFakeFetcher(nil)
	feed := ListFeed(strings.NewReader(list), fetcher.Mirror, NewCredentials(), nil, func(b BadLine) { t.Error(b) })
	if err := run(t, st, f, nil, fastOptions(), feed); err != nil {
		t.Fatal(err)
	}
	for u := range f.calls {
		if n, _ := extract.Normalize(u); n == "https://h.test/~user/x" {
			t.Errorf("%s fetched again (as %s): it was done", n, u)
		}
	}
	if n := f.attempts("https://h.test/~user/y"); n != 1 || len(f.calls) != 1 {
		t.Errorf("fetched %v; want https://h.test/~user/y once", f.calls)
	}
	got := states(t, st)
	if len(got) != 2 {
		t.Errorf("records %v; want 2", got)
	}
	if r := got["https://h.test/~user/x"]; r.State != queue.Done || r.SHA256 != done.SHA256 || r.Path != "h.test/~user/x" {
		t.Errorf("~user/x: %+v; want the done record, respelled", r)
	}
	if r := got["https://h.test/~user/y"]; r.State != queue.Done || r.Path != "h.test/~user/y" {
		t.Errorf("~user/y: %+v; want done, at the path it reserved", r)
	}
}

// FuzzNormalizeURL: a list entry is extract.Normalize's spelling, less its userinfo, which goes to
// User; its Host is the URL's; Respell keeps it as it is.
func FuzzNormalizeURL(f *testing.F) {
	for _, s := range []string{"https://h/%7Euser/a/../b?", "http://u:p%40ss@H:0080/x", "http://[::1]:443/",
		"http://%40@h/", "http://a@b@h/?x@y", "http://h:8080", "http://bücher.example/ä"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		e, err := NormalizeURL(raw)
		n, nerr := extract.Normalize(raw)
		if err != nil {
			if nerr == nil && strings.ToValidUTF8(raw, "") == raw {
				t.Fatalf("NormalizeURL(%q) failed (%v), extract.Normalize gave %q", raw, err, n)
			}
			return
		}
		if nerr != nil {
			t.Fatalf("NormalizeURL(%q) = %q, extract.Normalize failed: %v", raw, e.URL, nerr)
		}
		u, err := url.Parse(n)
		if err != nil {
			t.Fatal(err)
		}
		want := n
		if u.User != nil {
			i := strings.Index(e.URL, "://") + len("://")
			want = e.URL[:i] + u.User.String() + "@" + e.URL[i:]
		}
		if pe, err := url.Parse(e.URL); err != nil || pe.User != nil || want != n {
			t.Fatalf("NormalizeURL(%q).URL = %q, want %q less its userinfo", raw, e.URL, n)
		}
		if e.Host != u.Host || e.User.String() != u.User.String() {
			t.Fatalf("NormalizeURL(%q) = host %q, user %q; want %q, %q", raw, e.Host, e.User, u.Host, u.User)
		}
		if c, h, err := Respell(e.URL); err != nil || c != e.URL || h != e.Host {
			t.Fatalf("Respell(%q) = %q, %q, %v", e.URL, c, h, err)
		}
	})
}
