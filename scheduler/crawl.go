package scheduler

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"mime"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trawl-dev/trawl/extract"
	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/queue"
)

// Crawl turns a run into a crawl: fetched HTML pages (and stylesheets) are parsed and the links
// the scope accepts are queued in the same commit that records the page done, so that an
// interrupted crawl resumes exactly where it stopped.
type Crawl struct {
	Scope  *extract.Scope
	Layout fetcher.Layout
	// Save says whether a file of this media type is kept on disk (--save); nil keeps all.
	// Pages that are not kept are still parsed for links. A run removes the directories that
	// only files it did not keep were in.
	Save func(mediaType string) bool
	// MaxPages is the job's page limit (--max-pages, set on the queue), 0 for none. With one,
	// every page link found reaches the queue, which ranks a page by the earliest page in crawl
	// order that links it (a breadth-first store: see store's levels.go), so that the limit takes
	// the same pages however fetches finish; a run does not drop links it met before (knownLinks).
	MaxPages int
	// Robots fetches robots.txt (nil: robots.txt is ignored). Agent is the product token the
	// rules are read for.
	Robots RobotsFetcher
	Agent  string
	// Cache keeps each host's robots.txt, and the sitemaps read, between runs (the store); nil
	// keeps none.
	Cache MetaStore
	// MaxCrawlDelay caps a robots.txt Crawl-delay; default 30s.
	MaxCrawlDelay time.Duration
	// Rate is the user's per-host request rate (0 = none): a Crawl-delay never speeds a host
	// beyond it.
	Rate float64
	// Follow and Select, when set, keep only the page links (Follow) and the requisites (Select)
	// of an HTML page that elements matching their CSS selectors carry; the others are recorded
	// skipped (ReasonNotSelected). A stylesheet's links are kept as before.
	Follow, Select *extract.Selectors

	// Sitemaps are the seeds whose hosts' sitemaps are read (--sitemaps; see sitemap.go), with
	// SitemapFetcher; nil reads none.
	Sitemaps       []string
	SitemapFetcher SitemapFetcher
	// SitemapsAgain is the time before which a sitemap an earlier run read is read again: a
	// refresh run's start (--refresh), or its start less --refresh-after. Zero reads each sitemap
	// once for the job.
	SitemapsAgain time.Time
	// SitemapsRead, when set, is called once the sitemaps have been read (not when the run was
	// interrupted first), before the run can end: a refresh run then revalidates what they did
	// not vouch for. An error ends the run as a FatalError.
	SitemapsRead func() error
	// OnSitemap, when set, hears what became of each sitemap file, from the reading goroutine.
	OnSitemap func(SitemapEvent)
	// Levels says the job goes level by level (store.BreadthFirst): its sitemaps are then read
	// before the first page is fetched, so that the pages they list are all in level 1 whatever
	// order the fetches finish in.
	Levels bool

	sitemapLimits extract.SitemapLimits // zero: the sitemaps.org limits (tests make them small)
}

// RobotsFetcher fetches a small resource into memory. *fetcher.Fetcher implements it.
type RobotsFetcher interface {
	Get(ctx context.Context, rawURL string, max int64) (status int, body []byte, err error)
}

// MetaStore keeps small named values. A queue.Backend (*store.Store) implements it.
type MetaStore interface {
	Meta(key string) (string, error)
	SetMeta(key, value string) error
}

// maxRobotsBytes is how much of a robots.txt is read (Google reads 500 KiB).
const maxRobotsBytes = 500 << 10

// Seeds returns the crawl's start URLs as queue records of depth 0.
func (c *Crawl) Seeds(seeds []string) ([]queue.NewURL, error) {
	out := make([]queue.NewURL, 0, len(seeds))
	for _, s := range seeds {
		e, err := NormalizeURL(s)
		if err != nil {
			return nil, err
		}
		nu, err := e.NewURL(c.Layout, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, nu)
	}
	return out, nil
}

// mediaType is the lower-case type/subtype of a Content-Type header.
func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt, _, _ = strings.Cut(contentType, ";")
	}
	return strings.ToLower(strings.TrimSpace(mt))
}

// parserFor returns the link extractor for a file of media type mt, or nil: not parsed.
func parserFor(mt string) func(io.Reader, *url.URL) ([]extract.Link, error) {
	switch mt {
	case "text/html", "application/xhtml+xml":
		return extract.HTML
	case "text/css":
		return extract.CSS
	}
	return nil
}

// parsedType reports whether expand may parse a file with this Content-Type for links.
func parsedType(contentType string) bool { return parserFor(mediaType(contentType)) != nil }

// expand parses a fetched file for links when it is a page (or a stylesheet) and decides for each
// whether to queue it. It runs in the worker, so parsing is spread over the workers.
func (s *Scheduler) expand(rec *queue.Record, resp *fetcher.Response) []queue.NewURL {
	c := s.opts.Crawl
	mt := mediaType(resp.ContentType)
	parse := parserFor(mt)
	switch {
	case resp.NotModified, resp.Unchanged:
		return nil // parsed when it was fetched; its links are in the queue already
	case parse == nil:
		return nil
	case rec.Requisite && mt != "text/css":
		return nil // fetched for a page, never followed (a stylesheet's imports are)
	}
	base := resp.FinalURL
	if base == "" {
		base = rec.URL
	}
	bu, err := url.Parse(base)
	if err != nil {
		return nil
	}
	var body io.Reader = bytes.NewReader(resp.Body)
	if resp.Body == nil {
		f, err := s.root.Open(resp.Path)
		if err != nil {
			return nil // the outcome still records the file; only its links are lost
		}
		defer f.Close()
		body = f
	}
	// Parsing is CPU work, and a page chosen from by selectors builds a tree of several times its
	// size: bound how many are parsed at once.
	s.parseSem <- struct{}{}
	var follow, pick map[string]bool
	if (c.Follow != nil || c.Select != nil) && mt != "text/css" {
		data, _ := io.ReadAll(io.LimitReader(body, extract.MaxParseBytes))
		body = bytes.NewReader(data)
		follow, pick = c.selected(data, bu)
	}
	links, _ := parse(body, bu) // a parse error keeps the links found before it
	<-s.parseSem

	// A page's links are one page deeper than it; its requisites start a chain of requisites at
	// level 1, and a stylesheet's are one level further down its chain. A requisite has no page
	// depth of its own: its Depth holds its level (queue.RequisiteDepth).
	level := rec.RequisiteLevel()
	out := make([]queue.NewURL, 0, len(links))
	for _, l := range links {
		if l.Kind != extract.Requisite && s.known != nil && s.known.seen(l.URL) {
			continue // the store knows it: queueing it again would add nothing
		}
		e, err := NormalizeURL(l.URL)
		if err != nil {
			continue
		}
		nu := queue.NewURL{URL: e.URL, Host: e.Host, Depth: rec.Depth + 1}
		if l.Kind == extract.Requisite {
			nu.Requisite, nu.Depth = true, queue.RequisiteDepth(level+1)
		}
		if ok, reason := c.Scope.Decide(l, rec.Depth, level); !ok {
			nu.Skip = reason
		} else if !chosen(l, follow, pick) {
			nu.Skip = ReasonNotSelected
		} else if nu.Path, err = fetcher.MapPath(e.URL, c.Layout); err != nil {
			nu.Skip = "unmappable"
		}
		out = append(out, nu)
	}
	return out
}

// ReasonNotSelected is why a link of a page is skipped when no element matching --follow (a page
// link) or --select (a requisite) carries it.
const ReasonNotSelected = "not-selected"

// ReasonRedirectTarget is why a directory's URL is skipped when a link to it without its slash
// redirected to it: its page was fetched then, and saved as the directory's index.html.
const ReasonRedirectTarget = "redirect-target"

// redirectTarget adds to links the URL a crawl's page was fetched from when that is the page's own
// URL with a "/" added (fetcher.IsSlashRedirect) and the page is saved as that directory's
// index.html (slashNames), recorded skipped: the directory's page is saved already, and its own
// links to "./" must not fetch it again into a second file.
func (s *Scheduler) redirectTarget(links []queue.NewURL, rec *queue.Record, resp *fetcher.Response) []queue.NewURL {
	if !s.slashNames() || resp.NotModified || resp.FinalURL == rec.URL || !fetcher.IsSlashRedirect(rec.URL, resp.FinalURL) {
		return links
	}
	e, err := NormalizeURL(resp.FinalURL)
	if err != nil || e.URL == rec.URL {
		return links
	}
	if s.known != nil {
		s.known.seen(e.URL) // the store is told below: a page linking it later need not be
	}
	// First: of two links to one URL in a batch the store takes the first, and the page's own
	// link to "./" must not queue what this records skipped.
	target := queue.NewURL{URL: e.URL, Host: e.Host, Depth: rec.Depth, Requisite: rec.Requisite, Skip: ReasonRedirectTarget}
	return append([]queue.NewURL{target}, links...)
}

// selected returns the links of the page data that the Follow and Select selectors choose (nil:
// no such selectors, everything is chosen).
func (c *Crawl) selected(data []byte, base *url.URL) (follow, pick map[string]bool) {
	choose := func(s *extract.Selectors) map[string]bool {
		if s == nil {
			return nil
		}
		m, err := s.Selected(bytes.NewReader(data), base)
		if err != nil {
			return map[string]bool{}
		}
		return m
	}
	return choose(c.Follow), choose(c.Select)
}

// chosen says whether link l is one the selectors keep.
func chosen(l extract.Link, follow, pick map[string]bool) bool {
	if l.Kind == extract.Requisite {
		return pick == nil || pick[l.URL]
	}
	return follow == nil || follow[l.URL]
}

// keep says whether a fetched file stays on disk under --save.
func (c *Crawl) keep(resp *fetcher.Response) bool {
	return c.Save == nil || c.Save(mediaType(resp.ContentType))
}

// Unkept reports whether r was fetched without being kept (an earlier run's --save) and is a file
// that keep, a run's --save test (nil keeps all), keeps: done, with nothing on disk at its path.
// Such a URL is not done for that run, which queues it again as never fetched (store.Refetch).
// The record says size 0 and still has the sha256 of what was fetched (dispatcher.finish); the
// file's absence tells it from an empty file that was kept.
func Unkept(root *os.Root, keep func(mediaType string) bool, r queue.Record) bool {
	if r.State != queue.Done || r.Bytes != 0 || r.SHA256 == "" || r.Path == "" {
		return false
	}
	if keep != nil && !keep(mediaType(r.ContentType)) {
		return false
	}
	_, err := root.Lstat(filepath.FromSlash(r.Path))
	return errors.Is(err, fs.ErrNotExist)
}
