// Package jsqueue is a queue.Backend on NATS JetStream, for a job shared by trawl workers on many
// machines: one work-queue stream per job, its subjects partitioned by a hash of the host, one
// durable consumer per partition with a pinned-client priority group (so one worker serves a
// partition, and so a host, at a time, and another takes it over when that worker dies), and the
// per-URL records — the job's seen set — in a key-value bucket keyed by a hash of the URL.
//
// A delivered message is a lease. It is kept alive (InProgress) while it waits in this worker's
// buffer or is being fetched, acknowledged only once its outcome is recorded, and redelivered by
// the engine when a worker dies. A URL is published before it is recorded as seen, so a crash can
// duplicate work, never lose it; a message whose record is already settled is dropped. Retry
// delays and Retry-After waits go through the engine (NakWithDelay): no worker sleeps on them.
package jsqueue

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/trawl-dev/trawl/queue"
)

// Options configure Open. Zero fields take the default in their comment.
type Options struct {
	// Job names the job: every worker given the same name on the same NATS system shares it.
	// Letters, digits, '-' and '_'.
	Job string
	// Partitions is how many subjects (and consumers) a job's hosts are spread over; a worker
	// serves whole partitions. Fixed when the job is created. Default 16.
	Partitions int
	// AckWait is how long a lease lives without a keep-alive: a dead worker's URLs are redelivered
	// after it. Default 30s.
	AckWait time.Duration
	// Buffer bounds the leased messages a worker holds, waiting or in flight. Default 4096.
	Buffer int
}

func (o *Options) setDefaults() error {
	if err := CheckJob(o.Job); err != nil {
		return fmt.Errorf("jsqueue: %w", err)
	}
	if o.Partitions <= 0 {
		o.Partitions = 16
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.Buffer <= 0 {
		o.Buffer = 4096
	}
	return nil
}

// holdMax is the longest retry delay a worker waits out holding the message; a longer one (a
// Retry-After, a late backoff) goes back to the engine, which redelivers it when due.
const holdMax = 5 * time.Minute

// group is the priority group every worker pulls in.
const group = "trawl"

// Queue is one worker's handle on a job.
type Queue struct {
	opts      Options
	nc        *nats.Conn
	js        jetstream.JetStream
	stream    jetstream.Stream
	consumers []jetstream.Consumer
	records   jetstream.KeyValue // URL hash -> record
	meta      jetstream.KeyValue // encoded key -> value; "pages" counts the job's pages
	subject   string             // subject prefix: trawl.<job>.q.
	timeout   time.Duration      // bounds each call to the engine (callTimeout)
	link      *link              // the connection's state: calls wait for it while it is down
	outage    time.Duration      // how long calls wait for the engine in all (outageMax)

	workers   jetstream.KeyValue // worker ID -> heartbeat; an entry lapses AckWait after its worker died
	id        string             // this worker's entry in workers; "" for a queue Attach opened
	self      Worker             // what this worker's heartbeat says of it
	closing   chan struct{}      // closed by Close: the keep-alive loop stops
	loopDone  chan struct{}      // closed when the keep-alive loop has stopped
	closeOnce sync.Once

	noMulti atomic.Bool // the engine cannot read records in batches (getMulti)

	hosts jetstream.KeyValue // host hash -> its cooldown (later.go); nil if an older trawl made the job
	later jetstream.KeyValue // URL hash -> when a URL handed back with a delay is due (later.go); nil likewise

	mu        sync.Mutex
	buf       []*item          // delivered, not yet leased, in arrival order
	held      map[string]*item // URL -> buffered or leased item
	pageLimit int
	cool      map[string]time.Time // host -> the end of its cooldown, as this worker knows it
	coolNew   map[string]time.Time // cooldowns given here, not yet shared
	coolRead  map[string]bool      // hosts whose shared cooldown was read since the deal changed
	// gained holds the partitions dealt here since this worker last had them: when the first pull
	// after the deal brought messages of it (zero until then), the moment the worker before gave
	// it up at the latest.
	gained   map[int]time.Time
	lostPins map[int]bool   // partitions whose pin a keepPins found lost while a fill held pullMu
	beatBack time.Time      // the first heartbeat the engine took after the connection last came back
	pins     map[int]string // partition -> the pin ID its latest delivery here carried
	// lastSettle is when this worker last settled a URL it leased, by partition (see unpinOthers).
	lastSettle map[int]time.Time
	dealAt     time.Time // when the live workers were last read to deal the partitions
	// pullMu is held while the deal is applied and the partitions pulled (fill, keepPins): a
	// partition given up (unpinOthers) is never pulled after.
	pullMu sync.Mutex
	// fetchMu is held by each round of pulls (a fill's, keepPins'): two rounds at once on one
	// consumer share its pin, and the refusal of one could clear the pin the other was just given.
	fetchMu sync.Mutex
	// settled are the URLs this worker has settled for good since its latest pull began: a copy
	// of one's message (the URL was queued twice, by workers adding it at once) whose record
	// was read before the outcome was written is a duplicate all the same.
	settled map[string]bool

	// testAfterRead, if set, is called by take between its read of a URL's record and its look at
	// what this worker holds: tests interleave a settle there.
	testAfterRead func(url string)
	// testBeforeMake, if set, is called by take between its read of a URL's record, which found
	// none, and its creation of the record: tests write the record there, as another worker would.
	testBeforeMake func(url string)
	// testBeforeCreate, if set, is called by Enqueue between its publishes and the creation of
	// their records: tests write a record there, as another worker adding the URL at once would.
	testBeforeCreate func()
	// testBeforeRequeue, if set, is called by a requeue between its publish of a URL and its write
	// of the URL's record: tests write the record there, as another worker would.
	testBeforeRequeue func(url string)
}

var (
	_ queue.Backend = (*Queue)(nil)
	_ queue.Shared  = (*Queue)(nil)
)

// item is a delivered message and the record it stands for.
type item struct {
	rec    queue.Record
	rev    uint64 // the revision of rec's record when it was read or written here
	msg    jetstream.Msg
	part   int // the partition of rec.Host
	leased bool
	// retrying is set while the item waits here for a retry due soon (see settleMsg).
	retrying bool
	touched  time.Time // last keep-alive
}

// work is a message's body: the URL as it was enqueued, so a record lost to a crash between the
// publish and the record's creation can be made again.
type work struct {
	URL       string `json:"u"`
	Host      string `json:"h"`
	Path      string `json:"p,omitempty"`
	Depth     int    `json:"d,omitempty"`
	Requisite bool   `json:"r,omitempty"`
	Auth      bool   `json:"a,omitempty"`
	Want      string `json:"w,omitempty"` // WantSHA256
	// Rev is set on a URL taken back to the queue from a settled record (requeue, revalidate, a
	// new expected sum): the revision of that record. The record is rewritten as pending only
	// after the publish; a worker taking the message before (or after a crash in between) reads
	// this revision, and takes the message as work, not as a duplicate of settled work.
	Rev uint64 `json:"v,omitempty"`
}

// Open joins the job opts.Job on nc as a worker, creating its stream, consumers and buckets if it
// is new. A job that exists keeps the partitions and lease time it was made with: they replace
// opts'.
func Open(ctx context.Context, nc *nats.Conn, opts Options) (*Queue, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	// An async publish whose answer never comes is forgotten after a call's time limit (publishAll
	// has made it again by then), rather than held by the client for good.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(callTimeout))
	if err != nil {
		return nil, fmt.Errorf("jsqueue: %w", err)
	}
	q := &Queue{opts: opts, nc: nc, js: js, subject: "trawl." + opts.Job + ".q.", timeout: callTimeout,
		held: map[string]*item{}, cool: map[string]time.Time{}, coolNew: map[string]time.Time{}, coolRead: map[string]bool{},
		gained:  map[int]time.Time{},
		settled: map[string]bool{}, pins: map[int]string{}, lastSettle: map[int]time.Time{}}
	if err := q.join(ctx, true, outageMax); err != nil {
		return nil, err
	}
	q.link, q.outage = newLink(nc), outageMax
	q.id = nuid.Next()
	host, _ := os.Hostname()
	q.self = Worker{ID: q.id, Host: host, PID: os.Getpid(), Started: time.Now().UTC()}
	if err := q.heartbeat(); err != nil {
		q.link.stop()
		return nil, err
	}
	q.closing, q.loopDone = make(chan struct{}), make(chan struct{})
	go q.keepAliveLoop()
	return q, nil
}

// callTimeout bounds one call to the engine: one record read or written, one publish. Never a
// whole batch, whose length grows with the batch and the engine's round trip.
const callTimeout = 10 * time.Second

// key is the record key of a URL: a hash, since KV keys allow few characters.
func key(url string) string {
	s := sha256.Sum256([]byte(url))
	return hex.EncodeToString(s[:16])
}

// partition is the subject a host's URLs go to.
func (q *Queue) partition(host string) string {
	return fmt.Sprintf("%s%d", q.subject, q.partitionOf(host))
}

// partitionOf is the number of the partition a host's URLs go to.
func (q *Queue) partitionOf(host string) int {
	h := fnv.New32a()
	h.Write([]byte(host))
	return int(h.Sum32() % uint32(q.opts.Partitions))
}

func (q *Queue) getRecord(url string) (queue.Record, bool, error) {
	r, _, ok, err := q.getRecordRev(url)
	return r, ok, err
}

// getRecordRev is getRecord that gives the record's revision too.
func (q *Queue) getRecordRev(url string) (queue.Record, uint64, bool, error) {
	e, err := q.getEntry(url)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return queue.Record{}, 0, false, nil
	case err != nil:
		return queue.Record{}, 0, false, err
	}
	var r queue.Record
	if err := decodeRecord(e.Value(), &r); err != nil {
		return queue.Record{}, 0, false, fmt.Errorf("jsqueue: record of %.100q: %w", url, err)
	}
	return r, e.Revision(), true, nil
}

// getEntry reads the bucket's entry of url.
func (q *Queue) getEntry(url string) (jetstream.KeyValueEntry, error) {
	var e jetstream.KeyValueEntry
	err := q.do(true, func(ctx context.Context) error {
		var err error
		e, err = q.records.Get(ctx, key(url))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("jsqueue: get %.100q: %w", url, err)
	}
	return e, nil
}

func (q *Queue) putRecord(r queue.Record) error {
	_, err := q.putRecordRev(r)
	return err
}

// putRecordRev is putRecord that gives the record's new revision.
func (q *Queue) putRecordRev(r queue.Record) (uint64, error) {
	b, err := encodeRecord(r)
	if err != nil {
		return 0, err
	}
	var rev uint64
	if err := q.do(true, func(ctx context.Context) error {
		var err error
		rev, err = q.records.Put(ctx, key(r.URL), b)
		return err
	}); err != nil {
		return 0, fmt.Errorf("jsqueue: put %.100q: %w", r.URL, err)
	}
	return rev, nil
}

// publish queues a message for r's URL on its host's partition; rev is that of the settled
// record it takes back to the queue, if any (see work.Rev). A publish made again after a lost
// answer may queue the URL twice: a delivery whose record is settled, or whose URL this worker
// holds, is dropped (take).
func (q *Queue) publish(r queue.Record, rev uint64) error {
	p, err := q.workPub(r, rev)
	if err != nil {
		return err
	}
	if err := q.do(true, func(ctx context.Context) error { return p.send(ctx, q.js) }); err != nil {
		return fmt.Errorf("jsqueue: publish %.100q: %w", r.URL, err)
	}
	return nil
}

// workPub is the message that queues r's URL (see publish).
func (q *Queue) workPub(r queue.Record, rev uint64) (*pub, error) {
	b, err := json.Marshal(work{URL: r.URL, Host: r.Host, Path: r.Path, Depth: r.Depth, Requisite: r.Requisite,
		Auth: r.Auth, Want: r.WantSHA256, Rev: rev})
	if err != nil {
		return nil, err
	}
	return &pub{subj: q.partition(r.Host), data: b}, nil
}

// Enqueue adds the URLs the job has not seen. Each is published before its record is created: a
// crash in between leaves a message whose record the lease recreates, never a record without
// work. A page beyond the page limit is recorded Skipped. The batch's records are read together,
// its messages published together and its records created together, each step waiting for every
// answer of the engine before the next; a URL given twice is added (or upgraded) by its first
// copy, then its later copies are applied one by one, as they would be alone.
func (q *Queue) Enqueue(urls []queue.NewURL) (int, error) {
	for _, u := range urls {
		if u.URL == "" || u.Host == "" {
			return 0, fmt.Errorf("jsqueue: enqueue: empty URL or host")
		}
	}
	var firsts, again []queue.NewURL
	if len(urls) > 1 {
		seen := make(map[string]bool, len(urls))
		for _, u := range urls {
			if seen[u.URL] {
				again = append(again, u)
				continue
			}
			seen[u.URL] = true
			firsts = append(firsts, u)
		}
	} else {
		firsts = urls
	}
	added, err := q.enqueueBatch(firsts)
	if err != nil {
		return added, err
	}
	for _, u := range again {
		ok, err := q.enqueue(u)
		if err != nil {
			return added, err
		}
		if ok {
			added++
		}
	}
	return added, nil
}

// enqueueBatch is Enqueue of URLs that are all different.
func (q *Queue) enqueueBatch(urls []queue.NewURL) (int, error) {
	fresh, err := q.freshRecords(urls)
	if err != nil {
		return 0, err
	}
	// Every message is in the stream before any record is created.
	if err := q.publishWork(fresh); err != nil {
		return 0, err
	}
	if q.testBeforeCreate != nil {
		q.testBeforeCreate()
	}
	return q.createRecords(fresh)
}

// freshRecords reads the records of urls, all different, together, and returns the records of
// those the job has not seen, to be created: pending, or skipped past the page limit. A URL the
// job has is listed again (and takes a new wanted sha256) instead.
func (q *Queue) freshRecords(urls []queue.NewURL) ([]queue.Record, error) {
	keys := make([]string, len(urls))
	for i, u := range urls {
		keys[i] = u.URL
	}
	reads := q.getRecords(keys)
	var fresh []queue.Record
	for i, u := range urls {
		old := reads[i]
		if old.err != nil {
			return nil, old.err
		}
		if old.ok {
			err := q.relist(u)
			if err == nil && u.SetWant && old.r.WantSHA256 != u.WantSHA256 {
				err = q.rewant(u)
			}
			if err != nil {
				return nil, err
			}
			continue
		}
		r, err := q.freshRecord(u)
		if err != nil {
			return nil, err
		}
		fresh = append(fresh, r)
	}
	return fresh, nil
}

// freshRecord is the record of u, a URL the job has not seen: pending, or skipped (its own
// reason, or past the page limit, which a page not skipped takes a place of).
func (q *Queue) freshRecord(u queue.NewURL) (queue.Record, error) {
	r := newRecord(u)
	if u.Skip == "" && !u.Requisite {
		ok, err := q.takePage()
		if err != nil {
			return queue.Record{}, err
		}
		if !ok {
			r.LastError = "max-pages"
		}
	}
	if r.LastError != "" {
		r.State, r.Lastmod, r.Listed = queue.Skipped, time.Time{}, time.Time{}
	}
	return r, nil
}

// publishWork publishes the message of each pending record of fresh, together, and waits for
// every answer.
func (q *Queue) publishWork(fresh []queue.Record) error {
	var msgs []*pub
	var msgURL []string
	for _, r := range fresh {
		if r.State != queue.Pending {
			continue
		}
		p, err := q.workPub(r, 0)
		if err != nil {
			return err
		}
		msgs, msgURL = append(msgs, p), append(msgURL, r.URL)
	}
	q.publishAll(msgs)
	for i, p := range msgs {
		if p.err != nil {
			return fmt.Errorf("jsqueue: publish %.100q: %w", msgURL[i], p.err)
		}
	}
	return nil
}

// createRecords creates the records fresh, together, and returns how many pending ones it
// created: one another worker (or a lease of the message just published) made first stands.
func (q *Queue) createRecords(fresh []queue.Record) (int, error) {
	creates := make([]*pub, len(fresh))
	for i, r := range fresh {
		p, err := q.putRecordPub(r, 0, true)
		if err != nil {
			return 0, err
		}
		creates[i] = p
	}
	q.publishAll(creates)
	added := 0
	for i, p := range creates {
		r := fresh[i]
		err := p.err
		if err != nil && isWrongSequence(err) {
			// The key exists, or was deleted: Create tells which, and takes a deleted one.
			var b []byte
			b, err = encodeRecord(r)
			if err == nil {
				err = q.do(true, func(ctx context.Context) error {
					_, err := q.records.Create(ctx, key(r.URL), b)
					return err
				})
			}
		}
		if errors.Is(err, jetstream.ErrKeyExists) && p.retried {
			// The first write may have been taken, its answer lost: then the record is this one.
			if e, gerr := q.getEntry(r.URL); gerr == nil && bytes.Equal(e.Value(), p.data) {
				err = nil
			}
		}
		switch {
		case errors.Is(err, jetstream.ErrKeyExists):
			// another worker, or a lease of the message just published, made it
		case err != nil:
			return added, fmt.Errorf("jsqueue: create %.100q: %w", r.URL, err)
		case r.State == queue.Pending:
			added++
		}
	}
	return added, nil
}

// enqueue adds one URL if the job has not seen it, and reports whether it was queued. A known URL
// given a new expected sha256 (SetWant) takes it (queue.Record.ApplyWant).
func (q *Queue) enqueue(u queue.NewURL) (bool, error) {
	if u.URL == "" || u.Host == "" {
		return false, fmt.Errorf("jsqueue: enqueue: empty URL or host")
	}
	if old, ok, err := q.getRecord(u.URL); err != nil || ok {
		if err == nil {
			err = q.relist(u)
		}
		if err == nil && u.SetWant && old.WantSHA256 != u.WantSHA256 {
			err = q.rewant(u)
		}
		return false, err
	}
	r, err := q.freshRecord(u)
	if err != nil {
		return false, err
	}
	if r.State == queue.Pending {
		if err := q.publish(r, 0); err != nil {
			return false, err
		}
	}
	b, err := encodeRecord(r)
	if err != nil {
		return false, err
	}
	err = q.do(true, func(ctx context.Context) error {
		_, err := q.records.Create(ctx, key(r.URL), b)
		return err
	})
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return false, nil // another worker, or a lease of the message just published, made it
	case err != nil:
		return false, fmt.Errorf("jsqueue: create %.100q: %w", r.URL, err)
	}
	return r.State == queue.Pending, nil
}

// relist writes a sitemap's word (queue.NewURL.Lastmod and Listed) on u's known record, but for a
// skipped one. A compare-and-set: an outcome written meanwhile is read again, never overwritten;
// one written after it (of a lease taken before) overwrites the word, which is then lost, as the
// contract allows.
func (q *Queue) relist(u queue.NewURL) error {
	if u.Lastmod.IsZero() || u.Skip != "" {
		return nil
	}
	for {
		e, err := q.getEntry(u.URL)
		if err != nil {
			return err
		}
		var r queue.Record
		if err := decodeRecord(e.Value(), &r); err != nil {
			return fmt.Errorf("jsqueue: record of %.100q: %w", u.URL, err)
		}
		if r.State == queue.Skipped || r.Lastmod.Equal(u.Lastmod) && r.Listed.Equal(u.Listed) {
			return nil
		}
		r.Lastmod, r.Listed = u.Lastmod, u.Listed
		b, err := encodeRecord(r)
		if err != nil {
			return err
		}
		err = q.do(true, func(ctx context.Context) error {
			_, err := q.records.Update(ctx, key(u.URL), b, e.Revision())
			return err
		})
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
			return fmt.Errorf("jsqueue: update %.100q: %w", u.URL, err)
		}
	}
}

// rewant gives u's known record the expected sha256 u.WantSHA256 (queue.Record.ApplyWant). A
// compare-and-set, like relist; a record queued again by it is published first, with the
// revision it supersedes (work.Rev), so that a crash in between leaves a message a worker takes as
// work, never a pending record without one.
func (q *Queue) rewant(u queue.NewURL) error {
	for {
		e, err := q.getEntry(u.URL)
		if err != nil {
			return err
		}
		var r queue.Record
		if err := decodeRecord(e.Value(), &r); err != nil {
			return fmt.Errorf("jsqueue: record of %.100q: %w", u.URL, err)
		}
		if r.WantSHA256 == u.WantSHA256 {
			return nil
		}
		if r.ApplyWant(u.WantSHA256) {
			if err := q.publish(r, e.Revision()); err != nil {
				return err
			}
		}
		b, err := encodeRecord(r)
		if err != nil {
			return err
		}
		err = q.do(true, func(ctx context.Context) error {
			_, err := q.records.Update(ctx, key(u.URL), b, e.Revision())
			return err
		})
		if err == nil {
			break
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
			return fmt.Errorf("jsqueue: update %.100q: %w", u.URL, err)
		}
	}
	// A message this worker holds and has not leased yet is leased with the new sum. (One leased
	// already, here or elsewhere, is settled by it: see settle.)
	q.mu.Lock()
	if it := q.held[u.URL]; it != nil && !it.leased {
		it.rec.WantSHA256 = u.WantSHA256
	}
	q.mu.Unlock()
	return nil
}

// takePage counts one more page against the page limit, atomically over every worker, and says
// whether it fits.
func (q *Queue) takePage() (bool, error) {
	q.mu.Lock()
	limit := q.pageLimit
	q.mu.Unlock()
	if limit <= 0 {
		return true, nil
	}
	for {
		n, rev := 0, uint64(0)
		var e jetstream.KeyValueEntry
		err := q.do(true, func(ctx context.Context) error {
			var err error
			e, err = q.meta.Get(ctx, "pages")
			return err
		})
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return false, fmt.Errorf("jsqueue: page count: %w", err)
		default:
			fmt.Sscan(string(e.Value()), &n)
			rev = e.Revision()
		}
		if n >= limit {
			return false, nil
		}
		err = q.do(true, func(ctx context.Context) error {
			var err error
			if rev == 0 {
				_, err = q.meta.Create(ctx, "pages", []byte(fmt.Sprint(n+1)))
			} else {
				_, err = q.meta.Update(ctx, "pages", []byte(fmt.Sprint(n+1)), rev)
			}
			return err
		})
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
			return false, fmt.Errorf("jsqueue: page count: %w", err)
		}
	}
}

// isWrongSequence reports a lost compare-and-set race on a KV update.
func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) // the latter: a replicated stream's
}

// Commit settles each update: its record is written, and its message acknowledged (Done, Failed,
// Skipped), handed back for redelivery at once (a release), or after the retry's delay. A page's
// links are enqueued before the page is settled, so a crash in between refetches the page rather
// than losing its links. An update of a URL this worker does not hold writes the record, and a
// Pending one is published again.
//
// The batch goes to the engine in steps, each waiting for every answer before the next: every
// update's links are enqueued; then every record is written (see settleWrite); then each message
// is settled, in the updates' order (settleMsg).
func (q *Queue) Commit(updates []queue.Update) error {
	for _, u := range updates {
		r := u.Record
		if r.URL == "" || r.State == queue.Leased || r.State < queue.Pending || r.State > queue.Skipped {
			return fmt.Errorf("jsqueue: commit %.100q: state %v, want pending, done, failed or skipped", r.URL, r.State)
		}
	}
	// Before any URL is settled: a host's partition moves only once its URLs are.
	if err := q.shareCooldowns(); err != nil {
		return err
	}
	var links []queue.NewURL
	for _, u := range updates {
		links = append(links, u.Links...)
	}
	if len(links) > 0 {
		if _, err := q.Enqueue(links); err != nil {
			return err
		}
	}
	recs, revs, err := q.settleWrite(updates)
	if err != nil {
		return err
	}
	for i, r := range recs {
		if err := q.settleMsg(r, revs[i]); err != nil {
			return err
		}
	}
	return nil
}

// settleWrite writes the records of updates, and returns them as written, with their new
// revisions. The stored record gives one its expected sha256, which is Enqueue's (see
// queue.Queue), and its host if the update has none. For a URL this worker leased, that is the
// record it read when it took the message: the write is a compare-and-set over that revision,
// and only if another write came between (a sitemap's word, a new expected sum) is the record
// read again. Any other update's record is read first.
func (q *Queue) settleWrite(updates []queue.Update) ([]queue.Record, []uint64, error) {
	recs := make([]queue.Record, len(updates))
	revs := make([]uint64, len(updates))
	cas := make([]bool, len(updates))
	var unheld []int
	var urls []string
	q.mu.Lock()
	for i, u := range updates {
		r := u.Record
		if it := q.held[r.URL]; it != nil && it.leased && it.rev != 0 && r.WantSHA256 == it.rec.WantSHA256 {
			if r.Host == "" {
				r.Host = it.rec.Host
			}
			cas[i], revs[i] = true, it.rev
		} else {
			unheld, urls = append(unheld, i), append(urls, r.URL)
		}
		recs[i] = r
	}
	q.mu.Unlock()
	for j, rd := range q.getRecords(urls) {
		r := &recs[unheld[j]]
		if err := mergeStored(r, rd); err != nil {
			return nil, nil, err
		}
	}
	writes := make([]*pub, len(recs))
	for i, r := range recs {
		p, err := q.putRecordPub(r, revs[i], cas[i])
		if err != nil {
			return nil, nil, err
		}
		writes[i] = p
	}
	q.publishAll(writes)
	for i, p := range writes {
		switch {
		case cas[i] && isWrongSequence(p.err):
			// Written meanwhile: read again, and write over whatever is there, as for a URL not held.
			r := updates[i].Record
			rd := read{}
			rd.r, rd.rev, rd.ok, rd.err = q.getRecordRev(r.URL)
			if err := mergeStored(&r, rd); err != nil {
				return nil, nil, err
			}
			rev, err := q.putRecordRev(r)
			if err != nil {
				return nil, nil, err
			}
			recs[i], revs[i] = r, rev
		case p.err != nil:
			return nil, nil, fmt.Errorf("jsqueue: put %.100q: %w", recs[i].URL, p.err)
		default:
			revs[i] = p.seq
		}
	}
	return recs, revs, nil
}

// mergeStored gives the update's record r what the stored one, read as rd, has the last word on.
func mergeStored(r *queue.Record, rd read) error {
	switch {
	case rd.err != nil:
		return rd.err
	case !rd.ok && r.Host == "":
		return fmt.Errorf("jsqueue: commit %.100q: empty host", r.URL)
	case rd.ok:
		if r.Host == "" {
			r.Host = rd.r.Host
		}
		if r.WantSHA256 != rd.r.WantSHA256 {
			r.ApplyWant(rd.r.WantSHA256)
		}
	}
	return nil
}

// settleMsg settles the message of r's URL, whose record is written, at revision rev (see Commit).
func (q *Queue) settleMsg(r queue.Record, rev uint64) error {
	var err error
	q.mu.Lock()
	it := q.held[r.URL]
	if it != nil && it.leased {
		delete(q.held, r.URL)
		q.lastSettle[it.part] = time.Now()
		if r.State != queue.Pending {
			q.settled[r.URL] = true
		}
	} else {
		it = nil
	}
	q.mu.Unlock()
	switch {
	case it == nil && r.State == queue.Pending:
		err = q.publish(r, 0)
	case it == nil:
	case r.State != queue.Pending:
		err = it.msg.Ack()
	case time.Until(r.NextAttempt) > holdMax:
		if err := q.noteLater(r.URL, r.NextAttempt); err != nil {
			return err
		}
		err = it.msg.NakWithDelay(time.Until(r.NextAttempt))
	case r.NextAttempt.After(time.Now()):
		// A retry due soon: held here, kept alive, and offered again when due.
		q.mu.Lock()
		it.leased, it.retrying, it.rec, it.rev = false, true, r, rev
		q.held[r.URL] = it
		q.buf = append(q.buf, it)
		q.mu.Unlock()
	default:
		err = it.msg.Nak() // given back: anyone may take it now
	}
	if err != nil {
		return fmt.Errorf("jsqueue: settle %.100q: %w", r.URL, err)
	}
	return nil
}

// newRecord is the record of a URL first queued, pending (enqueue may then record it Skipped:
// u.Skip, or the page limit).
func newRecord(u queue.NewURL) queue.Record {
	return queue.Record{URL: u.URL, Host: u.Host, Path: u.Path, State: queue.Pending, Depth: u.Depth,
		Requisite: u.Requisite, Auth: u.Auth, LastError: u.Skip, Lastmod: u.Lastmod, Listed: u.Listed,
		WantSHA256: u.WantSHA256}
}
