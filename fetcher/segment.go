package fetcher

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Segmented downloads (aria2's -x/-s, wget2's --chunk-size): a big file fetched as several byte
// ranges over several connections, each written in place into the file's one .part.
//
// A fresh download qualifies when its answer is a 200 with a Content-Length of at least
// Options.SegmentMin, Accept-Ranges: bytes and a strong validator, and the caller can grant more
// connections to the host (Request.MoreConns). It starts as one stream from byte 0, like any other
// download. When the bytes left would keep another connection busy for Options.SplitAfter at the
// rate one connection has delivered so far, the range with the most bytes left is split in two
// and its back half fetched over a new connection (Range: bytes=a-b, If-Range); whenever a
// connection finishes its range while others still have much left, the split is repeated.
//
// Each answer to a range is checked (checkSegment) against the first response: 206, the exact
// range, the same total length, the same validators. One that fails stops the whole file: the
// .part is discarded, the host is never segmented again by this Fetcher, and the retry fetches the
// file as one stream. No file is published unless every byte of it was written from an answer that
// passed.
//
// Progress lives in the sidecar (partMeta.Segments), so a rerun after a kill continues every
// unfinished range where it stopped and fetches no finished one again.

// Defaults for zero Options fields of segmented downloads.
const (
	DefaultSegmentMin  = 16 << 20
	DefaultMaxSegments = 16
	DefaultSplitAfter  = time.Second
)

const (
	// minSegment: no split leaves either half of a range with fewer bytes than this.
	minSegment = 1 << 20
	// splitWarmup is how long a connection must have delivered bytes before its rate counts: the
	// first moments of a connection (TCP slow start, a handshake) say little about its speed.
	// After connections were added, twice this passes before the file's rate is judged (see
	// gate).
	splitWarmup = time.Second
	// minGain is how much faster a file must arrive after connections were added for it to get
	// more: a server or link that gives all connections together no more has nothing to split.
	minGain = 1.2
	// splitTick is how often the split decision is taken again while connections stream.
	splitTick = 100 * time.Millisecond
	// sidecarEvery bounds how stale the progress in the sidecar may be: after a kill -9, at most
	// this much of each unfinished range is fetched again. A finished range is recorded at once.
	sidecarEvery = time.Second
	// maxSegmentErrors is how many failed range requests a file may have before it stops: its
	// .part is kept, and the retry continues the ranges left.
	maxSegmentErrors = 4
)

// segmenter is a Fetcher's state for segmented downloads.
type segmenter struct {
	mu      sync.Mutex
	client  *http.Client    // HTTP/1.1 only, made when first needed: see segmentClient
	refused map[string]bool // hosts whose answer to a range failed a check

	// observe, when set (tests), is called with the segments each time the sidecar is written.
	observe func([][3]int64)
	// warmup, when set (tests), replaces splitWarmup.
	warmup time.Duration
}

// maxRefusedHosts bounds segmenter.refused; past it, the set starts over.
const maxRefusedHosts = 4096

func (s *segmenter) isRefused(host string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused[host]
}

func (s *segmenter) refuse(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refused == nil || len(s.refused) >= maxRefusedHosts {
		s.refused = make(map[string]bool)
	}
	s.refused[host] = true
}

func (s *segmenter) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		s.client.Transport.(*http.Transport).CloseIdleConnections()
	}
}

// segmentClient is the client range requests go over: the main transport's settings, but HTTP/1.1
// only, whatever the main one speaks. What segments buy is the throughput of more connections;
// streams multiplexed over one HTTP/2 connection share its one window and its one reading
// goroutine. Same redirect rules (checkRedirect), so no credential follows a redirect to another
// host.
func (f *Fetcher) segmentClient() *http.Client {
	f.seg.mu.Lock()
	defer f.seg.mu.Unlock()
	if f.seg.client == nil {
		tr := f.transport.Clone()
		tr.TLSClientConfig = f.tlsHTTP1
		tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return f.dialTLS(ctx, network, addr, f.tlsHTTP1)
		}
		tr.Protocols = protocols(ProtocolHTTP1)
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		f.seg.client = &http.Client{Transport: tr, CheckRedirect: f.checkRedirect, Jar: f.jar}
	}
	return f.seg.client
}

// segmentMin, maxSegments and splitAfter are the Options with their defaults.
func (o *Options) segmentMin() int64 {
	if o.SegmentMin == 0 {
		return DefaultSegmentMin
	}
	return o.SegmentMin
}

func (o *Options) maxSegments() int {
	if o.MaxSegments <= 0 {
		return DefaultMaxSegments
	}
	return o.MaxSegments
}

func (o *Options) splitAfter() time.Duration {
	if o.SplitAfter == 0 {
		return DefaultSplitAfter
	}
	return o.SplitAfter
}

// segmentable reports whether a fresh download's answer may be fetched in segments.
func (t *transfer) segmentable(resp *http.Response) bool {
	o := &t.f.opts
	if resp.StatusCode != http.StatusOK || t.req.MoreConns == nil || o.maxSegments() < 2 {
		return false
	}
	if min := o.segmentMin(); min < 0 || resp.ContentLength < min || resp.ContentLength <= 0 {
		return false
	}
	if !strings.EqualFold(strings.TrimSpace(resp.Header.Get("Accept-Ranges")), "bytes") {
		return false
	}
	if metaFromResponse(t.req.URL, resp.Header, resp.ContentLength).ifRange() == "" {
		return false
	}
	return !t.f.seg.isRefused(hostOf(t.req.URL))
}

func hostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Host
}

// checkSegment accepts an answer to Range: bytes=from-(to-1) only if it is that range of the very
// body the .part holds: 206, a Content-Range that starts at from and ends where asked (or at the
// body's end), of the same total length, with the same validators, and a Content-Length that
// agrees. If-Range should make a server send a 200 for any other version, but a cache or a broken
// origin may honour the Range regardless, and a server that ignores Range sends the whole body.
func checkSegment(resp *http.Response, from, to int64, m partMeta) error {
	asked := fmt.Sprintf("Range bytes=%d-%d", from, to-1)
	if resp.StatusCode != http.StatusPartialContent {
		return fmt.Errorf("%s answered with %d, not 206", asked, resp.StatusCode)
	}
	if m.ETag != "" && resp.Header.Get("ETag") != m.ETag {
		return fmt.Errorf("%s answered with ETag %q, the file's is %s", asked, resp.Header.Get("ETag"), m.ETag)
	}
	if m.LastModified != "" && resp.Header.Get("Last-Modified") != m.LastModified {
		return fmt.Errorf("%s answered with Last-Modified %q, the file's is %q", asked, resp.Header.Get("Last-Modified"), m.LastModified)
	}
	cr := resp.Header.Get("Content-Range")
	start, end, total, err := ParseContentRange(cr)
	switch {
	case err != nil:
		return fmt.Errorf("%s answered with %w %q", asked, err, cr)
	case total != m.Size:
		return fmt.Errorf("%s answered with a range of a body of %d bytes, the file has %d", asked, total, m.Size)
	case start != from || end < to-1 || end > to-1 && end != total-1:
		return fmt.Errorf("%s answered with Content-Range %q", asked, cr)
	case resp.ContentLength >= 0 && resp.ContentLength != end-start+1:
		return fmt.Errorf("%s: Content-Length %d does not match Content-Range %q", asked, resp.ContentLength, cr)
	}
	return nil
}
