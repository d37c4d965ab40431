package fetcher

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"syscall"
	"time"
)

// streamFirst writes the first response's body from byte 0, hashing it as it goes.
func (s *segTransfer) streamFirst(ctx context.Context, g *segment, resp *http.Response) {
	e := reqEnd{g: g}
	defer func() { s.events <- e }()
	e.hash = sha256.New()
	e.err = s.stream(ctx, func(err error) { s.t.cancel(err) }, g, resp, s.size, e.hash)
	// Let the request go now: after a split took the back of its range, the rest of the body is
	// other requests' to fetch, and left unread it would hold a connection (and a server worker)
	// until the whole file is done, beyond what the host granted.
	resp.Body.Close()
	s.mu.Lock()
	e.hashed = g.next // [0, next) went through the hash, in order
	s.mu.Unlock()
}

// fetchRange asks for what is left of g's range and writes it.
func (s *segTransfer) fetchRange(g *segment, granted bool) {
	e := reqEnd{g: g, granted: granted}
	defer func() {
		if granted {
			s.t.req.ConnDone()
		}
		s.events <- e
	}()
	ctx, cancel := context.WithCancelCause(s.ctx)
	defer cancel(nil)
	s.mu.Lock()
	from, to := g.pos, g.end
	s.mu.Unlock()
	var conn connProbe
	ctx = conn.trace(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.t.req.URL, nil)
	if err != nil {
		e.err = s.t.fail(ClassURL, false, err)
		return
	}
	req.Header = s.t.f.requestHeader(req.URL)
	req.Header.Set("Range", "bytes="+strconv.FormatInt(from, 10)+"-"+strconv.FormatInt(to-1, 10))
	req.Header.Set("If-Range", s.meta.ifRange())
	resp, err := s.t.f.segmentClient().Do(s.t.toldWhenSent(req))
	if err != nil {
		e.err = s.t.netError(ctx, err)
		return
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK, resp.StatusCode == http.StatusPartialContent,
		resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		if err := checkSegment(resp, from, to, s.meta); err != nil {
			e.err, e.lie = s.t.fail(ClassRange, true, err), true
			return
		}
	default:
		e.err = httpError(s.t.req.URL, resp, time.Now())
		return
	}
	s.mu.Lock()
	if s.head == nil {
		s.head = resp
	}
	g.began, g.conn = time.Now(), conn.c
	s.mu.Unlock()
	_, end, _, _ := ParseContentRange(resp.Header.Get("Content-Range"))
	e.err = s.stream(ctx, cancel, g, resp, end+1, nil)
}

// stream writes resp's body, which carries the body's bytes up to respEnd, into g's range from
// g.pos until the range is complete (its end may move down while it streams: a split took its back
// half). h, if set, is fed every byte written, in order. cancel cancels the request (the stall
// watchdog's cause is errStalled).
func (s *segTransfer) stream(ctx context.Context, cancel func(error), g *segment, resp *http.Response, respEnd int64, h hash.Hash) *Error {
	bufp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bufp)
	buf := *bufp
	idle := s.t.f.opts.IdleTimeout
	body := &watchedBody{
		ctx:   ctx,
		r:     resp.Body,
		timer: time.AfterFunc(idle, func() { cancel(errStalled) }),
		idle:  idle,
		lim:   s.t.f.opts.Bandwidth,
	}
	defer body.timer.Stop()
	for {
		s.mu.Lock()
		want, pos := g.end-g.pos, g.pos
		s.mu.Unlock()
		if want <= 0 {
			if pos == respEnd && resp.ContentLength >= 0 {
				// The whole answer has been read: see its end, so the connection goes back to
				// the pool (a length-delimited body reports it without reading the network).
				_, _ = body.Read(buf[:1])
			}
			return nil
		}
		n, rerr := fill(body, buf[:min(int64(len(buf)), want)])
		s.mu.Lock()
		n = min(n, int(max(g.end-g.pos, 0))) // a split may have taken bytes read past its point
		off := g.pos
		g.pos += int64(n)
		s.mu.Unlock()
		if n > 0 {
			if _, err := s.file.WriteAt(buf[:n], off); err != nil {
				return s.t.local(err)
			}
			if h != nil {
				h.Write(buf[:n])
			}
			s.mu.Lock()
			g.next += int64(n)
			g.got += int64(n)
			s.total += int64(n)
			s.mu.Unlock()
			if s.t.req.OnBytes != nil {
				s.t.req.OnBytes(n)
			}
		}
		switch {
		case rerr == io.EOF:
			s.mu.Lock()
			short := g.pos < g.end
			s.mu.Unlock()
			if short {
				return s.t.fail(ClassShortBody, true, fmt.Errorf("%w: range ended at byte %d", errShortBody, off+int64(n)))
			}
		case rerr != nil:
			return s.t.netError(ctx, rerr)
		}
	}
}

// fill reads into buf until it is full or the reader fails (io.EOF included).
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// connProbe learns which connection a request went over (the last one, after redirects or a
// request asked again), so the split policy can look at its socket.
type connProbe struct{ c net.Conn }

// trace returns ctx with a trace that records the connection into p. GotConn is called on the
// goroutine that sends the request, before Do returns.
func (p *connProbe) trace(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { p.c = info.Conn },
	})
}

// receiveQueue is how many bytes wait in c's socket to be read, and whether that could be told.
func receiveQueue(c net.Conn) (int, bool) {
	for {
		switch x := c.(type) {
		case interface{ NetConn() net.Conn }: // *tls.Conn, a SOCKS tunnel
			c = x.NetConn()
		case *readAheadConn:
			c = x.Conn
		case syscall.Conn:
			rc, err := x.SyscallConn()
			if err != nil {
				return 0, false
			}
			return socketQueue(rc)
		default:
			return 0, false
		}
	}
}
