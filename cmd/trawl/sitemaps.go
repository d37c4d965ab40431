package main

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/scheduler"
)

// readSitemaps makes a crawl read its seeds' sitemaps (--sitemaps) with f, logging what becomes of
// each file. A refresh run reads again those read before its cutoff, and once they are read,
// revalidates what they say changed since it was fetched, and what they no longer vouch for as a
// refresh would; what they vouch for as unchanged is not asked about (see sitemapsRead).
func readSitemaps(crawl *scheduler.Crawl, st queue.Backend, f *fetcher.Fetcher, cfg *Config, start time.Time, log *slog.Logger) {
	crawl.SitemapFetcher = f
	crawl.OnSitemap = func(ev scheduler.SitemapEvent) { logSitemap(log, ev) }
	if cutoff := refreshCutoff(cfg, start); !cutoff.IsZero() {
		crawl.SitemapsAgain = cutoff
		crawl.SitemapsRead = func() error {
			_, err := st.Revalidate(sitemapsRead(cutoff))
			return err
		}
	}
}

// sitemapsRead is the test of a refresh run, once its sitemaps are read again, for the URLs done
// that a sitemap spoke of (prepareRun left them): a sitemap read since the cutoff (Listed) has the
// last word — revalidated if its <lastmod> is later than the URL's last fetch (Updated), left as
// it is otherwise, as known unchanged; one that no sitemap spoke of since (dropped from its
// sitemap, or its sitemap could not be read) is revalidated as any other URL is by this run.
func sitemapsRead(cutoff time.Time) func(queue.Record) bool {
	return func(r queue.Record) bool {
		switch {
		case r.Lastmod.IsZero():
			return false // prepareRun's, already revalidated or not due
		case r.Listed.Before(cutoff):
			return r.Updated.Before(cutoff)
		}
		return r.Lastmod.After(r.Updated)
	}
}

// logSitemap tells what became of one sitemap file: read (info), refused or not read (a warning;
// a missing /sitemap.xml, which need not exist, is only info).
func logSitemap(log *slog.Logger, ev scheduler.SitemapEvent) {
	url := redact(ev.URL)
	switch {
	case ev.Known:
		return
	case ev.Err == nil:
		if ev.Kind.String() == "index" {
			log.Info("sitemap read", "url", url, "kind", ev.Kind.String(), "sitemaps", ev.Listed)
		} else {
			log.Info("sitemap read", "url", url, "kind", ev.Kind.String(), "pages", ev.Pages, "skipped", ev.Skipped)
		}
	case ev.Guessed && (ev.Status == http.StatusNotFound || ev.Status == http.StatusGone):
		log.Info("no sitemap", "url", url, "status", ev.Status)
	case ev.Partial:
		log.Warn("sitemap not read; the next run tries again", "url", url, "pages", ev.Pages, "err", ev.Err)
	default:
		log.Warn("sitemap refused", "url", url, "kind", ev.Kind.String(), "pages", ev.Pages, "err", ev.Err)
	}
}
