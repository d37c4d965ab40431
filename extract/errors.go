package extract

import "errors"

var (
	// ErrNotHTTP is returned by Normalize for URLs whose scheme is not http or https: the
	// crawler fetches nothing else.
	ErrNotHTTP = errors.New("extract: not an http or https URL")
	// ErrNoHost is returned by Normalize for URLs without a host (relative or opaque URLs).
	ErrNoHost = errors.New("extract: URL has no host")
	// ErrBadHost is returned by Normalize for hosts no resolver would accept: characters outside
	// a DNS name, a malformed IP literal, a port out of range.
	ErrBadHost = errors.New("extract: invalid host or port")
	// ErrTooLong is returned by Normalize when the canonical URL is longer than MaxURLLength.
	ErrTooLong = errors.New("extract: URL too long")
	// ErrNoBase is returned by HTML and CSS when the document's own URL is not an absolute
	// http(s) URL, so nothing in it could be resolved.
	ErrNoBase = errors.New("extract: base URL must be absolute http or https")
)
