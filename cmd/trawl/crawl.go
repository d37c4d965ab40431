package main

import (
	"context"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/trawl-dev/trawl/extract"
	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/scheduler"
	"github.com/trawl-dev/trawl/store"
)

func newCrawlCmd(stderr io.Writer) *cobra.Command {
	cfg := defaultConfig()
	var configFile string
	cmd := &cobra.Command{
		Use:   "crawl [flags] SEED...",
		Short: "Crawl from seed URLs: follow links in scope, save pages and their images",
		Long: `Crawl from the seed URLs: fetch each page, follow its links that are in scope, and fetch
the page's requisites (images, stylesheets, scripts, icons) even when they are out of scope, on any
host (--same-host-assets: only the seeds' hosts), without following them. A stylesheet's imports
and url()s are fetched too, down to a chain of 5 requisites from the page; with --max-pages N, at
most 100×N requisites are queued. With --depth or --max-pages the crawl goes level by level, so
that --depth counts the shortest path to a page and --max-pages keeps the shallowest pages, the
same ones every run (each level waits for the slowest page of the one before). robots.txt is
fetched once per host and obeyed (its Crawl-delay becomes the host's request rate), unless
--ignore-robots. Off-scope and disallowed links, and those beyond a limit, are recorded with the
reason they were skipped. With --sitemaps, the pages the seeds' hosts list in their sitemaps
(robots.txt Sitemap: lines, /sitemap.xml, their indexes; gzip or text) are queued too, in scope, at
depth 1; a refresh then revalidates only those whose <lastmod> is newer than their last fetch.

Stop it at any moment (Ctrl-C, kill -9, a reboot) and run the same command again: it finishes the
crawl with the files an uninterrupted crawl produces; only the pages that were in flight (or had
finished in the last few milliseconds, before their commit) are fetched again.

` + exitCodesHelp,
		Example: `  trawl crawl https://example.org/gallery/ -o mirror/
  trawl crawl --save 'image/*' --depth 3 https://example.org/gallery/ -o images/
  trawl crawl --scope domain --max-pages 10000 --exclude '\?sort=' https://example.org/
  trawl crawl --sitemaps --refresh-after 20h https://example.org/ -o mirror/`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, seeds []string) error {
			if configFile != "" {
				if err := loadConfigFile(configFile, &cfg, cmd.Flags()); err != nil {
					return usageErr("%v", err)
				}
			}
			if err := cfg.validate(); err != nil {
				return usageErr("%v", err)
			}
			if len(seeds) == 0 {
				return usageErr("nothing to crawl: give one or more seed URLs (see trawl crawl --help)")
			}
			if cfg.Checksums != "" {
				// (Only a config file can set it: crawl has no such flag.)
				return usageErr("checksums: a crawl finds its files as it goes; verifying them against sums is for trawl get, whose files are listed")
			}
			// Seeds lose their userinfo here: the scope and the queue see plain URLs, and the
			// credentials ride along in memory only.
			entries := make([]scheduler.ListEntry, len(seeds))
			plain := make([]string, len(seeds))
			for i, s := range seeds {
				e, err := scheduler.NormalizeURL(s)
				if err != nil {
					return usageErr("seed %q: %v", redact(s), err)
				}
				entries[i], plain[i] = e, e.URL
			}
			crawl, save, err := newCrawl(&cfg, plain)
			if err != nil {
				return usageErr("%v", err)
			}
			seedURLs, err := crawl.Seeds(plain)
			if err != nil {
				return usageErr("seed: %v", err)
			}
			return runJob(cmd.Context(), "crawl", &cfg, stderr, func(j *job) scheduler.Feed {
				for _, e := range entries {
					j.creds.Add(e)
				}
				return func(_ context.Context, enqueue func([]queue.NewURL) error) error {
					return enqueue(seedURLs)
				}
			}, crawl, save)
		},
	}
	addCrawlFlags(cmd.Flags(), &cfg, &configFile)
	return cmd
}

// newCrawl builds the scheduler's crawl settings from the config; the run fills in the fetcher
// and the store.
func newCrawl(cfg *Config, seeds []string) (*scheduler.Crawl, *saveWatch, error) {
	include, exclude, _ := cfg.regexps() // validated already
	scope, err := extract.NewScope(seeds, extract.ScopeOptions{
		Mode:           extract.ScopeMode(cfg.Scope),
		MaxDepth:       cfg.Depth,
		Include:        include,
		Exclude:        exclude,
		SameHostAssets: cfg.SameHostAssets,
	})
	if err != nil {
		return nil, nil, err
	}
	c := &scheduler.Crawl{Scope: scope, Save: cfg.saveFilter(), MaxPages: cfg.MaxPages,
		Agent: extract.RobotsAgent(cfg.UserAgent)}
	var w *saveWatch
	if c.Save != nil {
		w = newSaveWatch(cfg.Save)
		c.Save = w.filter(c.Save)
	}
	if cfg.Sitemaps {
		c.Sitemaps = seeds
		c.Levels = breadthFirst(cfg)
	}
	c.Layout, _ = fetcher.ParseLayout(cfg.Layout)      // validated already
	c.Follow, _ = extract.CompileSelectors(cfg.Follow) // validated already
	c.Select, _ = extract.CompileSelectors(cfg.Select)
	return c, w, nil
}

// prepareCrawl readies the job's state for a crawl run: the page limit; breadth-first order when a
// depth or page limit makes the order matter (store.BreadthFirst: each page at its shortest depth,
// the shallowest pages first), kept for the job's later runs; and the files earlier runs fetched
// without keeping (--save) that this one keeps, queued again (widenSave).
func prepareCrawl(st *store.Store, root *os.Root, cfg *Config) error {
	st.SetPageLimit(cfg.MaxPages)
	if breadthFirst(cfg) {
		if err := st.BreadthFirst(); err != nil {
			return err
		}
	}
	return widenSave(st, root, cfg)
}

// breadthFirst says whether a crawl goes level by level: when a depth or page limit makes the order
// matter.
func breadthFirst(cfg *Config) bool { return cfg.Depth > 0 || cfg.MaxPages > 0 }
