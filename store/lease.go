package store

import (
	"bytes"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// PendingHosts lists every host with at least one Pending record, with how many and the earliest
// NextAttempt among them, in host order. It reads one summary entry and the first key of one
// queue per host, never the records, so it stays cheap with a million pending URLs.
func (s *Store) PendingHosts() ([]HostQueue, error) {
	var out []HostQueue
	err := s.view(func(tx *bolt.Tx) error {
		hosts, queues := tx.Bucket(bucketHosts), tx.Bucket(bucketQueues)
		return hosts.ForEach(func(k, v []byte) error {
			n, m := binary.Uvarint(v)
			if m <= 0 {
				return corrupt(s.path, "bad pending count for host %q", k)
			}
			hq := HostQueue{Host: string(k), Pending: int(n)}
			if q := queues.Bucket(k); q != nil {
				if first, _ := q.Cursor().First(); len(first) == 16 {
					hq.Next = dueTime(binary.BigEndian.Uint64(first))
				}
			}
			out = append(out, hq)
			return nil
		})
	})
	return out, err
}

// Lease moves up to n Pending records of host that are due (NextAttempt <= now) to Leased, in
// one transaction, and returns them earliest NextAttempt first, in enqueue order among equal
// times. The records stay in the store: Commit settles them, and if this process dies first the
// next Open puts them back in the queue. Cost: O(n log N) — it reads the head of host's queue.
func (s *Store) Lease(host string, n int, now time.Time) ([]Record, error) {
	if n <= 0 || host == "" {
		return nil, nil
	}
	got, err := s.LeaseEach([]string{host}, n, now)
	if err != nil {
		return nil, err
	}
	return got[0], nil
}

// LeaseEach is Lease for each of hosts, all in one transaction: out[i] is what hosts[i] leased.
// A run over many hosts leases a few jobs for each; a transaction, and so an fsync, per host
// would hold up the dispatcher (E2E scale run B, 1,000 hosts: see scheduler's dispatcher.lease).
func (s *Store) LeaseEach(hosts []string, n int, now time.Time) ([][]Record, error) {
	out := make([][]Record, len(hosts))
	if n <= 0 {
		return out, nil
	}
	err := s.update(func(w *wtx) error {
		clear(out) // bbolt may not retry, but keep fn safe to rerun
		for i, host := range hosts {
			got, err := w.lease(host, n, now)
			if err != nil {
				return err
			}
			out[i] = got
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lease is Lease within w, for n > 0.
func (w *wtx) lease(host string, n int, now time.Time) ([]Record, error) {
	if host == "" {
		return nil, nil
	}
	q, err := w.queue(host, false)
	if err != nil || q == nil {
		return nil, err
	}
	// Collect first, then modify: a bbolt cursor is not guaranteed valid across deletes.
	due := binary.BigEndian.AppendUint64(nil, dueKey(now))
	var urls []string
	c := q.Cursor()
	for k, v := c.First(); k != nil && len(urls) < n; k, v = c.Next() {
		if bytes.Compare(k[:8], due) > 0 {
			break
		}
		url, err := decodeQueued(host, v)
		if err != nil {
			return nil, corrupt(w.path, "queue of %q: %v", host, err)
		}
		urls = append(urls, url)
	}
	var out []Record
	for _, url := range urls {
		r, seq, ok, err := w.get(url)
		if err != nil {
			return nil, err
		}
		if !ok || r.State != Pending {
			return nil, corrupt(w.path, "queue of %q lists %q, which is not pending", host, url)
		}
		if err := w.detach(&r, seq); err != nil {
			return nil, err
		}
		r.State = Leased
		if err := w.insert(&r, seq); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
