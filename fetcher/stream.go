package fetcher

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Stream is an answer whose body the caller reads as it arrives (a sitemap, parsed on the fly),
// rather than one written to a file.
type Stream struct {
	Status   int    // the final HTTP status, whatever it is: the caller interprets it
	FinalURL string // after redirects
	// Body is the response body exactly as sent: its Content-Encoding (gzip, which Open asks
	// for) is not undone. No bytes for IdleTimeout end a Read with a stall *Error. Close it.
	Body io.ReadCloser
}

// Open requests rawURL with the client, TLS settings, headers and redirect rules of Fetch, and
// returns once the answer's headers have arrived. It asks for gzip, which the caller takes off
// (with a bound of its own: the transport's transparent decompression has none), and is paced by
// the bandwidth cap. Errors are *Error.
func (f *Fetcher) Open(ctx context.Context, rawURL string) (*Stream, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		if err == nil {
			err = fmt.Errorf("unsupported URL (only http and https with a host)")
		}
		return nil, &Error{URL: redact(rawURL), Class: ClassURL, Err: err}
	}
	// The watchdog cancels with errStalled as the cause, so a stall is told apart from the
	// caller cancelling: first while the headers are awaited, then between reads of the body.
	ctx, cancel := context.WithCancelCause(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		cancel(nil)
		return nil, &Error{URL: redact(rawURL), Class: ClassURL, Err: err}
	}
	req.Header = f.opts.Header.Clone()
	if req.Header == nil {
		req.Header = make(http.Header, 2)
	}
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("User-Agent", f.opts.UserAgent)
	idle := f.opts.IdleTimeout
	timer := time.AfterFunc(idle, func() { cancel(errStalled) })
	resp, err := f.client.Do(req)
	timer.Stop()
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
		cancel(nil)
		e := Classify(err)
		e.URL = redact(rawURL)
		return nil, e
	}
	body := &watchedBody{ctx: ctx, r: resp.Body, timer: time.AfterFunc(idle, func() { cancel(errStalled) }),
		idle: idle, lim: f.opts.Bandwidth}
	body.timer.Stop() // armed by each Read
	return &Stream{Status: resp.StatusCode, FinalURL: redact(resp.Request.URL.String()),
		Body: &streamBody{w: body, resp: resp, cancel: cancel, url: rawURL}}, nil
}

// streamBody is a Stream's Body: reads are watched, errors classified, and Close ends the request.
type streamBody struct {
	w      *watchedBody
	resp   *http.Response
	cancel context.CancelCauseFunc
	url    string
}

func (b *streamBody) Read(p []byte) (int, error) {
	n, err := b.w.Read(p)
	if err != nil && err != io.EOF {
		if cause := context.Cause(b.w.ctx); cause != nil {
			err = cause
		}
		e := Classify(err)
		e.URL = redact(b.url)
		return n, e
	}
	return n, err
}

func (b *streamBody) Close() error {
	b.w.timer.Stop()
	err := b.resp.Body.Close()
	b.cancel(nil)
	return err
}
