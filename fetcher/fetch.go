package fetcher

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"syscall"
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
	t.dir, t.root, t.dirfd = nil, nil, -1
	e, release, err := t.f.dirs.open(t.outRoot, t.dirName, false)
	switch {
	case err == nil:
		t.dir, t.root, t.dirfd, t.release = e, e.r, e.fd(), release
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
	f                *Fetcher
	dir              *dirEntry // the file's directory; nil until write creates it
	root             *os.Root  // dir.r
	dirfd            int       // root's descriptor for the *at fast paths (fileops_linux.go), or -1
	outRoot          *os.Root  // the output root
	release          func()    // gives back the directory at opened, if it did
	dirName          string    // the file's directory, relative to the output root
	rel              string    // the file's path relative to the output root
	req              Request
	name, part, meta string                  // base names in root
	cancel           context.CancelCauseFunc // cancels the HTTP request; the stall watchdog's cause is errStalled
	metaFound        bool                    // a sidecar exists on disk
	have             bool                    // a regular file is at the path (looked for only for a refresh)
	haveSize         int64                   // its length
	multiplexed      bool                    // the host answered over HTTP/2
	firstConn        connProbe               // the connection the answer came over, for the split policy (segment.go)
}

func (t *transfer) fail(class Class, retryable bool, err error) *Error {
	return &Error{URL: redact(t.req.URL), Class: class, Retryable: retryable, Err: err}
}

func (t *transfer) local(err error) *Error { return localError(t.req.URL, err) }

func (t *transfer) run(parent context.Context) (Response, error) {
	var offset int64
	var meta partMeta
	if t.root != nil {
		// Only a refresh needs to know what is at the path: to revalidate it, or to leave it be
		// when the body turns out to be its own. A directory there is never clobbered either way:
		// publish refuses to rename over it (a conflict on disk nobody planned for; the store
		// resolves collisions at enqueue time). Not looking saves a syscall per file of a first
		// download.
		if t.req.ETag != "" || t.req.LastModified != "" || t.req.HaveSHA256 != "" {
			fi, err := lstatIn(t.root, t.dirfd, t.name)
			switch {
			case err == nil && fi.IsDir():
				return Response{}, t.local(fmt.Errorf("%s: %w", t.rel, errIsDirectory))
			case err == nil:
				t.have, t.haveSize = fi.Mode().IsRegular(), fi.Size()
			case !errors.Is(err, fs.ErrNotExist):
				return Response{}, t.local(err)
			}
		}
		if t.f.dirs.mayHavePart(t.dir, t.part) {
			offset, meta, t.metaFound = resumePoint(t.root, t.dirfd, t.part, t.meta, t.req.URL)
			if len(meta.Segments) > 0 {
				// Written in place at offsets, not from byte 0: see segment.go.
				return t.resumeSegments(parent, meta)
			}
		}
	}
	// Revalidate only a copy that is still there (a 304 for a deleted file would leave nothing)
	// and that is the file wanted (a 304 would keep one the list no longer vouches for).
	conditional := t.have && offset == 0 && (t.req.ETag != "" || t.req.LastModified != "") &&
		(t.req.WantSHA256 == "" || t.req.HaveSHA256 == t.req.WantSHA256)

	// The watchdog cancels with errStalled as the cause, so a stall is told apart from the
	// caller canceling.
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	t.cancel = cancel
	if t.req.MoreConns != nil {
		ctx = t.firstConn.trace(ctx) // a file that may be segmented: see segment.go
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, t.req.URL, nil)
	if err != nil {
		return Response{}, t.fail(ClassURL, false, err)
	}
	hreq.Header = t.f.requestHeader(hreq.URL)
	if offset > 0 {
		// Resume takes precedence over revalidation: the .part is of the server's newer
		// version, and If-Range makes the server send the whole new body if it moved on.
		hreq.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
		hreq.Header.Set("If-Range", meta.ifRange())
	} else if conditional {
		if t.req.ETag != "" {
			hreq.Header.Set("If-None-Match", t.req.ETag)
		}
		if t.req.LastModified != "" {
			hreq.Header.Set("If-Modified-Since", t.req.LastModified)
		}
	}

	client := t.f.client
	if t.f.bulk != nil && offset > 0 && meta.Size-offset >= BulkBodySize {
		// What is left of a big body is known to be big: over HTTP/1.1 at once (see ProtocolAuto).
		client = t.f.bulk
	}
	first := func() {}
	if hreq.URL.Scheme == "https" && client == t.f.client && t.f.multiplexed() {
		if first, err = t.f.first.enter(ctx, hreq.URL.Host); err != nil {
			return Response{}, t.netError(ctx, err)
		}
		// Released as soon as the request has its connection (by then an HTTP/2 one is in
		// the pool for the others), not after a slow first response or a redirect chain.
		hreq = hreq.WithContext(httptrace.WithClientTrace(hreq.Context(),
			&httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { first() }}))
	}
	// The client adds the jar's cookies to hreq's own header: a request asked again starts from
	// this copy, and gets them from the jar again.
	header := hreq.Header.Clone()
	resp, err := client.Do(hreq)
	first()
	if err != nil {
		return Response{}, t.netError(ctx, err)
	}
	t.multiplexed = resp.ProtoMajor == 2
	if t.req.OnAnswer != nil {
		t.req.OnAnswer(t.multiplexed)
	}
	if t.multiplexed && client != t.f.bulk && t.f.bulk != nil && resp.ContentLength >= BulkBodySize &&
		(resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPartialContent) && t.askAgainAllowed() {
		// A big body: ask again over an HTTP/1.1 connection of its own (see ProtocolAuto). Only
		// what the server sent before the stream's reset is wasted.
		resp.Body.Close()
		again := hreq.Clone(ctx)
		again.Header = header
		if resp, err = t.f.bulk.Do(again); err != nil {
			return Response{}, t.netError(ctx, err)
		}
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusNotModified && conditional:
		return t.response(resp, 0, "", false, 0), nil
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && offset > 0:
		// The .part is longer than the file now is: it is from another version.
		discardPart(t.root, t.part, t.meta) // offset > 0: root is set
		return Response{}, t.fail(ClassRange, true, fmt.Errorf("server refused Range bytes=%d- (416)", offset))
	case resp.StatusCode == http.StatusPartialContent:
		if err := checkResume(resp, offset, meta); err != nil {
			discardPart(t.root, t.part, t.meta)
			return Response{}, t.fail(ClassRange, true, err)
		}
		return t.write(ctx, resp, offset)
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		// A 200 to a Range request: the validator no longer matches (or the server
		// ignores Range). Start over from zero with this body.
		if offset == 0 && !conditional {
			// A fresh download: the answer may name the file (Request.Naming).
			if err := t.takeName(resp); err != nil {
				return Response{}, err
			}
		}
		if t.segmentable(resp) {
			t.announce(resp.ContentLength, 0)
			return t.writeSegments(parent, ctx, resp) // over several connections: segment.go
		}
		return t.write(ctx, resp, 0)
	default:
		// Read a little of the error body so the connection can be reused, but not
		// from a server that stalls it.
		stop := time.AfterFunc(t.f.opts.IdleTimeout, func() { cancel(errStalled) })
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
		stop.Stop()
		return Response{}, httpError(t.req.URL, resp, time.Now())
	}
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
	if t.root != nil && t.f.dirs.mayHavePart(t.dir, t.part) {
		// This download starts from zero: a .part at the old path would have been overwritten.
		discardPart(t.root, t.part, t.meta)
	}
	if err := t.at(name); err != nil {
		return err
	}
	// A sidecar there (a stale one: the path was just given to this URL) must not describe the
	// new .part; write removes it when it writes none.
	t.metaFound = t.root != nil && t.f.dirs.mayHavePart(t.dir, t.part)
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

// write streams the body into the .part (appending at offset, or from zero), verifies
// its length, and publishes it by rename.
func (t *transfer) write(ctx context.Context, resp *http.Response, offset int64) (Response, error) {
	if resp.ContentLength >= 0 {
		t.announce(offset+resp.ContentLength, offset)
	}
	release, derr := t.makeDir()
	if derr != nil {
		return Response{}, derr
	}
	defer release()
	bufp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bufp)
	buf := *bufp

	h := sha256.New()
	var file partFile
	var err error
	var m partMeta
	resumable, metaOnDisk := true, offset > 0
	reserved := false // disk preallocated past what arrives
	if offset > 0 {
		f, err := t.root.OpenFile(t.part, os.O_RDWR, 0)
		if err != nil {
			return Response{}, t.local(err)
		}
		file = f
		// The sha256 must cover the whole file: hash the kept bytes first. This also
		// leaves the file offset at the end of the kept bytes.
		n, err := io.CopyBuffer(h, io.LimitReader(f, offset), buf)
		if err == nil && n == offset {
			// Frees what a transfer killed mid-way had reserved past its end (see reserve).
			err = f.Truncate(offset)
		}
		if err != nil || n != offset {
			file.Close()
			discardPart(t.root, t.part, t.meta)
			if err != nil {
				return Response{}, t.local(err)
			}
			return Response{}, t.fail(ClassRange, true, fmt.Errorf(".part shrank to %d bytes while resuming from %d", n, offset))
		}
	} else {
		// Truncate first, then record the validator: see resumePoint.
		if file, err = t.createPart(); err != nil {
			return Response{}, t.local(err)
		}
		if resp.ContentLength >= preallocateSize {
			var release func()
			if release, reserved = t.f.reserve(file, resp.ContentLength); reserved {
				defer release()
			}
		}
		m = metaFromResponse(t.req.URL, resp.Header, resp.ContentLength)
		resumable = m.ifRange() != ""
		switch {
		case resumable && (resp.ContentLength < 0 || resp.ContentLength >= eagerMetaSize):
			err = writeMeta(t.root, t.meta, m)
			metaOnDisk = true
		case t.metaFound:
			err = removeIfExists(t.root, t.meta) // describes bytes just truncated away
		}
		if err != nil {
			file.Close()
			return Response{}, t.local(err)
		}
	}

	w := &hashFile{f: file, h: h}
	idle := t.f.opts.IdleTimeout
	body := &watchedBody{
		ctx:     ctx,
		r:       resp.Body,
		timer:   time.AfterFunc(idle, func() { t.cancel(errStalled) }),
		idle:    idle,
		lim:     t.f.opts.Bandwidth,
		onBytes: t.req.OnBytes,
	}
	_, cerr := copyFilled(w, body, buf)
	body.timer.Stop()
	// The mtime comes from Last-Modified; set through the descriptor after the last write.
	// Cosmetic (the store keeps the validators), so a failure is not worth failing for.
	lm, lmErr := http.ParseTime(resp.Header.Get("Last-Modified"))
	mtimeSet := false
	if cerr == nil && lmErr == nil {
		mtimeSet = setMtime(file, lm) == nil
	}
	if reserved && (cerr != nil || w.n != resp.ContentLength) {
		trimPart(file, w.n) // a kept .part holds only what arrived
	}
	if err := file.Close(); err != nil && cerr == nil {
		cerr = &writeError{err}
	}

	// Anything short of a complete body: keep a resumable .part for the next attempt
	// (recording its validator now if that was deferred), drop one that could only be
	// restarted anyway.
	keepOrDiscard := func() {
		if resumable && offset+w.n > 0 && (metaOnDisk || writeMeta(t.root, t.meta, m) == nil) {
			return
		}
		discardPart(t.root, t.part, t.meta)
	}
	var we *writeError
	switch {
	case errors.As(cerr, &we):
		keepOrDiscard()
		return Response{}, t.local(we.err)
	case cerr != nil:
		keepOrDiscard()
		return Response{}, t.netError(ctx, cerr)
	case resp.ContentLength >= 0 && w.n < resp.ContentLength:
		keepOrDiscard()
		return Response{}, t.fail(ClassShortBody, true, fmt.Errorf("%w: got %d of %d bytes", errShortBody, w.n, resp.ContentLength))
	case resp.ContentLength >= 0 && w.n > resp.ContentLength:
		discardPart(t.root, t.part, t.meta)
		return Response{}, t.fail(ClassNetwork, true, fmt.Errorf("%w: got %d, declared %d", errLongBody, w.n, resp.ContentLength))
	}

	sum := hex.EncodeToString(h.Sum(nil))
	unchanged, verr := t.verify(sum, offset+w.n)
	switch {
	case verr != nil:
		return Response{}, verr
	case unchanged:
	default:
		if metaOnDisk {
			// Before the rename, so a sidecar never outlives its .part (see resumePoint).
			if err := removeIfExists(t.root, t.meta); err != nil {
				return Response{}, t.local(err)
			}
		}
		if err := t.publishPart(); err != nil {
			return Response{}, err
		}
		if lmErr == nil && !mtimeSet {
			_ = t.root.Chtimes(t.name, time.Time{}, lm)
		}
	}
	r := t.response(resp, offset+w.n, sum, offset > 0, offset)
	r.Unchanged = unchanged
	if t.req.KeepBody != nil && offset == 0 && w.n < int64(len(buf)) && t.req.KeepBody(r.ContentType) {
		// One fill of buf held the whole body: copyFilled read to EOF before its only write.
		r.Body = bytes.Clone(buf[:w.n])
	}
	return r, nil
}

// publishPart renames the complete .part into place, or says why it could not.
func (t *transfer) publishPart() *Error {
	err := t.publish()
	switch {
	case err == nil:
		t.f.dirs.notePart(t.dir, t.part, false)
		return nil
	case errors.Is(err, fs.ErrNotExist):
		// Our .part is gone: another process writing the same path of this output directory
		// published or removed it. Its bytes were not ours to present; try again.
		return t.fail(ClassLocal, true, fmt.Errorf("%s.part vanished before it was published (another process writing to the same output directory?): %w", t.rel, err))
	}
	// The .part is complete but cannot be published; nothing will resume it.
	discardPart(t.root, t.part, t.meta)
	if errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
		err = fmt.Errorf("%s: %w", t.rel, errIsDirectory)
	}
	return t.local(err)
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

// makeDir opens the file's directory, creating it, if Fetch found it missing; release gives it
// back.
func (t *transfer) makeDir() (release func(), err *Error) {
	if t.root != nil {
		return func() {}, nil
	}
	e, release, derr := t.f.dirs.open(t.outRoot, t.dirName, true)
	if derr != nil {
		return nil, t.local(derr)
	}
	t.dir, t.root, t.dirfd = e, e.r, e.fd()
	return release, nil
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
