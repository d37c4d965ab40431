package fetcher

import (
	"context"
	"io"
	"net/http"
)

// Get fetches a small resource (robots.txt) into memory, with the same client, TLS settings and
// redirect rules as Fetch. At most max bytes of the body are read. A whole-request timeout of
// IdleTimeout applies: unlike a file, a small resource has no excuse to take long.
//
// Any HTTP status is a successful Get (the caller interprets 404 or 503); errors are *Error.
func (f *Fetcher) Get(ctx context.Context, rawURL string, max int64) (status int, body []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, f.opts.IdleTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, nil, &Error{URL: redact(rawURL), Class: ClassURL, Err: err}
	}
	req.Header = f.requestHeader(req.URL)
	resp, err := f.client.Do(req)
	if err != nil {
		e := Classify(err)
		e.URL = redact(rawURL)
		return 0, nil, e
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, max))
	if err != nil {
		e := Classify(err)
		e.URL = redact(rawURL)
		return 0, nil, e
	}
	return resp.StatusCode, body, nil
}
