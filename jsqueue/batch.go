package jsqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/trawl-dev/trawl/queue"
)

// The calls a batch makes (Enqueue's, a pull's, Commit's) go out together and are waited for
// together, rather than one round trip after another: writes are published asynchronously, and
// the call returns only once the engine has acknowledged every one of them (or with the error
// of one); reads are made several at a time.

// asyncMax is how many writes of a batch are in flight at once: a window that moves on as their
// answers come. Small enough that the engine answers a window well within a call's time limit
// (it answers what it read at once together), and well under the client's own bound on
// unacknowledged async publishes (4000), which several batches may share.
const asyncMax = 64

// readsMax is how many record reads of a batch are in flight at once.
const readsMax = 64

// pub is one write of a batch (publishAll): a message and what the engine answered.
type pub struct {
	subj string
	data []byte
	// last, when cas is set, is the sequence the subject's last message must have for the write
	// to be taken: a KV compare-and-set on a record's revision (0: the key must be new).
	last uint64
	cas  bool

	seq     uint64 // the stream sequence the engine gave the message
	err     error
	retried bool // made again after its answer was lost: the first may have been taken
}

// msg is p's message.
func (p *pub) msg() *nats.Msg {
	m := &nats.Msg{Subject: p.subj, Data: p.data}
	if p.cas {
		// As WithExpectLastSequencePerSubject(p.last), and KV's Create and Update, set it.
		m.Header = nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(p.last, 10)}}
	}
	return m
}

// send publishes p and waits for the engine's answer.
func (p *pub) send(ctx context.Context, js jetstream.JetStream) error {
	a, err := js.PublishMsg(ctx, p.msg())
	if err == nil {
		p.seq = a.Sequence
	}
	return err
}

// recordSubject is the subject a write of the record with key k goes to.
func (q *Queue) recordSubject(k string) string { return "$KV." + q.records.Bucket() + "." + k }

// putRecordPub is a write of record r: over revision rev of it with cas (0: a new key), else
// whatever is there.
func (q *Queue) putRecordPub(r queue.Record, rev uint64, cas bool) (*pub, error) {
	b, err := encodeRecord(r)
	if err != nil {
		return nil, err
	}
	return &pub{subj: q.recordSubject(key(r.URL)), data: b, last: rev, cas: cas}, nil
}

// publishAll makes every write of ps, asyncMax at a time, and waits for the engine's answer to
// each: its sequence or its error lands in its pub. A write whose answer did not come (the engine
// answered nothing for a call's time limit, or the connection dropped) is made again on its own,
// as do makes a call, and marked retried: so a write may be taken twice, which every caller
// allows (a duplicate message is dropped when it is taken; a compare-and-set taken already fails,
// and its caller reads the record again).
func (q *Queue) publishAll(ps []*pub) {
	done := make([]bool, len(ps))
	lctx, up := q.link.current()
	select {
	case <-up:
		futs := make([]jetstream.PubAckFuture, len(ps))
		sent := 0
		send := func(upTo int) {
			for ; sent < min(upTo, len(ps)); sent++ {
				futs[sent], _ = q.js.PublishMsgAsync(ps[sent].msg()) // one not sent is made again below
			}
		}
		send(asyncMax)
		stall := time.NewTimer(q.timeout)
		defer stall.Stop()
	wait:
		for i := range ps {
			if f := futs[i]; f != nil {
				select {
				case a := <-f.Ok():
					ps[i].seq, done[i] = a.Sequence, true
				case err := <-f.Err():
					if !unreachable(err) && !errors.Is(err, jetstream.ErrAsyncPublishTimeout) {
						ps[i].err, done[i] = err, true
					}
				case <-stall.C:
					break wait
				case <-lctx.Done():
					break wait
				}
			}
			stall.Reset(q.timeout)
			send(i + 1 + asyncMax)
		}
	default:
		// Not connected: each write waits for the engine on its own (do).
	}
	for i, p := range ps {
		if !done[i] {
			p.retried = true
			p.err = q.do(true, func(ctx context.Context) error { return p.send(ctx, q.js) })
		}
	}
}

// read is a record as getRecords read it.
type read struct {
	r   queue.Record
	rev uint64
	ok  bool
	err error
}

// multiMax is how many records one batched read asks for: the engine answers at most 1024.
const multiMax = 1024

// getRecords reads the records of urls: multiMax at a time with one request each (getMulti),
// or, where the engine cannot answer those, one request each, readsMax at a time.
func (q *Queue) getRecords(urls []string) []read {
	out := make([]read, len(urls))
	if len(urls) == 1 {
		o := &out[0]
		o.r, o.rev, o.ok, o.err = q.getRecordRev(urls[0])
		return out
	}
	var one []int // those left to read one by one
	for i := 0; i < len(urls); i += multiMax {
		j := min(i+multiMax, len(urls))
		if q.noMulti.Load() || !q.getMulti(urls[i:j], out[i:j]) {
			for k := i; k < j; k++ {
				one = append(one, k)
			}
		}
	}
	if len(one) == 0 {
		return out
	}
	var (
		wg   sync.WaitGroup
		next = make(chan int)
	)
	for range min(len(one), readsMax) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				o := &out[i]
				o.r, o.rev, o.ok, o.err = q.getRecordRev(urls[i])
			}
		}()
	}
	for _, i := range one {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// getMulti reads the records of urls (at most multiMax, all different) with one request: a
// direct get of the latest message of each of their subjects (the engine's multi_last, from
// nats-server 2.11), whose answers come as one message each, then an end-of-batch status. It
// reports false, having filled in nothing reliable, when that did not work: the engine is out of
// reach, did not answer within a call's limit or had no one to answer (the caller reads them one
// by one, waiting for the engine as do does), or it cannot read such a request (a server older
// than 2.11: then it is never asked again).
func (q *Queue) getMulti(urls []string, out []read) bool {
	subjs := make([]string, len(urls))
	idx := make(map[string]int, len(urls))
	for i, u := range urls {
		subjs[i] = q.recordSubject(key(u))
		idx[subjs[i]] = i
	}
	body, err := json.Marshal(struct {
		MultiLast []string `json:"multi_last"`
	}{subjs})
	if err != nil {
		return false
	}
	lctx, up := q.link.current()
	select {
	case <-up:
	default:
		return false
	}
	ctx, cancel := context.WithTimeout(lctx, q.timeout)
	defer cancel()
	inbox := nats.NewInbox()
	sub, err := q.nc.SubscribeSync(inbox)
	if err != nil {
		return false
	}
	defer sub.Unsubscribe()
	if err := q.nc.PublishRequest("$JS.API.DIRECT.GET.KV_"+q.records.Bucket(), inbox, body); err != nil {
		return false
	}
	clear(out)
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return false
		}
		if status := m.Header.Get("Status"); status != "" && len(m.Data) == 0 {
			switch {
			case status == "204": // end of batch
				return true
			case status == "404" && m.Header.Get("Description") == "No Results": // none is known
				return true
			case status == "408": // a request this server cannot read
				q.noMulti.Store(true)
			}
			// Another (503: no direct gets here, or not now): read one by one this time.
			return false
		}
		i, ok := idx[m.Header.Get(jetstream.SubjectHeader)]
		if !ok {
			return false
		}
		seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return false
		}
		if deletedEntry(m.Header) {
			continue
		}
		o := &out[i]
		o.rev, o.ok = seq, true
		if err := decodeRecord(m.Data, &o.r); err != nil {
			o.err = fmt.Errorf("jsqueue: record of %.100q: %w", urls[i], err)
		}
	}
}

// deletedEntry reports whether a bucket's message with headers h marks its key deleted or purged,
// as the client's KV Get reads them.
func deletedEntry(h nats.Header) bool {
	switch h.Get("KV-Operation") {
	case "DEL", "PURGE":
		return true
	}
	switch h.Get(jetstream.MarkerReasonHeader) {
	case "MaxAge", "Purge", "Remove":
		return true
	}
	return false
}

// storedRecord is queue.Record as the bucket stores it: JSON with the record's field names, its
// zero fields left out. A reader gets the same record from this form and from the full one that
// earlier trawls wrote (and they from this one), and writing and reading it costs far less. Its
// fields are Record's, in order, so that it converts to and from one: a field added to Record and
// not here stops the build rather than going unrecorded.
type storedRecord struct {
	URL          string      `json:",omitzero"`
	Host         string      `json:",omitzero"`
	Path         string      `json:",omitzero"`
	Named        bool        `json:",omitzero"`
	State        queue.State `json:",omitzero"`
	Attempts     int         `json:",omitzero"`
	NextAttempt  time.Time   `json:",omitzero"`
	Status       int         `json:",omitzero"`
	Bytes        int64       `json:",omitzero"`
	SHA256       string      `json:",omitzero"`
	WantSHA256   string      `json:",omitzero"`
	ETag         string      `json:",omitzero"`
	LastModified string      `json:",omitzero"`
	ContentType  string      `json:",omitzero"`
	LastError    string      `json:",omitzero"`
	ErrorClass   string      `json:",omitzero"`
	Transient    bool        `json:",omitzero"`
	Requisite    bool        `json:",omitzero"`
	Auth         bool        `json:",omitzero"`
	Depth        int         `json:",omitzero"`
	Updated      time.Time   `json:",omitzero"`
	Lastmod      time.Time   `json:",omitzero"`
	Listed       time.Time   `json:",omitzero"`
}

// encodeRecord is a record as the bucket stores it.
func encodeRecord(r queue.Record) ([]byte, error) { return json.Marshal(storedRecord(r)) }

// decodeRecord reads a record the bucket stores, in either form (see storedRecord).
func decodeRecord(b []byte, r *queue.Record) error {
	*r = queue.Record{} // a field the value leaves out is zero
	return json.Unmarshal(b, (*storedRecord)(r))
}
