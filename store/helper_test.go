package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// testStore is a Store in t.TempDir() that, at cleanup, checks the invariants, reopens the file
// (which recovers leases) and checks them again, like bbolt's internal/btesting.
type testStore struct {
	*Store
	t    testing.TB
	path string
}

func mustOpen(t testing.TB) *testStore {
	t.Helper()
	ts := &testStore{t: t, path: filepath.Join(t.TempDir(), ".trawl", "state.db")}
	ts.reopen()
	t.Cleanup(func() {
		if ts.Store != nil {
			ts.check()
			ts.close()
		}
		ts.reopen()
		ts.check()
		if c, err := ts.Counts(); err != nil || c.Leased != 0 {
			t.Errorf("after reopen: counts %+v, %v; want no leased", c, err)
		}
		ts.close()
	})
	return ts
}

// reopen closes the store if open and opens it again, as the next run of trawl would.
func (ts *testStore) reopen() {
	ts.t.Helper()
	if ts.Store != nil {
		ts.close()
	}
	s, err := Open(ts.path, &Options{NoSync: true})
	if err != nil {
		ts.t.Fatalf("Open: %v", err)
	}
	ts.Store = s
}

func (ts *testStore) close() {
	ts.t.Helper()
	if err := ts.Store.Close(); err != nil {
		ts.t.Fatalf("Close: %v", err)
	}
	ts.Store = nil
}

func (ts *testStore) check() {
	ts.t.Helper()
	if err := ts.checkInvariants(); err != nil {
		ts.t.Errorf("invariants: %v", err)
	}
}

// checkInvariants verifies what every transaction must preserve: counters equal a recount,
// every Pending record is in exactly its host's queue under its key and nothing else is queued,
// host summaries match queue sizes, the leased bucket lists exactly the Leased records, and every
// reserved path belongs to a known URL.
func (s *Store) checkInvariants() error {
	return s.db.View(func(tx *bolt.Tx) error {
		var checkErr error
		for err := range tx.Check(bolt.WithKVStringer(bolt.HexKVStringer())) {
			checkErr = errors.Join(checkErr, err)
		}
		if checkErr != nil {
			return fmt.Errorf("bbolt check: %v", checkErr)
		}
		records, queues := tx.Bucket(bucketRecords), tx.Bucket(bucketQueues)
		var recount Counts
		openPages, deepest, skips := 0, 0, map[string]int{}
		perHost := map[string]Counts{}
		leased := map[string]bool{}
		queued := 0
		err := records.ForEach(func(k, v []byte) error {
			r, seq, err := decodeRecord(string(k), v)
			if err != nil {
				return fmt.Errorf("record %q: %v", k, err)
			}
			h := perHost[r.Host]
			h = addCounts(h, countOne(r))
			perHost[r.Host] = h
			switch r.State {
			case Pending:
				recount.Pending++
				q := queues.Bucket([]byte(r.Host))
				if q == nil || !bytes.Equal(q.Get(queueKey(r.NextAttempt, seq)), encodeQueued(r.Host, r.URL)) {
					return fmt.Errorf("pending %q not in queue %q at seq %d", k, r.Host, seq)
				}
			case Leased:
				recount.Leased++
				leased[r.URL] = true
			case Done:
				recount.Done++
				recount.Bytes += r.Bytes
			case Failed:
				recount.Failed++
			case Skipped:
				recount.Skipped++
			}
			if !r.Requisite && r.State != Skipped {
				recount.Pages++
				deepest = max(deepest, r.Depth)
			}
			if !r.Requisite && (r.State == Pending || r.State == Leased) {
				openPages++
			}
			if r.State == Skipped {
				skips[SkipReason(r.LastError)]++
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := checkTally(tx, openPages, skips); err != nil {
			return err
		}
		if err := checkLevels(s.path, tx, openPages, deepest); err != nil {
			return err
		}
		got, err := readCounts(s.path, tx.Bucket(bucketMeta))
		if err != nil {
			return err
		}
		if got != recount {
			return fmt.Errorf("counters %+v, recount %+v", got, recount)
		}
		stat := map[string]Counts{}
		if err := tx.Bucket(bucketHostStat).ForEach(func(k, v []byte) error {
			c, err := decodeCounts(s.path, v)
			stat[string(k)] = c
			return err
		}); err != nil {
			return err
		}
		if len(stat) != len(perHost) {
			return fmt.Errorf("host counters for %d hosts, records on %d", len(stat), len(perHost))
		}
		for h, c := range perHost {
			if stat[h] != c {
				return fmt.Errorf("host %q counters %+v, recount %+v", h, stat[h], c)
			}
		}
		hosts := tx.Bucket(bucketHosts)
		err = queues.ForEach(func(host, _ []byte) error {
			n := queues.Bucket(host).Stats().KeyN
			queued += n
			var summary uint64
			if v := hosts.Get(host); v != nil {
				summary, _ = binary.Uvarint(v)
				if summary == 0 {
					return fmt.Errorf("host %q summary is zero, want absent", host)
				}
			}
			if int(summary) != n {
				return fmt.Errorf("host %q summary %d, queue has %d", host, summary, n)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if queued != recount.Pending {
			return fmt.Errorf("%d queued, %d pending", queued, recount.Pending)
		}
		if err := hosts.ForEach(func(host, _ []byte) error {
			if queues.Bucket(host) == nil {
				return fmt.Errorf("host %q summarized but has no queue", host)
			}
			return nil
		}); err != nil {
			return err
		}
		n := 0
		if err := tx.Bucket(bucketLeased).ForEach(func(k, _ []byte) error {
			n++
			if !leased[string(k)] {
				return fmt.Errorf("lease of %q, which is not leased", k)
			}
			return nil
		}); err != nil {
			return err
		}
		if n != len(leased) {
			return fmt.Errorf("%d leases, %d leased records", n, len(leased))
		}
		return tx.Bucket(bucketPaths).ForEach(func(p, v []byte) error {
			url, err := decodeReservation(string(p), v)
			if err != nil {
				return fmt.Errorf("path %q: %v", p, err)
			}
			if records.Get([]byte(url)) == nil {
				return fmt.Errorf("path %q reserved by unknown %q", p, url)
			}
			return nil
		})
	})
}

// urls makes n NewURLs on host with paths host/<i>.jpg.
func urls(host string, from, n int) []NewURL {
	out := make([]NewURL, n)
	for i := range out {
		out[i] = NewURL{URL: fmt.Sprintf("https://%s/img/%06d.jpg", host, from+i), Host: host,
			Path: fmt.Sprintf("%s/img/%06d.jpg", host, from+i)}
	}
	return out
}

func mustEnqueue(t testing.TB, s *Store, u []NewURL) int {
	t.Helper()
	n, err := s.Enqueue(u)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	return n
}

func mustLease(t testing.TB, s *Store, host string, n int, now time.Time) []Record {
	t.Helper()
	recs, err := s.Lease(host, n, now)
	if err != nil {
		t.Fatalf("Lease: %v", err)
	}
	return recs
}

func mustCommit(t testing.TB, s *Store, u ...Update) {
	t.Helper()
	if err := s.Commit(u); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func mustCounts(t testing.TB, s *Store) Counts {
	t.Helper()
	c, err := s.Counts()
	if err != nil {
		t.Fatalf("Counts: %v", err)
	}
	c.Pages = 0 // checked against a recount by checkInvariants; tests compare the states
	return c
}

func urlsOf(recs []Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.URL
	}
	return out
}

func countOne(r Record) (c Counts) {
	switch r.State {
	case Pending:
		c = Counts{Pending: 1}
	case Leased:
		c = Counts{Leased: 1}
	case Done:
		c = Counts{Done: 1, Bytes: r.Bytes}
	case Failed:
		c = Counts{Failed: 1}
	case Skipped:
		return Counts{Skipped: 1}
	}
	if !r.Requisite {
		c.Pages = 1
	}
	return c
}

// checkTally compares the open pages and the skips by reason with a recount.
func checkTally(tx *bolt.Tx, openPages int, skips map[string]int) error {
	meta := tx.Bucket(bucketMeta)
	v := meta.Get(keyOpenPages)
	if v == nil && meta.Get(keySkips) == nil && tx.Bucket(bucketRecords).Stats().KeyN == 0 {
		return nil // a new file no write transaction has counted yet
	}
	if n, _ := binary.Uvarint(v); v == nil || int(n) != openPages {
		return fmt.Errorf("open pages %d (stored %x), recount %d", n, v, openPages)
	}
	got, err := decodeSkips(meta.Get(keySkips))
	if err != nil || meta.Get(keySkips) == nil {
		return fmt.Errorf("skip counts %x: %v", meta.Get(keySkips), err)
	}
	if !maps.Equal(got, skips) {
		return fmt.Errorf("skips %v, recount %v", got, skips)
	}
	return nil
}

// checkLevels checks a breadth-first job: held links and their index by URL agree, every held link
// is deeper than the open level and every page record no deeper, and links are held only while
// pages are left to fetch.
func checkLevels(path string, tx *bolt.Tx, openPages, deepest int) error {
	l, err := readLevel(path, tx.Bucket(bucketMeta))
	if err != nil {
		return err
	}
	held, byURL := tx.Bucket(bucketHeld), tx.Bucket(bucketHeldURL)
	if (held == nil) != (byURL == nil) {
		return fmt.Errorf("held bucket %v, by URL %v", held != nil, byURL != nil)
	}
	if l == nil {
		if held != nil && held.Stats().KeyN > 0 {
			return fmt.Errorf("links held in a job that is not breadth-first")
		}
		return nil
	}
	if deepest > l.open {
		return fmt.Errorf("a page record of depth %d, open level %d", deepest, l.open)
	}
	if held == nil {
		return nil
	}
	n := 0
	if err := held.ForEach(func(k, v []byte) error {
		n++
		u, err := decodeHeld(k, v)
		if err != nil {
			return fmt.Errorf("held %q: %v", k, err)
		}
		if u.Depth <= l.open {
			return fmt.Errorf("held %s at depth %d, open level %d", u.URL, u.Depth, l.open)
		}
		if p := byURL.Get([]byte(u.URL)); !bytes.Equal(p, k[:heldPrefix]) {
			return fmt.Errorf("held %s under %x, indexed %x", u.URL, k[:heldPrefix], p)
		}
		return nil
	}); err != nil {
		return err
	}
	if m := byURL.Stats().KeyN; m != n {
		return fmt.Errorf("%d held links, %d indexed", n, m)
	}
	if n > 0 && openPages == 0 {
		return fmt.Errorf("%d links held with no page left to fetch", n)
	}
	return nil
}
