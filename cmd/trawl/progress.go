package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/scheduler"
)

// progress reports a run: a progress bar on a terminal, a plain line every interval otherwise,
// nothing with --quiet. It is also the writer of log lines, so that they never tear the bar.
//
// On a terminal (unless the log is JSON on it) it speaks to a person: failures are grouped by
// host and reason, and the run ends with a sentence. Elsewhere — a pipe, cron, --log-file — every
// failure is a log line of its own, for scripts.
type progress struct {
	w     io.Writer
	quiet bool
	tty   bool // stderr is a terminal
	human bool // a person reads stderr: bar, grouped failures, a sentence at the end
	// scriptLog: the log is read by scripts (a file, a pipe, JSON), so every failure and the
	// summary are log lines of their own.
	scriptLog bool
	interval  time.Duration
	groups    *failureGroups

	mu   sync.Mutex
	bar  *progressbar.ProgressBar
	stop func()
}

func newProgress(w io.Writer, cfg *Config) *progress {
	p := &progress{w: w, quiet: cfg.Quiet, interval: cfg.ProgressInterval, stop: func() {}, groups: newFailureGroups()}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	p.human = p.tty && (cfg.LogFile != "" || cfg.LogFormat == "text")
	p.scriptLog = !p.human || cfg.LogFile != ""
	return p
}

// Write writes a log line, clearing the bar first; the bar redraws on its next tick.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Clear()
	}
	return p.w.Write(b)
}

// say writes a line for the person at the terminal.
func (p *progress) say(format string, a ...any) {
	fmt.Fprintf(p, format+"\n", a...)
}

// newLogger logs to p, or to cfg.LogFile when set; the returned func closes the file.
func newLogger(p *progress, cfg *Config) (*slog.Logger, func(), error) {
	level := slog.LevelInfo
	if cfg.Quiet {
		level = slog.LevelError
	}
	if cfg.LogFile != "" {
		f, err := os.OpenFile(cfg.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("--log-file: %w", err)
		}
		return newSlog(f, cfg.LogFormat, level), func() { f.Close() }, nil
	}
	if p.human {
		return slog.New(&humanHandler{w: p, level: level, mu: new(sync.Mutex)}), func() {}, nil
	}
	return newSlog(p, cfg.LogFormat, level), func() {}, nil
}

func newSlog(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// failed reports a URL that failed for good: a log line for scripts; for a person, the first
// failure of each host and reason now, and how many there were at the end (summary).
func (p *progress) failed(r queue.Record, log *slog.Logger) {
	if p.scriptLog {
		log.Error("failed", "url", redact(r.URL), "attempts", r.Attempts, "class", r.ErrorClass, "err", r.LastError)
	}
	if !p.human {
		return
	}
	if g, first := p.groups.add(r); first {
		p.say("failed: %s: %s", g.url, g.example)
	}
}

// fetched reports a file fetched (--verbose): a line for a person at a terminal, "12:04:05 200
// https://host/a.jpg -> host/a.jpg (4.0 KiB)", or a log line with its fields.
func (p *progress) fetched(o scheduler.Outcome, log *slog.Logger) {
	r := o.Record
	if p.scriptLog {
		log.Info("fetched", "url", redact(r.URL), "status", r.Status, "bytes", r.Bytes, "path", r.Path, "result", o.Kind.String())
	}
	if !p.human {
		return
	}
	what := humanBytes(r.Bytes)
	if o.Kind != scheduler.KindNew {
		what += ", " + o.Kind.String()
	}
	p.say("%s %d %s -> %s (%s)", time.Now().Format(time.TimeOnly), r.Status, redact(r.URL), r.Path, what)
}

// start begins reporting m until stop is called.
func (p *progress) start(m *meter, log *slog.Logger) {
	if p.quiet {
		return
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	if p.tty {
		p.mu.Lock()
		// The bar counts per mille of the percent the meter computes; the description says what
		// it is made of.
		p.bar = progressbar.NewOptions64(1000,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription("starting"),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionSetWidth(24),
			progressbar.OptionSetElapsedTime(false),
			progressbar.OptionSetPredictTime(false), // its ETA would count files at the run's average pace
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSpinnerType(14),
		)
		p.mu.Unlock()
	}
	draw := func(v view) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.bar.Describe(v.line())
		p.bar.Set64(int64(v.percent * 10))
	}
	// Samples are taken more often than a plain line is written, so that the rate it shows
	// covers the recent window, not the last interval alone.
	every := min(p.interval, 250*time.Millisecond)
	if p.tty {
		every = 200 * time.Millisecond
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		lastLine := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				v := m.read(now)
				switch {
				case p.tty:
					draw(v)
				case now.Sub(lastLine) >= p.interval-every/2:
					lastLine = now
					log.Info("progress", v.attrs()...)
				}
			}
		}
	}()
	p.stop = func() {
		close(done)
		wg.Wait()
		if p.tty {
			draw(m.read(time.Now()))
			p.mu.Lock()
			fmt.Fprintln(p.w)
			p.bar = nil
			p.mu.Unlock()
		}
	}
}

// finish tells a person at a terminal how the run ended: a sentence (not with --quiet), then the
// failures grouped. (A run that did not succeed then says why in one line, its error, also with
// --quiet; one that did is silent with --quiet, so that cron mails only trouble.)
func (p *progress) finish(s runSummary) {
	if !p.human {
		return
	}
	if !p.quiet {
		p.say("%s", s.sentence())
	}
	for _, l := range p.groups.lines() {
		p.say("  %s", l)
	}
}

// line is the progress bar's description: files, bytes, the recent rate, an ETA, and what the
// run is waiting for.
func (v view) line() string {
	parts := []string{
		fmt.Sprintf("%d/%d files", v.done+v.failed, v.total),
		humanBytes(v.bytes),
		humanBytes(v.rate) + "/s",
	}
	if v.failed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed", v.failed))
	}
	if v.etaKnown && v.done+v.failed < v.total {
		parts = append(parts, "ETA "+shortDuration(v.eta))
	}
	if v.retriesWaiting > 0 {
		parts = append(parts, fmt.Sprintf("%s waiting (next in %s)", plural(int64(v.retriesWaiting), "retry"), shortDuration(v.nextRetry)))
	}
	if v.cooling > 0 {
		parts = append(parts, fmt.Sprintf("%s cooling down (up to %s)", plural(int64(v.cooling), "host"), shortDuration(v.coolFor)))
	}
	return strings.Join(parts, " · ")
}

// attrs are a plain progress line's fields.
func (v view) attrs() []any {
	eta := "unknown"
	if v.etaKnown {
		eta = shortDuration(v.eta)
	}
	return []any{"done", v.done, "total", v.total, "percent", strconv.FormatFloat(v.percent, 'f', 1, 64), "eta", eta,
		"failed", v.failed, "retries", v.retries, "retries_waiting", v.retriesWaiting, "hosts_cooling", v.cooling, "in_flight", v.inflight,
		"bytes", v.bytes, "rate", humanBytes(v.rate) + "/s"}
}

// shortDuration rounds d for a person: 2m10s, 1h5m, 450ms.
func shortDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}

func rate(n int64, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(n) / d.Seconds())
}

func humanRate(n int64, d time.Duration) string { return humanBytes(rate(n, d)) + "/s" }

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// redact drops the userinfo of a URL, so passwords never reach a log.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}
