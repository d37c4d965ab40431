package jsqueue

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// join finds the job's stream, consumers and buckets, and with create makes those missing;
// without, a job the system does not have is ErrNoJob. What exists is taken as it is, never
// updated: the job's partitions and lease time are those it was made with, whichever worker comes
// later with other options (they are adopted into q.opts), and workers started together must not
// update the stream while another adds its consumers (nats-server's own code races then).
//
// Each call is made within a call's time limit and made again while the engine does not answer
// in time (a server slow to start, or loaded), for up to wait in all: every call is safe to
// repeat, since one that made what exists already is followed by a lookup of it.
func (q *Queue) join(ctx context.Context, create bool, wait time.Duration) error {
	giveUp := time.Now().Add(wait)
	call := func(f func(ctx context.Context) error) error { return q.joinCall(ctx, giveUp, f) }
	name := "TRAWL_" + q.opts.Job
	if err := q.joinStream(call, name, create); err != nil {
		return err
	}
	if err := q.joinConsumers(call, name, create); err != nil {
		return err
	}
	return q.joinBuckets(call, name, create)
}

// joinStream finds (or with create makes) the job's stream.
func (q *Queue) joinStream(call func(func(context.Context) error) error, name string, create bool) error {
	err := call(func(ctx context.Context) (err error) { q.stream, err = q.js.Stream(ctx, name); return err })
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound) && !create:
		return ErrNoJob
	case errors.Is(err, jetstream.ErrStreamNotFound):
		err = call(func(ctx context.Context) (err error) {
			q.stream, err = q.js.CreateStream(ctx, jetstream.StreamConfig{
				Name:      name,
				Subjects:  []string{q.subject + "*"},
				Retention: jetstream.WorkQueuePolicy,
				Storage:   jetstream.FileStorage,
				Metadata:  map[string]string{metaPartitions: strconv.Itoa(q.opts.Partitions)},
			})
			return err
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // made meanwhile by another worker
			err = call(func(ctx context.Context) (err error) { q.stream, err = q.js.Stream(ctx, name); return err })
		}
	}
	if err != nil {
		return fmt.Errorf("jsqueue: stream %s: %w", name, err)
	}
	return nil
}

// joinConsumers finds (or with create makes) a consumer per partition. The partitions are fixed
// when the stream is made, in its metadata (a job made by an earlier trawl has its consumers, p0
// to pN-1, to count).
func (q *Queue) joinConsumers(call func(func(context.Context) error) error, name string, create bool) error {
	n, _ := strconv.Atoi(q.stream.CachedInfo().Config.Metadata[metaPartitions])
	if n == 0 {
		if err := call(func(ctx context.Context) error {
			n = 0
			names := q.stream.ConsumerNames(ctx)
			for c := range names.Name() {
				if p, err := strconv.Atoi(strings.TrimPrefix(c, "p")); err == nil && strings.HasPrefix(c, "p") {
					n = max(n, p+1)
				}
			}
			return names.Err()
		}); err != nil {
			return fmt.Errorf("jsqueue: consumers of %s: %w", name, err)
		}
	}
	switch {
	case n == 0 && !create:
		return ErrNoJob // being made
	case n > 0:
		q.opts.Partitions = n
	}
	q.consumers = make([]jetstream.Consumer, q.opts.Partitions)
	for p := range q.consumers {
		var err error
		if q.consumers[p], err = q.consumer(call, p, create); err != nil {
			return err
		}
	}
	if create {
		// The lease time is the job's: keep-alives and heartbeats keep to it.
		q.opts.AckWait = q.consumers[0].CachedInfo().Config.AckWait
	}
	return nil
}

// joinBuckets finds (or with create makes) the job's key-value buckets.
func (q *Queue) joinBuckets(call func(func(context.Context) error) error, name string, create bool) error {
	for _, b := range []struct {
		kv       *jetstream.KeyValue
		cfg      jetstream.KeyValueConfig
		optional bool // to read: a job an earlier trawl made has none
	}{
		{&q.records, jetstream.KeyValueConfig{Bucket: name + "_urls", Storage: jetstream.FileStorage}, false},
		{&q.meta, jetstream.KeyValueConfig{Bucket: name + "_meta", Storage: jetstream.FileStorage}, false},
		// A worker's entry lapses a lease time after its last heartbeat.
		{&q.workers, jetstream.KeyValueConfig{Bucket: name + "_workers", Storage: jetstream.FileStorage, TTL: q.opts.AckWait}, false},
		// Cooldowns are capped (at an hour) like the Retry-After they come from: a day is plenty.
		{&q.hosts, jetstream.KeyValueConfig{Bucket: name + "_hosts", Storage: jetstream.FileStorage, TTL: 24 * time.Hour}, true},
		{&q.later, jetstream.KeyValueConfig{Bucket: name + "_later", Storage: jetstream.FileStorage, TTL: laterTTL}, true},
	} {
		lookup := func(ctx context.Context) (err error) { *b.kv, err = q.js.KeyValue(ctx, b.cfg.Bucket); return err }
		err := call(lookup)
		switch {
		case errors.Is(err, jetstream.ErrBucketNotFound) && !create && b.optional:
			*b.kv, err = nil, nil
		case errors.Is(err, jetstream.ErrBucketNotFound) && !create:
			return ErrNoJob
		case errors.Is(err, jetstream.ErrBucketNotFound):
			err = call(func(ctx context.Context) (err error) { *b.kv, err = q.js.CreateKeyValue(ctx, b.cfg); return err })
			if errors.Is(err, jetstream.ErrBucketExists) {
				err = call(lookup)
			}
		}
		if err != nil {
			return fmt.Errorf("jsqueue: bucket %s: %w", b.cfg.Bucket, err)
		}
	}
	return nil
}

// metaPartitions is the key of the stream's metadata that holds the job's number of partitions.
const metaPartitions = "trawl.partitions"

// consumer finds partition p's durable consumer, and with create makes it if it is missing.
func (q *Queue) consumer(call func(func(ctx context.Context) error) error, p int, create bool) (jetstream.Consumer, error) {
	durable := fmt.Sprintf("p%d", p)
	var c jetstream.Consumer
	lookup := func(ctx context.Context) (err error) { c, err = q.stream.Consumer(ctx, durable); return err }
	err := call(lookup)
	if errors.Is(err, jetstream.ErrConsumerNotFound) && !create {
		return nil, ErrNoJob // being made
	}
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		err = call(func(ctx context.Context) (err error) {
			c, err = q.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
				Durable:        durable,
				FilterSubject:  fmt.Sprintf("%s%d", q.subject, p),
				AckPolicy:      jetstream.AckExplicitPolicy,
				AckWait:        q.opts.AckWait,
				MaxDeliver:     -1,
				MaxAckPending:  -1,
				PriorityPolicy: jetstream.PriorityPolicyPinned,
				PriorityGroups: []string{group},
				PinnedTTL:      q.opts.AckWait,
			})
			return err
		})
		if errors.Is(err, jetstream.ErrConsumerExists) { // made meanwhile, with other options
			err = call(lookup)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("jsqueue: consumer %s: %w", durable, err)
	}
	return c, nil
}

// joinTimeout bounds one call join makes to the engine (a variable: tests shorten it).
var joinTimeout = callTimeout

// joinCall makes one call of join, f, within joinTimeout, and makes it again while the engine does
// not answer in time or says JetStream is not ready, until giveUp or ctx ends. A server without
// JetStream (no responders) fails at once.
func (q *Queue) joinCall(ctx context.Context, giveUp time.Time, f func(ctx context.Context) error) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, joinTimeout)
		err := f(cctx)
		cancel()
		var apiErr *jetstream.APIError
		slow := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
			errors.As(err, &apiErr) && apiErr.Code == http.StatusServiceUnavailable
		if !slow || ctx.Err() != nil || !time.Now().Before(giveUp) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(min(retryPause, time.Until(giveUp))):
		}
	}
}
