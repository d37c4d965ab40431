package jsqueue

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/trawl-dev/trawl/queue"
)

// Get returns the record of url.
func (q *Queue) Get(url string) (queue.Record, bool, error) {
	ctx, cancel := q.ctx()
	defer cancel()
	r, ok, err := q.getRecord(ctx, url)
	if ok {
		q.overlay(&r)
	}
	return r, ok, err
}

// overlay shows a record this worker has leased as Leased: leases live in the engine, not in the
// record.
func (q *Queue) overlay(r *queue.Record) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if it := q.held[r.URL]; it != nil && it.leased && r.State == queue.Pending {
		r.State = queue.Leased
	}
}

// ForEach calls fn with every record of the job. It reads the whole bucket.
func (q *Queue) ForEach(fn func(queue.Record) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	keys, err := q.records.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("jsqueue: list: %w", err)
	}
	for k := range keys.Keys() {
		e, err := q.records.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("jsqueue: get: %w", err)
		}
		var r queue.Record
		if err := json.Unmarshal(e.Value(), &r); err != nil {
			return fmt.Errorf("jsqueue: record %s: %w", k, err)
		}
		q.overlay(&r)
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// Counts are the job's records by state, as this worker sees them (another worker's leases count
// as pending). It reads the whole bucket.
func (q *Queue) Counts() (queue.Counts, error) {
	var c queue.Counts
	err := q.ForEach(func(r queue.Record) error { count(&c, r); return nil })
	return c, err
}

// HostCounts are Counts per host. It reads the whole bucket.
func (q *Queue) HostCounts() (map[string]queue.Counts, error) {
	out := map[string]queue.Counts{}
	err := q.ForEach(func(r queue.Record) error {
		c := out[r.Host]
		count(&c, r)
		out[r.Host] = c
		return nil
	})
	return out, err
}

func count(c *queue.Counts, r queue.Record) {
	switch r.State {
	case queue.Pending:
		c.Pending++
	case queue.Leased:
		c.Leased++
	case queue.Done:
		c.Done++
		c.Bytes += r.Bytes
	case queue.Failed:
		c.Failed++
	case queue.Skipped:
		c.Skipped++
	}
	if !r.Requisite && r.State != queue.Skipped {
		c.Pages++
	}
}

// Requeue puts the Failed records filter accepts (nil: all) back in the queue with a fresh
// retry budget.
func (q *Queue) Requeue(filter func(queue.Record) bool) (int, error) {
	return q.requeue(queue.Failed, filter)
}

// Revalidate puts the Done records filter accepts (nil: all) back in the queue, keeping their
// validators, size and sha256 for a conditional request.
func (q *Queue) Revalidate(filter func(queue.Record) bool) (int, error) {
	return q.requeue(queue.Done, filter)
}

func (q *Queue) requeue(state queue.State, filter func(queue.Record) bool) (int, error) {
	var hits []queue.Record
	err := q.ForEach(func(r queue.Record) error {
		if r.State == state && (filter == nil || filter(r)) {
			hits = append(hits, r)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, r := range hits {
		r.State, r.Attempts, r.NextAttempt = queue.Pending, 0, time.Time{}
		if err := q.requeueOne(r); err != nil {
			return 0, err
		}
	}
	return len(hits), nil
}

func (q *Queue) requeueOne(r queue.Record) error {
	ctx, cancel := q.ctx()
	defer cancel()
	if err := q.publish(ctx, r); err != nil {
		return err
	}
	return q.putRecord(ctx, r)
}

// metaKey encodes a metadata key for the bucket, which allows few characters.
func metaKey(k string) string { return "m." + base64.RawURLEncoding.EncodeToString([]byte(k)) }

// Meta returns the value of key, "" if unset.
func (q *Queue) Meta(key string) (string, error) {
	ctx, cancel := q.ctx()
	defer cancel()
	e, err := q.meta.Get(ctx, metaKey(key))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("jsqueue: meta %q: %w", key, err)
	}
	return string(e.Value()), nil
}

// SetMeta sets key to value.
func (q *Queue) SetMeta(key, value string) error {
	return q.SetMetas(map[string]string{key: value})
}

// SetMetas sets several keys, one write each (not atomically, unlike the bbolt store).
func (q *Queue) SetMetas(kv map[string]string) error {
	for k, v := range kv {
		ctx, cancel := q.ctx()
		_, err := q.meta.Put(ctx, metaKey(k), []byte(v))
		cancel()
		if err != nil {
			return fmt.Errorf("jsqueue: meta %q: %w", k, err)
		}
	}
	return nil
}

// SetPageLimit caps the pages the job queues, counted over every worker.
func (q *Queue) SetPageLimit(n int) {
	q.mu.Lock()
	q.pageLimit = n
	q.mu.Unlock()
}

// Close stops keeping leases alive, gives back every message this worker holds, for others to
// take at once, and leaves the connection to its owner.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() { close(q.closing) })
	<-q.loopDone
	q.mu.Lock()
	held := q.held
	q.held, q.buf = map[string]*item{}, nil
	q.mu.Unlock()
	for _, it := range held {
		_ = it.msg.Nak()
	}
	// Leave the deal of partitions: the others take this worker's share once its pins lapse.
	ctx, cancel := q.ctx()
	defer cancel()
	_ = q.workers.Delete(ctx, q.id)
	return nil
}
