package store

import "bytes"

// Respeller gives a URL its canonical spelling and that URL's host (queue key). The store has no
// URL rules of its own: the caller's normalizer decides which spellings are one resource.
type Respeller func(url string) (canonical, host string, err error)

// keyRespelled in bucketMeta marks a file whose records were all rekeyed by a Respeller (or that
// was created by an Open given one): later opens skip the walk.
var keyRespelled = []byte("respelled")

// respellBatch is how many records one transaction of respell rekeys, so that a file whose every
// URL changes spelling is not rewritten in one transaction held in memory.
const respellBatch = 10000

// respelling is one record to rekey: its URL as stored, and as spelled now.
type respelling struct{ old, url, host string }

// respell rekeys every record whose URL fn spells otherwise, batch records per transaction, and
// marks the file respelled in the last. A crash between transactions leaves the file unmarked, some
// records rekeyed: the next Open walks again and finds those canonical already. A URL fn refuses,
// or would spell differently again, is left as it is.
func (s *Store) respell(fn Respeller, batch int) error {
	var from []byte
	for {
		var next []byte
		err := s.update(func(w *wtx) error {
			moves, rest := w.respellings(fn, from, batch)
			for _, m := range moves {
				if err := w.rekey(m); err != nil {
					return err
				}
			}
			if rest == nil {
				return w.meta.Put(keyRespelled, []byte("1"))
			}
			next = rest
			return nil
		})
		if err != nil || next == nil {
			return err
		}
		from = next
	}
}

// respellings walks the records from key from (the first if nil) and returns up to batch to rekey,
// and the key to go on from (nil at the end).
func (w *wtx) respellings(fn Respeller, from []byte, batch int) (moves []respelling, rest []byte) {
	c := w.records.Cursor()
	k, _ := c.First()
	if from != nil {
		k, _ = c.Seek(from)
	}
	for ; k != nil; k, _ = c.Next() {
		if len(moves) == batch {
			return moves, bytes.Clone(k)
		}
		old := string(k)
		url, host, err := fn(old)
		if err != nil || url == old {
			continue
		}
		// Rekeyed records are met again further on; they must stay put.
		if again, _, err := fn(url); err != nil || again != url {
			continue
		}
		moves = append(moves, respelling{old: old, url: url, host: host})
	}
	return moves, nil
}

// rekey moves the record stored under m.old to m.url (and its host to m.host), in its state and,
// while its host is the same, at its place in the queue. When m.url has a record already (both
// spellings were queued, as two records), the one further along stays (see respellRank) and the
// other is removed; its file, if it had one, stays on disk with its path reserved.
func (w *wtx) rekey(m respelling) error {
	r, seq, ok, err := w.get(m.old)
	if err != nil || !ok {
		return err
	}
	other, otherSeq, found, err := w.get(m.url)
	if err != nil {
		return err
	}
	if found {
		if respellRank(r.State) <= respellRank(other.State) {
			return w.remove(&r, seq, m.url)
		}
		if err := w.remove(&other, otherSeq, m.url); err != nil {
			return err
		}
	}
	if err := w.detach(&r, seq); err != nil {
		return err
	}
	if err := w.records.Delete([]byte(m.old)); err != nil {
		return err
	}
	if m.host != r.Host {
		seq = 0 // a position in the old host's queue; the new host's next one is drawn
	}
	r.URL, r.Host = m.url, m.host
	if err := w.reown(r.Path, m.old, m.url); err != nil {
		return err
	}
	return w.insert(&r, seq)
}

// respellRank orders the states of two records of one resource: a file on disk beats one to
// fetch, which beats a failure (a fetch may yet succeed) and a skip.
func respellRank(s State) int {
	switch s {
	case Done:
		return 3
	case Pending, Leased:
		return 2
	case Failed:
		return 1
	}
	return 0
}

// remove deletes r, which a record under owner replaces; the path r reserved now names owner, since
// reservations are never released.
func (w *wtx) remove(r *Record, seq uint64, owner string) error {
	if err := w.detach(r, seq); err != nil {
		return err
	}
	if err := w.records.Delete([]byte(r.URL)); err != nil {
		return err
	}
	return w.reown(r.Path, r.URL, owner)
}

// reown gives path's reservation, if old holds it, to url.
func (w *wtx) reown(path, old, url string) error {
	if ok, err := w.holds(path, old); !ok {
		return err
	}
	return w.paths.Put([]byte(path), encodeReservation(path, url))
}
