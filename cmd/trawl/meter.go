package main

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/trawl-dev/trawl/ratelimit"
	"github.com/trawl-dev/trawl/scheduler"
)

// rateWindow is how far back the rates shown in progress look: long enough to smooth a bursty
// transfer, short enough that a stalled host shows as a falling rate within seconds (a whole-run
// average hides it behind what came before).
const rateWindow = 10 * time.Second

// meter turns the scheduler's counters into what progress shows: rates over the last rateWindow,
// an ETA, the retries waiting and the hosts cooling down.
type meter struct {
	stats   *scheduler.Stats
	retries *retryWatch
	hosts   *limiterWatch
	began   time.Time

	mu      sync.Mutex
	samples []sample // oldest first, spanning at most rateWindow
	// shown is the progress of the last read, and the total it was of.
	shown struct {
		total    int64
		progress float64
	}
}

type sample struct {
	at    time.Time
	bytes int64
	files float64 // finished, plus the parts of the files in flight whose length is known
}

func newMeter(stats *scheduler.Stats, retries *retryWatch, hosts *limiterWatch, began time.Time) *meter {
	return &meter{stats: stats, retries: retries, hosts: hosts, began: began}
}

// view is the state of a run at one moment, as progress shows it.
type view struct {
	total, done, failed, inflight, bytes int64
	retries                              int64 // retries scheduled in this run
	elapsed                              time.Duration
	rate                                 int64   // bytes per second over the last rateWindow
	filesRate                            float64 // files finished per second over the same window
	percent                              float64 // of the files known to the job: finished or failed, and how far those in flight have come
	eta                                  time.Duration
	etaKnown                             bool
	retriesWaiting                       int
	nextRetry                            time.Duration // until the first retry waiting is due
	cooling                              int           // hosts in a Retry-After or 429/503 cooldown
	coolFor                              time.Duration // until the last of them may be asked again
}

// read samples the counters at now and returns the view.
func (m *meter) read(now time.Time) view {
	v := view{
		total:    m.stats.Total.Load(),
		done:     m.stats.Done.Load(),
		failed:   m.stats.Failed.Load(),
		inflight: m.stats.InFlight.Load(),
		bytes:    m.stats.Bytes.Load(),
		retries:  m.stats.Retries.Load(),
		elapsed:  now.Sub(m.began),
	}
	finished := v.done + v.failed
	// A file in flight counts for the part of it that has arrived, where its length is known: a
	// job of a few big files moves, rather than sitting at 0% until one ends.
	progress := min(float64(finished)+float64(m.stats.Partial.Load())/1e6, float64(v.total))
	m.mu.Lock()
	if v.total == m.shown.total && progress < m.shown.progress {
		// A file that has ended and is not yet committed counts neither as in flight nor as
		// done; a retry throws its bytes away. Progress shown holds rather than steps back.
		progress = m.shown.progress
	}
	m.shown.total, m.shown.progress = v.total, progress
	m.samples = append(m.samples, sample{now, v.bytes, progress})
	cut := 0
	for cut < len(m.samples)-2 && now.Sub(m.samples[cut+1].at) >= rateWindow {
		cut++
	}
	m.samples = m.samples[cut:]
	first := m.samples[0]
	m.mu.Unlock()
	if span := now.Sub(first.at); span > 0 {
		v.rate = int64(float64(v.bytes-first.bytes) / span.Seconds())
		v.filesRate = (progress - first.files) / span.Seconds()
	} else if v.elapsed > 0 {
		v.rate = rate(v.bytes, v.elapsed)
	}
	if v.total > 0 {
		v.percent = 100 * progress / float64(v.total)
	}
	// The files left at the pace of the last few seconds: the lengths of files not started are
	// not known, so this is only an estimate, and none is given while nothing moves.
	if left := float64(v.total) - progress; left <= 0 {
		v.etaKnown = true
	} else if v.filesRate > 0 {
		v.eta, v.etaKnown = time.Duration(left/v.filesRate*float64(time.Second)), true
	}
	if m.retries != nil {
		v.retriesWaiting, v.nextRetry = m.retries.waiting(now)
	}
	if m.hosts != nil {
		v.cooling, v.coolFor = m.hosts.cooling(now)
	}
	return v
}

// maxRetriesWatched bounds the retries progress follows; past it the count shown is a floor.
const maxRetriesWatched = 100_000

// retryWatch follows the URLs waiting for a retry from the run's outcomes: a retry scheduled
// waits until the URL's next outcome.
type retryWatch struct {
	mu   sync.Mutex
	seed maphash.Seed
	due  map[uint64]time.Time // by hash of the URL
}

func newRetryWatch() *retryWatch {
	return &retryWatch{seed: maphash.MakeSeed(), due: map[uint64]time.Time{}}
}

func (w *retryWatch) add(o scheduler.Outcome) {
	if o.Kind == scheduler.KindReleased {
		return
	}
	k := maphash.String(w.seed, o.Record.URL)
	w.mu.Lock()
	defer w.mu.Unlock()
	if o.Kind != scheduler.KindRetry {
		delete(w.due, k)
		return
	}
	if len(w.due) < maxRetriesWatched {
		w.due[k] = o.Record.NextAttempt
	}
}

// waiting counts the retries not yet due at now, and how long until the first is.
func (w *retryWatch) waiting(now time.Time) (n int, next time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, at := range w.due {
		if d := at.Sub(now); d > 0 {
			if n == 0 || d < next {
				next = d
			}
			n++
		}
	}
	return n, next
}

// limiterWatch is the run's limiter, watched for the hosts it cools down (Retry-After, 429, 503),
// so that progress can say why a run waits.
type limiterWatch struct {
	*ratelimit.Limiter
	mu    sync.Mutex
	until map[string]time.Time
}

var _ scheduler.Limiter = (*limiterWatch)(nil)

func newLimiterWatch(l *ratelimit.Limiter) *limiterWatch {
	return &limiterWatch{Limiter: l, until: map[string]time.Time{}}
}

func (l *limiterWatch) Cooldown(host string, until time.Time) {
	l.mu.Lock()
	if until.After(l.until[host]) {
		l.until[host] = until
	}
	l.mu.Unlock()
	l.Limiter.Cooldown(host, until)
}

func (l *limiterWatch) Forget(host string) {
	l.mu.Lock()
	delete(l.until, host)
	l.mu.Unlock()
	l.Limiter.Forget(host)
}

// cooling counts the hosts cooling down at now, and how long until the last may be asked again.
func (l *limiterWatch) cooling(now time.Time) (n int, longest time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for h, until := range l.until {
		d := until.Sub(now)
		if d <= 0 {
			delete(l.until, h)
			continue
		}
		n++
		longest = max(longest, d)
	}
	return n, longest
}
