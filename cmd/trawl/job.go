package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/jsqueue"
	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/ratelimit"
	"github.com/trawl-dev/trawl/scheduler"
	"github.com/trawl-dev/trawl/store"
)

// job is one run of get (or crawl): the pieces wired together from a Config.
type job struct {
	cfg    *Config
	log    *slog.Logger
	layout fetcher.Layout
	bad    badInputs    // skipped input lines and arguments
	usable atomic.Int64 // URLs of the arguments and list that were queued (or were, when the list is unchanged)
	creds  *scheduler.Credentials
	st     queue.Backend // set once the state is open
}

// listFeed enqueues the URL arguments, then streams the list, reporting every skipped entry. A
// URL without a sha256 of its own takes the one sums (if not nil) has for it.
func (j *job) listFeed(args []string, list *listInput, sums *checksumsInput) scheduler.Feed {
	var cs *scheduler.Checksums
	if sums != nil {
		cs = sums.sums
	}
	return func(ctx context.Context, enqueue func([]queue.NewURL) error) error {
		var batch []queue.NewURL
		for i, a := range args {
			e, err := scheduler.NormalizeURL(a)
			var nu queue.NewURL
			if err == nil {
				nu, err = e.NewURL(j.layout, 0)
			}
			if err != nil {
				j.bad.add(badInput{Source: argumentSource, Line: i + 1, Error: fmt.Sprintf("%q: %v", redact(a), err)})
				j.log.Error("skipping argument", "arg", i+1, "err", err)
				continue
			}
			cs.Apply(&nu)
			j.creds.Add(e)
			batch = append(batch, nu)
		}
		j.usable.Add(int64(len(batch)))
		if len(batch) > 0 {
			if err := enqueue(batch); err != nil {
				return err
			}
		}
		if list == nil {
			sums.warnUnused(j.log)
			return nil
		}
		// A list queued whole before, and not changed since, has nothing new: don't read and
		// dedup its million lines again every night. Its bad lines are still reported, every
		// run, until it changes. (Not with userinfo in it: that lives in memory only, so it must
		// be read each run.)
		if list.sig != "" {
			if v, err := j.st.Meta(list.key); err == nil {
				if m, ok := decodeListMemory(v, list.sig); ok {
					j.log.Info("list unchanged since it was queued whole; not read again", "file", list.name, "bad_lines_then", m.bad)
					for _, b := range m.listed {
						j.bad.add(b)
						j.log.Error("skipping bad line", "file", b.Source, "line", b.Line, "err", b.Error)
					}
					if more := m.bad - int64(len(m.listed)); more > 0 {
						j.bad.addUnlisted(more)
						j.log.Error("skipping more bad lines", "file", list.name, "count", more)
					}
					j.usable.Add(1) // it was queued whole with a usable URL: it has one
					return nil
				}
			}
		}
		var listBad badInputs
		var usable atomic.Int64
		err := scheduler.ListFeed(list.r, j.layout, j.creds, cs, func(b scheduler.BadLine) {
			x := badInput{Source: list.name, Line: b.Line, Error: b.Err.Error()}
			j.bad.add(x)
			listBad.add(x)
			j.log.Error("skipping bad line", "file", list.name, "line", b.Line, "err", b.Err)
		})(ctx, func(urls []queue.NewURL) error {
			usable.Add(int64(len(urls)))
			return enqueue(urls)
		})
		j.usable.Add(usable.Load())
		if err == nil && ctx.Err() == nil {
			sums.warnUnused(j.log)
		}
		// Remembered only for a list with a usable URL: one without is a usage error every run.
		if err == nil && list.sig != "" && ctx.Err() == nil && j.creds.Empty() && usable.Load() > 0 {
			n, listed := listBad.snapshot()
			if err := j.st.SetMeta(list.key, encodeListMemory(list.sig, listMemory{bad: n, listed: listed})); err != nil {
				return &scheduler.FatalError{Err: err}
			}
		}
		return err
	}
}

// runJob opens the state and output, runs the scheduler to the end (or the interruption) and maps
// the outcome to an exit code, leaving the run's metadata, status snapshot and report behind.
func runJob(ctx context.Context, command string, cfg *Config, stderr io.Writer, feed func(*job) scheduler.Feed, crawl *scheduler.Crawl, save *saveWatch) error {
	r := &jobRun{command: command, cfg: cfg, crawl: crawl}
	defer r.close()
	if err := r.open(ctx, stderr); err != nil {
		return err
	}
	if err := r.prepare(); err != nil {
		return err
	}
	s := r.scheduler()
	runErr := r.execute(ctx, s, feed)
	return r.end(s, runErr, save)
}

// jobRun is one execution of a job, from its opening to its report: what runJob's steps share.
type jobRun struct {
	command string
	cfg     *Config
	crawl   *scheduler.Crawl // nil for get
	closers []func()         // undone by close, last first

	prog      *progress
	log       *slog.Logger
	j         *job
	f         *fetcher.Fetcher
	statePath string
	st        queue.Backend
	local     *store.Store // the state file, when the job has one (not --queue)
	metrics   *metricsServer
	root      *os.Root
	start     time.Time

	t         *tally
	lim       *limiterWatch
	retryWait *retryWatch
	rm        *runMetrics // with --metrics, set before the run starts
}

func (r *jobRun) defers(f func()) { r.closers = append(r.closers, f) }

func (r *jobRun) close() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
}

// open sets up what the run needs before any work: the log, the fetcher, the state (first: a run
// that finds another one holding it leaves without touching anything), the metrics address and
// the output directory.
func (r *jobRun) open(ctx context.Context, stderr io.Writer) error {
	cfg := r.cfg
	// Parsing the system's trusted roots takes a while before the first handshake can verify
	// anything; do it while the state file is opened and the list read.
	go x509.SystemCertPool()
	r.prog = newProgress(stderr, cfg)
	log, closeLog, err := newLogger(r.prog, cfg)
	if err != nil {
		return usageErr("%v", err)
	}
	r.log = log
	r.defers(closeLog)
	r.j = &job{cfg: cfg, log: log, creds: scheduler.NewCredentials()}
	r.j.layout, _ = fetcher.ParseLayout(cfg.Layout) // validated already

	if cfg.Insecure {
		fmt.Fprintln(stderr, "trawl: WARNING: --insecure: TLS certificates are NOT verified; anyone on the network path can read and alter these downloads")
	}
	if r.f, err = newFetcher(cfg, r.command, log); err != nil {
		return usageErr("%v", err)
	}
	r.defers(r.f.Close)

	// On a shared queue (--queue) there is no state file: the job lives in the engine.
	r.statePath = statePathOf(cfg.Out, cfg.State)
	if cfg.State == "" && cfg.Queue == "" {
		if err := checkStateDir(cfg.Out); err != nil {
			return fatalErr("%v", err)
		}
	}
	st, local, closeState, err := openBackend(ctx, cfg, r.statePath, log)
	if err != nil {
		return fatalErr("%v", err)
	}
	r.st, r.local, r.j.st = st, local, st
	r.defers(closeState)

	// The metrics address is bound before any work, after the state: a run that finds the job's
	// last run still going says so (exit 3), rather than that its metrics port is taken.
	if cfg.Metrics != "" {
		if r.metrics, err = listenMetrics(cfg.Metrics); err != nil {
			return usageErr("%v", err)
		}
		r.defers(r.metrics.close)
		log.Info("serving metrics", "url", r.metrics.url())
	}

	if r.root, err = openOutput(cfg.Out); err != nil {
		return fatalErr("%v", err)
	}
	r.defers(func() { r.root.Close() })
	return nil
}

// prepare records the run's start and queues again what it should retry or revalidate; for a
// crawl, it also readies robots.txt, the cache of its answers and the sitemaps.
func (r *jobRun) prepare() error {
	r.start = time.Now().UTC()
	crawl, cfg := r.crawl, r.cfg
	switch {
	case crawl != nil && r.local != nil:
		// Before prepareRun: a file not kept must be refetched whole, not revalidated (--refresh).
		if err := prepareCrawl(r.local, r.root, cfg); err != nil {
			return fatalErr("%v", err)
		}
	case crawl != nil:
		r.st.SetPageLimit(cfg.MaxPages)
	}
	sitemaps := crawl != nil && cfg.Sitemaps
	if err := prepareRun(r.st, cfg, r.start, sitemaps); err != nil {
		return fatalErr("%v", err)
	}
	if crawl != nil {
		crawl.Cache = r.st
		if !cfg.IgnoreRobots {
			crawl.Robots = r.f
		}
		crawl.Rate = cfg.Rate
		if sitemaps {
			readSitemaps(crawl, r.st, r.f, cfg, r.start, r.log)
		}
	}
	return nil
}

// scheduler builds the run's scheduler and limiter from the config and the command's bounds; every
// committed outcome goes to the tally, the retry watch, the metrics and the progress display.
func (r *jobRun) scheduler() *scheduler.Scheduler {
	cfg, prog, log := r.cfg, r.prog, r.log
	r.t = newTally()
	// A 10% margin on --rate and Crawl-delay: a host never sees more than the rate in any second,
	// even when the network (or a loaded server, late to read a request) brings two requests
	// closer than they were sent.
	b := boundsFor(r.command, cfg)
	r.lim = newLimiterWatch(ratelimit.New(ratelimit.Options{Rate: cfg.Rate, PerHost: b.perHost, Adaptive: b.adaptive, Start: b.start,
		Margin: 0.1}))
	r.retryWait = newRetryWatch()
	retries := cfg.Retries
	if retries == 0 {
		retries = -1 // the scheduler's zero means its default
	}
	var commitEvery time.Duration // the scheduler's default
	if r.crawl != nil {
		// A crawl's next work is in the links of the pages just fetched, and a kill loses the
		// outcomes not yet committed: commit often.
		commitEvery = 10 * time.Millisecond
	}
	maxWait := cfg.MaxWait
	if maxWait == 0 {
		maxWait = -1 // the scheduler's zero waits as long as it takes
	}
	root := r.root
	return scheduler.New(r.st, r.f, r.lim, root, scheduler.Options{
		MaxWait:        maxWait,
		CommitInterval: commitEvery,
		Workers:        b.workers,
		PerHost:        b.perHost,
		HTTP1PerHost:   b.http1PerHost,
		HTTP2Start:     b.http2Start,
		Retries:        retries,
		Crawl:          r.crawl,
		Credentials:    r.j.creds,
		FeedFirst:      r.crawl == nil, // a get's list may change the sums its queued URLs expect
		Flush:          func() error { return fetcher.Flush(root) },
		OnOutcome: func(o scheduler.Outcome) {
			r.t.add(o)
			r.retryWait.add(o)
			r.rm.outcome(o)
			switch o.Kind {
			case scheduler.KindFailed:
				prog.failed(o.Record, log)
			case scheduler.KindNew, scheduler.KindChanged, scheduler.KindUnchanged:
				if cfg.Verbose {
					prog.fetched(o, log)
				}
			}
		},
		ContentDisposition: cfg.ContentDisposition,
	})
}

// execute runs the scheduler with the progress display, the status snapshots and the metrics
// going, and saves the cookies whatever the outcome (they are as good after an interruption).
func (r *jobRun) execute(ctx context.Context, s *scheduler.Scheduler, feed func(*job) scheduler.Feed) error {
	if r.metrics != nil {
		r.rm = newRunMetrics(s.Stats(), r.t, r.retryWait, r.lim, r.start)
		r.metrics.reg.MustRegister(r.rm)
	}
	r.prog.start(newMeter(s.Stats(), r.retryWait, r.lim, r.start), r.log)
	stopPublish := func() {}
	if r.local != nil {
		stopPublish = publishEvery(r.local, r.t, 2*time.Second, r.log)
	}
	runErr := s.Run(ctx, feed(r.j))
	stopPublish()
	r.prog.stop()
	if r.cfg.SaveCookies != "" {
		if err := saveCookies(r.cfg.SaveCookies, r.f, r.log); err != nil && runErr == nil {
			runErr = &scheduler.FatalError{Err: err}
		}
	}
	return runErr
}

// end maps the run's outcome to an exit and leaves behind what scripts and `trawl status` read:
// the summary line, the run's metadata, the status snapshot and the report. Failing to write them
// does not turn a success into a failure, but it is reported (a report asked for and not written
// is a failure).
func (r *jobRun) end(s *scheduler.Scheduler, runErr error, save *saveWatch) error {
	cfg, log := r.cfg, r.log
	end := time.Now().UTC()
	total, hosts, _ := r.t.snapshot()
	nbad, badListed := r.j.bad.snapshot()
	c, cerr := r.st.Counts()
	exit := outcomeOf(runErr, total, c.Pending+c.Leased, nbad)
	if r.command == "get" && runErr == nil && r.j.usable.Load() == 0 {
		// Only a list too long to check before the run gets here (openList).
		exit = runExit{exitUsage, "usage", fmt.Errorf("nothing to download: no usable URL in the arguments or the list, only %s", plural(nbad, "bad line"))}
	}
	if cerr != nil && exit.code != exitFatal {
		exit = runExit{exitFatal, "fatal", cerr}
	}
	if save != nil && exit.code != exitInterrupted && exit.code != exitFatal {
		save.warn(log)
	}
	received := s.Stats().Bytes.Load()
	if r.prog.scriptLog {
		log.Info("summary",
			"new", total.New, "changed", total.Changed, "unchanged", total.Unchanged, "failed", total.Failed,
			"skipped", c.Skipped, "bad_input", nbad, "pending", c.Pending+c.Leased,
			"bytes", received, "elapsed", end.Sub(r.start).Round(time.Millisecond).String(),
			"rate", humanRate(received, end.Sub(r.start)))
	}
	if err := r.st.SetMetas(map[string]string{metaRunEnd: end.Format(time.RFC3339), metaRunOutcome: exit.outcome,
		metaRunExit: strconv.Itoa(exit.code)}); err != nil {
		log.Error("recording the run's end", "err", err)
	}
	if r.local != nil { // a shared job's status is the engine's: no snapshot file to keep
		if err := publishStatus(r.local, r.t, false); err != nil {
			log.Error("writing status snapshot", "err", err)
		}
	}
	if cfg.Report != "" {
		rep := report{Command: r.command, Out: cfg.Out, Start: r.start, End: end,
			DurationSeconds: end.Sub(r.start).Seconds(), Outcome: exit.outcome, ExitCode: exit.code,
			Counts: total, ReceivedBytes: received, Hosts: hosts, Job: jobCountsOf(c),
			BadInputCount: nbad, BadInput: badListed}
		if ferr := r.writeReport(&rep, c, exit); ferr != nil {
			log.Error("writing report", "file", cfg.Report, "err", ferr)
			if exit.code == exitOK {
				exit = runExit{exitFatal, "fatal", fmt.Errorf("writing report: %w", ferr)}
			}
		}
	}
	r.prog.finish(runSummary{counts: total, pending: c.Pending + c.Leased, bad: nbad,
		received: received, elapsed: end.Sub(r.start)})
	if exit.err == nil {
		return nil
	}
	return &exitError{exit.code, exit.err}
}

// writeReport completes rep with what only a state file knows (its path, the skipped URLs by
// reason) and writes it.
func (r *jobRun) writeReport(rep *report, c queue.Counts, exit runExit) error {
	if r.local != nil {
		rep.StateFile = r.statePath
		if c.Skipped > 0 {
			var err error
			if rep.SkippedBy, err = r.local.SkipReasons(); err != nil {
				r.log.Error("counting skipped URLs by reason", "err", err)
			}
		}
	}
	return rep.write(r.cfg.Report, r.st, exit)
}

// runExit is how a run ended.
type runExit struct {
	code    int
	outcome string // for reports and status: done, failed, transient, waiting, interrupted, fatal
	err     error
}

// outcomeOf says how a run ended from the scheduler's error, the run's counts, the URLs left
// queued and the bad input skipped. Bad input makes a run that is otherwise done a failure: it
// is the user's to fix, and a cron job must hear of it every night until it is fixed.
func outcomeOf(runErr error, c runCounts, pending int, bad int64) runExit {
	var fatal *scheduler.FatalError
	var waiting *scheduler.WaitingError
	also := ""
	if bad > 0 {
		also = fmt.Sprintf("; %s skipped (see the log or the report's bad_input)", plural(bad, "bad input line"))
	}
	switch {
	case errors.As(runErr, &fatal):
		return runExit{exitFatal, "fatal", fatal.Err}
	case errors.Is(runErr, scheduler.ErrInterrupted):
		return runExit{exitInterrupted, "interrupted", errors.New("interrupted; run the same command again to continue")}
	case errors.As(runErr, &waiting) && c.Failed <= c.Transient:
		return runExit{exitTransient, "waiting", fmt.Errorf("%d URL(s) not due before %s (Retry-After, a host's cooldown or retry backoff beyond --max-wait); they stay queued for the next run%s",
			pending, waiting.Next.Local().Format(time.RFC3339), also)}
	case runErr != nil && waiting == nil:
		return runExit{exitFatal, "fatal", runErr}
	case c.Failed > c.Transient:
		return runExit{exitFailed, "failed", fmt.Errorf("%d URL(s) failed%s", c.Failed, also)}
	case c.Transient > 0:
		return runExit{exitTransient, "transient", fmt.Errorf("%d URL(s) failed with transient errors; the next run retries them%s", c.Transient, also)}
	case bad > 0:
		return runExit{exitFailed, "failed", fmt.Errorf("%s skipped; the rest is done (see the log or the report's bad_input)", plural(bad, "bad input line"))}
	}
	return runExit{exitOK, "done", nil}
}

// prepareRun records the run's start and queues again what this run should retry or revalidate. A
// crawl that reads sitemaps leaves the URLs they spoke of to be decided once they are read again
// (sitemapsRead).
func prepareRun(st queue.Backend, cfg *Config, start time.Time, sitemaps bool) error {
	began, joined, err := runBegan(st, start)
	if err != nil {
		return err
	}
	if err := st.SetMetas(map[string]string{metaRunStart: began.Format(time.RFC3339), metaRunEnd: "",
		metaRunOutcome: "running", metaRunExit: "", metaRunPID: strconv.Itoa(os.Getpid())}); err != nil {
		return err
	}
	// A new run gives URLs that failed before a fresh retry budget. (Requeue scans every record:
	// skip it when the counters say there is nothing to find, so a restart starts at once.)
	c, err := st.Counts()
	if err != nil {
		return err
	}
	if c.Failed > 0 {
		var before func(queue.Record) bool // nil: all
		if joined {
			before = func(r queue.Record) bool { return r.Updated.Before(began) }
		}
		if _, err := st.Requeue(before); err != nil {
			return err
		}
	}
	cutoff := refreshCutoff(cfg, began)
	switch {
	case cutoff.IsZero():
		return nil
	case cfg.Refresh && !sitemaps && !joined:
		_, err := st.Revalidate(nil)
		return err
	}
	_, err = st.Revalidate(func(r queue.Record) bool {
		return r.Updated.Before(cutoff) && (!sitemaps || r.Lastmod.IsZero())
	})
	return err
}

// liveWorkers is what a shared job's backend says of the workers serving it now, itself included.
type liveWorkers interface {
	Workers() ([]jsqueue.Worker, error)
	Self() jsqueue.Worker
}

// runBegan is when the job's run began: start, this run's, or for a worker joining a shared job
// whose other workers are under way (joined), the start of the earliest of them. A joining worker
// then takes the run as theirs: it neither retries the failures nor revalidates the files they
// have settled since, which would make each worker that joins a pass over the job.
func runBegan(st queue.Backend, start time.Time) (began time.Time, joined bool, err error) {
	lw, ok := st.(liveWorkers)
	if !ok {
		return start, false, nil
	}
	ws, err := lw.Workers()
	if err != nil {
		return start, false, err
	}
	began = start
	for _, w := range ws {
		if w.ID == lw.Self().ID {
			continue // this worker: joined the job as its run was set up
		}
		if !w.Started.IsZero() && w.Started.Before(began) {
			began, joined = w.Started, true
		}
	}
	return began, joined, nil
}

// refreshCutoff is the time before which a URL done is revalidated by this run: its start
// (--refresh), its start less --refresh-after, or the zero time when it refreshes nothing.
func refreshCutoff(cfg *Config, start time.Time) time.Time {
	switch {
	case cfg.Refresh:
		return start
	case cfg.RefreshAfter > 0:
		return start.Add(-cfg.RefreshAfter)
	}
	return time.Time{}
}

// publishEvery writes the status snapshot every interval until the returned func is called.
func publishEvery(st *store.Store, t *tally, every time.Duration, log *slog.Logger) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if err := publishStatus(st, t, true); err != nil {
				log.Warn("writing status snapshot", "err", err)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// bounds are how many requests a run keeps in flight, over all hosts and per host.
type bounds struct {
	workers      int  // over all hosts
	perHost      int  // a host's cap, or with adaptive its ceiling
	adaptive     bool // each host's cap adapts (no --per-host)
	start        int  // an adaptive host's first cap
	http1PerHost int  // the ceiling of an adaptive host that answers over HTTP/1.1
	http2Start   int  // the cap an adaptive host is raised to when it answers over HTTP/2
}

// boundsFor gives the defaults of a command to what the user left unset. A get is the user's own
// list, often from one CDN: a host may have many requests in flight, as streams of one HTTP/2
// connection, so that round trips overlap. A crawl visits sites that did not ask for it and stays
// modest. Either way a host's cap adapts to how it answers, unless --per-host pins it.
func boundsFor(command string, cfg *Config) bounds {
	b := bounds{workers: 256, perHost: 128, start: 8, http1PerHost: 8, http2Start: 16}
	if command == "crawl" {
		b = bounds{workers: 64, perHost: 16, start: 4, http1PerHost: 4}
	}
	if cfg.Concurrency > 0 {
		b.workers = cfg.Concurrency
	}
	b.adaptive = cfg.PerHost == 0
	if !b.adaptive {
		b.perHost, b.http1PerHost, b.http2Start = cfg.PerHost, 0, 0
	}
	b.perHost = min(b.perHost, b.workers)
	return b
}

// newFetcher builds the run's fetcher from cfg: the files it names (CA, client certificate,
// cookies, .netrc) are read here, so a bad one is a usage error before any work starts.
func newFetcher(cfg *Config, command string, log *slog.Logger) (*fetcher.Fetcher, error) {
	header, _ := cfg.header() // validated already
	bw, _ := cfg.bandwidth()  // validated already
	fopts := fetcher.Options{
		CACertFile:     cfg.CACert,
		ClientCertFile: cfg.ClientCert,
		ClientKeyFile:  cfg.ClientKey,
		Insecure:       cfg.Insecure,
		Protocol:       cfg.protocol(command),
		ConnectTimeout: cfg.ConnectTimeout,
		IdleTimeout:    cfg.IdleTimeout,
		Header:         header,
		UserAgent:      cfg.UserAgent,
	}
	if b := ratelimit.NewBandwidth(bw); b != nil {
		fopts.Bandwidth = b
	}
	if cfg.Proxy != "" {
		fopts.Proxy, _ = fetcher.ParseProxy(cfg.Proxy) // validated already
	}
	fopts.NoProxy = cfg.NoProxy
	if cfg.LoadCookies != "" {
		cs, err := fetcher.LoadCookieFile(cfg.LoadCookies)
		switch {
		case errors.Is(err, fs.ErrNotExist) && sameFile(cfg.LoadCookies, cfg.SaveCookies):
			// A session kept in one file (curl's -b F -c F): its first run has none yet.
			log.Info("cookie file not there yet: starting with no cookies", "file", cfg.LoadCookies)
		case err != nil:
			return nil, fmt.Errorf("--load-cookies: %w", err)
		default:
			fopts.Cookies = cs
			log.Info("cookie file read", "file", cfg.LoadCookies, "cookies", len(cs))
		}
	}
	if cfg.SaveCookies != "" {
		// Found out now, not after the run: where the cookies are to be written.
		if fi, err := os.Stat(cfg.SaveCookies); err == nil && fi.IsDir() {
			return nil, fmt.Errorf("--save-cookies %s is a directory", cfg.SaveCookies)
		}
		if dir := filepath.Dir(cfg.SaveCookies); !isDir(dir) {
			return nil, fmt.Errorf("--save-cookies %s: no directory %s to write it in", cfg.SaveCookies, dir)
		}
		fopts.RecordCookies = true
	}
	path, err := cfg.netrcPath()
	if err != nil {
		return nil, err
	}
	if path != "" {
		if fopts.Netrc, err = fetcher.LoadNetrc(path); err != nil {
			return nil, err
		}
	}
	return fetcher.New(fopts)
}

// sameFile reports whether paths a and b name one file, by their cleaned absolute names (the file
// may not exist yet).
func sameFile(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	aa, errA := filepath.Abs(a)
	ab, errB := filepath.Abs(b)
	return errA == nil && errB == nil && aa == ab
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// saveCookies writes the cookies f holds to path (--save-cookies). The log says how many, never
// which.
func saveCookies(path string, f *fetcher.Fetcher, log *slog.Logger) error {
	cs := f.Cookies()
	if err := fetcher.SaveCookieFile(path, cs); err != nil {
		log.Error("saving cookies", "file", path, "err", err)
		return fmt.Errorf("saving cookies: %w", err)
	}
	log.Info("cookies saved", "file", path, "cookies", len(cs))
	return nil
}

// checkStateDir refuses a <out>/.trawl that is a symlink: the default state lives inside the
// output directory, and nothing trawl writes may leave it through a link planted there.
// (--state names a place explicitly, and is taken as given.)
func checkStateDir(out string) error {
	dir := filepath.Join(out, ".trawl")
	fi, err := os.Lstat(dir)
	if err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link; the state is kept inside the output directory (give --state FILE to keep it elsewhere)", dir)
	}
	return nil
}

// openOutput creates the output directory, checks it is writable, and opens it as a root that
// no path (or symlink inside it) can escape.
func openOutput(dir string) (*os.Root, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	probe := fmt.Sprintf(".trawl-probe-%d", os.Getpid())
	f, err := root.OpenFile(probe, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("output directory %s is not writable: %w", dir, err)
	}
	f.Close()
	root.Remove(probe)
	return root, nil
}
