package scheduler

import (
	"context"
	"errors"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/ratelimit"
)

// Queue is what the scheduler needs of the job store: lease/ack semantics with per-host queues.
// Every backend implements it (*store.Store, the embedded default).
type Queue = queue.Queue

// Fetcher downloads one URL to one file. *fetcher.Fetcher implements it.
type Fetcher interface {
	Fetch(ctx context.Context, root *os.Root, req fetcher.Request) (fetcher.Response, error)
}

// Limiter is per-host politeness, asked without blocking. *ratelimit.Limiter implements it.
type Limiter interface {
	TryAcquire(host string, now time.Time) (ok bool, wait time.Duration)
	Release(host string)
	// Done is Release with what the request said about the host's load, for a cap that adapts.
	Done(host string, s ratelimit.Signal)
	// SetHostMax bounds an adaptive host's cap (hosts that answer over HTTP/1.1); Raise lifts it
	// to at least n (hosts that answer over HTTP/2).
	SetHostMax(host string, n int)
	Raise(host string, n int)
	Cooldown(host string, until time.Time)
	SetHostRate(host string, perSecond float64)
	Forget(host string)
	// Sent tells when a request to host went out (a new connection's handshake delays it past
	// its grant), or may have, from another worker the host was just handed over from.
	Sent(host string, at time.Time)
}

var _ Limiter = (*ratelimit.Limiter)(nil)

// Feed fills the queue while the run goes on (a URL list being streamed in). It returns when its
// input is exhausted; Run does not finish before it has.
type Feed func(ctx context.Context, enqueue func([]queue.NewURL) error) error

// Options tune a run. Zero fields take the default in their comment.
type Options struct {
	// Workers bounds the requests in flight over all hosts (a goroutine each, waiting on the
	// network): it protects the machine's memory and file descriptors, while politeness is per
	// host (the Limiter). Default 16.
	Workers int
	PerHost int // the most requests a host may have in flight, sizes lease windows; default 4
	// HTTP1PerHost is the ceiling of the adaptive cap of a host that answers over HTTP/1.1,
	// where every request in flight is a connection of its own; 0 = PerHost. HTTP2Start is the
	// cap a host's adaptive cap is raised to when it answers over HTTP/2, where requests are
	// streams of one connection; 0 = no raise.
	HTTP1PerHost int
	HTTP2Start   int
	Retries      int           // retries after the first attempt; default 5; negative = none
	BackoffBase  time.Duration // first retry delay, doubled per attempt with jitter; default 1s
	BackoffMax   time.Duration // cap on a retry delay; default 5m
	// MaxWait ends the run when all the work left is due later than this from now (a long
	// Retry-After, a host's cooldown, a retry's backoff): Run returns a *WaitingError and those
	// URLs stay queued with their due times. 0 waits as long as the work needs; a negative value
	// never waits past what is due now.
	MaxWait time.Duration
	// Grace is how long in-flight transfers may finish after the run is cancelled; default 5s.
	Grace time.Duration
	// CommitInterval and CommitMax bound how long and how many outcomes wait for one commit;
	// defaults 50ms and 1024. Every commit flushes the output file system first.
	CommitInterval time.Duration
	CommitMax      int
	// Flush makes the files written so far durable; called before any commit that records a file
	// done. Nil = nothing to flush (tests on tmpfs).
	Flush func() error
	// Credentials put back the userinfo of listed URLs for their requests; nil = none.
	Credentials *Credentials
	// FeedFirst holds the queue back while the feed runs on a job that has records from earlier
	// runs: the list, read again, may give its known URLs another sha256 to expect (or a first
	// one), and a URL fetched before its line is read would be judged, and its file published, by
	// the old word. A job new in this run is fetched as the feed fills it.
	FeedFirst bool
	// Crawl, when set, makes the run follow links (see Crawl); nil fetches only what is queued.
	// A mirror-layout crawl saves a page whose URL is redirected to itself with a "/" added as
	// that directory's index.html (see naming).
	Crawl *Crawl
	// ContentDisposition lets a URL's first download take its file name from the answer's
	// Content-Disposition (--content-disposition; see fetcher.Naming). The name is recorded with
	// the URL before the body is written, so it needs a Queue that is a queue.Renamer.
	ContentDisposition bool
	// OnOutcome is called, from the committing goroutine, after an outcome is committed.
	OnOutcome func(Outcome)
	// Now and Jitter are test hooks: the clock, and a random factor in [0,1) for backoff.
	Now    func() time.Time
	Jitter func() float64
}

func (o *Options) setDefaults() {
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.PerHost <= 0 {
		o.PerHost = 4
	}
	if o.Retries == 0 {
		o.Retries = 5
	} else if o.Retries < 0 {
		o.Retries = 0
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 5 * time.Minute
	}
	if o.Grace <= 0 {
		o.Grace = 5 * time.Second
	}
	if o.CommitInterval <= 0 {
		o.CommitInterval = 50 * time.Millisecond
	}
	if o.CommitMax <= 0 {
		o.CommitMax = 1024
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Crawl != nil && o.Crawl.MaxCrawlDelay <= 0 {
		o.Crawl.MaxCrawlDelay = 30 * time.Second
	}
	if o.Jitter == nil {
		o.Jitter = randFloat
	}
}

// Scheduler runs one job. Create it with New; Run it once.
type Scheduler struct {
	q     Queue
	f     Fetcher
	lim   Limiter
	root  *os.Root
	opts  Options
	stats Stats

	parseSem chan struct{} // bounds concurrent page parsing (crawl)
	known    *knownLinks   // page links this run passed to the store (crawl without MaxPages)
	unkept   unkeptDirs    // directories of files fetched and not kept (crawl --save)
}

// New returns a scheduler that fetches q's jobs with f into root, paced by lim.
func New(q Queue, f Fetcher, lim Limiter, root *os.Root, opts Options) *Scheduler {
	opts.setDefaults()
	return &Scheduler{q: q, f: f, lim: lim, root: root, opts: opts,
		parseSem: make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))}
}

// Stats are live counters, safe to read while Run goes on.
func (s *Scheduler) Stats() *Stats { return &s.stats }

// Run executes the job until every URL is done or failed, all that is left waits longer than
// MaxWait (*WaitingError), the context is cancelled (ErrInterrupted), or a fatal error occurs
// (*FatalError). feed may be nil.
func (s *Scheduler) Run(ctx context.Context, feed Feed) error {
	if err := s.loadCounts(); err != nil {
		return &FatalError{err}
	}
	// Three contexts: ctx is the run's (cancelled by the user); fetches get their own, which
	// outlives ctx by the grace period, so that a cancel lets them finish rather than cut them at
	// zero; the feed's ends with the run loop.
	fetchCtx, cancelFetch := graceContext(ctx, s.opts.Grace)
	defer cancelFetch()
	pool := s.startWorkers(ctx, fetchCtx)
	cm := newCommitter(s.q, s.opts, &s.stats)
	go cm.run()
	if s.opts.Crawl.readsSitemaps() {
		feed = s.withSitemaps(feed)
	}
	f := s.startFeed(ctx, feed, cm)
	defer f.close()

	d := newDispatcher(s, pool.jobs, cm)
	d.ctx = fetchCtx
	d.feedFirst = s.opts.FeedFirst && feed != nil && s.stats.Total.Load() > 0 // loaded from the queue
	runErr := d.loop(ctx, pool.results, f.done)
	if runErr != nil {
		// A fatal error: nothing in flight can be recorded anyway; stop now, not after the
		// downloads (which have no time limit) finish.
		cancelFetch()
	}
	f.cancel()

	// Wind down: record what the workers finish; whatever they hold when the grace period ends
	// comes back as cancelled and is requeued unchanged, as are the jobs leased and not sent.
	for r := range pool.drain() {
		d.finish(r)
	}
	s.unkept.prune(s.root) // no fetch is left that could be making a file in one
	d.releaseBuffered()
	if err := cm.close(); err != nil {
		var fe *FatalError
		if !errors.As(runErr, &fe) {
			runErr = &FatalError{err} // also over an interruption: exit 3 says more than 130
		}
	}
	if runErr == nil && ctx.Err() != nil {
		runErr = ErrInterrupted
	}
	return runErr
}

// loadCounts starts the live counters from the queue's, and the run's memory of links passed.
func (s *Scheduler) loadCounts() error {
	c, err := s.q.Counts()
	if err != nil {
		return err
	}
	s.stats.Total.Store(int64(c.Total()))
	s.stats.Done.Store(int64(c.Done))
	s.stats.Failed.Store(int64(c.Failed))
	if s.opts.Crawl != nil && s.opts.Crawl.MaxPages == 0 {
		// One for each run: the pages of a run whose commit failed stay leased until the store
		// is opened again, so their links must not be taken as known by a later run.
		s.known = newKnownLinks()
	}
	return nil
}

// graceContext returns a context that ends grace after ctx does (or when cancelled).
func graceContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	gctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
		case <-gctx.Done():
		}
		cancel()
	})
	return gctx, func() { stop(); cancel() }
}

// workerPool is the run's fetching goroutines: the dispatcher sends them jobs, they send back
// outcomes.
type workerPool struct {
	jobs    chan queue.Record
	results chan outcome
	wg      sync.WaitGroup
}

func (s *Scheduler) startWorkers(runCtx, fetchCtx context.Context) *workerPool {
	p := &workerPool{jobs: make(chan queue.Record, s.opts.Workers), results: make(chan outcome, s.opts.Workers)}
	for range s.opts.Workers {
		p.wg.Go(func() { s.work(runCtx, fetchCtx, p.jobs, p.results) })
	}
	return p
}

// drain sends no more jobs and returns the outcomes still to come, closed once every worker is
// done.
func (p *workerPool) drain() <-chan outcome {
	close(p.jobs)
	go func() { p.wg.Wait(); close(p.results) }()
	return p.results
}

// feeder runs the Feed beside the run loop. A feed blocked on a slow reader may outlive Run; once
// Run is over its enqueues are refused, so it never touches a store the caller has closed.
type feeder struct {
	done   chan error // the feed's result, once it has returned
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
}

func (s *Scheduler) startFeed(ctx context.Context, feed Feed, cm *committer) *feeder {
	f := &feeder{done: make(chan error, 1)}
	feedCtx, cancel := context.WithCancel(ctx)
	f.cancel = cancel
	if feed == nil {
		f.done <- nil
		return f
	}
	go func() {
		f.done <- feed(feedCtx, func(urls []queue.NewURL) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.closed {
				return context.Canceled
			}
			s.stats.enqueuing.Lock()
			added, err := s.q.Enqueue(urls)
			if err == nil {
				s.stats.Total.Add(int64(added))
			}
			s.stats.enqueuing.Unlock()
			if err != nil {
				return &FatalError{err} // the store failed, not the input
			}
			if added > 0 {
				cm.storeChanged()
			}
			return nil
		})
	}()
	return f
}

// close cancels the feed and refuses its further enqueues.
func (f *feeder) close() {
	f.cancel()
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
}

// work is one worker: it fetches jobs until the channel closes. A job still waiting when the run
// was cancelled is given back unstarted; one under way has the fetch context's grace period.
func (s *Scheduler) work(runCtx, ctx context.Context, jobs <-chan queue.Record, results chan<- outcome) {
	for rec := range jobs {
		if runCtx.Err() != nil || ctx.Err() != nil {
			results <- outcome{rec: rec, err: context.Canceled}
			continue
		}
		s.stats.InFlight.Add(1)
		share := &fileShare{stats: &s.stats}
		req := fetcher.Request{
			URL:  s.opts.Credentials.apply(rec.URL, rec.Host),
			Path: rec.Path,
			OnBytes: func(n int) {
				s.stats.Bytes.Add(int64(n))
				share.add(int64(n))
			},
			OnLength: share.length,
			OnSent:   func() { s.lim.Sent(rec.Host, s.opts.Now()) },
		}
		if s.opts.Crawl != nil && !rec.Requisite {
			// A page is parsed from memory rather than opened again (requisites are not
			// parsed, bar stylesheets, which are opened).
			req.KeepBody = parsedType
		}
		req.WantSHA256 = rec.WantSHA256
		if rec.SHA256 != "" {
			// Fetched completely before (a refresh run): revalidate rather than download, and
			// leave the copy be if a 200 brings its very bytes. (Not a copy the list's sha256
			// disowns: the fetcher sees that too.)
			req.ETag, req.LastModified, req.HaveSHA256 = rec.ETag, rec.LastModified, rec.SHA256
		}
		s.segmentable(&req, rec.Host)
		req.OnAnswer = s.learnProtocol(rec.Host)
		named := s.naming(&req, &rec)
		began := time.Now()
		resp, err := s.f.Fetch(ctx, s.root, req)
		share.done()
		if named != nil && *named != "" {
			// Recorded with the URL already (Rename); every outcome carries it, a failure's too,
			// so that the commit does not put the old path back.
			rec.Path, rec.Named = *named, true
		}
		o := outcome{rec: rec, resp: resp, err: err, took: time.Since(began)}
		if c := s.opts.Crawl; c != nil && err == nil {
			o.links = s.expand(&rec, &resp)
			o.links = s.redirectTarget(o.links, &rec, &resp)
			o.resp.Body = nil // parsed: not held while the outcome waits for its commit
			if !c.keep(&resp) && !resp.NotModified {
				// --save: parsed, not kept. Removed before the outcome is committed, so a
				// crash in between refetches it rather than leaving a file nobody wants.
				if rerr := s.root.Remove(resp.Path); rerr == nil {
					o.notKept = true
					s.unkept.add(resp.Path)
				}
			}
		}
		s.stats.InFlight.Add(-1)
		results <- o
	}
}

type outcome struct {
	rec     queue.Record
	resp    fetcher.Response
	err     error
	links   []queue.NewURL // crawl: links found in the file, to queue with its outcome
	notKept bool           // crawl --save: the file was parsed and removed
	took    time.Duration  // how long the fetch took
}

// naming lets the answer to rec's first download name its file (fetcher.Naming): its
// Content-Disposition with ContentDisposition, and in a mirror-layout crawl a redirect that only
// adds a "/" (the URL is a directory: its page is the directory's index.html, and the files under
// it go into that directory rather than beside a file of its name). The queue reserves and records
// the path the answer proposes before the body is written (queue.Renamer), so that a run that dies
// mid-body finds the record, and resumes its .part, there. A URL whose path was given or named
// already, or that was fetched before (a refresh), keeps its path; so does every URL of a queue
// that cannot rename. It returns where the path given is left ("" if none was), or nil when the
// answer may not name the file.
func (s *Scheduler) naming(req *fetcher.Request, rec *queue.Record) *string {
	rn, ok := s.q.(queue.Renamer)
	slash := s.slashNames()
	if !ok || !s.opts.ContentDisposition && !slash || rec.Named || rec.SHA256 != "" || rec.Path == "" {
		return nil
	}
	named := new(string)
	url := rec.URL
	req.Naming = &fetcher.Naming{
		ContentDisposition: s.opts.ContentDisposition,
		SlashRedirect:      slash,
		Rename: func(proposed string) (string, error) {
			p, err := rn.Rename(url, proposed)
			if err == nil {
				*named = p
			}
			return p, err
		},
	}
	return named
}

// slashNames says whether a page redirected to its URL with a slash added is saved as that
// directory's index.html: in a mirror-layout crawl whose queue can record the name.
func (s *Scheduler) slashNames() bool {
	_, ok := s.q.(queue.Renamer)
	return ok && s.opts.Crawl != nil && s.opts.Crawl.Layout == fetcher.Mirror
}

// learnProtocol returns what to do when host's answer says how it serves requests: over HTTP/1.1
// each request in flight is a connection of its own, and its cap keeps to HTTP1PerHost; over
// HTTP/2 they are streams of one connection, and its cap starts at HTTP2Start. Told at the
// response's headers, not when its body ends, so a big first file holds nothing back.
func (s *Scheduler) learnProtocol(host string) func(multiplexed bool) {
	return func(multiplexed bool) {
		switch {
		case multiplexed && s.opts.HTTP2Start > 0:
			s.lim.Raise(host, s.opts.HTTP2Start)
		case !multiplexed && s.opts.HTTP1PerHost > 0:
			s.lim.SetHostMax(host, s.opts.HTTP1PerHost)
		}
	}
}

// segmentable lets the fetcher spread a big file of host over more connections, each one a
// request the host's politeness allows now: a concurrency slot and a rate token.
func (s *Scheduler) segmentable(req *fetcher.Request, host string) {
	req.MoreConns = func(n int) int {
		got := 0
		for got < n {
			if ok, _ := s.lim.TryAcquire(host, s.opts.Now()); !ok {
				break
			}
			got++
		}
		return got
	}
	req.ConnDone = func() { s.lim.Release(host) }
}
