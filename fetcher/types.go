package fetcher

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
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

	// SegmentMin is the smallest declared length of a file fetched in segments, over several
	// connections, when the server allows ranges and the Request can have them (MoreConns; see
	// segment.go): default 16 MiB, smaller files gain little. Negative: none is (a .part already
	// written in segments is still finished).
	SegmentMin int64
	// MaxSegments caps the connections one file is fetched over, its first included: default 16.
	MaxSegments int
	// SplitAfter decides when a file is worth more connections: a range is split, its back half
	// fetched over a new one, only if that half would take at least this long at the rate one
	// connection has delivered so far (measured after a warm-up of a second), so a file arriving
	// fast, as over loopback, stays one stream; so does one whose bytes wait in the socket for us
	// (a busy CPU, the bandwidth cap). Default 1s. Negative: split whenever the file is big
	// enough, whatever its rate (for tests).
	SplitAfter time.Duration
	// Protocol chooses HTTP/1.1, HTTP/2, or (the default) both: HTTP/2 where the server offers
	// it, with big bodies over HTTP/1.1 connections of their own (see BulkBodySize).
	Protocol Protocol

	// Every Fetcher keeps the cookies servers set in a jar for its life, and sends them back as RFC
	// 6265 allows (see jar.go). Cookies are put in the jar at the start (LoadCookieFile);
	// RecordCookies keeps the record SavedCookies needs.
	Cookies       []Cookie
	RecordCookies bool
	// Netrc gives Basic credentials per host (LoadNetrc) to a request whose URL has no userinfo
	// and whose headers no Authorization: sent to that host only, never on a redirect to another.
	Netrc *Netrc
	// Proxy carries every request to a host NoProxy does not list (ParseProxy; see proxy.go).
	// Nil: the HTTP_PROXY, HTTPS_PROXY and NO_PROXY environment, NoProxy replacing NO_PROXY.
	Proxy   *url.URL
	NoProxy string // hosts reached directly, as NO_PROXY lists them (ParseNoProxy)
}

// Protocol is the HTTP version a Fetcher speaks.
type Protocol string

// Protocols.
const (
	// ProtocolAuto offers HTTP/2 and HTTP/1.1 (ALPN). A host that speaks HTTP/2 gets its
	// requests multiplexed over one connection; a response on it declaring a body of at least
	// BulkBodySize is asked again over an HTTP/1.1 connection of its own, because one HTTP/2
	// connection's frames are read and decrypted by one goroutine and copied once more through a
	// pipe, which is slower for bulk transfers.
	ProtocolAuto Protocol = ""
	// ProtocolHTTP1 speaks HTTP/1.1 only: a connection per concurrent request to a host.
	ProtocolHTTP1 Protocol = "http1.1"
	// ProtocolHTTP2 speaks HTTP/2 only (ALPN h2 over TLS, prior knowledge over plain http): a
	// server without it fails.
	ProtocolHTTP2 Protocol = "http2"
)

// BulkBodySize is the declared length from which, with ProtocolAuto, a body is fetched over an
// HTTP/1.1 connection of its own rather than as one of many streams of an HTTP/2 connection.
const BulkBodySize = 8 << 20

// ParseProtocol reads a Protocol's name ("auto" is ProtocolAuto).
func ParseProtocol(s string) (Protocol, error) {
	switch p := Protocol(s); p {
	case "auto", ProtocolAuto:
		return ProtocolAuto, nil
	case ProtocolHTTP1, ProtocolHTTP2:
		return p, nil
	}
	return "", fmt.Errorf("unknown protocol %q (want auto, http1.1 or http2)", s)
}

// Request asks for one URL to be stored at one path.
type Request struct {
	URL  string
	Path string // relative, slash-separated, already mapped and checked (see MapPath, CleanPath)
	// Validators of the copy already on disk, for a conditional request (refresh). Empty = unconditional.
	ETag         string
	LastModified string
	// WantSHA256 is the sha256 (lowercase hex) the file must have, as a list or a sums file gives
	// it: a complete body with another is not published, its .part is removed, and Fetch fails
	// with ClassChecksum. "" = any.
	WantSHA256 string
	// HaveSHA256 is the sha256 (lowercase hex) of the copy already at Path (a refresh). A complete
	// body with the same digest and length leaves that copy as it is, neither replaced nor touched
	// (Response.Unchanged), and its .part is removed. A copy whose digest is not WantSHA256 is not
	// revalidated: the request is unconditional, so that the wanted file can arrive.
	HaveSHA256 string
	// OnBytes, when set, is called with the count of body bytes as they arrive (progress). A
	// segmented download calls it from several goroutines at once.
	OnBytes func(n int)
	// OnLength, when set, is called once the length of the whole file is known from the answer,
	// before its body is read: total bytes, of which have are on disk already (a resume).
	OnLength func(total, have int64)
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
	// OnSent, when set, is called when a request's headers have been written to its connection
	// (after the dial and handshake of a new one), for each request of the fetch: its redirects
	// (to whatever host), a body asked for again and each segment's too. Politeness spaces a
	// host's requests from then.
	OnSent func()
	// OnAnswer, when set, is called once the first response's headers have arrived, with whether
	// the host answered over HTTP/2.
	OnAnswer func(multiplexed bool)
	// Naming, when set, lets the answer to a fresh download name the file (see Naming); the
	// Response's Path says where it went. Nil: the file is stored at Path.
	Naming *Naming
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
	Path         string // relative path actually written: Request.Path, or the one Naming gave
	Resumed      bool   // the body was appended to an existing .part from Offset
	Offset       int64  // bytes kept from the .part when Resumed
	NotModified  bool   // 304 to a conditional request: nothing written
	Unchanged    bool   // the body was the copy already at Path (Request.HaveSHA256): nothing replaced
	Body         []byte // the file's content, when Request.KeepBody and it fitted; else nil
}
