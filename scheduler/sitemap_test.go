package scheduler

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/extract"
	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/internal/testserver"
	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/ratelimit"
	"github.com/trawl-dev/trawl/store"
)

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func urlset(locs ...string) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">`)
	for _, l := range locs {
		loc, lastmod, _ := strings.Cut(l, " ")
		b.WriteString("<url><loc>" + loc + "</loc>")
		if lastmod != "" {
			b.WriteString("<lastmod>" + lastmod + "</lastmod>")
		}
		b.WriteString("</url>")
	}
	b.WriteString("</urlset>")
	return []byte(b.String())
}

func sitemapIndex(locs ...string) []byte {
	var b strings.Builder
	b.WriteString(`<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">`)
	for _, l := range locs {
		b.WriteString("<sitemap><loc>" + l + "</loc></sitemap>")
	}
	b.WriteString("</sitemapindex>")
	return []byte(b.String())
}

// sitemapEvents collects a run's OnSitemap events.
type sitemapEvents struct {
	mu  sync.Mutex
	evs []SitemapEvent
}

func (s *sitemapEvents) add(ev SitemapEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evs = append(s.evs, ev)
}

func (s *sitemapEvents) of(url string) (SitemapEvent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range s.evs {
		if ev.URL == url {
			return ev, true
		}
	}
	return SitemapEvent{}, false
}

// sitemapCrawl is a crawl of srv reading its sitemaps with a real fetcher (pages are fetched by
// pages, a fake); it returns the run's events.
func sitemapCrawl(t *testing.T, st *store.Store, srv *testserver.Server, pages Fetcher, mod func(*Crawl)) (*sitemapEvents, error) {
	t.Helper()
	f, err := fetcher.New(fetcher.Options{CACertFile: srv.CAFile(t), IdleTimeout: 5 * time.Second, Protocol: fetcher.ProtocolHTTP1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	seed := srv.URL("/site/")
	scope, err := extract.NewScope([]string{seed}, extract.ScopeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	evs := &sitemapEvents{}
	c := &Crawl{Scope: scope, Layout: fetcher.Mirror, Robots: f, Agent: "trawl", Cache: st,
		Sitemaps: []string{seed}, SitemapFetcher: f, OnSitemap: evs.add}
	if mod != nil {
		mod(c)
	}
	seeds, err := c.Seeds([]string{seed})
	if err != nil {
		t.Fatal(err)
	}
	opts := fastOptions()
	opts.Crawl = c
	err = run(t, st, pages, ratelimit.New(ratelimit.Options{PerHost: 2}), opts, func(_ context.Context, enqueue func([]queue.NewURL) error) error {
		return enqueue(seeds)
	})
	return evs, err
}

// TestSitemaps: the pages a host's sitemaps list are queued at depth 1 — robots.txt names an index
// that lists a gzip urlset, a text one and an index of one more level, /sitemap.xml is read too —
// those out of scope recorded skipped, with their <lastmod>; a sitemap an index lists on another
// host is not read, nor is the guessed /sitemap.xml of a host whose robots.txt disallows it.
func TestSitemaps(t *testing.T) {
	for _, tc := range []struct {
		name    string
		robots  string
		full    bool                   // the sitemaps are read
		want    map[string]queue.State // path → state; every other page unknown
		wantEvs map[string]string      // path → an event's error text, "" for none
	}{
		{
			name:   "robots names an index",
			full:   true,
			robots: "User-agent: *\nDisallow: /site/private/\nSitemap: {B}/maps/index.xml\n",
			want: map[string]queue.State{"/site/": queue.Done, "/site/a.html": queue.Done, "/site/b.html": queue.Done,
				"/site/c.html": queue.Done, "/site/d.html": queue.Done, "/other/x.html": queue.Skipped,
				"/site/private/p.html": queue.Skipped, "/site/g.html": queue.Done},
			wantEvs: map[string]string{"/maps/index.xml": "", "/maps/a.xml.gz": "", "/maps/b.txt": "", "/maps/deeper.xml": "",
				"/maps/d.xml": "", "/sitemap.xml": ""},
		},
		{
			// Not what the protocol allows, but what sites write: read against robots.txt's URL.
			name:   "robots names an index by a relative URL",
			full:   true,
			robots: "User-agent: *\nDisallow: /site/private/\nSitemap: /maps/index.xml\n",
			want: map[string]queue.State{"/site/": queue.Done, "/site/a.html": queue.Done, "/site/b.html": queue.Done,
				"/site/c.html": queue.Done, "/site/d.html": queue.Done, "/other/x.html": queue.Skipped,
				"/site/private/p.html": queue.Skipped, "/site/g.html": queue.Done},
			wantEvs: map[string]string{"/maps/index.xml": "", "/maps/a.xml.gz": "", "/maps/b.txt": "", "/maps/deeper.xml": "",
				"/maps/d.xml": "", "/sitemap.xml": ""},
		},
		{
			name:    "robots disallows the guess, names nothing",
			robots:  "User-agent: *\nDisallow: /sitemap.xml\n",
			want:    map[string]queue.State{"/site/": queue.Done},
			wantEvs: map[string]string{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other := testserver.New(t)
			other.Handle("/far.xml", testserver.Body(urlset()))
			srv := testserver.New(t)
			b := srv.Base()
			srv.Handle("/robots.txt", testserver.Body([]byte(strings.ReplaceAll(tc.robots, "{B}", b))))
			srv.Handle("/maps/index.xml", testserver.Body(sitemapIndex(b+"/maps/a.xml.gz", b+"/maps/b.txt", b+"/maps/deeper.xml", other.URL("/far.xml"))))
			srv.Handle("/maps/a.xml.gz", testserver.Body(gzipped(t, urlset(b+"/site/a.html 2024-05-01", b+"/other/x.html", b+"/site/private/p.html"))))
			srv.Handle("/maps/b.txt", testserver.Body([]byte(b+"/site/b.html\n"+b+"/site/c.html\n")))
			srv.Handle("/maps/deeper.xml", testserver.Body(gzipped(t, sitemapIndex(b+"/maps/d.xml"))), testserver.Header("Content-Encoding", "gzip"))
			srv.Handle("/maps/d.xml", testserver.Body(urlset(b+"/site/d.html")))
			srv.Handle("/sitemap.xml", testserver.Body(urlset(b+"/site/g.html")))
			st := openStore(t)
			pages := newFakeFetcher(nil)
			evs, err := sitemapCrawl(t, st, srv, pages, nil)
			if err != nil {
				t.Fatal(err)
			}
			recs := states(t, st)
			for url, r := range recs {
				p := strings.TrimPrefix(url, b)
				want, ok := tc.want[p]
				if !ok {
					t.Errorf("%s: %v, want no record", p, r.State)
					continue
				}
				if r.State != want {
					t.Errorf("%s: %v (%s), want %v", p, r.State, r.LastError, want)
				}
				if p != "/site/" && r.Depth != 1 {
					t.Errorf("%s: depth %d, want 1", p, r.Depth)
				}
			}
			for p := range tc.want {
				if _, ok := recs[b+p]; !ok {
					t.Errorf("%s: no record", p)
				}
			}
			if !tc.full {
				if n := len(srv.RequestsFor("/sitemap.xml")); n != 0 {
					t.Errorf("a disallowed /sitemap.xml was read %d times", n)
				}
				return
			}
			if r := recs[b+"/site/a.html"]; !r.Lastmod.Equal(extract.ParseLastmod("2024-05-01")) || r.Listed.IsZero() {
				t.Errorf("a.html: lastmod %v listed %v, want the sitemap's word", r.Lastmod, r.Listed)
			}
			if r := recs[b+"/other/x.html"]; r.LastError != extract.ReasonOffScope {
				t.Errorf("off-scope loc: %+v", r)
			}
			if n := len(other.RequestsFor("/far.xml")); n != 0 {
				t.Errorf("a sitemap on another host was read %d times", n)
			}
			if ev, ok := evs.of(other.URL("/far.xml")); !ok || !errors.Is(ev.Err, errSitemapOffHost) {
				t.Errorf("off-host sitemap: event %+v, want %v", ev, errSitemapOffHost)
			}
			for p, wantErr := range tc.wantEvs {
				ev, ok := evs.of(b + p)
				if !ok || fmt.Sprint(ev.Err) != wantErr && !(wantErr == "" && ev.Err == nil) {
					t.Errorf("%s: event %+v, want error %q", p, ev, wantErr)
				}
				if v, _ := st.Meta(sitemapKey(b + p)); v == "" {
					t.Errorf("%s: not recorded read", p)
				}
			}
			if n := len(srv.RequestsFor("/robots.txt")); n != 1 {
				t.Errorf("robots.txt fetched %d times, want once (the dispatcher finds it cached)", n)
			}
		})
	}
}

// TestSitemapsReadOnce: a sitemap read to its end is not read again by a later run, unless one
// asks (SitemapsAgain); one cut short or answered with a server error is; a gzip bomb is refused,
// what came before it kept, and recorded read.
func TestSitemapsReadOnce(t *testing.T) {
	srv := testserver.New(t)
	b := srv.Base()
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write([]byte(`<urlset><url><loc>` + b + `/site/before-bomb.html</loc></url>`))
	for range 1 << 10 {
		zw.Write(bytes.Repeat([]byte("<x/>      "), 1<<10)) // 10 MiB
	}
	zw.Close()
	srv.Handle("/robots.txt", testserver.Body([]byte("Sitemap: "+b+"/ok.xml\nSitemap: "+b+"/bomb.xml.gz\nSitemap: "+b+"/down.xml\n")))
	srv.Handle("/ok.xml", testserver.Body(urlset(b+"/site/ok.html")))
	srv.Handle("/bomb.xml.gz", testserver.Body(bomb.Bytes()))
	srv.Handle("/down.xml", testserver.Statuses(503, 503))
	srv.Handle("/sitemap.xml", testserver.Statuses(404, 404, 404))
	st := openStore(t)
	limits := func(c *Crawl) { c.sitemapLimits = extract.SitemapLimits{MaxBytes: 1 << 20} }

	evs, err := sitemapCrawl(t, st, srv, newFakeFetcher(nil), limits)
	if err != nil {
		t.Fatal(err)
	}
	if ev, _ := evs.of(b + "/bomb.xml.gz"); !errors.Is(ev.Err, extract.ErrSitemapTooBig) || ev.Partial || ev.Pages != 1 {
		t.Errorf("bomb: %+v, want refused as too big after its one page", ev)
	}
	if ev, _ := evs.of(b + "/down.xml"); ev.Status != 503 || !ev.Partial {
		t.Errorf("down: %+v, want a 503 worth reading again", ev)
	}
	if ev, _ := evs.of(b + "/sitemap.xml"); ev.Status != 404 || ev.Partial || !ev.Guessed {
		t.Errorf("guess: %+v, want a 404, settled", ev)
	}
	for _, p := range []string{"/site/ok.html", "/site/before-bomb.html"} {
		if r, ok, _ := st.Get(b + p); !ok || r.State != queue.Done {
			t.Errorf("%s: %+v, want done", p, r)
		}
	}
	read := func() map[string]int {
		out := map[string]int{}
		for _, p := range []string{"/ok.xml", "/bomb.xml.gz", "/down.xml", "/sitemap.xml"} {
			out[p] = len(srv.RequestsFor(p))
		}
		return out
	}

	// The next run reads only what was not settled; a refresh run reads everything again.
	before := read()
	evs, err = sitemapCrawl(t, st, srv, newFakeFetcher(nil), limits)
	if err != nil {
		t.Fatal(err)
	}
	after := read()
	for p, n := range after {
		want := before[p]
		if p == "/down.xml" {
			want++
		}
		if n != want {
			t.Errorf("second run: %s read %d times in all, want %d", p, n, want)
		}
	}
	if ev, _ := evs.of(b + "/ok.xml"); !ev.Known {
		t.Errorf("ok.xml on the second run: %+v, want known", ev)
	}
	var called bool
	_, err = sitemapCrawl(t, st, srv, newFakeFetcher(nil), func(c *Crawl) {
		limits(c)
		c.SitemapsAgain = time.Now().Add(time.Second)
		c.SitemapsRead = func() error { called = true; return nil }
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, n := range read() {
		if n != after[p]+1 {
			t.Errorf("refresh run: %s read %d times in all, want %d", p, n, after[p]+1)
		}
	}
	if !called {
		t.Error("SitemapsRead not called")
	}
}

// TestSitemapsBeforeLevels: in a breadth-first job (Levels) no page is fetched before the
// sitemaps are read, and the pages they list are all at level 1 — with --max-pages, taken before
// the seed's own links, the first of each file's batch before the second (m1 and m3, then m2),
// the same whatever order fetches finish in.
func TestSitemapsBeforeLevels(t *testing.T) {
	srv := testserver.New(t)
	b := srv.Base()
	srv.Handle("/robots.txt", testserver.Body([]byte("Sitemap: "+b+"/s1.xml\n")))
	srv.Handle("/s1.xml", testserver.Body(urlset(b+"/site/m1.html", b+"/site/m2.html")))
	srv.Handle("/sitemap.xml", testserver.Body(urlset(b+"/site/m3.html")))
	st := openStore(t)
	st.SetPageLimit(3)
	if err := st.BreadthFirst(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	evs := &sitemapEvents{}
	logged := &funcFetcher{fn: func(ctx context.Context, req fetcher.Request) (fetcher.Response, error) {
		mu.Lock()
		order = append(order, "fetch "+strings.TrimPrefix(req.URL, b))
		mu.Unlock()
		body := "page"
		if req.URL == b+"/site/" {
			body = `<a href="l1.html">1</a><a href="l2.html">2</a>`
		}
		return fetcher.Response{Status: 200, Bytes: int64(len(body)), SHA256: strings.Repeat("0", 64),
			ContentType: "text/html", Path: req.Path, Body: []byte(body)}, nil
	}}
	_, err := sitemapCrawl(t, st, srv, logged, func(c *Crawl) {
		c.Levels = true
		c.OnSitemap = func(ev SitemapEvent) {
			evs.add(ev)
			mu.Lock()
			order = append(order, "sitemap "+strings.TrimPrefix(ev.URL, b))
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	last := slices.IndexFunc(order, func(s string) bool { return strings.HasPrefix(s, "fetch") })
	if last < 0 || slices.ContainsFunc(order[last:], func(s string) bool { return strings.HasPrefix(s, "sitemap") }) {
		t.Errorf("order %q, want every sitemap read before the first page", order)
	}
	recs := states(t, st)
	for _, p := range []string{"/site/m1.html", "/site/m3.html"} {
		if r := recs[b+p]; r.State != queue.Done || r.Depth != 1 {
			t.Errorf("%s: %+v, want done at depth 1", p, r)
		}
	}
	if r := recs[b+"/site/m2.html"]; r.LastError != store.ReasonMaxPages {
		t.Errorf("m2.html: %+v, want skipped for the page limit", r)
	}
	done := 0
	for _, r := range recs {
		if r.State == queue.Done {
			done++
		}
	}
	if done != 3 || recs[b+"/site/l1.html"].LastError != store.ReasonMaxPages {
		t.Errorf("%d done; l1.html %+v; want the seed and two sitemap pages, the seed's links over the limit", done, recs[b+"/site/l1.html"])
	}
}
