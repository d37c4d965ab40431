package scheduler

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/trawl-dev/trawl/extract"
	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/queue"
)

// A crawl's sitemaps (Crawl.Sitemaps, --sitemaps). For each seed's host the run reads the
// sitemaps its robots.txt names in Sitemap: lines (on any host: the site names them) and its
// /sitemap.xml (if robots.txt allows it), then the sitemaps their indexes list (on the index's
// host or the seed's, or in the crawl's scope), and queues the pages they list as the links of a
// page at depth 0 would be: at depth 1, through the scope, the include and exclude rules, and, when
// they are fetched, robots.txt. Sitemap files are read off the workers, one at a time, each a
// request the host's politeness allows (rate, Crawl-delay, requests in flight); they are streamed,
// never saved in the output directory.
//
// The pages are queued in batches as a file is read, so a run killed in the middle of one loses
// nothing: the next run reads the file again and the store drops what it knows. A file read to its
// end (an index: with every file it lists) is recorded in the store's metadata, and not read
// again by the job's later runs, unless a refresh run asks for it (Crawl.SitemapsAgain).

// SitemapFetcher streams a sitemap file. *fetcher.Fetcher implements it.
type SitemapFetcher interface {
	Open(ctx context.Context, rawURL string) (*fetcher.Stream, error)
}

// Bounds of a run's sitemaps, beside those of each file (extract.MaxSitemapBytes and
// MaxSitemapEntries).
const (
	// MaxSitemapFiles is how many sitemap files are read for one seed's host, indexes included.
	MaxSitemapFiles = 1000
	// MaxSitemapDepth is how deep indexes may nest: robots.txt names an index (1), which lists
	// another (2), which lists urlsets (3). sitemaps.org allows one level; some sites use two.
	MaxSitemapDepth = 3
	// sitemapBatch is how many pages go into one Enqueue, cut at the same places every time a
	// file is read, so that a breadth-first job ranks them the same (store's levels.go).
	sitemapBatch = 1000
)

// SitemapEvent is what became of one sitemap file.
type SitemapEvent struct {
	URL string
	// Seed says whether the run tried it for its own reasons (robots.txt named it, or it is a
	// host's /sitemap.xml) rather than because an index listed it.
	Seed bool
	// Guessed is set for a host's /sitemap.xml, which need not exist.
	Guessed bool
	Kind    extract.SitemapKind
	Status  int  // the HTTP status, 0 when there was no answer or the file was not fetched
	Known   bool // read to its end by an earlier run and not due again: not fetched
	Pages   int  // page URLs it listed that were queued or recorded skipped
	Skipped int  // of them, those recorded skipped (off scope, excluded, deeper than --depth)
	Listed  int  // sitemaps an index lists
	// Err says why it was refused or read in part (nil: read whole). Partial says it is worth
	// reading again by the next run (no answer, a server error, a cut transfer); otherwise it was
	// recorded read as it is (a 404, a gzip bomb, a syntax error: the next refresh run reads it).
	Err     error
	Partial bool
}

// Why a sitemap file is not read.
var (
	errSitemapOffHost  = errors.New("not on the host of the index that lists it, nor of the seed, nor in the crawl's scope: not read")
	errSitemapTooDeep  = fmt.Errorf("an index nested more than %d deep: the sitemaps it lists are not read", MaxSitemapDepth)
	errSitemapTooMany  = fmt.Errorf("more than %d sitemap files for one host: the rest are not read", MaxSitemapFiles)
	errRobotsNoSitemap = errors.New("robots.txt unavailable: the host's sitemaps are not read this run")
)

// readsSitemaps says whether the run reads sitemaps (c may be nil: not a crawl).
func (c *Crawl) readsSitemaps() bool {
	return c != nil && len(c.Sitemaps) > 0 && c.SitemapFetcher != nil
}

// sitemapKey is the metadata key recording that a sitemap file was read to its end.
func sitemapKey(url string) string { return "sitemap:" + url }

// withSitemaps returns feed followed by the reading of the crawl's sitemaps. The robots.txt of the
// seeds' hosts are settled first, before feed queues the seeds, so that the dispatcher finds them
// cached rather than fetching them again.
func (s *Scheduler) withSitemaps(feed Feed) Feed {
	return func(ctx context.Context, enqueue func([]queue.NewURL) error) error {
		r := &sitemapReader{s: s, c: s.opts.Crawl, enqueue: enqueue}
		sites := r.sites()
		rules := make([]*extract.Robots, len(sites))
		known := make([]bool, len(sites))
		for i, site := range sites {
			var err error
			if rules[i], known[i], err = r.robots(ctx, site); err != nil {
				return err
			}
		}
		if feed != nil {
			if err := feed(ctx, enqueue); err != nil {
				return err
			}
		}
		for i, site := range sites {
			if err := r.site(ctx, site, rules[i], known[i]); err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if r.c.SitemapsRead != nil {
			if err := r.c.SitemapsRead(); err != nil {
				return &FatalError{err}
			}
		}
		return nil
	}
}

// sitemapReader reads a run's sitemaps: one goroutine, the feed's.
type sitemapReader struct {
	s       *Scheduler
	c       *Crawl
	enqueue func([]queue.NewURL) error
	visited map[string]bool // sitemap files met for the site being read
	files   int             // of them, those counted against MaxSitemapFiles
	full    bool            // MaxSitemapFiles was reached (and said)
}

// sitemapSite is a seed's scheme and host, whose sitemaps are read once.
type sitemapSite struct{ scheme, host string }

func (s sitemapSite) base() string { return s.scheme + "://" + s.host }

// sites are the seeds' schemes and hosts, in order, each once.
func (r *sitemapReader) sites() []sitemapSite {
	var out []sitemapSite
	seen := map[sitemapSite]bool{}
	for _, seed := range r.c.Sitemaps {
		e, err := NormalizeURL(seed)
		if err != nil {
			continue
		}
		site := sitemapSite{e.URL[:strings.Index(e.URL, "://")], e.Host}
		if !seen[site] {
			seen[site] = true
			out = append(out, site)
		}
	}
	return out
}

// robots returns site's robots.txt rules, from the cache or fetched (and cached) as the dispatcher
// would, and whether they are known: not when robots.txt could not be had (no answer, a server
// error). Without robots.txt (--ignore-robots) there are no rules, and they are known. Only a
// failing store is an error.
func (r *sitemapReader) robots(ctx context.Context, site sitemapSite) (*extract.Robots, bool, error) {
	c := r.c
	if c.Robots == nil {
		return nil, true, nil
	}
	now := r.s.opts.Now()
	if c.Cache != nil {
		if v, err := c.Cache.Meta(robotsKey(site.host)); err == nil && v != "" {
			if at, status, body, ok := decodeRobots(v); ok && now.Sub(at) < robotsTTL {
				return r.paced(site, extract.ParseRobots(status, body, c.Agent)), true, nil
			}
		}
	}
	status, body, err := c.Robots.Get(ctx, site.base()+"/robots.txt", maxRobotsBytes)
	if err != nil || status >= 500 {
		return nil, false, nil // the dispatcher asks again, and decides for the host's pages
	}
	if c.Cache != nil {
		if err := c.Cache.SetMeta(robotsKey(site.host), encodeRobots(now, status, body)); err != nil {
			return nil, false, &FatalError{err}
		}
	}
	return r.paced(site, extract.ParseRobots(status, body, c.Agent)), true, nil
}

// paced gives the host the rate its Crawl-delay asks for, as the dispatcher will: the sitemaps are
// read before its first page is fetched.
func (r *sitemapReader) paced(site sitemapSite, rules *extract.Robots) *extract.Robots {
	if rate, ok := r.c.robotsRate(rules); ok {
		r.s.lim.SetHostRate(site.host, rate)
	}
	return rules
}

// site reads the sitemaps of one seed's host.
func (r *sitemapReader) site(ctx context.Context, site sitemapSite, rules *extract.Robots, known bool) error {
	r.visited, r.files, r.full = map[string]bool{}, 0, false
	guess := site.base() + "/sitemap.xml"
	if !known {
		r.report(SitemapEvent{URL: guess, Seed: true, Guessed: true, Err: errRobotsNoSitemap, Partial: true})
		return nil
	}
	robotsURL, _ := url.Parse(site.base() + "/robots.txt")
	for _, u := range rules.Sitemaps() {
		// A relative Sitemap: URL (which the protocol does not allow, but sites write) is read
		// against the robots.txt that gave it.
		if ref, err := url.Parse(u); err == nil && !ref.IsAbs() && robotsURL != nil {
			u = robotsURL.ResolveReference(ref).String()
		}
		if _, err := r.file(ctx, site, u, 1, true, false); err != nil {
			return err
		}
	}
	if rules.Allowed(guess) {
		if _, err := r.file(ctx, site, guess, 1, true, true); err != nil {
			return err
		}
	}
	return nil
}

// file reads one sitemap file at index depth depth, and the files it lists if it is an index. It
// reports whether the file is settled — read to its end, or refused for good, and so are the
// files it lists — in which case it is recorded read. Only a failing store, or the run's end, is
// an error.
func (r *sitemapReader) file(ctx context.Context, site sitemapSite, raw string, depth int, seed, guessed bool) (bool, error) {
	ev := SitemapEvent{URL: raw, Seed: seed, Guessed: guessed}
	e, err := NormalizeURL(raw)
	if err != nil {
		ev.Err = err
		r.report(ev)
		return true, nil
	}
	ev.URL = e.URL
	if r.visited[e.URL] {
		return true, nil
	}
	r.visited[e.URL] = true
	if r.files >= MaxSitemapFiles {
		if !r.full {
			r.full = true
			ev.Err = errSitemapTooMany
			r.report(ev)
		}
		return true, nil
	}
	r.files++
	key := sitemapKey(e.URL)
	if r.c.Cache != nil {
		if v, err := r.c.Cache.Meta(key); err == nil && v != "" {
			if sec, err := strconv.ParseInt(v, 10, 64); err == nil && !time.Unix(sec, 0).Before(r.c.SitemapsAgain) {
				ev.Known = true
				r.report(ev)
				return true, nil
			}
		}
	}

	children, settled, err := r.read(ctx, e, &ev)
	if err != nil {
		return false, err
	}
	if ev.Kind == extract.SitemapIndex {
		if depth >= MaxSitemapDepth && len(children) > 0 {
			ev.Err, children = errSitemapTooDeep, nil
		}
	}
	r.report(ev)
	for _, child := range children {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if !r.sitemapAllowed(site, e.Host, child) {
			r.report(SitemapEvent{URL: child, Err: errSitemapOffHost})
			continue
		}
		ok, err := r.file(ctx, site, child, depth+1, false, false)
		if err != nil {
			return false, err
		}
		settled = settled && ok
	}
	if settled && r.c.Cache != nil {
		if err := r.c.Cache.SetMeta(key, strconv.FormatInt(r.s.opts.Now().Unix(), 10)); err != nil {
			return false, &FatalError{err}
		}
	}
	return settled, ctx.Err()
}

// sitemapAllowed says whether a sitemap an index on host lists is read: on that host, or the
// seed's, or a page the crawl's scope admits.
func (r *sitemapReader) sitemapAllowed(site sitemapSite, host, child string) bool {
	e, err := NormalizeURL(child)
	if err != nil {
		return false
	}
	if e.Host == host || e.Host == site.host {
		return true
	}
	ok, _ := r.c.Scope.Decide(extract.Link{URL: e.URL, Kind: extract.Page}, 0, 0)
	return ok
}

// read fetches a sitemap file and queues the pages it lists, filling ev. It returns the sitemaps
// it lists if it is an index, and whether it was settled (see file).
func (r *sitemapReader) read(ctx context.Context, e ListEntry, ev *SitemapEvent) (children []string, settled bool, err error) {
	if err := r.acquire(ctx, e.Host); err != nil {
		return nil, false, err
	}
	defer r.s.lim.Release(e.Host)
	st, err := r.c.SitemapFetcher.Open(ctx, r.s.opts.Credentials.apply(e.URL, e.Host))
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		ev.Err, ev.Partial = err, true
		return nil, false, nil
	}
	defer st.Body.Close()
	ev.Status = st.Status
	switch {
	case st.Status >= 200 && st.Status < 300:
	case st.Status >= 400 && st.Status < 500:
		ev.Err = fmt.Errorf("HTTP %d", st.Status)
		return nil, true, nil // the site's answer: no sitemap there
	default:
		ev.Err, ev.Partial = fmt.Errorf("HTTP %d", st.Status), true
		return nil, false, nil
	}

	listed := r.s.opts.Now()
	var batch []queue.NewURL
	var enqErr error // a failing store: the only error that stops the run
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		enqErr = r.enqueue(batch)
		batch = batch[:0]
		return enqErr
	}
	kind, rerr := extract.ReadSitemap(st.Body, r.c.sitemapLimits, func(se extract.SitemapEntry) error {
		if se.Index {
			children = append(children, se.URL)
			return nil
		}
		nu, ok := r.c.sitemapPage(se, listed)
		if !ok {
			return nil
		}
		ev.Pages++
		if nu.Skip != "" {
			ev.Skipped++
		}
		if batch = append(batch, nu); len(batch) == sitemapBatch {
			return flush()
		}
		return nil
	})
	if rerr == nil {
		rerr = flush()
	} else if enqErr == nil {
		flush() // what was read before the file was refused or cut is kept
	}
	if enqErr != nil {
		return nil, false, enqErr
	}
	ev.Kind, ev.Listed = kind, len(children)
	var fe *fetcher.Error
	switch {
	case rerr == nil:
		return children, true, nil
	case ctx.Err() != nil:
		return nil, false, ctx.Err()
	case errors.As(rerr, &fe):
		// The transfer was cut: what came is queued, and the next run reads the file again.
		ev.Err, ev.Partial = rerr, true
		return nil, false, nil
	}
	// Refused as it is (too big, too many entries, not a sitemap): the entries before are kept,
	// and the file is not read again before the next refresh.
	ev.Err = rerr
	return children, true, nil
}

// sitemapPage is the queue entry of a page a sitemap lists, as if a page at depth 0 linked it; ok
// is false for a URL that cannot be queued at all.
func (c *Crawl) sitemapPage(se extract.SitemapEntry, listed time.Time) (queue.NewURL, bool) {
	e, err := NormalizeURL(se.URL)
	if err != nil {
		return queue.NewURL{}, false
	}
	nu := queue.NewURL{URL: e.URL, Host: e.Host, Depth: 1}
	if ok, reason := c.Scope.Decide(extract.Link{URL: e.URL, Kind: extract.Page}, 0, 0); !ok {
		nu.Skip = reason
	} else if nu.Path, err = fetcher.MapPath(e.URL, c.Layout); err != nil {
		nu.Skip = "unmappable"
	} else if !se.Lastmod.IsZero() {
		nu.Lastmod, nu.Listed = se.Lastmod, listed
	}
	return nu, true
}

// acquire waits until the host's politeness allows one more request: its rate, a cooldown, its
// requests in flight.
func (r *sitemapReader) acquire(ctx context.Context, host string) error {
	for {
		ok, wait := r.s.lim.TryAcquire(host, r.s.opts.Now())
		if ok {
			return nil
		}
		if wait <= 0 {
			wait = 20 * time.Millisecond // at its cap: one of its requests in flight ends soon
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (r *sitemapReader) report(ev SitemapEvent) {
	if r.c.OnSitemap != nil {
		r.c.OnSitemap(ev)
	}
}
