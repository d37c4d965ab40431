package testserver

import (
	"crypto/x509"
	"net/http"
	"time"
)

// Option configures the server (New) or one path (Handle). Server-level options
// (HTTP1Only, PlainHTTP, RequireClientCert, GeneratedCert, TLSMaxVersion) are ignored by
// Handle.
type Option func(*config)

// config is the behaviour for one request path.
type config struct {
	body          []byte
	haveBody      bool
	size          int64 // used when no Body: Content(seed, size)
	seed          uint64
	haveSeed      bool
	etag          string // "" = derived from content; "-" = none
	lastMod       time.Time
	noLastMod     bool
	ignoreRange   bool
	ignoreIfRange bool
	ignoreCond    bool
	rangeShift    int64 // serve a 206 starting this many bytes off the requested start
	truncate      int64 // <0: off. Close the connection after this many body bytes.
	reset         int64 // <0: off. Reset the connection after this many body bytes.
	stall         int64 // <0: off. Stop sending after this many body bytes, until the client gives up.
	dripChunk     int
	dripEvery     time.Duration
	statuses      []int
	retryAfter    string
	redirectTo    string
	redirectSC    int
	header        http.Header
	chunked       bool   // no Content-Length
	clOverride    string // literal Content-Length header value
	handler       http.HandlerFunc
	raw           []byte
	perRequest    func(n int, r *http.Request) []Option
	acceptRanges  bool

	// server level
	http1Only  bool
	plain      bool
	clientCAs  *x509.CertPool
	certHosts  []string
	certFrom   time.Time
	certUntil  time.Time
	genCert    bool
	tlsMaxVers uint16
}

func defaultConfig() config {
	return config{
		size:     4096,
		lastMod:  time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		truncate: -1, reset: -1, stall: -1,
		header: http.Header{},
	}
}

// Body serves exactly b.
func Body(b []byte) Option { return func(c *config) { c.body, c.haveBody = b, true } }

// Size serves n deterministic bytes (see Content); the seed defaults to one derived from the path.
func Size(n int64) Option { return func(c *config) { c.size = n } }

// Seed sets the seed of the deterministic content.
func Seed(s uint64) Option { return func(c *config) { c.seed, c.haveSeed = s, true } }

// ETag sets the ETag header (quoted form, e.g. `"v1"` or `W/"v1"`). The default is a strong
// tag derived from the content; "" removes it.
func ETag(v string) Option {
	return func(c *config) {
		if v == "" {
			v = "-"
		}
		c.etag = v
	}
}

// LastModified sets Last-Modified (default 2024-01-02T03:04:05Z); the zero time removes it.
func LastModified(t time.Time) Option {
	return func(c *config) { c.lastMod, c.noLastMod = t, t.IsZero() }
}

// NoValidators removes both ETag and Last-Modified: a .part of this body cannot be resumed.
func NoValidators() Option { return func(c *config) { c.etag, c.noLastMod = "-", true } }

// AcceptRanges sends Accept-Ranges: bytes, as a server that honours Range does (and one that does
// not may claim, with IgnoreRange). A client may then fetch a big body in segments; without it,
// trawl fetches every body over one stream.
func AcceptRanges() Option { return func(c *config) { c.acceptRanges = true } }

// IgnoreRange answers Range requests with 200 and the whole body.
func IgnoreRange() Option { return func(c *config) { c.ignoreRange = true } }

// IgnoreIfRange honours Range even when If-Range names another version: a broken server or
// cache that answers 206 with bytes of the current body whatever validator the client holds.
func IgnoreIfRange() Option { return func(c *config) { c.ignoreIfRange = true } }

// IgnoreConditional answers If-None-Match and If-Modified-Since with 200 and the whole body, as
// a server that ignores validators (or a cache in front of one) does.
func IgnoreConditional() Option { return func(c *config) { c.ignoreCond = true } }

// WrongRangeStart answers a Range request with a 206 starting delta bytes away from the
// requested start (and a Content-Range that says so).
func WrongRangeStart(delta int64) Option { return func(c *config) { c.rangeShift = delta } }

// TruncateAfter sends n body bytes of a response that declares its full length, then
// closes the connection (HTTP/1: clean close; HTTP/2: stream reset).
func TruncateAfter(n int64) Option { return func(c *config) { c.truncate = n } }

// ResetAfter sends n body bytes, then resets the connection (TCP RST; HTTP/2: stream reset).
func ResetAfter(n int64) Option { return func(c *config) { c.reset = n } }

// StallAfter sends n body bytes (0: headers only), then sends nothing until the client
// goes away or the server closes.
func StallAfter(n int64) Option { return func(c *config) { c.stall = n } }

// Drip sends the body chunk bytes at a time, one chunk every interval.
func Drip(chunk int, every time.Duration) Option {
	return func(c *config) { c.dripChunk, c.dripEvery = chunk, every }
}

// Statuses answers the first len(codes) requests to the path with these statuses (and
// a short text body), in order; later requests are served normally. E.g. Statuses(503)
// fails once, then succeeds.
func Statuses(codes ...int) Option { return func(c *config) { c.statuses = codes } }

// RetryAfter adds a Retry-After header (any string, including garbage) to the responses
// produced by Statuses.
func RetryAfter(v string) Option { return func(c *config) { c.retryAfter = v } }

// Redirect answers with 302 to url (absolute, or relative to the request).
func Redirect(url string) Option { return RedirectStatus(http.StatusFound, url) }

// RedirectStatus answers with the given 3xx status to url.
func RedirectStatus(code int, url string) Option {
	return func(c *config) { c.redirectTo, c.redirectSC = url, code }
}

// Header adds a response header (e.g. Content-Encoding: gzip, Content-Type).
func Header(key, value string) Option { return func(c *config) { c.header.Add(key, value) } }

// Chunked omits Content-Length: the body is sent chunked (HTTP/1) or unsized (HTTP/2).
func Chunked() Option { return func(c *config) { c.chunked = true } }

// ContentLength sends this literal Content-Length value instead of the real one (for
// absurd, negative or garbage lengths).
func ContentLength(v string) Option { return func(c *config) { c.clOverride = v } }

// PerRequest adds the options f returns for each request to the path, applied after all others:
// n is the number of earlier requests to the path, r the request. E.g. a different ETag from the
// second request on, or a fault for one range only.
func PerRequest(f func(n int, r *http.Request) []Option) Option {
	return func(c *config) { c.perRequest = f }
}

// HandlerFunc replaces the whole behaviour for the path with h (the request is still logged).
func HandlerFunc(h http.HandlerFunc) Option { return func(c *config) { c.handler = h } }

// RawResponse hijacks the connection and writes raw verbatim (status line, headers and
// body, for responses net/http refuses to produce, like a negative Content-Length), then
// closes it. HTTP/1 only: combine with HTTP1Only.
func RawResponse(raw string) Option { return func(c *config) { c.raw = []byte(raw) } }

// HTTP1Only disables HTTP/2 on the server.
func HTTP1Only() Option { return func(c *config) { c.http1Only = true } }

// PlainHTTP serves plain http:// instead of TLS.
func PlainHTTP() Option { return func(c *config) { c.plain = true } }

// RequireClientCert makes the server demand a client certificate signed by a CA in pool.
func RequireClientCert(pool *x509.CertPool) Option { return func(c *config) { c.clientCAs = pool } }

// GeneratedCert serves a certificate from a fresh CA (see Server.CACertPEM) for hosts,
// valid in [from, until]: use a past until for an expired certificate, or other hosts
// for a name mismatch.
func GeneratedCert(hosts []string, from, until time.Time) Option {
	return func(c *config) { c.genCert, c.certHosts, c.certFrom, c.certUntil = true, hosts, from, until }
}

// TLSMaxVersion caps the server's TLS version (e.g. tls.VersionTLS11 to provoke a
// protocol version failure).
func TLSMaxVersion(v uint16) Option { return func(c *config) { c.tlsMaxVers = v } }
