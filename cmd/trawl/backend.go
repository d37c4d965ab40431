package main

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/trawl-dev/trawl/jsqueue"
	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/scheduler"
	"github.com/trawl-dev/trawl/store"
)

// openBackend opens the job's queue: the state file (the default; local is it), or with --queue
// a job shared by many workers on NATS JetStream (local is nil). closeFn releases it.
func openBackend(ctx context.Context, cfg *Config, statePath string) (b queue.Backend, local *store.Store, closeFn func(), err error) {
	if cfg.Queue == "" {
		st, err := store.Open(statePath, &store.Options{Timeout: time.Second, Respell: scheduler.Respell})
		if err != nil {
			return nil, nil, nil, err
		}
		return st, st, func() { st.Close() }, nil
	}
	u, err := url.Parse(cfg.Queue)
	if err != nil || u.Scheme != "nats" && u.Scheme != "tls" || u.Host == "" {
		return nil, nil, nil, fmt.Errorf("--queue %q: want nats://HOST:PORT", cfg.Queue)
	}
	opts := []nats.Option{nats.Name("trawl " + cfg.Job), nats.Timeout(cfg.ConnectTimeout), nats.MaxReconnects(-1)}
	if cfg.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
	}
	if cfg.NATSCA != "" {
		opts = append(opts, nats.RootCAs(cfg.NATSCA))
	}
	nc, err := nats.Connect(cfg.Queue, opts...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--queue %s: %w", redact(cfg.Queue), err)
	}
	q, err := jsqueue.Open(ctx, nc, jsqueue.Options{Job: cfg.Job, AckWait: cfg.LeaseTime})
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("--queue %s: %w", redact(cfg.Queue), err)
	}
	return q, nil, func() { q.Close(); nc.Drain() }, nil
}
