package store

import (
	"fmt"
	"time"
)

// Commit applies a batch of job outcomes in one transaction. Each Update.Record, keyed by its
// URL, replaces the stored record: State Done or Failed settles it; Pending queues it again at
// Record.NextAttempt (a retry; an unchanged leased record given back keeps its old place in the
// queue). The lease, the host's queue and the counters follow, and Update.Links are enqueued as
// Enqueue would, so a page's outcome and the links found in it are durable together.
//
// Applying the same batch twice leaves the store as applying it once. A Record with an empty
// Host keeps the stored host; a URL the store does not know is added as given. The stored
// WantSHA256 is Enqueue's and is kept: an update judged against another (the list's sum changed
// while the URL was leased) is settled by Record.ApplyWant with the stored one. In a breadth-first
// job, the commit that settles the last page of the open levels opens the next (levels.go).
func (s *Store) Commit(updates []Update) error {
	for _, u := range updates {
		switch {
		case u.Record.URL == "":
			return fmt.Errorf("store: commit: empty URL")
		case u.Record.State == Leased || u.Record.State < Pending || u.Record.State > Skipped:
			return fmt.Errorf("store: commit %.100q: state %v, want pending, done, failed or skipped", u.Record.URL, u.Record.State)
		case !validWant(u.Record.WantSHA256):
			return fmt.Errorf("store: commit %.100q: expected sha256 %.100q is not 64 lowercase hex digits", u.Record.URL, u.Record.WantSHA256)
		}
		if err := validateNew(u.Links); err != nil {
			return err
		}
	}
	return s.update(func(w *wtx) error {
		for i := range updates {
			if err := w.commit(&updates[i]); err != nil {
				return err
			}
		}
		return w.promote()
	})
}

func (w *wtx) commit(u *Update) error {
	r := u.Record
	old, seq, known, err := w.get(r.URL)
	if err != nil {
		return err
	}
	parent := seq // the page's queue position ranks its links (levels.go)
	if known {
		if err := w.detach(&old, seq); err != nil {
			return err
		}
		if r.Host == "" {
			r.Host = old.Host
		}
		if r.WantSHA256 != old.WantSHA256 {
			r.ApplyWant(old.WantSHA256)
		}
		// Keep the queue position only where it still means the same thing: same host's
		// sequence space and same due time (a lease given back, or this batch applied again).
		// A breadth-first job keeps it through retries too: it ranks the page in its level, and
		// one sequence for all hosts keeps it unique in the queue whatever the due time.
		if old.Host != r.Host || w.level == nil && dueKey(old.NextAttempt) != dueKey(r.NextAttempt) {
			seq = 0
		}
	}
	if r.Host == "" {
		return fmt.Errorf("store: commit %.100q: empty host", r.URL)
	}
	if err := w.insert(&r, seq); err != nil {
		return err
	}
	_, err = w.enqueue(u.Links, parent)
	return err
}

// Requeue puts Failed records (those filter accepts; all if filter is nil) back to Pending with
// Attempts 0, due now, in one transaction, and returns how many. For `trawl retry`.
//
// It reads every record, so it costs a scan of the file; it is a command, not a hot path.
func (s *Store) Requeue(filter func(Record) bool) (int, error) {
	return s.requeue(Failed, filter, false)
}

// Revalidate puts Done records (those filter accepts; all if filter is nil) back to Pending with
// Attempts 0, due now, keeping their validators, size and sha256, so that the next fetch is a
// conditional request (a refresh run). Like Requeue it scans the file.
func (s *Store) Revalidate(filter func(Record) bool) (int, error) {
	return s.requeue(Done, filter, false)
}

// Refetch puts Done records (those filter accepts; all if filter is nil) back to Pending as if
// never fetched: Attempts 0, due now, without validators, status, size or sha256, so that the next
// fetch is a whole download and counts as new. For files a crawl recorded done without keeping
// them (--save) that a later run keeps. Like Requeue it scans the file.
func (s *Store) Refetch(filter func(Record) bool) (int, error) {
	return s.requeue(Done, filter, true)
}

func (s *Store) requeue(state State, filter func(Record) bool, forget bool) (int, error) {
	n := 0
	err := s.update(func(w *wtx) error {
		n = 0
		// Walk in chunks: collect, then modify, then seek back past the last key seen, because
		// a bbolt cursor is not valid across writes, and holding every failed URL in memory
		// would grow with the job.
		const chunk = 1024
		var after []byte
		for {
			type hit struct {
				r   Record
				seq uint64
			}
			var hits []hit
			c := w.records.Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if k != nil && string(k) == string(after) {
					k, v = c.Next()
				}
			}
			seen := 0
			for ; k != nil && seen < chunk; k, v = c.Next() {
				seen++
				after = append(after[:0], k...)
				if len(v) < 2 || State(v[1]) != state { // cheap pre-filter on the state byte
					continue
				}
				r, seq, err := decodeRecord(string(k), v)
				if err != nil {
					return corrupt(s.path, "record of %q: %v", k, err)
				}
				if filter == nil || filter(r) {
					hits = append(hits, hit{r, seq})
				}
			}
			for _, h := range hits {
				if err := w.detach(&h.r, h.seq); err != nil {
					return err
				}
				h.r.State, h.r.Attempts, h.r.NextAttempt, h.r.Transient = Pending, 0, time.Time{}, false
				if forget {
					h.r.Status, h.r.Bytes, h.r.SHA256, h.r.ETag, h.r.LastModified = 0, 0, "", "", ""
				}
				if err := w.insert(&h.r, 0); err != nil {
					return err
				}
				n++
			}
			if k == nil {
				return nil
			}
		}
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
