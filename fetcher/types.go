package fetcher

import (
	"context"
	"net/http"
	"time"
)

// Limiter paces bytes read from the network (the global bandwidth cap). *rate.Limiter fits.
type Limiter interface {
	WaitN(ctx context.Context, n int) error
	Burst() int
}

// Options configure a Fetcher. The zero value is usable: every zero field takes the default
// given in its comment.
type Options struct {
	CACertFile      string // extra PEM roots, added to the system pool
	ClientCertFile  string // PEM client certificate (with ClientKeyFile) for mutual TLS
	ClientKeyFile   string
	Insecure        bool          // skip TLS verification; cmd/ warns loudly
	ConnectTimeout  time.Duration // TCP connect + TLS handshake; default 30s
	IdleTimeout     time.Duration // no bytes for this long = stalled; default 60s; never a whole-request timeout
	Header          http.Header   // extra request headers (-H), sent to the URL's own host only
	UserAgent       string        // default "trawl/" + Version
	MaxRedirects    int           // default 10
	Bandwidth       Limiter       // global bandwidth cap; nil = unlimited
	MaxConnsPerHost int           // 0 = no cap (the scheduler caps per-host concurrency)
	// HTTP2 offers HTTP/2 (ALPN h2) and multiplexes a host's requests over one connection.
	// The default is HTTP/1.1, one connection per concurrent request to a host: with Go's
	// HTTP/2 client one connection's frames are read and decrypted by one goroutine and
	// copied once more through a pipe, which measured slower for bulk transfers.
	HTTP2 bool
}

// Request asks for one URL to be stored at one path.
type Request struct {
	URL  string
	Path string // relative, slash-separated, already mapped and checked (see MapPath, CleanPath)
	// Validators of the copy already on disk, for a conditional request (refresh). Empty = unconditional.
	ETag         string
	LastModified string
	// OnBytes, when set, is called with the count of body bytes as they arrive (progress).
	OnBytes func(n int)
	// KeepBody, when set, is asked with the response's Content-Type whether to keep a copy of the
	// body in Response.Body, for a caller that reads the file it has just fetched (a crawl parsing
	// a page). The copy is made only when the whole file arrived in one transfer that fitted the
	// copy buffer (less than 256 KiB), so never for a resumed file.
	KeepBody func(contentType string) bool
	// MoreConns, when set, asks for up to n more connections to the URL's host for a segmented
	// download of a big file, without waiting: it returns how many it grants (0 to n), each one a
	// request the host's politeness allows now (concurrency slot and rate token). Every granted
	// connection is given back with ConnDone once its segment's request has ended. Nil: the file is
	// fetched over one connection.
	MoreConns func(n int) int
	ConnDone  func()
}

// Response describes a completed fetch.
type Response struct {
	Status       int    // final HTTP status (200, 206, 304)
	Bytes        int64  // size of the complete file on disk
	SHA256       string // hex sha256 of the complete file
	ETag         string
	LastModified string
	ContentType  string
	FinalURL     string // after redirects
	Path         string // relative path actually written (equals Request.Path)
	Resumed      bool   // the body was appended to an existing .part from Offset
	Offset       int64  // bytes kept from the .part when Resumed
	NotModified  bool   // 304 to a conditional request: nothing written
	Body         []byte // the file's content, when Request.KeepBody and it fitted; else nil
}
