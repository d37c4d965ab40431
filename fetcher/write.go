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
	"os"
	"syscall"
	"time"
)

// write streams the body into the .part (appending at t.offset, or from zero) and publishes it once
// it is whole and verified: open the .part, copy the body into it, verify, publish. A step that
// fails ends the transfer in end, which keeps or discards the .part as the step said (ifFailed).
func (t *transfer) write(ctx context.Context, resp *http.Response) (Response, error) {
	if resp.ContentLength >= 0 {
		t.announce(t.offset+resp.ContentLength, t.offset)
	}
	release, err := t.makeDir()
	if err != nil {
		return t.end(err)
	}
	defer release()
	bufp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bufp)
	t.buf = *bufp
	defer t.unreserveDisk()
	if err := t.openPart(resp); err != nil {
		return t.end(err)
	}
	if err := t.copyBody(ctx, resp); err != nil {
		return t.end(err)
	}
	sum := hex.EncodeToString(t.out.h.Sum(nil))
	unchanged, err := t.verify(sum, t.offset+t.out.n)
	if err != nil {
		return t.end(err)
	}
	if !unchanged {
		if err := t.publishBody(); err != nil {
			return t.end(err)
		}
	}
	return t.result(resp, sum, unchanged), nil
}

// openPart opens the .part the body goes into, with the sha256 of what it holds: the kept bytes
// of a .part being resumed (reopenPart), or none of a new one (startPart).
func (t *transfer) openPart(resp *http.Response) *Error {
	t.out.h = sha256.New()
	if t.offset > 0 {
		return t.reopenPart()
	}
	return t.startPart(resp)
}

// reopenPart opens the .part being resumed, whose sidecar is on disk, and hashes its kept bytes:
// the sha256 must cover the whole file. That leaves the file offset at their end, where the body
// is appended.
func (t *transfer) reopenPart() *Error {
	t.metaOnDisk = true
	f, err := t.dir.r.OpenFile(t.part, os.O_RDWR, 0)
	if err != nil {
		return t.local(err)
	}
	t.out.f = f
	t.ifFailed = dropPart // kept bytes that cannot be read back cannot be resumed
	n, err := io.CopyBuffer(t.out.h, io.LimitReader(f, t.offset), t.buf)
	if err == nil && n == t.offset {
		// Frees what a transfer killed mid-way had reserved past its end (see reserve).
		err = f.Truncate(t.offset)
	}
	switch {
	case err != nil:
		return t.local(err)
	case n != t.offset:
		return t.fail(ClassRange, true, fmt.Errorf(".part shrank to %d bytes while resuming from %d", n, t.offset))
	}
	return nil
}

// startPart creates (or truncates) the .part, reserves its disk for a big body, and takes the
// answer's validator for its sidecar. Truncate first, then record the validator: see resumePoint.
// A big body, or one of unknown length, has it recorded before the first byte, so even a kill -9
// mid-transfer can resume; a small one only if it ends short (see eagerMetaSize).
func (t *transfer) startPart(resp *http.Response) *Error {
	file, err := t.createPart()
	if err != nil {
		return t.local(err)
	}
	t.out.f = file
	if resp.ContentLength >= preallocateSize {
		t.unreserve, _ = t.f.reserve(file, resp.ContentLength)
	}
	t.sidecar = metaFromResponse(t.req.URL, resp.Header, resp.ContentLength)
	switch {
	case t.sidecar.ifRange() != "" && (resp.ContentLength < 0 || resp.ContentLength >= eagerMetaSize):
		err = writeMeta(t.dir.r, t.meta, t.sidecar)
		t.metaOnDisk = true
	case t.metaFound:
		err = removeIfExists(t.dir.r, t.meta) // describes bytes just truncated away
	}
	if err != nil {
		return t.local(err)
	}
	return nil
}

// unreserveDisk gives back the budget of the disk startPart reserved, if it did.
func (t *transfer) unreserveDisk() {
	if t.unreserve != nil {
		t.unreserve()
		t.unreserve = nil
	}
}

// copyBody streams the body into the .part and the sha256, under the stall watchdog and the
// bandwidth limit, and closes the .part. From here a failure keeps what arrived for a resume.
func (t *transfer) copyBody(ctx context.Context, resp *http.Response) *Error {
	t.ifFailed = keepResumable
	idle := t.f.opts.IdleTimeout
	body := &watchedBody{
		ctx:     ctx,
		r:       resp.Body,
		timer:   time.AfterFunc(idle, func() { t.cancel(errStalled) }),
		idle:    idle,
		lim:     t.f.opts.Bandwidth,
		onBytes: t.req.OnBytes,
	}
	_, err := copyFilled(&t.out, body, t.buf)
	body.timer.Stop()
	if err == nil {
		t.stampMtime(resp)
	}
	if t.unreserve != nil && (err != nil || t.out.n != resp.ContentLength) {
		trimPart(t.out.f, t.out.n) // a kept .part holds only what arrived
	}
	if cerr := t.out.f.Close(); cerr != nil && err == nil {
		err = &writeError{cerr}
	}
	t.out.f = nil
	return t.bodyError(ctx, err, resp.ContentLength)
}

// stampMtime gives the .part the answer's Last-Modified as its mtime, through the descriptor after
// the last write; where that fails, publishBody sets it by name. It is cosmetic (the store keeps
// the validators), so a failure is not worth failing for.
func (t *transfer) stampMtime(resp *http.Response) {
	lm, err := http.ParseTime(resp.Header.Get("Last-Modified"))
	t.mtime, t.mtimeLeft = lm, err == nil && setMtime(t.out.f, lm) != nil
}

// bodyError classifies how the copy ended: a failed write is the disk's, a failed read the
// network's, a body shorter than declared is kept to resume, and one longer than declared is not
// the file and is discarded.
func (t *transfer) bodyError(ctx context.Context, err error, declared int64) *Error {
	var we *writeError
	switch {
	case errors.As(err, &we):
		return t.local(we.err)
	case err != nil:
		return t.netError(ctx, err)
	case declared >= 0 && t.out.n < declared:
		return t.fail(ClassShortBody, true, fmt.Errorf("%w: got %d of %d bytes", errShortBody, t.out.n, declared))
	case declared >= 0 && t.out.n > declared:
		t.ifFailed = dropPart
		return t.fail(ClassNetwork, true, fmt.Errorf("%w: got %d, declared %d", errLongBody, t.out.n, declared))
	}
	t.ifFailed = leavePart // the .part is whole: verify and publishPart clean up after themselves
	return nil
}

// publishBody puts the verified .part in place. Its sidecar goes first, so that a sidecar never
// outlives its .part (see resumePoint); an mtime stampMtime could not set is set by name.
func (t *transfer) publishBody() *Error {
	if t.metaOnDisk {
		if err := removeIfExists(t.dir.r, t.meta); err != nil {
			return t.local(err)
		}
	}
	if err := t.publishPart(); err != nil {
		return err
	}
	if t.mtimeLeft {
		_ = t.dir.r.Chtimes(t.name, time.Time{}, t.mtime)
	}
	return nil
}

// result is the Response for a body written whole, with the body itself for KeepBody when one fill
// of the buffer held it all (copyFilled read to EOF before its only write).
func (t *transfer) result(resp *http.Response, sum string, unchanged bool) Response {
	r := t.response(resp, t.offset+t.out.n, sum, t.offset > 0, t.offset)
	r.Unchanged = unchanged
	if t.req.KeepBody != nil && t.offset == 0 && t.out.n < int64(len(t.buf)) && t.req.KeepBody(r.ContentType) {
		r.Body = bytes.Clone(t.buf[:t.out.n])
	}
	return r
}

// discard removes the .part and its sidecar (see discardPart).
func (t *transfer) discard() { discardPart(t.dir.r, t.part, t.meta) }

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
	t.discard()
	if errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
		err = fmt.Errorf("%s: %w", t.rel, errIsDirectory)
	}
	return t.local(err)
}

// makeDir opens the file's directory, creating it, if Fetch found it missing; release gives it
// back.
func (t *transfer) makeDir() (release func(), err *Error) {
	if t.dir != nil {
		return func() {}, nil
	}
	e, release, derr := t.f.dirs.open(t.outRoot, t.dirName, true)
	if derr != nil {
		return nil, t.local(derr)
	}
	t.dir = e
	return release, nil
}
