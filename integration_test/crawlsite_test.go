package integration_test

import (
	"fmt"
	"hash/fnv"
	"maps"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// site is a generated web site on its own HTTPS test server: fixed resources by path, plus an
// optional generator for paths computed per request (traps). Everything it serves is
// deterministic, so two sites built alike serve identical bytes, whatever their ports, as long
// as their pages use relative links.
type crawlSite struct {
	*testserver.Server
	t testing.TB

	mu    sync.RWMutex
	files map[string]siteFile
	gen   func(r *http.Request) (siteFile, bool) // paths not in files; nil: 404
	delay time.Duration                          // before every response, robots.txt included
	// answered is when a response was first sent in full, by path?query.
	answered map[string]time.Time
	active   atomic.Int64 // requests being served
}

// siteFile is one resource of a site.
type siteFile struct {
	ctype string
	body  []byte
}

// newCrawlSite starts an empty site; robots.txt and everything else answer 404 until added.
func newCrawlSite(t testing.TB) *crawlSite {
	t.Helper()
	s := &crawlSite{t: t, files: map[string]siteFile{}, answered: map[string]time.Time{}}
	s.Server = testserver.New(t, testserver.HandlerFunc(s.serve))
	return s
}

// setDelay makes every response wait d (a server busy enough for a crawl to be caught mid-way).
func (s *crawlSite) setDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// setGen serves paths that are not added from gen.
func (s *crawlSite) setGen(gen func(r *http.Request) (siteFile, bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen = gen
}

// add serves body at path with the media type its extension implies.
func (s *crawlSite) add(p string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[p] = siteFile{ctypeOf(p), body}
}

// page serves an HTML page; {B} in it is replaced by the base URL of other, if given (for
// absolute links to another site).
func (s *crawlSite) page(p, html string, other ...*crawlSite) {
	for _, o := range other {
		html = strings.ReplaceAll(html, "{B}", o.Base())
	}
	s.add(p, []byte(html))
}

// bin serves size bytes of deterministic content at p (images, fonts), seeded by the path.
func (s *crawlSite) bin(p string, size int) {
	h := fnv.New64a()
	h.Write([]byte(p))
	s.add(p, testserver.Content(h.Sum64(), int64(size)))
}

// robots serves robots.txt.
func (s *crawlSite) robots(txt string) { s.add("/robots.txt", []byte(txt)) }

// body is what the site serves at a fixed path; the test fails if there is nothing.
func (s *crawlSite) body(p string) []byte {
	s.t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	f, ok := s.files[p]
	if !ok {
		s.t.Fatalf("site %s serves nothing at %s", s.Addr(), p)
	}
	return f.body
}

func (s *crawlSite) serve(w http.ResponseWriter, r *http.Request) {
	s.active.Add(1)
	defer s.active.Add(-1)
	s.mu.RLock()
	f, ok := s.files[r.URL.Path]
	gen, delay := s.gen, s.delay
	s.mu.RUnlock()
	if !ok && gen != nil {
		f, ok = gen(r)
	}
	if delay > 0 {
		// The server's response time, not a test waiting: it ends early if trawl goes away.
		tm := time.NewTimer(delay)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-r.Context().Done():
			return
		}
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", f.ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.body)))
	if _, err := w.Write(f.body); err != nil {
		return
	}
	if http.NewResponseController(w).Flush() != nil {
		return
	}
	u, now := pathQuery(r.URL.Path, r.URL.RawQuery), time.Now()
	s.mu.Lock()
	if _, ok := s.answered[u]; !ok {
		s.answered[u] = now
	}
	s.mu.Unlock()
}

// idle says whether no request is being served: once the client is gone, every response it
// could have had in full is in answeredURLs.
func (s *crawlSite) idle() bool { return s.active.Load() == 0 }

// siteRef finds what a page or stylesheet of a site refers to.
var siteRef = regexp.MustCompile(`(?:href|src)="?([^" >]+)|url\(([^)]+)\)`)

// linkedFrom maps each path the site's pages and stylesheets refer to, to the files that do.
func (s *crawlSite) linkedFrom() map[string][]string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	from := map[string][]string{}
	for p, f := range s.files {
		for _, m := range siteRef.FindAllSubmatch(f.body, -1) {
			ref := string(m[1]) + string(m[2])
			if !strings.HasPrefix(ref, "/") {
				ref = path.Join(path.Dir(p), ref)
			}
			from[ref] = append(from[ref], p)
		}
	}
	return from
}

// answeredURLs says when each URL (path?query) was first answered in full.
func (s *crawlSite) answeredURLs() map[string]time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return maps.Clone(s.answered)
}

// ctypeOf is the Content-Type a site sends for a path, by its extension.
func ctypeOf(p string) string {
	if strings.HasSuffix(p, "/") {
		return "text/html; charset=utf-8"
	}
	switch path.Ext(p) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript"
	case ".txt":
		return "text/plain; charset=utf-8"
	case ".png":
		return "image/png"
	case ".jpg":
		return "image/jpeg"
	case ".gif":
		return "image/gif"
	case ".webp":
		return "image/webp"
	case ".ico":
		return "image/x-icon"
	case ".woff2":
		return "font/woff2"
	}
	return "application/octet-stream"
}

// savedAs is the mirror-layout file name (slash-separated, relative to the output directory) of
// path on s: directory URLs are saved as index.html.
func savedAs(s *crawlSite, p string) string {
	if strings.HasSuffix(p, "/") {
		p += "index.html"
	}
	return s.Addr() + p
}

// bigSite is n pages in cycles under /big/, each with its own image and the shared stylesheet,
// some linking to a disallowed directory and off scope. Every page is reachable from
// /big/p000.html. Links are relative, so two bigSites serve the same bytes.
func bigSite(t testing.TB, n int) *crawlSite {
	t.Helper()
	s := newCrawlSite(t)
	s.robots("User-agent: trawl\nDisallow: /big/private/\n")
	s.add("/big/style.css", []byte("body { background: url(img/bg.png) }\n"))
	s.bin("/big/img/bg.png", 3000)
	for i := range n {
		var b strings.Builder
		fmt.Fprintf(&b, "<!doctype html><title>page %d</title><link rel=stylesheet href=style.css>\n", i)
		fmt.Fprintf(&b, "<img src=\"img/%03d.png\">\n", i)
		for _, j := range []int{(i + 1) % n, (7*i + 3) % n, (31*i + 11) % n} {
			fmt.Fprintf(&b, "<a href=\"p%03d.html\">%d</a>\n", j, j)
		}
		if i%10 == 0 {
			fmt.Fprintf(&b, "<a href=\"private/%d.html\">no</a> <a href=\"/outside/%d.html\">away</a>\n", i, i)
			s.page(fmt.Sprintf("/big/private/%d.html", i), "secret")
			s.page(fmt.Sprintf("/outside/%d.html", i), "away")
		}
		s.page(fmt.Sprintf("/big/p%03d.html", i), b.String())
		s.bin(fmt.Sprintf("/big/img/%03d.png", i), 1000+i*7)
	}
	return s
}

// trapSite is a calendar trap: /cal/N.html links to the next page, to its own image and to
// itself with a fresh session id, so it never runs out of new URLs.
func trapSite(t testing.TB) *crawlSite {
	t.Helper()
	s := newCrawlSite(t)
	var mu sync.Mutex
	session := 0
	s.setGen(func(r *http.Request) (siteFile, bool) {
		var n int
		if _, err := fmt.Sscanf(r.URL.Path, "/cal/img/%d.png", &n); err == nil {
			return siteFile{"image/png", testserver.Content(uint64(n), 500)}, true
		}
		if _, err := fmt.Sscanf(r.URL.Path, "/cal/%d.html", &n); err != nil {
			return siteFile{}, false
		}
		mu.Lock()
		session++
		id := session
		mu.Unlock()
		html := fmt.Sprintf("<!doctype html><title>%d</title><img src=\"img/%d.png\">\n"+
			"<a href=\"%d.html\">next</a> <a href=\"%d.html?session=%d\">again</a>\n", n, n, n+1, n, id)
		return siteFile{"text/html", []byte(html)}, true
	})
	return s
}
