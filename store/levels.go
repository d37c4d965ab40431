package store

import (
	"bytes"
	"encoding/binary"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A breadth-first job (BreadthFirst) is crawled level by level, so that a page's Depth is its
// shortest link distance from a seed whatever order fetches finish in, and a page limit takes the
// shallowest pages, the same ones every time.
//
// The job has an open level L (levelState.open). Page records have depths up to L. A page link
// deeper than L — every link of a level-L page — is held: kept in bucketHeld under
// heldKey(depth, parent, index, URL), neither a record nor queued. When no page record is Pending
// or Leased (keyOpenPages is zero), the transaction that settled the last one opens the next
// level: the held links of the smallest held depth become records, in key order, each decided by
// newRecord (so the page limit counts them in that order), and a URL that has a record by then
// is dropped.
//
// Depths are shortest. Say level m opens. Every page of levels below m is settled, and every done
// one stored its links with its outcome, in one transaction. Suppose every record made at a level
// below m has its page's shortest distance (true of the seeds, level 0), and every page at a
// distance below m has a record. A page made a record at level m was linked from a done page of
// level m-1, so its distance is at most m; were it less, the page would have a record already and
// its link would have been dropped. And every page at distance m is linked from a done page at
// distance m-1, so it is held, or has a record, when level m opens. By induction both hold at
// every level. (Distances are over the pages that were fetched: a page that failed has no links.)
//
// So a record's Depth is final when the record is made. That is what makes leases safe: the
// scheduler commits a leased page with the Record it leased (Commit replaces the stored one), and
// its Depth is still the stored one; and a done page's links were queued at its final depth + 1.
// No record's depth is ever lowered, and no page is fetched again to queue its links anew.
//
// Ties go by discovery order. A page's parent in its held key is the queue position of the page
// whose outcome brought the link (the sequence the record had when it was leased), and its index
// is the link's place among that outcome's links; a link met again keeps the smallest key. A
// breadth-first job draws queue positions from one sequence for all hosts (nextSeq), and a page
// keeps its position through leases, releases and retries (commit). So the records of a level are
// made in the order of their parents' positions, then of their places in the parent, and take
// positions in that order: by induction, each level is made in the order a crawl fetching one page
// at a time in queue order (-c 1) would find it, however the fetches of the level before finished.
//
// Limits. Requisites are never held: a page's requisites are fetched with it. A URL held as a page
// and met as a requisite becomes a requisite record, as when the requisite is met first. Page
// links no deeper than L (the seeds; the links of a page re-queued in a later run, a failure
// retried or a --refresh) are made records at once, and a page that failed in one run and is
// fetched in a later one leaves a page it links that was found deeper since at that depth. A job
// made breadth-first after it began starts at the deepest level it has.

// levelState is a breadth-first job's open level and queue sequence, kept under keyLevel as two
// uvarints.
type levelState struct {
	open  int    // the deepest open level: a page link deeper than this is held
	seq   uint64 // the last queue position drawn (nextSeq)
	dirty bool   // changed in this transaction
}

func readLevel(path string, meta *bolt.Bucket) (*levelState, error) {
	v := meta.Get(keyLevel)
	if v == nil {
		return nil, nil
	}
	d := decoder{b: v}
	l := &levelState{open: int(d.uvarint()), seq: d.uvarint()}
	if d.err != nil || len(d.b) != 0 || l.open < 0 {
		return nil, corrupt(path, "bad breadth-first level")
	}
	return l, nil
}

// flush writes l if it changed; nil (not breadth-first) writes nothing.
func (l *levelState) flush(meta *bolt.Bucket) error {
	if l == nil || !l.dirty {
		return nil
	}
	l.dirty = false
	return meta.Put(keyLevel, binary.AppendUvarint(binary.AppendUvarint(nil, uint64(l.open)), l.seq))
}

// BreadthFirst makes the job breadth-first from now on (see the comment at the top of levels.go):
// page links deeper than the open level wait for it to be fetched, so that every page gets its
// shortest depth, and the page limit takes the shallowest pages first, in discovery order. It is
// recorded in the file, for the job's later runs. A job that was not breadth-first opens every
// level it has, and its records keep their depths.
func (s *Store) BreadthFirst() error {
	return s.update(func(w *wtx) error {
		if w.level == nil {
			if err := w.startLevels(); err != nil {
				return err
			}
		}
		return w.promote()
	})
}

// startLevels makes w's job breadth-first: its open level is the deepest page record's, and its
// queue sequence starts past every host's, so that no two records of a host ever share one.
func (w *wtx) startLevels() error {
	l := &levelState{dirty: true}
	c := w.records.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		r, _, err := decodeRecord(string(k), v)
		if err != nil {
			return corrupt(w.path, "record of %q: %v", k, err)
		}
		if !r.Requisite && r.State != Skipped {
			l.open = max(l.open, r.Depth)
		}
	}
	if err := w.queues.ForEach(func(host, v []byte) error {
		if q := w.queues.Bucket(host); v == nil && q != nil {
			l.seq = max(l.seq, q.Sequence())
		}
		return nil
	}); err != nil {
		return err
	}
	w.level = l
	return nil
}

// heldPrefix is the length of a held key before its URL: depth (4 bytes), parent (8) and index (4),
// big-endian, so that bbolt's order is level order, then discovery order.
const heldPrefix = 16

func heldKey(depth int, parent uint64, index int, url string) []byte {
	k := make([]byte, heldPrefix, heldPrefix+len(url))
	binary.BigEndian.PutUint32(k, uint32(min(depth, math.MaxUint32)))
	binary.BigEndian.PutUint64(k[4:], parent)
	binary.BigEndian.PutUint32(k[12:], uint32(min(index, math.MaxUint32)))
	return append(k, url...)
}

// A held link's value: a flags byte, then its Host and Path as deltas against the URL after its
// scheme, as in a record, then its sitemap Lastmod and Listed as varint unix nanoseconds, each when
// its flag is set (format "7").
const (
	heldAuth    = 1
	heldLastmod = 2
	heldListed  = 4
)

func encodeHeld(u NewURL) []byte {
	b := []byte{0}
	if u.Auth {
		b[0] |= heldAuth
	}
	base := afterScheme(u.URL)
	b = appendDelta(appendDelta(b, base, u.Host), base, u.Path)
	for _, f := range []struct {
		bit byte
		t   time.Time
	}{{heldLastmod, u.Lastmod}, {heldListed, u.Listed}} {
		if !f.t.IsZero() {
			b[0] |= f.bit
			b = binary.AppendVarint(b, unixNano(f.t))
		}
	}
	return b
}

func decodeHeld(key, v []byte) (NewURL, error) {
	url := string(key[heldPrefix:])
	d := decoder{b: v}
	flags := d.byte()
	base := afterScheme(url)
	u := NewURL{URL: url, Depth: int(binary.BigEndian.Uint32(key)), Auth: flags&heldAuth != 0}
	u.Host = d.delta(base)
	u.Path = d.delta(base)
	if flags&heldLastmod != 0 {
		u.Lastmod = fromUnixNano(d.varint())
	}
	if flags&heldListed != 0 {
		u.Listed = fromUnixNano(d.varint())
	}
	if d.err != nil || len(d.b) != 0 || flags&^(heldAuth|heldLastmod|heldListed) != 0 || u.Host == "" {
		return NewURL{}, errBadRecord
	}
	return u, nil
}

// heldBuckets returns the held links and their index by URL, made if create is set (nil if absent
// otherwise).
func (w *wtx) heldBuckets(create bool) (held, byURL *bolt.Bucket, err error) {
	held, byURL = w.tx.Bucket(bucketHeld), w.tx.Bucket(bucketHeldURL)
	if held == nil && create {
		if held, err = w.tx.CreateBucket(bucketHeld); err != nil {
			return nil, nil, err
		}
		if byURL, err = w.tx.CreateBucket(bucketHeldURL); err != nil {
			return nil, nil, err
		}
	}
	return held, byURL, nil
}

// hold keeps back the page links of urls deeper than the open level (parent is the queue position
// of the page they were found in) and returns the others, to be enqueued now. A page link to be
// enqueued now that is held deeper is no longer held.
func (w *wtx) hold(urls []NewURL, parent uint64) ([]NewURL, error) {
	held, byURL, err := w.heldBuckets(false)
	if err != nil {
		return nil, err
	}
	now := urls[:0:0]
	for i, u := range urls {
		switch {
		case u.Requisite || u.Skip != "":
			now = append(now, u)
			continue
		case u.Depth <= w.level.open:
			if byURL != nil {
				if err := w.unhold(held, byURL, u.URL); err != nil {
					return nil, err
				}
			}
			now = append(now, u)
			continue
		case has(w.recordsCur, []byte(u.URL)):
			continue // a page known as it is (or a requisite): left untouched, as Enqueue does
		}
		if held == nil {
			if held, byURL, err = w.heldBuckets(true); err != nil {
				return nil, err
			}
		}
		key := heldKey(u.Depth, parent, i, u.URL)
		if old := byURL.Get([]byte(u.URL)); old != nil {
			if bytes.Compare(key[:heldPrefix], old) >= 0 {
				continue // held already, with a key as small
			}
			if err := w.unhold(held, byURL, u.URL); err != nil {
				return nil, err
			}
		}
		if err := held.Put(key, encodeHeld(u)); err != nil {
			return nil, err
		}
		if err := byURL.Put([]byte(u.URL), key[:heldPrefix]); err != nil {
			return nil, err
		}
	}
	return now, nil
}

// unhold forgets url's held link, if it has one.
func (w *wtx) unhold(held, byURL *bolt.Bucket, url string) error {
	prefix := byURL.Get([]byte(url))
	if prefix == nil {
		return nil
	}
	key := append(bytes.Clone(prefix), url...)
	if err := held.Delete(key); err != nil {
		return err
	}
	return byURL.Delete([]byte(url))
}

// promote opens levels while a breadth-first job has no page left to fetch and links held: those
// of the smallest held depth become records, in key order. See the comment at the top of the file.
func (w *wtx) promote() error {
	if w.level == nil {
		return nil
	}
	held, byURL, err := w.heldBuckets(false)
	if err != nil || held == nil {
		return err
	}
	for w.openPages == 0 {
		// Collect, then modify: a bbolt cursor is not valid across writes.
		type link struct {
			key []byte
			u   NewURL
		}
		var level []link
		c := held.Cursor()
		first, _ := c.First()
		if first == nil {
			return nil
		}
		depth := bytes.Clone(first[:4])
		for k, v := c.First(); k != nil && bytes.HasPrefix(k, depth); k, v = c.Next() {
			u, err := decodeHeld(k, v)
			if err != nil {
				return corrupt(w.path, "held link %q: %v", k[heldPrefix:], err)
			}
			level = append(level, link{bytes.Clone(k), u})
		}
		w.level.open, w.level.dirty = level[0].u.Depth, true
		for _, l := range level {
			if err := held.Delete(l.key); err != nil {
				return err
			}
			if err := byURL.Delete([]byte(l.u.URL)); err != nil {
				return err
			}
			if has(w.recordsCur, []byte(l.u.URL)) {
				continue
			}
			r := w.newRecord(l.u)
			if r.Path != "" {
				if r.Path, err = w.reservePath(r.Path, r.URL); err != nil {
					return err
				}
			}
			if err := w.insert(&r, 0); err != nil {
				return err
			}
		}
	}
	return nil
}
