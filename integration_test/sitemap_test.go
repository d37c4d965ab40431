package integration_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// gzipOf compresses b.
func gzipOf(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close() // into memory: cannot fail
	return out.Bytes()
}

// urlsetXML is a sitemap of locs, each "URL" or "URL LASTMOD".
func urlsetXML(locs ...string) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">` + "\n")
	for _, l := range locs {
		loc, lastmod, _ := strings.Cut(l, " ")
		b.WriteString("  <url><loc>" + loc + "</loc>")
		if lastmod != "" {
			b.WriteString("<lastmod>" + lastmod + "</lastmod>")
		}
		b.WriteString("</url>\n")
	}
	b.WriteString("</urlset>\n")
	return []byte(b.String())
}

// sitemapBomb is a gzip sitemap of a few KiB that is well-formed XML of more than 50 MB once
// decompressed: one page, then padding, then a page past the padding.
func sitemapBomb(t testing.TB, first, last string) []byte {
	t.Helper()
	var out bytes.Buffer
	w, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	w.Write([]byte(`<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>` + first + `</loc></url>`))
	pad := []byte("<x>" + strings.Repeat(" ", 60000) + "</x>")
	for n := 0; n < 60<<20; n += len(pad) {
		w.Write(pad)
	}
	w.Write([]byte(`<url><loc>` + last + `</loc></url></urlset>`))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// sitemapSite serves a site whose seed page links nothing: only its sitemaps reach its pages.
// robots.txt names an index (a gzip sitemap and a plain one) and a gzip bomb; /sitemap.xml is
// missing. a.html and d.html were last modified long ago, b.html too for now (setB changes it),
// c.html says nothing.
type sitemapSite struct {
	*testserver.Server
	ca string
}

func newSitemapSite(t *testing.T) *sitemapSite {
	t.Helper()
	srv, ca := server(t)
	s := &sitemapSite{srv, ca}
	b := srv.Base()
	html := func(body string) []testserver.Option {
		return []testserver.Option{testserver.Body([]byte("<!doctype html><title>" + body + "</title><p>" + body)),
			testserver.Header("Content-Type", "text/html; charset=utf-8")}
	}
	srv.Handle("/robots.txt", testserver.Body([]byte("User-agent: *\nDisallow: /site/private/\n\nSitemap: "+b+"/maps/index.xml\nSitemap: "+b+"/maps/bomb.xml.gz\n")),
		testserver.Header("Content-Type", "text/plain"))
	srv.Handle("/maps/index.xml", testserver.Body([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>`+b+`/maps/pages.xml.gz</loc></sitemap>
  <sitemap><loc>`+b+`/maps/more.xml</loc></sitemap>
</sitemapindex>`)), testserver.Header("Content-Type", "application/xml"))
	s.setB("2020-01-01")
	srv.Handle("/maps/more.xml", testserver.Body(urlsetXML(b+"/site/c.html", b+"/site/d.html 2020-01-01T00:00:00Z")),
		testserver.Header("Content-Type", "application/xml"))
	srv.Handle("/maps/bomb.xml.gz", testserver.Body(sitemapBomb(t, b+"/site/e.html", b+"/site/past-the-bomb.html")),
		testserver.Header("Content-Type", "application/gzip"))
	srv.Handle("/sitemap.xml", testserver.Statuses(404, 404, 404, 404))
	for _, p := range []string{"/site/", "/site/a.html", "/site/b.html", "/site/c.html", "/site/d.html", "/site/e.html",
		"/site/private/p.html", "/off/x.html", "/site/past-the-bomb.html"} {
		srv.Handle(p, html(p)...)
	}
	return s
}

// setB serves the gzip sitemap with b.html's <lastmod> at lastmod.
func (s *sitemapSite) setB(lastmod string) {
	b := s.Base()
	s.Handle("/maps/pages.xml.gz", testserver.Body(gzipOf(urlsetXML(b+"/site/a.html 2020-01-01", b+"/site/b.html "+lastmod,
		b+"/off/x.html", b+"/site/private/p.html"))), testserver.Header("Content-Type", "application/gzip"))
}

// TestCrawlSitemaps: a crawl with --sitemaps from a seed that links nothing fetches the pages only
// the sitemaps reach — robots.txt's Sitemap: line names an index, which lists a gzip sitemap and a
// plain one — and never a page out of scope or one robots.txt disallows; a gzip bomb is refused
// with a warning and the crawl finishes; no sitemap is saved. A later run does not read the
// sitemaps again; a --refresh run reads them and asks only about the pages whose <lastmod> is
// newer than their fetch, or that have none.
func TestCrawlSitemaps(t *testing.T) {
	s := newSitemapSite(t)
	out := t.TempDir()
	crawl := func(extra ...string) result {
		return runTrawl(t, append([]string{"crawl", "--sitemaps", "--ca-cert", s.ca, "-o", out, s.URL("/site/")}, extra...)...)
	}
	r := crawl()
	wantExit(t, r, exitOK)
	for _, p := range []string{"/site/a.html", "/site/b.html", "/site/c.html", "/site/d.html", "/site/e.html"} {
		wantFile(t, out, s.Server, p)
	}
	for _, p := range []string{"/off/x.html", "/site/private/p.html", "/site/past-the-bomb.html"} {
		if n := len(s.RequestsFor(p)); n != 0 {
			t.Errorf("%s requested %d times, want never (off scope, disallowed, or past the bomb)", p, n)
		}
	}
	if !strings.Contains(r.stderr, "sitemap refused") || !strings.Contains(lastLine(r.stderr, "sitemap refused"), "bomb.xml.gz") ||
		!strings.Contains(lastLine(r.stderr, "sitemap refused"), "larger than the sitemap limit") {
		t.Errorf("no warning about the bomb; stderr:\n%s", tail(r.stderr))
	}
	for _, p := range []string{"/maps/index.xml", "/maps/pages.xml.gz", "/maps/more.xml", "/maps/bomb.xml.gz", "/sitemap.xml", "/robots.txt"} {
		wantNoFile(t, mirrorPath(out, s.Server, p))
	}

	// A later run: nothing new, no sitemap read again.
	before := countPaths(s.Requests())
	wantExit(t, crawl(), exitOK)
	again := countPaths(s.Requests())
	for _, p := range []string{"/maps/index.xml", "/maps/pages.xml.gz", "/maps/more.xml", "/maps/bomb.xml.gz"} {
		if again[p] != before[p] {
			t.Errorf("%s read again by a run that does not refresh (%d → %d requests)", p, before[p], again[p])
		}
	}

	// b.html changes after its fetch; a --refresh run asks about it, about c.html (no <lastmod>)
	// and the seed, not about a.html and d.html, whose <lastmod> is older than their fetch.
	s.setB(time.Now().UTC().Format(time.RFC3339))
	before = again
	r = crawl("--refresh", "--report", filepath.Join(t.TempDir(), "report.json"))
	wantExit(t, r, exitOK)
	after := countPaths(s.Requests())
	for p, want := range map[string]int{"/site/": 1, "/site/a.html": 0, "/site/b.html": 1, "/site/c.html": 1, "/site/d.html": 0,
		"/site/e.html": 1, "/maps/index.xml": 1, "/maps/pages.xml.gz": 1, "/maps/more.xml": 1, "/maps/bomb.xml.gz": 1} {
		if n := after[p] - before[p]; n != want {
			t.Errorf("refresh run: %s requested %d times, want %d", p, n, want)
		}
	}
}

// TestCrawlSitemapsResume: a crawl killed while it reads a sitemap loses none of its pages: the
// next run reads the sitemap again and fetches them all.
func TestCrawlSitemapsResume(t *testing.T) {
	srv, ca := server(t)
	b := srv.Base()
	var pages []string
	for i := range 40 {
		pages = append(pages, fmt.Sprintf("%s/site/p%02d.html", b, i))
	}
	doc := urlsetXML(pages...)
	arrived := make(chan struct{})
	srv.Handle("/robots.txt", testserver.Body([]byte("Sitemap: "+b+"/slow.xml\n")))
	srv.Handle("/sitemap.xml", testserver.Statuses(404, 404))
	srv.Handle("/slow.xml", testserver.Body(doc), testserver.PerRequest(func(n int, _ *http.Request) []testserver.Option {
		if n > 0 {
			return nil
		}
		// The first answer sends half the file, then nothing until trawl is gone.
		return []testserver.Option{testserver.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/xml")
			w.Write(doc[:len(doc)/2])
			http.NewResponseController(w).Flush()
			close(arrived)
			<-r.Context().Done()
		})}
	}))
	out := t.TempDir()
	args := []string{"crawl", "--sitemaps", "--ca-cert", ca, "-o", out, srv.URL("/site/")}
	p := start(t, trawlCmd(args...))
	select {
	case <-arrived:
	case <-p.exited:
		t.Fatalf("trawl exited before reading the sitemap; stderr:\n%s", tail(p.stderr.String()))
	case <-time.After(runTimeout):
		t.Fatal("the sitemap was never asked for")
	}
	p.kill9()

	wantExit(t, runTrawl(t, args...), exitOK)
	for _, u := range pages {
		path := strings.TrimPrefix(u, b)
		if _, err := os.Stat(mirrorPath(out, srv, path)); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}
