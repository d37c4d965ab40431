package store

import (
	"encoding/binary"
	"maps"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Two counts kept beside Counts, by every transaction, so that reading them costs O(1):
//
//   - keyOpenPages, the page records (not requisites) that are Pending or Leased: the pages still
//     to fetch. A breadth-first job opens its next level when it falls to zero (levels.go).
//   - keySkips, the Skipped records by reason (their LastError): what `trawl status` shows instead
//     of one number.
//
// A file of format "5" has neither; the first write transaction of this trawl (the one Open makes)
// counts them from the records, once: see tallyOnce.

// maxSkipReason bounds a reason kept as its own count: the store's and the scheduler's reasons
// are short words; a longer LastError given with a Skipped record counts as skipOther.
const (
	maxSkipReason = 40
	skipOther     = "other"
)

// SkipReason is the reason a Skipped record with lastError is counted under.
func SkipReason(lastError string) string {
	if len(lastError) > maxSkipReason {
		return skipOther
	}
	return lastError
}

// tally adds delta records like r to the open pages and the skips. count calls it.
func (w *wtx) tally(r *Record, delta int) {
	switch r.State {
	case Pending, Leased:
		if !r.Requisite {
			w.openPages += delta
		}
	case Skipped:
		w.skips[SkipReason(r.LastError)] += delta
	}
}

// readTally reads the open pages at the start of a transaction (skips are kept as deltas), or
// counts both from the records if the file has not got them yet.
func (w *wtx) readTally() error {
	v, skips := w.meta.Get(keyOpenPages), w.meta.Get(keySkips)
	if v == nil || skips == nil {
		return w.tallyOnce()
	}
	n, k := binary.Uvarint(v)
	if k <= 0 || k != len(v) {
		return corrupt(w.path, "bad count of open pages")
	}
	w.openPages = int(n)
	return nil
}

// tallyOnce counts the open pages and the skips of a file that has not got them (format "5", or
// a new file), as deltas that the transaction's flush writes. It reads every record: once per
// file, in the transaction that marks it with the current format.
func (w *wtx) tallyOnce() error {
	if err := w.meta.Delete(keySkips); err != nil {
		return err
	}
	w.openPages = 0
	clear(w.skips)
	c := w.records.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(v) < 2 {
			return corrupt(w.path, "record of %q: %v", k, errBadRecord)
		}
		if s := State(v[1]); s == Done || s == Failed { // cheap pre-filter on the state byte
			continue
		}
		r, _, err := decodeRecord(string(k), v)
		if err != nil {
			return corrupt(w.path, "record of %q: %v", k, err)
		}
		w.tally(&r, 1)
	}
	return nil
}

// flushTally writes the open pages and merges the skip deltas into the stored counts.
func (w *wtx) flushTally() error {
	if w.openPages < 0 {
		return corrupt(w.path, "count of open pages would go negative")
	}
	v, old := binary.AppendUvarint(nil, uint64(w.openPages)), w.meta.Get(keyOpenPages)
	if old == nil || string(old) != string(v) {
		if err := w.meta.Put(keyOpenPages, v); err != nil {
			return err
		}
	}
	changed := w.meta.Get(keySkips) == nil
	for _, d := range w.skips {
		changed = changed || d != 0
	}
	if !changed {
		return nil
	}
	skips, err := decodeSkips(w.meta.Get(keySkips))
	if err != nil {
		return corrupt(w.path, "skip counts: %v", err)
	}
	for reason, d := range w.skips {
		skips[reason] += d
		switch n := skips[reason]; {
		case n < 0:
			return corrupt(w.path, "count of records skipped for %q would go negative", reason)
		case n == 0:
			delete(skips, reason)
		}
	}
	clear(w.skips)
	return w.meta.Put(keySkips, encodeSkips(skips))
}

// encodeSkips writes counts by reason, in reason order: a uvarint count of reasons, then each
// reason as a string and its count as a uvarint. The value is never empty.
func encodeSkips(skips map[string]int) []byte {
	b := binary.AppendUvarint(nil, uint64(len(skips)))
	for _, reason := range slices.Sorted(maps.Keys(skips)) {
		b = appendString(b, reason)
		b = binary.AppendUvarint(b, uint64(skips[reason]))
	}
	return b
}

func decodeSkips(v []byte) (map[string]int, error) {
	skips := map[string]int{}
	if v == nil {
		return skips, nil
	}
	d := decoder{b: v}
	for n := d.uvarint(); n > 0 && d.err == nil; n-- {
		reason := d.string()
		skips[reason] = int(d.uvarint())
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, errBadRecord
	}
	return skips, nil
}

// SkipReasons returns how many records are Skipped for each reason (their LastError: "off-scope",
// "depth", "robots.txt", "max-pages"...; a reason longer than 40 bytes counts as "other"). A file
// last written by an older trawl has no such counts until it is opened for writing: the result
// is then nil.
func (s *Store) SkipReasons() (map[string]int, error) {
	var skips map[string]int
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keySkips)
		if v == nil {
			return nil
		}
		var err error
		if skips, err = decodeSkips(v); err != nil {
			return corrupt(s.path, "skip counts: %v", err)
		}
		return nil
	})
	return skips, err
}
