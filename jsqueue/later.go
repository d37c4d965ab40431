package jsqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// What a worker learns of a host or a URL's time, shared with the workers that come after it:
//
//   - A host's cooldown (a Retry-After, a 429 or 503) is written to the job's hosts bucket before
//     the outcome that brought it is settled, so before the host's partition can move; the
//     worker serving the host next reads it when it first meets the host after the deal changed,
//     and holds the host's URLs back until it ends.
//   - A URL handed back to the engine with a delay (NakWithDelay) is noted in the job's later
//     bucket with its due time, so that a worker left with nothing to do can tell whether all
//     that is outstanding is deferred, and until when (Outstanding): --max-wait needs it.

// laterTTL is how long a note of the later bucket lives: longer than any delay a URL is given (a
// Retry-After is capped at an hour), so a note outlives its delay; then it is of no more use.
const laterTTL = 2 * time.Hour

// hostCooldown is a host's entry in the hosts bucket.
type hostCooldown struct {
	Host  string    `json:"host"`
	Until time.Time `json:"until"`
}

// Cooldown records that host is to be left alone until until: this worker holds its URLs back
// till then, and the next worker to serve the host learns of it. It does not wait for the engine;
// the cooldown is written to it with the next Commit, before any of that Commit's URLs is settled.
func (q *Queue) Cooldown(host string, until time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if until.After(q.cool[host]) {
		q.cool[host] = until
		q.coolNew[host] = until
	}
}

// shareCooldowns writes the cooldowns given here since the last call to the hosts bucket.
func (q *Queue) shareCooldowns() error {
	q.mu.Lock()
	fresh := q.coolNew
	q.coolNew = map[string]time.Time{}
	q.mu.Unlock()
	for host, until := range fresh {
		b, err := json.Marshal(hostCooldown{Host: host, Until: until.UTC()})
		if err != nil {
			return err
		}
		if err := q.do(true, func(ctx context.Context) error {
			_, err := q.hosts.Put(ctx, key(host), b)
			return err
		}); err != nil {
			return fmt.Errorf("jsqueue: cooldown of %s: %w", host, err)
		}
	}
	return nil
}

// learnCooldown reads host's shared cooldown, once after each change of the deal (the host may
// have come from a worker that gave it one).
func (q *Queue) learnCooldown(host string) error {
	q.mu.Lock()
	known := q.coolRead[host]
	q.mu.Unlock()
	if known {
		return nil
	}
	var e jetstream.KeyValueEntry
	err := q.do(true, func(ctx context.Context) error {
		var err error
		e, err = q.hosts.Get(ctx, key(host))
		return err
	})
	var c hostCooldown
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return fmt.Errorf("jsqueue: cooldown of %s: %w", host, err)
	case json.Unmarshal(e.Value(), &c) != nil:
		// Not ours to read: no cooldown.
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.coolRead[host] = true
	if c.Until.After(q.cool[host]) {
		q.cool[host] = c.Until
	}
	return nil
}

// coolingUntil is the end of host's cooldown, if it is after now. Callers hold q.mu.
func (q *Queue) coolingUntil(host string, now time.Time) (time.Time, bool) {
	until, ok := q.cool[host]
	if ok && !until.After(now) {
		delete(q.cool, host)
		return time.Time{}, false
	}
	return until, ok
}

// noteLater notes that url is handed back to the engine until due.
func (q *Queue) noteLater(url string, due time.Time) error {
	b, err := due.UTC().MarshalText()
	if err != nil {
		return err
	}
	return q.do(true, func(ctx context.Context) error {
		_, err := q.later.Put(ctx, key(url), b)
		return err
	})
}

// deferredUntil reads the later bucket: how many of its URLs are due after now, and the earliest
// of those due times.
func (q *Queue) deferredUntil(now time.Time) (int, time.Time, error) {
	n, first := 0, time.Time{}
	err := q.do(false, func(ctx context.Context) error {
		n, first = 0, time.Time{}
		ctx, cancel := context.WithTimeout(ctx, q.timeout)
		defer cancel()
		w, err := q.later.WatchAll(ctx, jetstream.IgnoreDeletes())
		if err != nil {
			return err
		}
		defer w.Stop()
		for {
			var e jetstream.KeyValueEntry
			select {
			case e = <-w.Updates():
			case <-ctx.Done():
				return ctx.Err()
			}
			if e == nil {
				return nil
			}
			var due time.Time
			if due.UnmarshalText(e.Value()) != nil || !due.After(now) {
				continue
			}
			n++
			if first.IsZero() || due.Before(first) {
				first = due
			}
		}
	})
	return n, first, err
}
