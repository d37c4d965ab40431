package fetcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// Fetch downloads req.URL into <root>/<req.Path>. The body streams to <path>.part while
// its sha256 is computed, the length is checked against Content-Length, and only a
// complete .part is renamed to <path>. A failed transfer that the server can resume leaves
// the .part (and its validator sidecar) for the next attempt to continue with Range.
//
// Fetch does not fsync: the caller makes a whole batch durable with Flush before
// recording it done. Every error is an *Error.
func (f *Fetcher) Fetch(ctx context.Context, root *os.Root, req Request) (Response, error) {
	u, err := url.Parse(req.URL)
	if err != nil {
		return Response{}, &Error{URL: redact(req.URL), Class: ClassURL, Err: err}
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return Response{}, &Error{URL: redact(req.URL), Class: ClassURL,
			Err: fmt.Errorf("unsupported URL (only http and https with a host)")}
	}
	name, err := CleanPath(req.Path)
	if err != nil {
		return Response{}, &Error{URL: redact(req.URL), Class: ClassURL, Err: fmt.Errorf("output path: %w", err)}
	}
	t := transfer{f: f, req: req, outRoot: root}
	defer t.releaseDir()
	if err := t.at(name); err != nil {
		return Response{}, err
	}
	return t.run(ctx)
}

// at points the transfer at the file name, a clean path relative to the output root. It works
// inside the file's directory, one syscall per operation instead of a walk from the root, when the
// directory exists; when it does not, neither does the file nor a .part, and write creates it.
func (t *transfer) at(name string) *Error {
	t.releaseDir()
	dir, base := path.Split(name)
	t.rel, t.dirName, t.name = name, path.Clean(dir), base
	t.part, t.meta = tempNames(base)
	t.dir = nil
	e, release, err := t.f.dirs.open(t.outRoot, t.dirName, false)
	switch {
	case err == nil:
		t.dir, t.release = e, release
	case !errors.Is(err, fs.ErrNotExist):
		return t.local(err)
	}
	return nil
}

// releaseDir gives back the directory at opened.
func (t *transfer) releaseDir() {
	if t.release != nil {
		t.release()
		t.release = nil
	}
}

// transfer is one Fetch call's state.
type transfer struct {
	f   *Fetcher
	req Request

	// Where the file goes.
	outRoot          *os.Root  // the output root
	rel              string    // the file's path relative to the output root
	dirName          string    // the file's directory, relative to the output root
	name, part, meta string    // base names in the directory: the file, its .part, the .part's sidecar
	dir              *dirEntry // the directory, open (dir.r; dir.fd for the *at fast paths); nil until made
	release          func()    // gives back the directory at opened, if it did

	// What the transfer found on disk and on the wire.
	have        bool                    // a regular file is at the path (looked for only for a refresh)
	haveSize    int64                   // its length
	metaFound   bool                    // a sidecar exists on disk
	cancel      context.CancelCauseFunc // cancels the HTTP request; the stall watchdog's cause is errStalled
	multiplexed bool                    // the host answered over HTTP/2
	firstConn   connProbe               // the connection the answer came over, for the split policy (segment.go)

	// What the steps of run and write hand on to the next (and finish to publishBody).
	offset      int64     // bytes of the .part kept: the body is appended from there (0: from the start)
	sidecar     partMeta  // the .part's validators: as its sidecar recorded them, or the answer's for a new .part
	metaOnDisk  bool      // the sidecar file holds them
	conditional bool      // the request revalidates the copy at the path
	out         hashFile  // the open .part and the sha256 of the file up to where it is written
	buf         []byte    // the pooled copy buffer
	unreserve   func()    // gives back the disk reserved for the .part (see reserve); nil: none
	mtime       time.Time // the answer's Last-Modified, for the file's mtime
	mtimeLeft   bool      // the mtime could not be set through the descriptor: set it by name
	ifFailed    partFate  // what end does with the .part if the step under way fails
}

func (t *transfer) fail(class Class, retryable bool, err error) *Error {
	return &Error{URL: redact(t.req.URL), Class: class, Retryable: retryable, Err: err}
}

func (t *transfer) local(err error) *Error { return localError(t.req.URL, err) }

// run is the download, as a chain of named steps: the resume point (statPath, findResumePoint),
// the request (send), the status (answer), then write's open, copy, verify and publish. Each step
// hands on what it found in the transfer's fields; one that fails ends the transfer in end.
func (t *transfer) run(parent context.Context) (Response, error) {
	if t.dir != nil {
		if err := t.statPath(); err != nil {
			return t.end(err)
		}
		if t.findResumePoint(); len(t.sidecar.Segments) > 0 {
			// Written in place at offsets, not from byte 0: see segment.go.
			return t.resumeSegments(parent, t.sidecar)
		}
	}
	t.conditional = t.revalidates()
	// The watchdog cancels with errStalled as the cause, so a stall is told apart from the
	// caller canceling.
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	t.cancel = cancel
	if t.req.MoreConns != nil {
		ctx = t.firstConn.trace(ctx) // a file that may be segmented: see segment.go
	}
	resp, err := t.send(ctx)
	if err != nil {
		return t.end(err)
	}
	defer resp.Body.Close()
	return t.answer(parent, ctx, resp)
}

// partFate is what end does with the .part of a transfer that fails in the step under way.
type partFate uint8

const (
	leavePart     partFate = iota // leave it as it is: there is none of ours, or the step cleaned up
	dropPart                      // discard it and its sidecar: its bytes cannot be resumed
	keepResumable                 // keep it for a resume if it has bytes and a validator; else discard
)

// end is the one exit of a transfer that failed: it closes the .part if a step left it open, then
// keeps or discards it as t.ifFailed says, and returns err. Where the file's directory does not
// exist (it is made only to write), there is no .part to do anything with.
func (t *transfer) end(err *Error) (Response, error) {
	if t.out.f != nil {
		t.out.f.Close()
		t.out.f = nil
	}
	switch {
	case t.dir == nil:
	case t.ifFailed == dropPart:
		t.discard()
	case t.ifFailed == keepResumable:
		// Anything short of a complete body: keep a resumable .part for the next attempt (recording
		// its validator now if that was deferred), drop one that could only be restarted anyway.
		if t.sidecar.ifRange() == "" || t.offset+t.out.n == 0 ||
			!t.metaOnDisk && writeMeta(t.dir.r, t.meta, t.sidecar) != nil {
			t.discard()
		}
	}
	return Response{}, err
}

// statPath looks at what is at the path, for a refresh only: to revalidate it, or to leave it be
// when the body turns out to be its own. A directory there is never clobbered either way: publish
// refuses to rename over it (a conflict on disk nobody planned for; the store resolves collisions
// at enqueue time). Not looking saves a syscall per file of a first download.
func (t *transfer) statPath() *Error {
	if t.req.ETag == "" && t.req.LastModified == "" && t.req.HaveSHA256 == "" {
		return nil
	}
	fi, err := lstatIn(t.dir.r, t.dir.fd, t.name)
	switch {
	case err == nil && fi.IsDir():
		return t.local(fmt.Errorf("%s: %w", t.rel, errIsDirectory))
	case err == nil:
		t.have, t.haveSize = fi.Mode().IsRegular(), fi.Size()
	case !errors.Is(err, fs.ErrNotExist):
		return t.local(err)
	}
	return nil
}

// findResumePoint reads how much of a .part an earlier attempt left can be kept, and the validator
// that must guard the append (see resumePoint). A directory this Fetcher made holds no .part it
// does not know of: a first download there need not look.
func (t *transfer) findResumePoint() {
	if t.f.dirs.mayHavePart(t.dir, t.part) {
		t.offset, t.sidecar, t.metaFound = resumePoint(t.dir.r, t.dir.fd, t.part, t.meta, t.req.URL)
	}
}

// revalidates reports whether the request is to be conditional. Only a copy that is still there
// is revalidated (a 304 for a deleted file would leave nothing), and only if it is the file wanted
// (a 304 would keep one the list no longer vouches for); a resume takes precedence.
func (t *transfer) revalidates() bool {
	return t.have && t.offset == 0 && (t.req.ETag != "" || t.req.LastModified != "") &&
		(t.req.WantSHA256 == "" || t.req.HaveSHA256 == t.req.WantSHA256)
}

// send sends the request and returns the answer whose body is the file's: for a big body that
// came over an HTTP/2 stream, the answer to the request asked again over HTTP/1.1 (askAgain).
func (t *transfer) send(ctx context.Context) (*http.Response, *Error) {
	hreq, err := t.newRequest(ctx)
	if err != nil {
		return nil, err
	}
	client := t.f.client
	if t.f.bulk != nil && t.offset > 0 && t.sidecar.Size-t.offset >= BulkBodySize {
		// What is left of a big body is known to be big: over HTTP/1.1 at once (see ProtocolAuto).
		client = t.f.bulk
	}
	// The client adds the jar's cookies to hreq's own header: a request asked again starts from
	// this copy, and gets them from the jar again.
	header := hreq.Header.Clone()
	resp, err := t.do(ctx, client, hreq)
	if err != nil {
		return nil, err
	}
	t.multiplexed = resp.ProtoMajor == 2
	if t.req.OnAnswer != nil {
		t.req.OnAnswer(t.multiplexed)
	}
	if client != t.f.bulk && t.bigOnHTTP2(resp) {
		return t.askAgain(ctx, hreq, header, resp)
	}
	return resp, nil
}

// newRequest builds the GET: one that resumes the .part with Range and If-Range, or revalidates
// the copy at the path with its validators, or asks for the whole body.
func (t *transfer) newRequest(ctx context.Context) (*http.Request, *Error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, t.req.URL, nil)
	if err != nil {
		return nil, t.fail(ClassURL, false, err)
	}
	hreq.Header = t.f.requestHeader(hreq.URL)
	if t.offset > 0 {
		// Resume takes precedence over revalidation: the .part is of the server's newer
		// version, and If-Range makes the server send the whole new body if it moved on.
		hreq.Header.Set("Range", "bytes="+strconv.FormatInt(t.offset, 10)+"-")
		hreq.Header.Set("If-Range", t.sidecar.ifRange())
	} else if t.conditional {
		if t.req.ETag != "" {
			hreq.Header.Set("If-None-Match", t.req.ETag)
		}
		if t.req.LastModified != "" {
			hreq.Header.Set("If-Modified-Since", t.req.LastModified)
		}
	}
	return hreq, nil
}

// do sends hreq with client. The first request to an HTTPS origin that may speak HTTP/2 goes
// alone until it has its connection, which the others then share (see firstRequests).
func (t *transfer) do(ctx context.Context, client *http.Client, hreq *http.Request) (*http.Response, *Error) {
	first := func() {}
	if hreq.URL.Scheme == "https" && client == t.f.client && t.f.multiplexed() {
		var err error
		if first, err = t.f.first.enter(ctx, hreq.URL.Host); err != nil {
			return nil, t.netError(ctx, err)
		}
		// Released as soon as the request has its connection (by then an HTTP/2 one is in
		// the pool for the others), not after a slow first response or a redirect chain.
		hreq = hreq.WithContext(httptrace.WithClientTrace(hreq.Context(),
			&httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { first() }}))
	}
	resp, err := client.Do(t.toldWhenSent(hreq))
	first()
	if err != nil {
		return nil, t.netError(ctx, err)
	}
	return resp, nil
}

// toldWhenSent returns hreq with a trace that calls the request's OnSent as its headers are
// written, if it has one.
func (t *transfer) toldWhenSent(hreq *http.Request) *http.Request {
	if t.req.OnSent == nil {
		return hreq
	}
	return hreq.WithContext(httptrace.WithClientTrace(hreq.Context(),
		&httptrace.ClientTrace{WroteHeaders: t.req.OnSent}))
}

// bigOnHTTP2 reports whether resp is a big body on an HTTP/2 stream, to be moved to an HTTP/1.1
// connection of its own (see ProtocolAuto) if the host's politeness allows the second request.
func (t *transfer) bigOnHTTP2(resp *http.Response) bool {
	return t.multiplexed && t.f.bulk != nil && resp.ContentLength >= BulkBodySize &&
		(resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPartialContent) && t.askAgainAllowed()
}

// askAgain asks for the body of resp again, over an HTTP/1.1 connection of its own, with header,
// the request's header before the jar added its cookies. Only what the server sent before the
// stream's reset is wasted.
func (t *transfer) askAgain(ctx context.Context, hreq *http.Request, header http.Header, resp *http.Response) (*http.Response, *Error) {
	resp.Body.Close()
	again := hreq.Clone(ctx)
	again.Header = header
	resp, err := t.f.bulk.Do(t.toldWhenSent(again))
	if err != nil {
		return nil, t.netError(ctx, err)
	}
	return resp, nil
}

// askAgainAllowed says whether the host's politeness allows the second request a big body's
// move to HTTP/1.1 costs: it takes a request of the host's rate and concurrency (MoreConns),
// given back at once, as the first is over. Without one the body stays on its HTTP/2 stream.
func (t *transfer) askAgainAllowed() bool {
	if t.req.MoreConns == nil {
		return true
	}
	if t.req.MoreConns(1) != 1 {
		return false
	}
	t.req.ConnDone()
	return true
}

// answer hands the answer to the step its status calls for: a 304 keeps the copy at the path, a
// 206 that continues the .part is appended to it, any other 2xx writes the file from byte 0
// (restart), and anything else is refused. ctx is the request's context, parent the Fetch's.
func (t *transfer) answer(parent, ctx context.Context, resp *http.Response) (Response, error) {
	switch {
	case resp.StatusCode == http.StatusNotModified && t.conditional:
		return t.response(resp, 0, "", false, 0), nil
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && t.offset > 0:
		// The .part is longer than the file now is: it is from another version.
		t.ifFailed = dropPart
		return t.end(t.fail(ClassRange, true, fmt.Errorf("server refused Range bytes=%d- (416)", t.offset)))
	case resp.StatusCode == http.StatusPartialContent:
		if err := checkResume(resp, t.offset, t.sidecar); err != nil {
			t.ifFailed = dropPart
			return t.end(t.fail(ClassRange, true, err))
		}
		return t.write(ctx, resp)
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return t.restart(parent, ctx, resp)
	}
	return t.end(t.refused(resp))
}

// restart writes the file from byte 0 with a 2xx answer: to a fresh download, whose answer may
// name the file (Request.Naming); or to a Range request, whose validator no longer matches (or
// whose server ignores Range). A body worth it is fetched over several connections (segment.go).
func (t *transfer) restart(parent, ctx context.Context, resp *http.Response) (Response, error) {
	if t.offset == 0 && !t.conditional {
		if err := t.takeName(resp); err != nil {
			return t.end(err)
		}
	}
	t.offset = 0
	if t.segmentable(resp) {
		t.announce(resp.ContentLength, 0)
		return t.writeSegments(parent, ctx, resp)
	}
	return t.write(ctx, resp)
}

// refused is the error of an answer that is not the file. A little of its body is read so the
// connection can be reused, but not from a server that stalls it.
func (t *transfer) refused(resp *http.Response) *Error {
	stop := time.AfterFunc(t.f.opts.IdleTimeout, func() { t.cancel(errStalled) })
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	stop.Stop()
	return httpError(t.req.URL, resp, time.Now())
}

// takeName moves the transfer to the path the answer names (Request.Naming), when that differs
// from the request's: the caller reserves and records it, and only then is anything written there.
func (t *transfer) takeName(resp *http.Response) *Error {
	n := t.req.Naming
	if n == nil || n.Rename == nil {
		return nil
	}
	final := t.req.URL
	if u := resp.Request.URL; n.SlashRedirect && strings.HasSuffix(u.Path, "/") {
		final = u.String() // spelled out only when it may be a slash redirect: most answers are not
	}
	proposed := n.Propose(t.rel, t.req.URL, final, resp.Header)
	if proposed == t.rel {
		return nil
	}
	got, err := n.Rename(proposed)
	if err != nil {
		return &Error{URL: redact(t.req.URL), Class: ClassLocal, Fatal: true,
			Err: fmt.Errorf("recording the file name %q the server gave: %w", proposed, err)}
	}
	name, err := CleanPath(got)
	if err != nil {
		return t.fail(ClassURL, false, fmt.Errorf("output path %q: %w", got, err))
	}
	if name == t.rel {
		return nil
	}
	if t.dir != nil && t.f.dirs.mayHavePart(t.dir, t.part) {
		// This download starts from zero: a .part at the old path would have been overwritten.
		t.discard()
	}
	if err := t.at(name); err != nil {
		return err
	}
	// A sidecar there (a stale one: the path was just given to this URL) must not describe the
	// new .part; startPart removes it when it records none.
	t.metaFound = t.dir != nil && t.f.dirs.mayHavePart(t.dir, t.part)
	return nil
}

// checkResume accepts a 206 only if it continues exactly at offset, runs to the end, and is of
// the version the .part holds. If-Range should guarantee the last, but a broken origin or cache
// may honour Range regardless: a 206 that names another ETag or Last-Modified than the one the
// .part was recorded with would splice two versions into one file.
func checkResume(resp *http.Response, offset int64, m partMeta) error {
	if offset == 0 {
		return errors.New("206 Partial Content to a request without Range")
	}
	if et := resp.Header.Get("ETag"); m.ETag != "" && et != "" && et != m.ETag {
		return fmt.Errorf("206 is of another version: ETag %s, .part has %s", et, m.ETag)
	}
	if lm := resp.Header.Get("Last-Modified"); m.ETag == "" && m.LastModified != "" && lm != "" && lm != m.LastModified {
		return fmt.Errorf("206 is of another version: Last-Modified %q, .part has %q", lm, m.LastModified)
	}
	cr := resp.Header.Get("Content-Range")
	start, end, total, err := ParseContentRange(cr)
	switch {
	case err != nil:
		return fmt.Errorf("206 with %w %q", err, cr)
	case start != offset:
		return fmt.Errorf("206 starts at byte %d, .part has %d bytes", start, offset)
	case total >= 0 && end != total-1:
		return fmt.Errorf("206 ends at byte %d of %d, not at the end", end, total)
	case m.Size > 0 && total != m.Size:
		return fmt.Errorf("206 is of a body of %d bytes, .part was started from one of %d", total, m.Size)
	case resp.ContentLength >= 0 && resp.ContentLength != end-start+1:
		return fmt.Errorf("206 Content-Length %d does not match Content-Range %q", resp.ContentLength, cr)
	}
	return nil
}

// announce tells the caller the whole file's length, and how much of it is on disk already.
func (t *transfer) announce(total, have int64) {
	if t.req.OnLength != nil {
		t.req.OnLength(total, have)
	}
}

// netError classifies a failure of the request or of reading the body. A stall is
// recognised by the watchdog's cancel cause; the caller's own cancel stays "canceled".
func (t *transfer) netError(ctx context.Context, err error) *Error {
	if cause := context.Cause(ctx); cause != nil {
		err = cause
	}
	e := Classify(err)
	e.URL = redact(t.req.URL)
	return e
}

func (t *transfer) response(resp *http.Response, size int64, sum string, resumed bool, offset int64) Response {
	r := Response{
		Status:       resp.StatusCode,
		Bytes:        size,
		SHA256:       sum,
		ETag:         resp.Header.Get("ETag"),
		LastModified: resp.Header.Get("Last-Modified"),
		ContentType:  resp.Header.Get("Content-Type"),
		FinalURL:     redact(resp.Request.URL.String()),
		Path:         t.rel,
		Resumed:      resumed,
		Offset:       offset,
		NotModified:  resp.StatusCode == http.StatusNotModified,
	}
	if r.NotModified {
		// A 304 may omit validators; the copy on disk still has the ones we sent.
		if r.ETag == "" {
			r.ETag = t.req.ETag
		}
		if r.LastModified == "" {
			r.LastModified = t.req.LastModified
		}
	}
	return r
}
