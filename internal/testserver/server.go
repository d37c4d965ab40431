package testserver

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Request is one request as the server saw it.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	Host     string
	Proto    string // "HTTP/1.1", "HTTP/2.0"
	Remote   string // the client's address: one per connection
	Resumed  bool   // over a TLS connection that resumed an earlier session
	Header   http.Header
	Time     time.Time
}

// Server is a running test server. Its zero value is not usable; call New.
type Server struct {
	srv     *httptest.Server
	global  []Option
	caPEM   []byte
	done    chan struct{} // closed before shutdown: releases stalled handlers
	closeMu sync.Once

	contentCache sync.Map // contentKey → []byte: generated bodies, reused across requests

	mu     sync.Mutex
	paths  map[string][]Option
	counts map[string]int // requests per path, for Statuses
	log    []Request
	notify chan struct{} // closed and replaced on every logged request

	hellos atomic.Int64 // TLS ClientHellos received
}

// New starts an HTTPS server (HTTP/2 enabled) on 127.0.0.1 with opts applying to every
// path, and closes it when the test ends.
func New(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s, err := Start(opts...)
	if err != nil {
		tb.Fatalf("testserver: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Start is New without a testing.TB (for benchmarks run from main or tools). The caller
// must Close it.
func Start(opts ...Option) (*Server, error) {
	s := &Server{
		global: opts,
		done:   make(chan struct{}),
		paths:  map[string][]Option{},
		counts: map[string]int{},
		notify: make(chan struct{}),
	}
	c := defaultConfig()
	for _, o := range opts {
		o(&c)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.EnableHTTP2 = !c.http1Only
	// Handshake failures are what many tests provoke; don't spam the test output.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if c.plain {
		s.srv.Start()
		return s, nil
	}
	s.srv.TLS = &tls.Config{MaxVersion: c.tlsMaxVers}
	s.srv.TLS.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		s.hellos.Add(1)
		return nil, nil // the server's own config
	}
	if c.clientCAs != nil {
		s.srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		s.srv.TLS.ClientCAs = c.clientCAs
	}
	if c.genCert {
		ca, err := NewCA()
		if err != nil {
			return nil, err
		}
		cert, _, _, err := ca.Leaf(c.certHosts, c.certFrom, c.certUntil, false)
		if err != nil {
			return nil, err
		}
		s.srv.TLS.Certificates = []tls.Certificate{cert}
		s.caPEM = ca.CertPEM
	}
	s.srv.StartTLS()
	if s.caPEM == nil {
		// httptest's built-in certificate is self-signed and shared by all httptest
		// servers, so one CA file trusts every default testserver.
		s.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	}
	return s, nil
}

// Close releases stalled handlers and shuts the server down.
func (s *Server) Close() {
	s.closeMu.Do(func() {
		close(s.done)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
}

// Handle sets options for one path (exact match, without query), applied after the
// global ones.
func (s *Server) Handle(path string, opts ...Option) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paths[path] = append(s.paths[path], opts...)
}

// URL is the absolute URL of path on this server.
func (s *Server) URL(path string) string { return s.srv.URL + path }

// Base is the server's base URL, e.g. https://127.0.0.1:34567.
func (s *Server) Base() string { return s.srv.URL }

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.srv.Listener.Addr().String() }

// Client is an *http.Client that trusts the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// CACertPEM is the PEM of the CA that signed the server's certificate.
func (s *Server) CACertPEM() []byte { return s.caPEM }

// WriteCACert writes CACertPEM to file (for fetcher.Options.CACertFile / --ca-cert).
func (s *Server) WriteCACert(file string) error { return os.WriteFile(file, s.caPEM, 0o644) }

// CAFile writes CACertPEM into a temporary directory of tb and returns its path.
func (s *Server) CAFile(tb testing.TB) string {
	tb.Helper()
	f := filepath.Join(tb.TempDir(), "ca.pem")
	if err := s.WriteCACert(f); err != nil {
		tb.Fatal(err)
	}
	return f
}

// Body is the content the server sends for path (ignoring faults).
func (s *Server) Body(path string) []byte {
	c := s.config(path)
	return s.content(&c, path)
}

type contentKey struct {
	seed uint64
	size int64
}

// content is c.content, cached: generating the body per request would dominate
// benchmarks of small files.
func (s *Server) content(c *config, path string) []byte {
	if c.haveBody {
		return c.body
	}
	k := contentKey{seedOf(path), c.size}
	if c.haveSeed {
		k.seed = c.seed
	}
	if b, ok := s.contentCache.Load(k); ok {
		return b.([]byte)
	}
	b := Content(k.seed, k.size)
	s.contentCache.Store(k, b)
	return b
}

// SHA256 is the hex sha256 of Body(path).
func (s *Server) SHA256(path string) string {
	sum := sha256.Sum256(s.Body(path))
	return hex.EncodeToString(sum[:])
}

// Handshakes is the number of TLS handshakes clients started (ClientHellos received), failed
// or not: a client that gives up on a bad certificate makes handshakes but no requests.
func (s *Server) Handshakes() int { return int(s.hellos.Load()) }

// Requests returns a copy of the request log.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// RequestsFor returns the logged requests for one path.
func (s *Server) RequestsFor(path string) []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// WaitRequests blocks until at least n requests were logged or timeout passes, and
// returns the log. It waits on the event, not by polling.
func (s *Server) WaitRequests(n int, timeout time.Duration) []Request {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if len(s.log) >= n {
			out := append([]Request(nil), s.log...)
			s.mu.Unlock()
			return out
		}
		ch := s.notify
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			return s.Requests()
		}
	}
}

func (s *Server) config(path string) config {
	c := defaultConfig()
	for _, o := range s.global {
		o(&c)
	}
	s.mu.Lock()
	opts := s.paths[path]
	s.mu.Unlock()
	for _, o := range opts {
		o(&c)
	}
	return c
}

func (c *config) etagFor(body []byte) string {
	switch c.etag {
	case "-":
		return ""
	case "":
		sum := sha256.Sum256(body)
		return `"` + hex.EncodeToString(sum[:8]) + `"`
	}
	return c.etag
}

// serve answers one request, applying the path's faults in the order a response meets them
// (before headers, headers, body): one long function, so that order reads top to bottom.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.log = append(s.log, Request{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host,
		Proto: r.Proto, Remote: r.RemoteAddr, Resumed: r.TLS != nil && r.TLS.DidResume, Header: r.Header.Clone(), Time: time.Now(),
	})
	close(s.notify)
	s.notify = make(chan struct{})
	n := s.counts[r.URL.Path]
	s.counts[r.URL.Path]++
	s.mu.Unlock()

	c := s.config(r.URL.Path)
	if c.perRequest != nil {
		for _, o := range c.perRequest(n, r) {
			o(&c)
		}
	}
	if c.handler != nil {
		c.handler(w, r)
		return
	}
	if c.raw != nil {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		conn.Write(c.raw)
		conn.Close()
		return
	}
	if n < len(c.statuses) {
		if c.retryAfter != "" {
			w.Header().Set("Retry-After", c.retryAfter)
		}
		http.Error(w, http.StatusText(c.statuses[n]), c.statuses[n])
		return
	}
	if c.redirectTo != "" {
		http.Redirect(w, r, c.redirectTo, c.redirectSC)
		return
	}

	body := s.content(&c, r.URL.Path)
	h := w.Header()
	for k, v := range c.header {
		h[k] = v
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/octet-stream")
	}
	if c.acceptRanges && h.Get("Accept-Ranges") == "" {
		h.Set("Accept-Ranges", "bytes")
	}
	etag := c.etagFor(body)
	if etag != "" {
		h.Set("ETag", etag)
	}
	lm := ""
	if !c.noLastMod {
		lm = c.lastMod.UTC().Format(http.TimeFormat)
		h.Set("Last-Modified", lm)
	}
	if !c.ignoreCond && notModified(r, etag, c) {
		w.WriteHeader(http.StatusNotModified)
		return
	}

	status, start, end := http.StatusOK, int64(0), int64(len(body))
	if rs := r.Header.Get("Range"); rs != "" && !c.ignoreRange && (c.ignoreIfRange || ifRangeOK(r, etag, lm)) {
		first, last, ok := parseRange(rs)
		if ok && first >= int64(len(body)) {
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", len(body)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		if ok {
			start = min(max(first+c.rangeShift, 0), int64(len(body))-1)
			if last >= 0 && last < end-1 {
				end = max(last+c.rangeShift, start) + 1
			}
			status = http.StatusPartialContent
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, len(body)))
		}
	}
	body = body[start:end]
	switch {
	case c.clOverride != "":
		h.Set("Content-Length", c.clOverride)
	case !c.chunked:
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	s.send(w, r, c, body)
}

// send writes body, applying the configured faults.
func (s *Server) send(w http.ResponseWriter, r *http.Request, c config, body []byte) {
	limit, fault := int64(len(body)), ""
	for _, f := range []struct {
		n    int64
		name string
	}{{c.truncate, "truncate"}, {c.reset, "reset"}, {c.stall, "stall"}} {
		if f.n >= 0 && f.n < limit {
			limit, fault = f.n, f.name
		}
	}
	rc := http.NewResponseController(w)
	if c.dripChunk <= 0 {
		if _, err := w.Write(body[:limit]); err != nil {
			return
		}
	}
	for off := int64(0); c.dripChunk > 0 && off < limit; off += int64(c.dripChunk) {
		if off > 0 && c.dripEvery > 0 && !s.wait(r, c.dripEvery) {
			return
		}
		if _, err := w.Write(body[off:min(off+int64(c.dripChunk), limit)]); err != nil {
			return
		}
		_ = rc.Flush()
	}
	_ = rc.Flush()
	switch fault {
	case "stall":
		s.wait(r, 0)
	case "truncate", "reset":
		if r.ProtoMajor == 2 {
			// HTTP/2 has no connection to hand over: abort resets the stream.
			panic(http.ErrAbortHandler)
		}
		conn, _, err := rc.Hijack()
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		if tc, ok := underlyingTCP(conn); ok && fault == "reset" {
			_ = tc.SetLinger(0) // close with RST instead of FIN
		}
		conn.Close()
	}
}

// wait blocks for d (0: forever) or until the client or the server goes away; it reports
// whether the full time passed.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	var tc <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		tc = t.C
	}
	select {
	case <-tc:
		return true
	case <-r.Context().Done():
	case <-s.done:
	}
	return false
}

func underlyingTCP(c net.Conn) (*net.TCPConn, bool) {
	if tlsConn, ok := c.(*tls.Conn); ok {
		c = tlsConn.NetConn()
	}
	tc, ok := c.(*net.TCPConn)
	return tc, ok
}

func notModified(r *http.Request, etag string, c config) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		return etag != "" && (inm == "*" || strings.Contains(inm, strings.TrimPrefix(etag, "W/")))
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" && !c.noLastMod {
		t, err := http.ParseTime(ims)
		return err == nil && !c.lastMod.Truncate(time.Second).After(t)
	}
	return false
}

// ifRangeOK: without If-Range, Range always applies; with it, only if it matches exactly.
func ifRangeOK(r *http.Request, etag, lm string) bool {
	ir := r.Header.Get("If-Range")
	return ir == "" || (etag != "" && ir == etag) || (lm != "" && ir == lm)
}

// parseRange reads "bytes=N-" (last -1) or "bytes=N-M". A last position before the first is
// not a range.
func parseRange(v string) (first, last int64, ok bool) {
	spec, ok := strings.CutPrefix(v, "bytes=")
	if !ok {
		return 0, 0, false
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, false
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil || first < 0 {
		return 0, 0, false
	}
	if b == "" {
		return first, -1, true
	}
	last, err = strconv.ParseInt(b, 10, 64)
	return first, last, err == nil && last >= first
}
