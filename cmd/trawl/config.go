package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/trawl-dev/trawl/extract"
	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/ratelimit"
)

// Config is every setting of a job. Each field has a flag and a key in the config file
// (config.example.yaml documents them all); a flag given on the command line overrides the file.
type Config struct {
	Input          string        `yaml:"input"`
	Checksums      string        `yaml:"checksums"`
	Out            string        `yaml:"out"`
	State          string        `yaml:"state"`
	Concurrency    int           `yaml:"concurrency"`
	PerHost        int           `yaml:"per_host"`
	Rate           float64       `yaml:"rate"`
	LimitRate      string        `yaml:"limit_rate"`
	Retries        int           `yaml:"retries"`
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	IdleTimeout    time.Duration `yaml:"idle_timeout"`
	MaxWait        time.Duration `yaml:"max_wait"`
	Queue          string        `yaml:"queue"`
	Job            string        `yaml:"job"`
	LeaseTime      time.Duration `yaml:"lease_time"`
	NATSCreds      string        `yaml:"nats_creds"`
	NATSCA         string        `yaml:"nats_ca"`
	CACert         string        `yaml:"ca_cert"`
	ClientCert     string        `yaml:"client_cert"`
	ClientKey      string        `yaml:"client_key"`
	Insecure       bool          `yaml:"insecure"`
	HTTP2          bool          `yaml:"http2"`
	HTTP11         bool          `yaml:"http1_1"`
	Headers        []string      `yaml:"headers"`
	UserAgent      string        `yaml:"user_agent"`
	LoadCookies    string        `yaml:"load_cookies"`
	SaveCookies    string        `yaml:"save_cookies"`
	Netrc          bool          `yaml:"netrc"`
	NetrcFile      string        `yaml:"netrc_file"`
	Proxy          string        `yaml:"proxy"`
	NoProxy        string        `yaml:"no_proxy"`
	Layout         string        `yaml:"layout"`
	Quiet          bool          `yaml:"quiet"`
	Verbose        bool          `yaml:"verbose"`
	LogFormat      string        `yaml:"log_format"`
	Refresh        bool          `yaml:"refresh"`
	RefreshAfter   time.Duration `yaml:"refresh_after"`
	Report         string        `yaml:"report"`
	LogFile        string        `yaml:"log_file"`
	Metrics        string        `yaml:"metrics"`
	// Crawl only.
	Scope          string   `yaml:"scope"`
	Depth          int      `yaml:"depth"`
	MaxPages       int      `yaml:"max_pages"`
	Include        []string `yaml:"include"`
	Exclude        []string `yaml:"exclude"`
	SameHostAssets bool     `yaml:"same_host_assets"`
	Save           []string `yaml:"save"`
	IgnoreRobots   bool     `yaml:"ignore_robots"`
	Follow         []string `yaml:"follow"`
	Select         []string `yaml:"select"`
	Sitemaps       bool     `yaml:"sitemaps"`
	// ProgressInterval is how often a plain progress line is written when stderr is not a terminal.
	ProgressInterval time.Duration `yaml:"progress_interval"`
	// ContentDisposition names files by the server's Content-Disposition filename.
	ContentDisposition bool `yaml:"content_disposition"`
}

func defaultConfig() Config {
	return Config{
		Out:              ".",
		Retries:          5,
		ConnectTimeout:   30 * time.Second,
		IdleTimeout:      60 * time.Second,
		MaxWait:          5 * time.Minute,
		LeaseTime:        30 * time.Second,
		UserAgent:        "trawl/" + fetcher.Version,
		Layout:           string(fetcher.Mirror),
		LogFormat:        "text",
		ProgressInterval: 5 * time.Second,
		Scope:            "prefix",
	}
}

// addFlags binds the job flags to cfg's fields.
func addFlags(fs *pflag.FlagSet, cfg *Config, configFile *string) {
	fs.StringVarP(&cfg.Input, "input", "i", cfg.Input, "read URLs from `FILE`, one per line (\"-\" = stdin); optional tab-separated fields: the output path, and the file's sha256 as sha256:HEX")
	fs.StringVar(&cfg.Checksums, "checksums", cfg.Checksums, "verify files against the sha256 sums in `FILE` (\"-\" = stdin; sha256sum output, names matched against output paths or URLs, see README): a file whose sum differs is not kept and its URL fails")
	addCommonFlags(fs, cfg, configFile)
}

// addCrawlFlags binds the flags of trawl crawl.
func addCrawlFlags(fs *pflag.FlagSet, cfg *Config, configFile *string) {
	fs.StringVar(&cfg.Scope, "scope", cfg.Scope, "pages followed: prefix (under the seed's directory), host (the seed's host) or domain (its registrable domain)")
	fs.IntVar(&cfg.Depth, "depth", cfg.Depth, "follow links at most `N` pages deep from a seed (0 = unlimited)")
	fs.IntVar(&cfg.MaxPages, "max-pages", cfg.MaxPages, "queue at most `N` pages, and at most 100×N page requisites, which are not counted as pages (0 = unlimited)")
	fs.StringArrayVar(&cfg.Include, "include", cfg.Include, "follow only pages whose URL matches `REGEX` (repeatable: any may match)")
	fs.StringArrayVar(&cfg.Exclude, "exclude", cfg.Exclude, "never fetch URLs matching `REGEX` (repeatable)")
	fs.BoolVar(&cfg.SameHostAssets, "same-host-assets", cfg.SameHostAssets, "fetch page requisites (images, styles, scripts) only from the seeds' hosts, not from any host")
	fs.StringSliceVar(&cfg.Save, "save", cfg.Save, "keep only files of these media `TYPES` on disk, e.g. 'image/*' (pages are still fetched and parsed)")
	fs.BoolVar(&cfg.IgnoreRobots, "ignore-robots", cfg.IgnoreRobots, "do not fetch or obey robots.txt")
	fs.StringArrayVar(&cfg.Follow, "follow", cfg.Follow, "follow only the page links of elements matching CSS `SELECTOR`, e.g. 'a.next' (repeatable: any may match)")
	fs.StringArrayVar(&cfg.Select, "select", cfg.Select, "fetch only the requisites (images, styles...) of elements matching CSS `SELECTOR`, e.g. 'img.gallery' (repeatable)")
	fs.BoolVar(&cfg.Sitemaps, "sitemaps", cfg.Sitemaps, "also queue the pages the seeds' hosts list in their sitemaps (robots.txt Sitemap: lines, /sitemap.xml), in scope, at depth 1; on a refresh, their <lastmod> says which pages changed")
	addCommonFlags(fs, cfg, configFile)
}

func addCommonFlags(fs *pflag.FlagSet, cfg *Config, configFile *string) {
	fs.StringVarP(&cfg.Out, "out", "o", cfg.Out, "output `DIR`")
	fs.StringVar(&cfg.State, "state", cfg.State, "job state `FILE` (default <out>/.trawl/state.db)")
	fs.IntVarP(&cfg.Concurrency, "concurrency", "c", cfg.Concurrency, "requests in flight over all hosts (default 256 for get, 64 for crawl)")
	fs.IntVar(&cfg.PerHost, "per-host", cfg.PerHost, "pin the requests in flight per host to `N` (default: adaptive, see README: for get up to 128 over HTTP/2 and 8 connections over HTTP/1.1; for crawl up to 16 and 4)")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "requests per second per host, paced 10% under so a server never counts more (0 = no limit)")
	fs.StringVar(&cfg.LimitRate, "limit-rate", cfg.LimitRate, "global bandwidth cap in bytes per second, e.g. 500k, 10M (empty or 0 = no limit)")
	fs.IntVar(&cfg.Retries, "retries", cfg.Retries, "retries per URL after the first attempt, for transient errors")
	durationVar(fs, &cfg.ConnectTimeout, "connect-timeout", cfg.ConnectTimeout, "timeout for connecting and the TLS handshake")
	durationVar(fs, &cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "a transfer with no bytes for this long is stalled and retried (there is no whole-download timeout)")
	fs.StringVar(&cfg.Queue, "queue", cfg.Queue, "share the job with other trawl workers on this NATS JetStream server (`nats://HOST:PORT`) instead of a state file; needs --job")
	fs.StringVar(&cfg.Job, "job", cfg.Job, "the shared job's `NAME` (letters, digits, - and _): every worker given the same name works on the same queue")
	fs.StringVar(&cfg.NATSCreds, "nats-creds", cfg.NATSCreds, "with --queue: the NATS user credentials `FILE` (JWT and NKey seed)")
	fs.StringVar(&cfg.NATSCA, "nats-ca", cfg.NATSCA, "with --queue: trust the CA certificates in PEM `FILE` for the NATS server's TLS")
	durationVar(fs, &cfg.LeaseTime, "lease-time", cfg.LeaseTime, "with --queue: how long a worker's leases outlive it (a dead worker's URLs go to others after this); set by the worker that makes the job, later ones take the job's")
	durationVar(fs, &cfg.MaxWait, "max-wait", cfg.MaxWait, "end the run (exit 4) when all that is left waits longer than this for a Retry-After, a host's cooldown or a retry; those URLs stay queued for the next run (0 = never wait past what is due now)")
	fs.StringVar(&cfg.CACert, "ca-cert", cfg.CACert, "trust the CA certificates in PEM `FILE`, besides the system's")
	fs.StringVar(&cfg.ClientCert, "client-cert", cfg.ClientCert, "TLS client certificate PEM `FILE` (with --client-key)")
	fs.StringVar(&cfg.ClientKey, "client-key", cfg.ClientKey, "TLS client key PEM `FILE`")
	fs.BoolVar(&cfg.Insecure, "insecure", cfg.Insecure, "DANGEROUS: do not verify TLS certificates")
	fs.BoolVar(&cfg.HTTP2, "http2", cfg.HTTP2, "speak HTTP/2 only (default: get offers HTTP/2, with big files over HTTP/1.1 connections of their own; crawl speaks HTTP/1.1)")
	fs.BoolVar(&cfg.HTTP11, "http1.1", cfg.HTTP11, "speak HTTP/1.1 only: a connection per request in flight to a host")
	fs.StringArrayVarP(&cfg.Headers, "header", "H", cfg.Headers, "extra request header \"Name: value\" (repeatable; sent only to the URL's own host)")
	fs.StringVar(&cfg.UserAgent, "user-agent", cfg.UserAgent, "User-Agent header")
	fs.StringVar(&cfg.LoadCookies, "load-cookies", cfg.LoadCookies, "send the cookies of Netscape cookies.txt `FILE` (as curl, wget, yt-dlp and browser extensions write it) to the hosts they belong to")
	fs.StringVar(&cfg.SaveCookies, "save-cookies", cfg.SaveCookies, "when the run ends, write the cookies it holds (loaded, and set by servers; session cookies too) to cookies.txt `FILE`, mode 0600")
	fs.BoolVar(&cfg.Netrc, "netrc", cfg.Netrc, "log in with the credentials of ~/.netrc ($NETRC if set): Basic auth sent to each machine listed, never to another host")
	fs.StringVar(&cfg.NetrcFile, "netrc-file", cfg.NetrcFile, "like --netrc, with the .netrc `FILE` given")
	fs.StringVar(&cfg.Proxy, "proxy", cfg.Proxy, "send requests through the proxy at `URL`: http://, https://, socks5:// (names resolved here) or socks5h:// (by the proxy), optionally with user:password@ (default: the HTTP_PROXY, HTTPS_PROXY and NO_PROXY environment)")
	fs.StringVar(&cfg.NoProxy, "no-proxy", cfg.NoProxy, "reach these hosts directly, not through the proxy: a comma-separated `LIST` of host names (their subdomains too), IP addresses, CIDR blocks, or * for all (replaces NO_PROXY)")
	fs.StringVar(&cfg.Layout, "layout", cfg.Layout, "output layout: mirror (host/path) or flat (file names only)")
	fs.BoolVar(&cfg.ContentDisposition, "content-disposition", cfg.ContentDisposition, "name a file by its server's Content-Disposition filename (made a safe name: never a directory; in mirror layout it replaces the last part of the path; a clash gets ~2), decided at a URL's first download and kept by later runs")
	fs.StringVar(configFile, "config", "", "read settings from YAML `FILE` (flags override it)")
	fs.BoolVarP(&cfg.Quiet, "quiet", "q", cfg.Quiet, "print nothing but errors")
	fs.BoolVarP(&cfg.Verbose, "verbose", "v", cfg.Verbose, "print a line for every file fetched: its URL, status, size and path")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log line format: text or json")
	fs.BoolVar(&cfg.Refresh, "refresh", cfg.Refresh, "revalidate every URL already done with a conditional request (If-None-Match / If-Modified-Since); unchanged files are not downloaded again")
	durationVar(fs, &cfg.RefreshAfter, "refresh-after", cfg.RefreshAfter, "revalidate URLs done longer than `DURATION` ago, e.g. 20h or 7d (0 = never)")
	fs.StringVar(&cfg.Report, "report", cfg.Report, "write a JSON report of the run to `FILE` when it ends (also when interrupted)")
	fs.StringVar(&cfg.LogFile, "log-file", cfg.LogFile, "append log lines to `FILE` instead of stderr")
	fs.StringVar(&cfg.Metrics, "metrics", cfg.Metrics, "serve Prometheus metrics at http://`ADDR`/metrics while the run goes on, e.g. 127.0.0.1:9090 or :9090 (port 0: a free port, logged at the start)")
	durationVar(fs, &cfg.ProgressInterval, "progress-interval", cfg.ProgressInterval, "how often to log a progress line when stderr is not a terminal")
}

// validate checks what flags and YAML types cannot, before any work starts. It is long because it
// is a table: one case per rule, each with the message the user sees.
func (c *Config) validate() error {
	switch {
	case c.Concurrency < 0:
		return fmt.Errorf("--concurrency must be at least 1 (0: the default), got %d", c.Concurrency)
	case c.PerHost < 0:
		return fmt.Errorf("--per-host must be at least 1 (0: adaptive, the default), got %d", c.PerHost)
	case c.HTTP2 && c.HTTP11:
		return errors.New("--http2 and --http1.1 exclude each other")
	case c.Quiet && c.Verbose:
		return errors.New("--quiet and --verbose exclude each other")
	case c.Rate < 0:
		return fmt.Errorf("--rate must not be negative, got %g", c.Rate)
	case c.Retries < 0:
		return fmt.Errorf("--retries must not be negative, got %d", c.Retries)
	case c.ConnectTimeout <= 0:
		return fmt.Errorf("--connect-timeout must be positive, got %s", c.ConnectTimeout)
	case c.Queue != "" && c.Job == "":
		return errors.New("--queue needs --job NAME: the name every worker of the shared job is given")
	case c.Queue == "" && (c.NATSCreds != "" || c.NATSCA != ""):
		return errors.New("--nats-creds and --nats-ca are for a shared job: give --queue nats://HOST:PORT too")
	case c.Queue == "" && c.Job != "":
		return errors.New("--job names a job shared on --queue; give --queue nats://HOST:PORT too")
	case c.Queue != "" && (c.Depth > 0 || c.MaxPages > 0):
		return errors.New("--depth and --max-pages need a state file for now: a shared job (--queue) does not crawl level by level")
	case c.Queue != "" && c.Sitemaps:
		return errors.New("--sitemaps needs a state file for now: a shared job (--queue) does not read sitemaps")
	case c.Queue != "" && c.Layout == "flat":
		return errors.New("--layout flat and --queue exclude each other for now: a shared job does not yet keep two URLs from one file name")
	case c.Queue != "" && c.ContentDisposition:
		return errors.New("--content-disposition and --queue exclude each other for now: a shared job cannot yet record a name the server gives")
	case c.Queue != "" && c.State != "":
		return errors.New("--state and --queue exclude each other: a shared job lives in the queue, not in a state file")
	case c.Queue != "" && len(c.Save) > 0:
		return errors.New("--save needs a state file for now: a shared job (--queue) cannot yet fetch again what an earlier --save left out")
	case c.Queue != "" && checkShared(c.Queue, c.Job) != nil:
		return checkShared(c.Queue, c.Job)
	case c.LeaseTime <= 0:
		return fmt.Errorf("--lease-time must be positive, got %s", c.LeaseTime)
	case c.MaxWait < 0:
		return fmt.Errorf("--max-wait must not be negative, got %s", c.MaxWait)
	case c.IdleTimeout <= 0:
		return fmt.Errorf("--idle-timeout must be positive, got %s", c.IdleTimeout)
	case (c.ClientCert == "") != (c.ClientKey == ""):
		return errors.New("--client-cert and --client-key go together")
	case c.Out == "":
		return errors.New("--out must not be empty")
	case c.Depth < 0:
		return fmt.Errorf("--depth must not be negative, got %d", c.Depth)
	case c.MaxPages < 0:
		return fmt.Errorf("--max-pages must not be negative, got %d", c.MaxPages)
	case c.Scope != "prefix" && c.Scope != "host" && c.Scope != "domain":
		return fmt.Errorf("--scope must be prefix, host or domain, got %q", c.Scope)
	case c.RefreshAfter < 0:
		return fmt.Errorf("--refresh-after must not be negative, got %s", c.RefreshAfter)
	case c.ProgressInterval <= 0:
		return fmt.Errorf("--progress-interval must be positive, got %s", c.ProgressInterval)
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("--log-format must be text or json, got %q", c.LogFormat)
	}
	if _, err := fetcher.ParseLayout(c.Layout); err != nil {
		return err
	}
	if c.Metrics != "" {
		if err := checkMetricsAddr(c.Metrics); err != nil {
			return err
		}
	}
	if _, err := c.bandwidth(); err != nil {
		return err
	}
	if _, err := c.header(); err != nil {
		return err
	}
	if _, _, err := c.regexps(); err != nil {
		return err
	}
	if c.Proxy != "" {
		if _, err := fetcher.ParseProxy(c.Proxy); err != nil {
			return fmt.Errorf("--proxy: %v", err)
		}
	}
	if _, err := fetcher.ParseNoProxy(c.NoProxy); err != nil {
		return fmt.Errorf("--no-proxy: %v", err)
	}
	for flag, exprs := range map[string][]string{"--follow": c.Follow, "--select": c.Select} {
		if _, err := extract.CompileSelectors(exprs); err != nil {
			return fmt.Errorf("%s: %v", flag, err)
		}
	}
	for _, t := range c.Save {
		if !validMediaPattern(t) {
			return fmt.Errorf("--save %q: want a media type like image/jpeg or image/*", t)
		}
	}
	return nil
}

func (c *Config) regexps() (include, exclude []*regexp.Regexp, err error) {
	for _, set := range []struct {
		flag string
		src  []string
		dst  *[]*regexp.Regexp
	}{{"--include", c.Include, &include}, {"--exclude", c.Exclude, &exclude}} {
		for _, r := range set.src {
			re, err := regexp.Compile(r)
			if err != nil {
				return nil, nil, fmt.Errorf("%s %q: %w", set.flag, r, err)
			}
			*set.dst = append(*set.dst, re)
		}
	}
	return include, exclude, nil
}

func validMediaPattern(p string) bool {
	typ, sub, ok := strings.Cut(strings.TrimSpace(p), "/")
	return ok && typ != "" && sub != "" && !strings.ContainsAny(p, " ;,")
}

// saveFilter is the --save test on a file's media type; nil keeps everything.
func (c *Config) saveFilter() func(string) bool {
	if len(c.Save) == 0 {
		return nil
	}
	return func(mt string) bool {
		for _, p := range c.Save {
			if mediaMatch(p, mt) {
				return true
			}
		}
		return false
	}
}

// mediaMatch reports whether the --save pattern p (image/png, image/*) matches the media type mt.
func mediaMatch(p, mt string) bool {
	p = strings.ToLower(strings.TrimSpace(p))
	return p == mt || (strings.HasSuffix(p, "/*") && strings.HasPrefix(mt, strings.TrimSuffix(p, "*")))
}

func (c *Config) bandwidth() (int64, error) {
	if c.LimitRate == "" {
		return 0, nil
	}
	n, err := ratelimit.ParseBytes(c.LimitRate)
	if err != nil {
		return 0, fmt.Errorf("--limit-rate %q: %w", c.LimitRate, err)
	}
	return n, nil
}

// netrcPath is the .netrc to read: --netrc-file, else with --netrc $NETRC or ~/.netrc; "" for
// none.
func (c *Config) netrcPath() (string, error) {
	switch {
	case c.NetrcFile != "":
		return c.NetrcFile, nil
	case !c.Netrc:
		return "", nil
	case os.Getenv("NETRC") != "":
		return os.Getenv("NETRC"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", errors.New("--netrc: no home directory to find .netrc in (set NETRC or give --netrc-file FILE)")
	}
	return filepath.Join(home, ".netrc"), nil
}

// header parses the -H values.
func (c *Config) header() (http.Header, error) {
	h := make(http.Header)
	for _, line := range c.Headers {
		name, value, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") || strings.ContainsAny(value, "\r\n") {
			return nil, fmt.Errorf("--header %q: want \"Name: value\"", line)
		}
		h.Add(name, strings.TrimSpace(value))
	}
	return h, nil
}

// protocol is the HTTP version the flags ask for, or the command's default: a get offers HTTP/2
// (its many requests in flight to one host become streams of one connection); a crawl speaks
// HTTP/1.1, as its modest per-host bound gains little from multiplexing, and parsing pages makes
// it CPU-bound, where Go's HTTP/2 client, which reads every stream of a connection in one
// goroutine, is slower.
func (c *Config) protocol(command string) fetcher.Protocol {
	switch {
	case c.HTTP2:
		return fetcher.ProtocolHTTP2
	case c.HTTP11 || command == "crawl":
		return fetcher.ProtocolHTTP1
	}
	return fetcher.ProtocolAuto
}
