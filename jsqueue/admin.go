package jsqueue

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/trawl-dev/trawl/queue"
)

// Get returns the record of url.
func (q *Queue) Get(url string) (queue.Record, bool, error) {
	r, ok, err := q.getRecord(url)
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

// ForEach calls fn with every record of the job. It streams the whole bucket: one ordered
// consumer delivers the latest value of each key, not a request per record. A connection lost
// meanwhile ends it with an error.
func (q *Queue) ForEach(fn func(queue.Record) error) error {
	lctx, _ := q.link.current()
	return q.forEach(lctx, fn)
}

// scan is ForEach that starts again from the first record, with begin called first, when the
// engine could not be read to the end: for readers whose fn only adds up (counts, requeue's
// list), which a worker needs to ride out an outage.
func (q *Queue) scan(begin func(), fn func(queue.Record) error) error {
	return q.do(false, func(ctx context.Context) error {
		begin()
		return q.forEach(ctx, fn)
	})
}

func (q *Queue) forEach(ctx context.Context, fn func(queue.Record) error) error {
	return q.forEachEntry(ctx, func(r queue.Record, _ uint64) error { return fn(r) })
}

// forEachEntry is forEach that gives each record's revision too.
func (q *Queue) forEachEntry(ctx context.Context, fn func(r queue.Record, rev uint64) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := q.records.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("jsqueue: list: %w", err)
	}
	defer w.Stop()
	// A record rewritten while the bucket is read is delivered twice (its value when the read
	// began, then its new one): each key counts once.
	seen := map[[16]byte]bool{}
	stall := time.NewTimer(q.timeout) // the engine went quiet before the end of the bucket
	defer stall.Stop()
	for {
		var e jetstream.KeyValueEntry
		select {
		case e = <-w.Updates():
			stall.Reset(q.timeout)
		case <-stall.C:
			return fmt.Errorf("jsqueue: list: no record for %v: %w", q.timeout, context.DeadlineExceeded)
		case <-ctx.Done():
			return fmt.Errorf("jsqueue: list: %w", ctx.Err())
		}
		if e == nil {
			return nil
		}
		var k [16]byte
		if _, err := hex.Decode(k[:], []byte(e.Key())); err == nil {
			if seen[k] {
				continue
			}
			seen[k] = true
		}
		var r queue.Record
		if err := decodeRecord(e.Value(), &r); err != nil {
			return fmt.Errorf("jsqueue: record %s: %w", e.Key(), err)
		}
		q.overlay(&r)
		if err := fn(r, e.Revision()); err != nil {
			return err
		}
	}
}

// Counts are the job's records by state, as this worker sees them (another worker's leases count
// as pending). It reads the whole bucket.
func (q *Queue) Counts() (queue.Counts, error) {
	var c queue.Counts
	err := q.scan(func() { c = queue.Counts{} }, func(r queue.Record) error { c.Add(r); return nil })
	return c, err
}

// HostCounts are Counts per host. It reads the whole bucket.
func (q *Queue) HostCounts() (map[string]queue.Counts, error) {
	var out map[string]queue.Counts
	err := q.scan(func() { out = map[string]queue.Counts{} }, func(r queue.Record) error {
		c := out[r.Host]
		c.Add(r)
		out[r.Host] = c
		return nil
	})
	return out, err
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
	type hit struct {
		r   queue.Record
		rev uint64
	}
	var hits []hit
	err := q.do(false, func(ctx context.Context) error {
		hits = nil
		return q.forEachEntry(ctx, func(r queue.Record, rev uint64) error {
			if r.State == state && (filter == nil || filter(r)) {
				hits = append(hits, hit{r, rev})
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, h := range hits {
		ok, err := q.requeueOne(h.r, h.rev, func(r queue.Record) bool {
			return r.State == state && (filter == nil || filter(r))
		})
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// requeueOne publishes r again, then writes it pending over revision rev of its record, and
// reports whether it did: a worker that takes the message first takes it as work all the same
// (see work.Rev). If the record was written meanwhile it is read again: one that still qualifies
// (a sitemap's word, say, changed it) is published again with its new revision and written
// pending over that; one that no longer does (a worker settled it, another requeue took it) keeps
// its state, and is not counted.
func (q *Queue) requeueOne(r queue.Record, rev uint64, qualifies func(queue.Record) bool) (bool, error) {
	for {
		r.State, r.Attempts, r.NextAttempt = queue.Pending, 0, time.Time{}
		if err := q.publish(r, rev); err != nil {
			return false, err
		}
		if q.testBeforeRequeue != nil {
			q.testBeforeRequeue(r.URL)
		}
		b, err := encodeRecord(r)
		if err != nil {
			return false, err
		}
		err = q.do(true, func(ctx context.Context) error {
			_, err := q.records.Update(ctx, key(r.URL), b, rev)
			return err
		})
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
			return false, fmt.Errorf("jsqueue: update %.100q: %w", r.URL, err)
		}
		var ok bool
		if r, rev, ok, err = q.getRecordRev(r.URL); err != nil || !ok || !qualifies(r) {
			return false, err
		}
	}
}

// metaKey encodes a metadata key for the bucket, which allows few characters.
func metaKey(k string) string { return "m." + base64.RawURLEncoding.EncodeToString([]byte(k)) }

// Meta returns the value of key, "" if unset.
func (q *Queue) Meta(key string) (string, error) {
	var e jetstream.KeyValueEntry
	err := q.do(true, func(ctx context.Context) error {
		var err error
		e, err = q.meta.Get(ctx, metaKey(key))
		return err
	})
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
		if err := q.do(true, func(ctx context.Context) error {
			_, err := q.meta.Put(ctx, metaKey(k), []byte(v))
			return err
		}); err != nil {
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
	if q.id == "" {
		q.closeOnce.Do(q.link.stop) // attached: no worker to stop
		return nil
	}
	q.closeOnce.Do(func() { close(q.closing) })
	<-q.loopDone
	_ = q.shareCooldowns() // before the URLs go back: the next worker must see them
	q.mu.Lock()
	held := q.held
	q.held, q.buf = map[string]*item{}, nil
	q.mu.Unlock()
	for _, it := range held {
		_ = it.msg.Nak()
	}
	// Leave the deal of partitions, and give up the pins: the others take this worker's share at
	// once (a pin not given up lapses a lease time after the last pull).
	_ = q.once(func(ctx context.Context) error { return q.workers.Delete(ctx, q.id) })
	// Those it settled a URL of within handGap lapse a lease time after the last pull (see
	// unpinOthers).
	q.pullMu.Lock()
	q.unpinOthers(nil)
	q.pullMu.Unlock()
	q.link.stop()
	return nil
}
