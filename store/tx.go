package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Top-level buckets. See doc.go for what each holds.
var (
	bucketMeta     = []byte("meta")     // format version and counters
	bucketRun      = []byte("run")      // SetMeta / Meta: the caller's run metadata
	bucketRecords  = []byte("records")  // URL → encodeRecord
	bucketQueues   = []byte("queues")   // host → bucket of queueKey(NextAttempt, seq) → URL (encodeQueued; Pending only)
	bucketHosts    = []byte("hosts")    // host → uvarint count of Pending records (hosts with none absent)
	bucketLeased   = []byte("leased")   // URL → empty, every Leased record
	bucketPaths    = []byte("paths")    // reserved output path → URL (encodeReservation)
	bucketPathNext = []byte("pathnext") // path → uvarint largest ~N handed out for it (collision hint)
	bucketHostStat = []byte("hoststat") // host → encodeCounts of that host's records
	// Made when first needed (a file without them has nothing held), so not in allBuckets.
	bucketHeld    = []byte("held")    // heldKey(depth, parent, index, URL) → encodeHeld (levels.go)
	bucketHeldURL = []byte("heldurl") // URL → the first heldPrefix bytes of its key in bucketHeld

	allBuckets = [][]byte{bucketMeta, bucketRun, bucketRecords, bucketQueues, bucketHosts,
		bucketLeased, bucketPaths, bucketPathNext, bucketHostStat}
)

// Keys in bucketMeta.
var (
	keyVersion   = []byte("version")
	keyCounts    = []byte("counts")
	keyOpenPages = []byte("openpages") // uvarint: page records Pending or Leased (tally.go)
	keySkips     = []byte("skips")     // Skipped records by reason (tally.go)
	keyLevel     = []byte("level")     // a breadth-first job's open level and sequence (levels.go)
)

// formatVersion is the layout of buckets and keys. A file with another value is refused, except
// older ones that differ only in values this trawl still reads, which are marked formatVersion
// when opened for writing: "3" (version 1 records, reservations always as deltas), "4"
// (Last-Modified and Content-Type always as strings), "5" (no count of open pages or of skips
// by reason, which the opening transaction makes: see tallyOnce; no breadth-first levels), "6"
// (no sitemap Lastmod and Listed in records or held links) and "7" (no expected sha256 and no
// Named flag in records). A trawl of an older format refuses a file once it is marked, with its
// one-line message, rather than misread a value or write without keeping the counts that this one
// keeps.
const (
	formatVersion  = "8"
	formatVersion3 = "3"
	formatVersion4 = "4"
	formatVersion5 = "5"
	formatVersion6 = "6"
	formatVersion7 = "7"
)

// readableFormat reports whether v is a format version this trawl reads.
func readableFormat(v []byte) bool {
	switch string(v) {
	case formatVersion, formatVersion3, formatVersion4, formatVersion5, formatVersion6, formatVersion7:
		return true
	}
	return false
}

// fillPercent is how full bbolt packs a page it splits. Keys mostly arrive in order within a
// host — queue keys are appended, URLs and paths of one site share prefixes and are listed in
// order — so nearly full pages roughly halve the file against bbolt's default of one half, and
// the rare insert into a full page costs one split. Records keep a tenth free (a record grows when
// it is done: sha256, validators, type), and so do reservations (a crawl reserves paths out of
// order, where full pages split into nearly empty ones). Queue entries are only appended at a
// host's next sequence and deleted, so their pages are packed full.
const (
	fillPercent      = 0.9
	fillPercentQueue = 1.0
)

// wtx is one read-write transaction with the buckets looked up once and the counters and per-host
// pending counts accumulated in memory, written back once by flush: a batch of 1,000 URLs on ten
// hosts writes ten host summaries, not a thousand.
type wtx struct {
	path                                                  string // the state file, for errors
	tx                                                    *bolt.Tx
	meta, records, queues, hosts, leased, paths, pathNext *bolt.Bucket
	hostStat                                              *bolt.Bucket
	counts                                                Counts
	hostDelta                                             map[string]int
	hostCounts                                            map[string]*Counts // per-host counter deltas
	pageLimit                                             int                // see Store.SetPageLimit
	openPages                                             int                // see keyOpenPages
	skips                                                 map[string]int     // Skipped records by reason: deltas
	level                                                 *levelState        // a breadth-first job's; nil otherwise
	queueOf                                               map[string]*bolt.Bucket
	recordsCur, pathsCur                                  *bolt.Cursor // for lookups; see has
}

func newWtx(path string, tx *bolt.Tx) (*wtx, error) {
	w := &wtx{path: path, tx: tx, hostDelta: map[string]int{}, hostCounts: map[string]*Counts{},
		skips: map[string]int{}, queueOf: map[string]*bolt.Bucket{}}
	for _, b := range []struct {
		dst  **bolt.Bucket
		name []byte
	}{{&w.meta, bucketMeta}, {&w.records, bucketRecords}, {&w.queues, bucketQueues},
		{&w.hosts, bucketHosts}, {&w.leased, bucketLeased}, {&w.paths, bucketPaths},
		{&w.pathNext, bucketPathNext}, {&w.hostStat, bucketHostStat}} {
		if *b.dst = tx.Bucket(b.name); *b.dst == nil {
			return nil, corrupt(path, "bucket %q missing", b.name)
		}
	}
	w.recordsCur, w.pathsCur = w.records.Cursor(), w.paths.Cursor()
	w.records.FillPercent = fillPercent
	w.paths.FillPercent = fillPercent
	var err error
	if w.counts, err = readCounts(path, w.meta); err != nil {
		return nil, err
	}
	if err := w.readTally(); err != nil {
		return nil, err
	}
	if w.level, err = readLevel(path, w.meta); err != nil {
		return nil, err
	}
	return w, nil
}

// flush writes the counters and host summaries accumulated during the transaction.
func (w *wtx) flush() error {
	for host, d := range w.hostDelta {
		if d == 0 {
			continue
		}
		n := int64(d)
		if v := w.hosts.Get([]byte(host)); v != nil {
			c, k := binary.Uvarint(v)
			if k <= 0 {
				return corrupt(w.path, "bad pending count for host %q", host)
			}
			n += int64(c)
		}
		switch {
		case n < 0:
			return fmt.Errorf("store: pending count of host %q would go negative", host)
		case n == 0:
			if err := w.hosts.Delete([]byte(host)); err != nil {
				return err
			}
		default:
			if err := w.hosts.Put([]byte(host), binary.AppendUvarint(nil, uint64(n))); err != nil {
				return err
			}
		}
	}
	for host, d := range w.hostCounts {
		c := *d
		if v := w.hostStat.Get([]byte(host)); v != nil {
			old, err := decodeCounts(w.path, v)
			if err != nil {
				return err
			}
			c = addCounts(c, old)
		}
		var err error
		if c == (Counts{}) {
			err = w.hostStat.Delete([]byte(host))
		} else {
			err = w.hostStat.Put([]byte(host), encodeCounts(c))
		}
		if err != nil {
			return err
		}
	}
	if err := w.flushTally(); err != nil {
		return err
	}
	if err := w.level.flush(w.meta); err != nil {
		return err
	}
	return w.meta.Put(keyCounts, encodeCounts(w.counts))
}

func addCounts(c, o Counts) Counts {
	return Counts{Pending: c.Pending + o.Pending, Leased: c.Leased + o.Leased, Done: c.Done + o.Done,
		Failed: c.Failed + o.Failed, Skipped: c.Skipped + o.Skipped, Pages: c.Pages + o.Pages,
		Bytes: c.Bytes + o.Bytes}
}

// count adds delta records of state (and their bytes, for Done) to the counters, the store's and
// the record's host's.
func (w *wtx) count(r *Record, delta int) {
	h := w.hostCounts[r.Host]
	if h == nil {
		h = &Counts{}
		w.hostCounts[r.Host] = h
	}
	for _, c := range []*Counts{&w.counts, h} {
		switch r.State {
		case Pending:
			c.Pending += delta
		case Leased:
			c.Leased += delta
		case Done:
			c.Done += delta
			c.Bytes += int64(delta) * r.Bytes
		case Failed:
			c.Failed += delta
		case Skipped:
			c.Skipped += delta
		}
		if !r.Requisite && r.State != Skipped {
			c.Pages += delta
		}
	}
	w.tally(r, delta)
}

// queue returns host's queue bucket, creating it if create is set (nil if absent otherwise).
func (w *wtx) queue(host string, create bool) (*bolt.Bucket, error) {
	if q := w.queueOf[host]; q != nil {
		return q, nil
	}
	q := w.queues.Bucket([]byte(host))
	if q == nil && create {
		var err error
		if q, err = w.queues.CreateBucket([]byte(host)); err != nil {
			return nil, err
		}
	}
	if q != nil {
		q.FillPercent = fillPercentQueue
		w.queueOf[host] = q
	}
	return q, nil
}

// has reports whether c's bucket (one without nested buckets) holds key. It is Bucket.Get with
// a cursor kept for the transaction: Get makes a cursor per call and grows its stack from empty,
// three allocations a lookup, and an enqueue of a big list makes two lookups per URL.
func has(c *bolt.Cursor, key []byte) bool {
	_, ok := lookup(c, key)
	return ok
}

// lookup is has with the value, valid until the transaction changes the bucket.
func lookup(c *bolt.Cursor, key []byte) ([]byte, bool) {
	k, v := c.Seek(key)
	if k == nil || !bytes.Equal(k, key) {
		return nil, false
	}
	return v, true
}

// get reads url's record; ok is false if the store does not know it.
func (w *wtx) get(url string) (r Record, seq uint64, ok bool, err error) {
	v := w.records.Get([]byte(url))
	if v == nil {
		return Record{}, 0, false, nil
	}
	r, seq, err = decodeRecord(url, v)
	if err != nil {
		return Record{}, 0, false, corrupt(w.path, "record of %q: %v", url, err)
	}
	return r, seq, true, nil
}

// insert stores r (new to the store, or just detached from its old state by detach) and adds
// it to its state's index: the host queue for Pending, the leased bucket for Leased. seq is
// reused for a Pending record when nonzero; zero draws the next sequence of the host's queue.
func (w *wtx) insert(r *Record, seq uint64) error {
	if r.State == Pending && seq == 0 {
		var err error
		if seq, err = w.nextSeq(r.Host); err != nil {
			return err
		}
	}
	w.count(r, 1)
	return w.put(r, seq)
}

// nextSeq draws the next position in host's queue. A breadth-first job draws from one sequence
// for all hosts, so that a page's position also ranks it among the pages of its level (levels.go).
func (w *wtx) nextSeq(host string) (uint64, error) {
	q, err := w.queue(host, true)
	if err != nil {
		return 0, err
	}
	if w.level != nil {
		w.level.seq++
		w.level.dirty = true
		return w.level.seq, nil
	}
	return q.NextSequence()
}

// put is insert without the counting: it writes r and its index entry, at queue position seq
// for a Pending record.
func (w *wtx) put(r *Record, seq uint64) error {
	switch r.State {
	case Pending:
		q, err := w.queue(r.Host, true)
		if err != nil {
			return err
		}
		if err := q.Put(queueKey(r.NextAttempt, seq), encodeQueued(r.Host, r.URL)); err != nil {
			return err
		}
		w.hostDelta[r.Host]++
	case Leased:
		if err := w.leased.Put([]byte(r.URL), nil); err != nil {
			return err
		}
	case Done, Failed, Skipped:
		seq = 0 // only queued and leased records need their queue position
	default:
		return fmt.Errorf("store: record %q has invalid state %d", r.URL, r.State)
	}
	return w.records.Put([]byte(r.URL), encodeRecord(r, seq))
}

// detach removes r from its state's index and the counters; the caller then inserts it anew.
func (w *wtx) detach(r *Record, seq uint64) error {
	switch r.State {
	case Pending:
		q, err := w.queue(r.Host, false)
		if err != nil {
			return err
		}
		k := queueKey(r.NextAttempt, seq)
		if q == nil || q.Get(k) == nil {
			return corrupt(w.path, "pending record %q missing from its queue", r.URL)
		}
		if err := q.Delete(k); err != nil {
			return err
		}
		w.hostDelta[r.Host]--
	case Leased:
		if err := w.leased.Delete([]byte(r.URL)); err != nil {
			return err
		}
	}
	w.count(r, -1)
	return nil
}

// countsLen is the size of encoded Counts: seven big-endian 64-bit counters.
const countsLen = 7 * 8

func encodeCounts(c Counts) []byte {
	b := make([]byte, 0, countsLen)
	for _, n := range []int64{int64(c.Pending), int64(c.Leased), int64(c.Done), int64(c.Failed),
		int64(c.Skipped), int64(c.Pages), c.Bytes} {
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return b
}

func readCounts(path string, meta *bolt.Bucket) (Counts, error) {
	v := meta.Get(keyCounts)
	if v == nil {
		return Counts{}, nil // a fresh file: nothing counted yet
	}
	return decodeCounts(path, v)
}

func decodeCounts(path string, v []byte) (Counts, error) {
	if len(v) != countsLen {
		return Counts{}, corrupt(path, "bad counters")
	}
	n := func(i int) int64 { return int64(binary.BigEndian.Uint64(v[i*8:])) }
	return Counts{Pending: int(n(0)), Leased: int(n(1)), Done: int(n(2)), Failed: int(n(3)),
		Skipped: int(n(4)), Pages: int(n(5)), Bytes: n(6)}, nil
}
