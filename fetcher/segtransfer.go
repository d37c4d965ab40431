package fetcher

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// segment is one range of the body, [start, end), fetched by at most one request at a time.
// Its fields are guarded by segTransfer.mu.
type segment struct {
	start, end int64 // end moves down when the range is split
	next       int64 // [start, next) is written
	pos        int64 // [start, pos) is written or being written: a split point is never below it
	busy       bool  // a request is fetching the range

	// The current request's progress, for the split policy.
	began   time.Time
	got     int64    // bytes written since began
	conn    net.Conn // its connection, once known
	samples int      // times its socket's receive queue was looked at
	backlog int      // times that queue held more than one read takes (see readerBound)
}

// segTransfer is one segmented download: the controller (run, on the Fetch's goroutine) hands
// ranges to requests, each on a goroutine of its own, and decides when to split.
type segTransfer struct {
	t          *transfer
	ctx        context.Context // every range request's parent
	stop       context.CancelCauseFunc
	file       *os.File
	meta       partMeta // the body's URL, validators and Size
	size       int64
	resumed    bool
	kept       int64 // bytes of the .part kept when resumed
	maxConns   int
	splitAfter time.Duration
	warmup     time.Duration

	events chan reqEnd // a request has ended

	// Owned by the controller.
	active   int  // requests in flight
	mainBusy bool // the Fetch's own connection has a request in flight (it needs no grant)
	split    bool // the .part is written in place at offsets: the sidecar lists the segments
	errs     int  // failed range requests
	noMore   bool // ask for no more connections: a range request failed
	failed   *Error
	lied     bool      // an answer failed its check: the .part is not to be trusted
	reserved bool      // the .part's disk was preallocated (see reserve)
	saved    time.Time // the sidecar was last written
	// The first response's running sha256 of [0, hashed), fed in order as it streamed.
	firstHash hash.Hash
	hashed    int64
	// Growth: connections added in a round are judged by the rate they bring (see gate).
	round      growRound
	peak       int  // most requests in flight at once
	noGrow     bool // a round brought no gain: never more than peak connections
	splitCount int

	mu    sync.Mutex
	segs  []*segment // in order; they cover [0, size)
	head  *http.Response
	total int64 // bytes written by this run
}

// growRound is a round of added connections waiting to be judged.
type growRound struct {
	at   time.Time // zero: none
	from int64     // total when it began
	rate float64   // the file's rate before, bytes per second
}

// reqEnd reports how a request ended.
type reqEnd struct {
	g       *segment
	granted bool   // the connection was granted by MoreConns
	err     *Error // nil: the range is complete
	lie     bool   // the answer failed checkSegment
	// The first response's sha256 of [0, hashed), fed in order; nil for a range request.
	hash   hash.Hash
	hashed int64
}

// errStopped is the cause with which a segmented download cancels its other requests when one
// has failed it.
var errStopped = errors.New("segmented download stopped")

// writeSegments fetches a fresh download whose first answer is resp (see segmentable). ctx is
// the first request's context (t.cancel cancels it); parent is the Fetch's.
func (t *transfer) writeSegments(parent, ctx context.Context, resp *http.Response) (Response, error) {
	release, derr := t.makeDir()
	if derr != nil {
		return Response{}, derr
	}
	defer release()
	t.f.dirs.notePart(t.dir, t.part, true) // before: a failed create may still leave one
	file, err := t.dir.r.OpenFile(t.part, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return Response{}, t.local(err)
	}
	size := resp.ContentLength
	s := t.newSegTransfer(parent, file, metaFromResponse(t.req.URL, resp.Header, size))
	defer s.stop(nil)
	if size >= preallocateSize {
		if release, ok := t.f.reserve(file, size); ok {
			defer release()
			s.reserved = true
		}
	}
	// The validator is recorded before the first byte (see resumePoint): a big body, so even a kill
	// -9 mid-transfer can resume.
	if err := writeMeta(t.dir.r, t.meta, s.meta); err != nil {
		file.Close()
		t.discard()
		return Response{}, t.local(err)
	}
	s.head = resp
	first := &segment{start: 0, end: size}
	s.segs = []*segment{first}
	first.busy, first.began, first.conn = true, time.Now(), t.firstConn.c
	s.active, s.mainBusy = 1, true
	// With splitting forced, the first splits are made before the first response streams a
	// byte, so where the ranges fall does not depend on timing.
	s.assign(time.Now())
	go s.streamFirst(ctx, first, resp)
	return s.run()
}

// resumeSegments continues a .part written in segments, as its sidecar m describes it.
func (t *transfer) resumeSegments(parent context.Context, m partMeta) (Response, error) {
	file, err := t.dir.r.OpenFile(t.part, os.O_RDWR, 0)
	if err != nil {
		return Response{}, t.local(err)
	}
	s := t.newSegTransfer(parent, file, m)
	defer s.stop(nil)
	s.resumed, s.split = true, true
	for _, r := range m.Segments {
		s.segs = append(s.segs, &segment{start: r[0], next: r[1], pos: r[1], end: r[2]})
		s.kept += r[1] - r[0]
	}
	// A kill between the sidecar's first write and the .part's truncate to the body's length
	// leaves it shorter (see becomeSegmented).
	if err := file.Truncate(s.size); err != nil {
		file.Close()
		return Response{}, t.local(err)
	}
	if s.size >= preallocateSize {
		if release, ok := t.f.reserve(file, s.size); ok {
			defer release()
			s.reserved = true
		}
	}
	t.announce(s.size, s.kept)
	s.assign(time.Now())
	return s.run()
}

func (t *transfer) newSegTransfer(parent context.Context, file *os.File, m partMeta) *segTransfer {
	ctx, stop := context.WithCancelCause(parent)
	return &segTransfer{
		t: t, ctx: ctx, stop: stop, file: file, meta: m, size: m.Size,
		maxConns:   t.f.opts.maxSegments(),
		splitAfter: t.f.opts.splitAfter(),
		warmup:     cmp.Or(t.f.seg.warmup, splitWarmup),
		events:     make(chan reqEnd, t.f.opts.maxSegments()+1),
		saved:      time.Now(),
	}
}

// run hands out ranges and splits until every range is complete or the download has failed,
// then publishes the file or leaves the .part for a resume.
func (s *segTransfer) run() (Response, error) {
	tick := time.NewTicker(splitTick)
	defer tick.Stop()
	for {
		if s.failed == nil && s.ctx.Err() == nil {
			s.assign(time.Now())
		}
		if s.active == 0 {
			break
		}
		select {
		case e := <-s.events:
			s.ended(e)
		case <-tick.C:
			if s.split && s.failed == nil && time.Since(s.saved) >= sidecarEvery {
				s.record()
			}
		}
	}
	if s.failed == nil && !s.complete() {
		// Only a cancelled context stops assign with ranges left and no request in flight.
		s.failed = s.t.netError(s.ctx, context.Cause(s.ctx))
	}
	if s.failed != nil {
		return Response{}, s.abandon()
	}
	return s.finish()
}

// assign starts requests for the ranges that need one: a range no request is fetching, or the
// back half of a split. The Fetch's own connection needs no grant; every other is asked of
// MoreConns, and given back (ConnDone) when its request ends.
func (s *segTransfer) assign(now time.Time) {
	worth, minHalf, rate := s.policy(now)
	worth = s.gate(now, worth)
	splits := s.splitCount
	defer func() {
		s.peak = max(s.peak, s.active)
		if s.splitCount > splits && rate > 0 && s.round.at.IsZero() {
			// Connections were added for the rate: a round begins, to be judged by gate.
			s.mu.Lock()
			s.round = growRound{at: now, from: s.total, rate: rate}
			s.mu.Unlock()
		}
	}()
	if !s.mainBusy {
		if g := s.take(s.active < worth, minHalf); g != nil {
			s.start(g, false)
		}
	}
	if s.failed != nil || s.noMore || s.t.req.MoreConns == nil {
		return
	}
	// Ask only for connections there is work for: a grant takes the host's politeness budget.
	unowned := s.unowned()
	need := min(unowned+s.splits(worth-s.active-unowned, minHalf), s.maxConns-s.active)
	if need <= 0 {
		return
	}
	k := s.t.req.MoreConns(need)
	for i := 0; i < k; i++ {
		var g *segment
		if i < need && s.failed == nil {
			g = s.take(s.active < worth, minHalf)
		}
		if g == nil {
			s.t.req.ConnDone()
			continue
		}
		s.start(g, true)
	}
}

// policy is how many connections the file is worth now, and the smallest back half a split may
// give a new one. A connection is worth opening only for bytes that would keep it busy for
// splitAfter at the rate one connection delivers, so a file arriving fast is never split; and only
// while the connections are limited by the network, not by this side (readerBound): when the
// bytes are already waiting in the sockets, more connections bring none sooner.
func (s *segTransfer) policy(now time.Time) (worth int, minHalf int64, rate float64) {
	if s.splitAfter < 0 {
		return s.maxConns, minSegment, 0
	}
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	var left int64
	var rates float64
	n := 0
	for _, g := range s.segs {
		left += g.end - g.pos
		if age := now.Sub(g.began); g.busy && !g.began.IsZero() && age >= s.warmup && !g.readerBound() {
			rates += float64(g.got) / age.Seconds()
			n++
		}
	}
	if n == 0 {
		return 0, 0, 0
	}
	worth, minHalf = connsWorth(left, rates/float64(n), s.splitAfter, s.maxConns)
	return worth, minHalf, rates
}

// gate holds back growth that has not paid: once connections have been added, no more are until
// those have run for two warm-ups, and none ever again if the file then arrives less than minGain
// times as fast as before (a server that is itself the limit, or a link all connections share).
// Connections that end are replaced all the same, up to the most there have been.
func (s *segTransfer) gate(now time.Time, worth int) int {
	if s.splitAfter < 0 {
		return worth
	}
	if !s.round.at.IsZero() {
		d := now.Sub(s.round.at)
		if d < 2*s.warmup {
			return min(worth, s.peak)
		}
		s.mu.Lock()
		got := s.total - s.round.from
		s.mu.Unlock()
		if float64(got)/d.Seconds() < minGain*s.round.rate {
			s.noGrow = true
		}
		s.round = growRound{}
	}
	if s.noGrow {
		return min(worth, s.peak)
	}
	return worth
}

// sample looks at the receive queue of every request's connection.
func (s *segTransfer) sample() {
	s.mu.Lock()
	var gs []*segment
	var cs []net.Conn
	for _, g := range s.segs {
		if g.busy && g.conn != nil {
			gs, cs = append(gs, g), append(cs, g.conn)
		}
	}
	s.mu.Unlock()
	for i, c := range cs {
		q, ok := receiveQueue(c)
		if !ok {
			continue
		}
		s.mu.Lock()
		if gs[i].conn == c { // still the same request's
			gs[i].samples++
			if q >= backlogSize {
				gs[i].backlog++
			}
		}
		s.mu.Unlock()
	}
}

// backlogSize is a socket's receive queue that says the reader is behind: two TLS records. A reader
// waiting on the network drains what arrives within microseconds, so a look finds the queue about
// empty; one that is behind finds it filled toward the socket's buffer.
const backlogSize = 32 << 10

// readerBound reports whether g's request is limited by this side rather than by the network: most
// times its socket was looked at, it held a backlog. The bytes were there and we
// were busy (a CPU shared with other transfers, a bandwidth cap); another connection would only
// add work. A link or a server that gives a connection less than we can take leaves the queue
// empty while we wait.
func (g *segment) readerBound() bool { return g.samples > 0 && 2*g.backlog >= g.samples }

// connsWorth is how many connections left bytes are worth at rate (bytes per second one connection
// delivers): as many as each stay busy for at least splitAfter, at most max. minHalf is what one
// connection fetches in splitAfter.
func connsWorth(left int64, rate float64, splitAfter time.Duration, max int) (worth int, minHalf int64) {
	if rate <= 0 {
		return 0, 0 // nothing arrives: more connections to the same server would not help
	}
	per := rate * splitAfter.Seconds()
	n := float64(left) / per
	worth = max
	if n < float64(max) {
		worth = int(n)
	}
	return worth, int64(per)
}

// take picks the range for a new request: one no request is fetching, else (with split) the back
// half of the range with the most bytes left, if each half keeps at least max(minHalf,
// minSegment).
func (s *segTransfer) take(split bool, minHalf int64) *segment {
	s.mu.Lock()
	for _, g := range s.segs {
		if !g.busy && g.next < g.end {
			g.busy = true
			s.mu.Unlock()
			return g
		}
	}
	if !split {
		s.mu.Unlock()
		return nil
	}
	var big *segment
	idx := 0
	for i, g := range s.segs {
		if g.busy && (big == nil || g.end-g.pos > big.end-big.pos) {
			big, idx = g, i
		}
	}
	half := max(minHalf, minSegment)
	if big == nil || big.end-big.pos < 2*half {
		s.mu.Unlock()
		return nil
	}
	mid := big.pos + (big.end-big.pos)/2
	if m := mid &^ (64<<10 - 1); m-big.pos >= half {
		mid = m // a round offset: whole pages for the file system
	}
	g := &segment{start: mid, next: mid, pos: mid, end: big.end, busy: true}
	s.splitCount++
	big.end = mid
	s.segs = append(s.segs[:idx+1], append([]*segment{g}, s.segs[idx+1:]...)...)
	s.mu.Unlock()
	if !s.split {
		if err := s.becomeSegmented(); err != nil {
			s.mu.Lock()
			g.busy = false
			s.mu.Unlock()
			s.fail(s.t.local(err), false)
			return nil
		}
	}
	return g
}

// splits is how many of want new requests the ranges in flight could give a back half to now
// (see take).
func (s *segTransfer) splits(want int, minHalf int64) int {
	if want <= 0 {
		return 0
	}
	half := max(minHalf, minSegment)
	s.mu.Lock()
	var left []int64
	for _, g := range s.segs {
		if g.busy {
			left = append(left, g.end-g.pos)
		}
	}
	s.mu.Unlock()
	n := 0
	for ; n < want; n++ {
		big := -1
		for i, l := range left {
			if big < 0 || l > left[big] {
				big = i
			}
		}
		if big < 0 || left[big] < 2*half {
			break
		}
		left[big] /= 2
		left = append(left, left[big])
	}
	return n
}

// becomeSegmented turns a .part written from byte 0 into one written at offsets: the sidecar lists
// the ranges first (saying nothing of bytes not yet there), then the .part takes the body's full
// length, so that a trawl that does not know segments finds it no shorter than the body and sends
// a Range the server must refuse (416), instead of appending to a file with holes.
func (s *segTransfer) becomeSegmented() error {
	s.split = true
	if err := s.save(); err != nil {
		return err
	}
	return s.file.Truncate(s.size)
}

// unowned is the count of ranges with bytes left that no request is fetching.
func (s *segTransfer) unowned() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, g := range s.segs {
		if !g.busy && g.next < g.end {
			n++
		}
	}
	return n
}

func (s *segTransfer) complete() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.segs {
		if g.next != g.end {
			return false
		}
	}
	return true
}

// start runs a range request for g (marked busy by take).
func (s *segTransfer) start(g *segment, granted bool) {
	s.active++
	if !granted {
		s.mainBusy = true
	}
	go s.fetchRange(g, granted)
}

// ended records the end of a request.
func (s *segTransfer) ended(e reqEnd) {
	s.active--
	if !e.granted {
		s.mainBusy = false
	}
	if e.hash != nil {
		s.firstHash, s.hashed = e.hash, e.hashed
	}
	s.mu.Lock()
	g := e.g
	g.busy, g.pos = false, g.next
	g.began, g.got, g.conn, g.samples, g.backlog = time.Time{}, 0, nil, 0, 0
	s.mu.Unlock()
	switch {
	case e.err == nil:
		if s.split && s.failed == nil {
			s.record() // a finished range is never fetched again, even after a kill -9
		}
	case e.lie:
		s.fail(e.err, true)
	case s.failed != nil:
	case !s.split || !e.err.Retryable || e.err.Fatal || s.ctx.Err() != nil:
		// One stream (nothing split yet) fails as any download does; and a failure no retry
		// mends ends the download.
		s.fail(e.err, false)
	default:
		// The range goes back to be fetched by another request; the host is asked for no more
		// connections (a 503 or a reset may be its way of saying it has given enough).
		s.errs++
		s.noMore = true
		if s.errs >= maxSegmentErrors {
			s.fail(e.err, false)
		}
	}
}

// fail ends the download with err, stopping every request in flight. A lie overrides any other
// failure: the .part must then be discarded.
func (s *segTransfer) fail(err *Error, lie bool) {
	if s.failed != nil && (s.lied || !lie) {
		return
	}
	s.failed, s.lied = err, lie
	s.stop(errStopped)
	if s.t.cancel != nil { // the first response's request, if there was one
		s.t.cancel(errStopped)
	}
}

// record saves the sidecar; a failure to write it ends the download.
func (s *segTransfer) record() {
	if err := s.save(); err != nil {
		s.fail(s.t.local(err), false)
	}
}

// save writes the sidecar with the ranges as they are now. Not fsynced, like every sidecar write
// (see writeMeta). It describes only bytes already written: next moves only after WriteAt
// returned.
func (s *segTransfer) save() error {
	s.mu.Lock()
	m := s.meta
	m.Segments = make([][3]int64, 0, len(s.segs))
	for _, g := range s.segs {
		// Neighbouring finished ranges are recorded as one.
		if n := len(m.Segments); n > 0 && m.Segments[n-1][1] == m.Segments[n-1][2] && g.next == g.end {
			m.Segments[n-1][1], m.Segments[n-1][2] = g.end, g.end
			continue
		}
		m.Segments = append(m.Segments, [3]int64{g.start, g.next, g.end})
	}
	s.mu.Unlock()
	s.saved = time.Now()
	err := writeMeta(s.t.dir.r, s.t.meta, m)
	if obs := s.t.f.seg.observe; obs != nil && err == nil {
		obs(m.Segments)
	}
	return err
}

// abandon ends a failed download: a .part whose answers failed a check is discarded and its host
// never segmented again; any other keeps its .part and sidecar for the next attempt.
func (s *segTransfer) abandon() error {
	t := s.t
	if s.lied {
		s.file.Close()
		t.discard()
		t.f.seg.refuse(hostOf(t.req.URL))
		return s.failed
	}
	s.mu.Lock()
	written := int64(0)
	for _, g := range s.segs {
		written += g.next - g.start
	}
	next0 := s.segs[0].next
	s.mu.Unlock()
	switch {
	case written == 0:
		s.file.Close()
		t.discard()
		return s.failed
	case s.split:
		if s.reserved {
			s.mu.Lock()
			for _, g := range s.segs {
				punchHole(s.file, g.next, g.end-g.next) // a kept .part holds only what arrived
			}
			s.mu.Unlock()
		}
		_ = s.save()
	case s.reserved:
		trimPart(s.file, next0)
	}
	if err := s.file.Close(); err != nil {
		t.discard()
		return t.local(err)
	}
	return s.failed
}

// finish checks that the .part is whole, hashes it, and publishes it.
func (s *segTransfer) finish() (Response, error) {
	t := s.t
	sum, err := s.hashPart()
	if err != nil {
		s.file.Close()
		t.discard()
		return Response{}, err
	}
	s.stampMtime()
	if err := s.file.Close(); err != nil {
		t.discard()
		return Response{}, t.local(err)
	}
	unchanged, err := t.verify(sum, s.size)
	if err != nil {
		return Response{}, err
	}
	if !unchanged {
		t.metaOnDisk = true // a .part written in segments always has its sidecar
		if err := t.publishBody(); err != nil {
			return Response{}, err
		}
	}
	return s.result(sum, unchanged), nil
}

// hashPart checks that the .part has the body's length and completes its sha256: the first
// response fed [0, hashed) to the hash in order as it streamed; the rest is read back.
func (s *segTransfer) hashPart() (string, *Error) {
	t := s.t
	if fi, err := s.file.Stat(); err != nil || fi.Size() != s.size {
		return "", t.fail(ClassRange, true, fmt.Errorf("segmented .part of %s is not %d bytes long", t.rel, s.size))
	}
	h := s.firstHash
	if h == nil {
		h = sha256.New()
	}
	bufp := bufPool.Get().(*[]byte)
	_, err := io.CopyBuffer(h, io.NewSectionReader(s.file, s.hashed, s.size-s.hashed), *bufp)
	bufPool.Put(bufp)
	if err != nil {
		return "", t.local(err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// stampMtime gives the .part an answer's Last-Modified as its mtime, through the descriptor, as
// the one-stream stampMtime does; publishBody sets it by name where that failed.
func (s *segTransfer) stampMtime() {
	if s.head == nil {
		return
	}
	lm, err := http.ParseTime(s.head.Header.Get("Last-Modified"))
	s.t.mtime, s.t.mtimeLeft = lm, err == nil && setMtime(s.file, lm) != nil
}

// result is the Response for the whole file.
func (s *segTransfer) result(sum string, unchanged bool) Response {
	t := s.t
	if s.head == nil {
		// Every range was finished before this run: nothing was asked of the server.
		return Response{Status: http.StatusPartialContent, Bytes: s.size, SHA256: sum, ETag: s.meta.ETag,
			LastModified: s.meta.LastModified, FinalURL: redact(t.req.URL), Path: t.rel,
			Resumed: true, Offset: s.kept, Unchanged: unchanged}
	}
	r := t.response(s.head, s.size, sum, s.resumed, s.kept)
	r.Unchanged = unchanged
	return r
}
