package jsqueue

import (
	"context"
	"encoding/json"
	"errors"
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

func (p *pub) send(ctx context.Context, js jetstream.JetStream, async bool) (jetstream.PubAckFuture, error) {
	m := &nats.Msg{Subject: p.subj, Data: p.data}
	if p.cas {
		// As WithExpectLastSequencePerSubject(p.last), and KV's Create and Update, set it.
		m.Header = nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(p.last, 10)}}
	}
	if async {
		return js.PublishMsgAsync(m)
	}
	a, err := js.PublishMsg(ctx, m)
	if err == nil {
		p.seq = a.Sequence
	}
	return nil, err
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
				futs[sent], _ = ps[sent].send(nil, q.js, true) // one not sent is made again below
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
			p.err = q.do(true, func(ctx context.Context) error {
				_, err := p.send(ctx, q.js, false)
				return err
			})
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

// getRecords reads the records of urls, readsMax at a time.
func (q *Queue) getRecords(urls []string) []read {
	out := make([]read, len(urls))
	if len(urls) == 1 {
		o := &out[0]
		o.r, o.rev, o.ok, o.err = q.getRecordRev(urls[0])
		return out
	}
	var (
		wg   sync.WaitGroup
		next = make(chan int)
	)
	for range min(len(urls), readsMax) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				o := &out[i]
				o.r, o.rev, o.ok, o.err = q.getRecordRev(urls[i])
			}
		}()
	}
	for i := range urls {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// encodeRecord is a record as the bucket stores it.
func encodeRecord(r queue.Record) ([]byte, error) { return json.Marshal(r) }

// decodeRecord reads a record the bucket stores.
func decodeRecord(b []byte, r *queue.Record) error { return json.Unmarshal(b, r) }
