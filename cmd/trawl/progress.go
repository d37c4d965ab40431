package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/trawl-dev/trawl/scheduler"
)

// progress reports a run: a progress bar on a terminal, a plain line every interval otherwise,
// nothing with --quiet. It is also the writer of log lines, so that they never tear the bar.
type progress struct {
	w        io.Writer
	quiet    bool
	tty      bool
	interval time.Duration

	mu   sync.Mutex
	bar  *progressbar.ProgressBar
	stop func()
}

func newProgress(w io.Writer, quiet bool, interval time.Duration) *progress {
	p := &progress{w: w, quiet: quiet, interval: interval, stop: func() {}}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
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

// newLogger logs to w, or to cfg.LogFile when set; the returned func closes the file.
func newLogger(w io.Writer, cfg *Config) (*slog.Logger, func(), error) {
	closeLog := func() {}
	if cfg.LogFile != "" {
		f, err := os.OpenFile(cfg.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("--log-file: %w", err)
		}
		w, closeLog = f, func() { f.Close() }
	}
	return newSlog(w, cfg), closeLog, nil
}

func newSlog(w io.Writer, cfg *Config) *slog.Logger {
	level := slog.LevelInfo
	if cfg.Quiet {
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// start begins reporting stats until stop is called.
func (p *progress) start(stats *scheduler.Stats, log *slog.Logger) {
	if p.quiet {
		return
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	began := time.Now()
	if p.tty {
		p.mu.Lock()
		p.bar = progressbar.NewOptions64(max(stats.Total.Load(), 1),
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription("starting"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionFullWidth(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSpinnerType(14),
		)
		p.mu.Unlock()
	}
	tick := func() {
		s := snapshot(stats, began)
		if p.tty {
			p.mu.Lock()
			p.bar.ChangeMax64(max(s.total, 1))
			p.bar.Describe(s.short())
			p.bar.Set64(s.done + s.failed)
			p.mu.Unlock()
			return
		}
		log.Info("progress", s.attrs()...)
	}
	interval := p.interval
	if p.tty {
		interval = 200 * time.Millisecond
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				tick()
			}
		}
	}()
	p.stop = func() {
		close(done)
		wg.Wait()
		if p.tty {
			s := snapshot(stats, began)
			p.mu.Lock()
			p.bar.ChangeMax64(max(s.total, 1))
			p.bar.Describe(s.short())
			p.bar.Set64(s.done + s.failed)
			fmt.Fprintln(p.w)
			p.bar = nil
			p.mu.Unlock()
		}
	}
}

type statsSnapshot struct {
	total, done, failed, retries, inflight, bytes int64
	elapsed                                       time.Duration
}

func snapshot(s *scheduler.Stats, began time.Time) statsSnapshot {
	return statsSnapshot{
		total:    s.Total.Load(),
		done:     s.Done.Load(),
		failed:   s.Failed.Load(),
		retries:  s.Retries.Load(),
		inflight: s.InFlight.Load(),
		bytes:    s.Bytes.Load(),
		elapsed:  time.Since(began),
	}
}

func (s statsSnapshot) short() string {
	return fmt.Sprintf("%s %s/s, %d failed", humanBytes(s.bytes), humanBytes(rate(s.bytes, s.elapsed)), s.failed)
}

func (s statsSnapshot) attrs() []any {
	return []any{"done", s.done, "total", s.total, "failed", s.failed, "retries", s.retries,
		"in_flight", s.inflight, "bytes", s.bytes, "rate", humanRate(s.bytes, s.elapsed)}
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
