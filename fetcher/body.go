package fetcher

import (
	"context"
	"hash"
	"io"
	"sync"
	"time"
)

// bufSize is the copy buffer: large enough that a fast link needs few syscalls per MiB,
// pooled so thousands of small files don't each allocate one.
const bufSize = 256 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// watchedBody is the response body as Fetch reads it: every Read re-arms the stall
// watchdog, reports progress, and waits on the bandwidth limiter.
type watchedBody struct {
	ctx     context.Context
	r       io.Reader
	timer   *time.Timer // fires cancel(errStalled)
	idle    time.Duration
	lim     Limiter
	onBytes func(int)
}

func (w *watchedBody) Read(p []byte) (int, error) {
	// The watchdog runs only while we wait on the network: time spent waiting for the
	// bandwidth limiter or writing to disk is not the server stalling.
	w.timer.Reset(w.idle)
	n, err := w.r.Read(p)
	w.timer.Stop()
	if err == io.EOF && w.ctx.Err() != nil {
		// The end of the body arrived after the transfer was cancelled (stall, shutdown): a
		// server or proxy that sees the client leave may still close a chunked body cleanly.
		// Only an end read before the decision to stop makes the body complete.
		err = context.Cause(w.ctx)
	}
	if n > 0 {
		if w.onBytes != nil {
			w.onBytes(n)
		}
		if w.lim != nil {
			if lerr := waitN(w.ctx, w.lim, n); lerr != nil && err == nil {
				err = lerr
			}
		}
	}
	return n, err
}

// waitN takes n tokens in chunks no larger than the burst: WaitN refuses more than the
// burst at once. It waits with the request's context so a canceled fetch stops waiting.
func waitN(ctx context.Context, lim Limiter, n int) error {
	burst := lim.Burst()
	if burst <= 0 {
		return lim.WaitN(ctx, n) // an unlimited limiter has burst 0 and takes any n
	}
	for n > 0 {
		c := min(n, burst)
		if err := lim.WaitN(ctx, c); err != nil {
			return err
		}
		n -= c
	}
	return nil
}

// writeError marks a failure to write the output, so it is not mistaken for a network error.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// hashFile writes to the .part and the running sha256 together. It deliberately has no
// ReadFrom, so io.CopyBuffer uses our pooled buffer instead of os.File's own copy path.
type hashFile struct {
	f partFile
	h hash.Hash
	n int64
}

func (w *hashFile) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	if err != nil {
		return n, &writeError{err}
	}
	return n, nil
}

// copyFilled copies src to dst like io.CopyBuffer, but fills buf before each write. Response
// bodies arrive in frame-sized pieces (16 KiB for HTTP/2 DATA frames); writing each piece
// separately costs several times the system time of writing whole buffers. Errors from src
// are returned as they are (a short body's io.ErrUnexpectedEOF must stay recognisable).
func copyFilled(dst io.Writer, src io.Reader, buf []byte) (written int64, err error) {
	for {
		n := 0
		var rerr error
		for n < len(buf) && rerr == nil {
			var m int
			m, rerr = src.Read(buf[n:])
			n += m
		}
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			written += int64(w)
			if werr != nil {
				return written, werr
			}
			if w != n {
				return written, io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}
