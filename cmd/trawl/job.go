package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/ratelimit"
	"github.com/trawl-dev/trawl/scheduler"
	"github.com/trawl-dev/trawl/store"
)

// job is one run of get (or crawl): the pieces wired together from a Config.
type job struct {
	cfg    *Config
	log    *slog.Logger
	layout fetcher.Layout
	bad    atomic.Int64 // skipped input lines and arguments
}

// openInput opens the -i list; "-" is standard input.
func openInput(name string, stdin io.Reader) (io.Reader, func() error, error) {
	if name == "-" {
		return stdin, func() error { return nil }, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, fmt.Errorf("input list: %w", err)
	}
	return f, f.Close, nil
}

// listFeed enqueues the URL arguments, then streams the list, reporting every skipped entry.
func (j *job) listFeed(args []string, list io.Reader) scheduler.Feed {
	return func(ctx context.Context, enqueue func([]store.NewURL) error) error {
		var batch []store.NewURL
		for i, a := range args {
			e, err := scheduler.NormalizeURL(a)
			var nu store.NewURL
			if err == nil {
				nu, err = e.NewURL(j.layout, 0)
			}
			if err != nil {
				j.bad.Add(1)
				j.log.Error("skipping argument", "arg", i+1, "err", err)
				continue
			}
			batch = append(batch, nu)
		}
		if len(batch) > 0 {
			if err := enqueue(batch); err != nil {
				return err
			}
		}
		if list == nil {
			return nil
		}
		return scheduler.ListFeed(list, j.layout, func(b scheduler.BadLine) {
			j.bad.Add(1)
			j.log.Error("skipping bad line", "file", j.cfg.Input, "line", b.Line, "err", b.Err)
		})(ctx, enqueue)
	}
}

// runJob opens the state and output, runs the scheduler to the end (or the interruption) and maps
// the outcome to an exit code.
func runJob(ctx context.Context, cfg *Config, stderr io.Writer, feed func(*job) scheduler.Feed) error {
	prog := newProgress(stderr, cfg.Quiet, cfg.ProgressInterval)
	log := newLogger(prog, cfg)
	j := &job{cfg: cfg, log: log}
	j.layout, _ = fetcher.ParseLayout(cfg.Layout) // validated already

	if cfg.Insecure {
		fmt.Fprintln(stderr, "trawl: WARNING: --insecure: TLS certificates are NOT verified; anyone on the network path can read and alter these downloads")
	}
	header, _ := cfg.header()
	bw, _ := cfg.bandwidth()
	fopts := fetcher.Options{
		CACertFile:     cfg.CACert,
		ClientCertFile: cfg.ClientCert,
		ClientKeyFile:  cfg.ClientKey,
		Insecure:       cfg.Insecure,
		ConnectTimeout: cfg.ConnectTimeout,
		IdleTimeout:    cfg.IdleTimeout,
		Header:         header,
		UserAgent:      cfg.UserAgent,
	}
	if b := ratelimit.NewBandwidth(bw); b != nil {
		fopts.Bandwidth = b
	}
	f, err := fetcher.New(fopts)
	if err != nil {
		return usageErr("%v", err)
	}
	defer f.Close()

	root, err := openOutput(cfg.Out)
	if err != nil {
		return fatalErr("%v", err)
	}
	defer root.Close()

	statePath := cfg.State
	if statePath == "" {
		statePath = filepath.Join(cfg.Out, ".trawl", "state.db")
	}
	st, err := store.Open(statePath, &store.Options{Timeout: time.Second})
	if err != nil {
		return fatalErr("%v", err)
	}
	defer st.Close()
	// A new run gives URLs that failed before a fresh retry budget.
	if _, err := st.Requeue(nil); err != nil {
		return fatalErr("%v", err)
	}

	lim := ratelimit.New(ratelimit.Options{Rate: cfg.Rate, PerHost: cfg.PerHost})
	retries := cfg.Retries
	if retries == 0 {
		retries = -1 // the scheduler's zero means its default
	}
	s := scheduler.New(st, f, lim, root, scheduler.Options{
		Workers: cfg.Concurrency,
		PerHost: cfg.PerHost,
		Retries: retries,
		Flush:   func() error { return fetcher.Flush(root) },
		OnOutcome: func(o scheduler.Outcome) {
			if o.Kind == scheduler.KindFailed {
				r := o.Record
				log.Error("failed", "url", redact(r.URL), "attempts", r.Attempts, "class", r.ErrorClass, "err", r.LastError)
			}
		},
	})

	start := time.Now()
	prog.start(s.Stats(), log)
	runErr := s.Run(ctx, feed(j))
	prog.stop()

	c, cerr := st.Counts()
	if cerr != nil && runErr == nil {
		runErr = cerr
	}
	elapsed := time.Since(start)
	stats := s.Stats()
	log.Info("summary",
		"done", c.Done, "failed", c.Failed, "pending", c.Pending+c.Leased, "bad_input", j.bad.Load(),
		"bytes", stats.Bytes.Load(), "elapsed", elapsed.Round(time.Millisecond).String(),
		"rate", humanRate(stats.Bytes.Load(), elapsed))

	var fatal *scheduler.FatalError
	switch {
	case errors.As(runErr, &fatal):
		return fatalErr("%v", fatal.Err)
	case errors.Is(runErr, scheduler.ErrInterrupted):
		return &exitError{exitInterrupted, errors.New("interrupted; run the same command again to continue")}
	case runErr != nil:
		return fatalErr("%v", runErr)
	case c.Failed > 0:
		return &exitError{exitFailed, fmt.Errorf("%d URL(s) failed", c.Failed)}
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
