package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/trawl-dev/trawl/jsqueue"
)

// natsConn says how to reach the NATS server of a shared job.
type natsConn struct {
	url, job, creds, ca string
	timeout             time.Duration
}

// connect opens a connection named name. A worker's (log not nil) rides out a restart of the
// server: it reconnects for as long as it takes (its calls wait for it, up to a limit: see
// jsqueue), saying so in log. A one-off command's fails at once when the server cannot be reached.
func (c natsConn) connect(name string, log *slog.Logger) (*nats.Conn, error) {
	if err := checkShared(c.url, c.job); err != nil {
		return nil, err
	}
	opts := []nats.Option{nats.Name(name), nats.Timeout(c.timeout)}
	if log != nil {
		// Tried often: a server restarting is back within a second or two, and the work waits.
		opts = append(opts, nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond),
			nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
				if err == nil || nc.IsClosed() {
					return // closed by trawl, not lost
				}
				log.Warn("lost the connection to the NATS server; reconnecting", "err", err)
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				log.Info("reconnected to the NATS server", "server", nc.ConnectedUrlRedacted())
			}))
	} else {
		opts = append(opts, nats.NoReconnect())
	}
	if c.creds != "" {
		opts = append(opts, nats.UserCredentials(c.creds))
	}
	if c.ca != "" {
		opts = append(opts, nats.RootCAs(c.ca))
	}
	nc, err := nats.Connect(c.url, opts...)
	if errors.Is(err, nats.ErrNoServers) {
		return nil, fmt.Errorf("--queue %s: %w (is a NATS server running there?)", redact(c.url), err)
	}
	if err != nil {
		return nil, fmt.Errorf("--queue %s: %w", redact(c.url), err)
	}
	return nc, nil
}

// noJetStream adds a hint to err when the NATS server answered as one without JetStream does (no
// responders to its API, or JetStream not enabled).
func noJetStream(err error) error {
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
		return fmt.Errorf("%w (is JetStream enabled on the server? nats-server -js)", err)
	}
	return err
}

// checkShared checks a --queue URL and a --job name before anything is connected to.
func checkShared(queueURL, job string) error {
	u, err := url.Parse(queueURL)
	if err != nil || u.Scheme != "nats" && u.Scheme != "tls" || u.Host == "" {
		return fmt.Errorf("--queue %q: want nats://HOST:PORT (or tls://HOST:PORT)", redact(queueURL))
	}
	if err := jsqueue.CheckJob(job); err != nil {
		return fmt.Errorf("--job: %v", err)
	}
	return nil
}

// sharedFlags are the flags of status, list and retry that name a job shared on NATS JetStream
// instead of a state file (get and crawl take the same ones through Config).
type sharedFlags struct {
	natsConn
}

func (s *sharedFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&s.url, "queue", "", "a job shared by trawl workers on this NATS JetStream server (`nats://HOST:PORT`) instead of a state file; needs --job")
	fs.StringVar(&s.job, "job", "", "the shared job's `NAME`, as its workers were given it")
	fs.StringVar(&s.creds, "nats-creds", "", "with --queue: the NATS user credentials `FILE` (JWT and NKey seed)")
	fs.StringVar(&s.ca, "nats-ca", "", "with --queue: trust the CA certificates in PEM `FILE` for the NATS server's TLS")
	s.timeout = 10 * time.Second
}

// given reports whether the command is about a shared job, refusing flags that do not go
// together.
func (s *sharedFlags) given(cmd *cobra.Command) (bool, error) {
	fs := cmd.Flags()
	switch {
	case s.url == "" && s.job != "":
		return false, usageErr("--job names a job shared on --queue; give --queue nats://HOST:PORT too")
	case s.url == "" && (s.creds != "" || s.ca != ""):
		return false, usageErr("--nats-creds and --nats-ca are for a shared job: give --queue nats://HOST:PORT too")
	case s.url == "":
		return false, nil
	case s.job == "":
		return false, usageErr("--queue needs --job NAME: the name the job's workers were given")
	case fs.Changed("out") || fs.Changed("state"):
		return false, usageErr("-o/--state and --queue exclude each other: a shared job lives in the queue, not in a state file")
	}
	if err := checkShared(s.url, s.job); err != nil {
		return false, usageErr("%v", err)
	}
	return true, nil
}

// attach opens the shared job to read or manage it, without joining it as a worker.
func (s *sharedFlags) attach(ctx context.Context) (*jsqueue.Queue, func(), error) {
	nc, err := s.connect("trawl "+s.job+" (status)", nil)
	if err != nil {
		return nil, nil, fatalErr("%v", err)
	}
	q, err := jsqueue.Attach(ctx, nc, s.job)
	switch {
	case errors.Is(err, jsqueue.ErrNoJob):
		nc.Close()
		return nil, nil, usageErr("no shared job %q on %s (its workers' --job names it)", s.job, redact(s.url))
	case err != nil:
		nc.Close()
		return nil, nil, fatalErr("--queue %s: %v", redact(s.url), noJetStream(err))
	}
	return q, func() { q.Close(); nc.Close() }, nil
}
