package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/trawl-dev/trawl/jsqueue"
	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/scheduler"
	"github.com/trawl-dev/trawl/store"
)

// openBackend opens the job's queue: the state file (the default; local is it), or with --queue
// a job shared by many workers on NATS JetStream (local is nil). closeFn releases it.
func openBackend(ctx context.Context, cfg *Config, statePath string, log *slog.Logger) (b queue.Backend, local *store.Store, closeFn func(), err error) {
	if cfg.Queue == "" {
		st, err := store.Open(statePath, &store.Options{Timeout: time.Second, Respell: scheduler.Respell})
		if err != nil {
			return nil, nil, nil, err
		}
		return st, st, func() { st.Close() }, nil
	}
	nc, err := natsConn{url: cfg.Queue, job: cfg.Job, creds: cfg.NATSCreds, ca: cfg.NATSCA,
		timeout: cfg.ConnectTimeout}.connect("trawl "+cfg.Job, log)
	if err != nil {
		return nil, nil, nil, err
	}
	q, err := jsqueue.Open(ctx, nc, jsqueue.Options{Job: cfg.Job, AckWait: cfg.LeaseTime})
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("--queue %s: %w", redact(cfg.Queue), noJetStream(err))
	}
	// Said at the start, so that a mistyped --job, which makes a new job, shows at once.
	if ws, err := q.Workers(); err == nil {
		log.Info("joined the shared job", "job", cfg.Job, "queue", redact(cfg.Queue), "other_workers", max(len(ws)-1, 0))
	}
	return q, nil, func() { q.Close(); nc.Drain() }, nil
}
