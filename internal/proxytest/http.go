// Package proxytest runs forward proxies for trawl's tests, on 127.0.0.1, closed when the test
// ends: an HTTP proxy (CONNECT tunnels and plain-http absolute-URI requests, over plain TCP or
// TLS) and a SOCKS5 server. Each records what it carried and the credentials it was given, and can
// demand credentials. Both reach origins through Dial, so a test can give an origin a host name
// only the proxy can resolve: a request that arrives proves it went through the proxy.
//
// It depends only on the standard library.
package proxytest

import (
	"context"
	"encoding/base64"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Hosts maps host names to addresses (host → "127.0.0.1"), as a proxy's own resolver; names
// not in it are resolved as usual.
type Hosts map[string]string

// dial connects to addr, resolving its host through h first.
func (h Hosts) dial(ctx context.Context, addr string) (net.Conn, error) {
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if ip, ok := h[strings.ToLower(host)]; ok {
			addr = net.JoinHostPort(ip, port)
		}
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// HTTPRequest is one request an HTTP proxy received.
type HTTPRequest struct {
	Method string // CONNECT, or the method of a plain-http request
	Target string // host:port of a CONNECT, the absolute URL of another request
	Auth   string // "user:password" from Proxy-Authorization (Basic), or "" without one
	// Forwarded is the header a plain-http request was forwarded to the origin with.
	Forwarded http.Header
}

// HTTP is a running HTTP proxy.
type HTTP struct {
	srv   *httptest.Server
	hosts Hosts
	auth  string // required "user:password"; "" = none

	mu      sync.Mutex
	reqs    []HTTPRequest
	tunnels conns
}

// NewHTTP starts an HTTP proxy that resolves through hosts. With auth ("user:password") it
// answers 407 to a request without those credentials; with tls it is spoken to over TLS (an
// https:// proxy, with httptest's certificate for 127.0.0.1: see CACertPEM), offering HTTP/2 and
// HTTP/1.1.
func NewHTTP(tb testing.TB, hosts Hosts, auth string, tls bool) *HTTP {
	tb.Helper()
	p := &HTTP{hosts: hosts, auth: auth}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	p.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		// It offers HTTP/2, as many proxies do: a client must still speak HTTP/1.1 to it, the
		// only version a CONNECT tunnel is served over here.
		p.srv.EnableHTTP2 = true
		p.srv.StartTLS()
	} else {
		p.srv.Start()
	}
	tb.Cleanup(func() {
		p.srv.Close()
		p.tunnels.closeAll()
	})
	return p
}

// URL is the proxy's URL, e.g. http://127.0.0.1:34567, with userinfo (user:password@) when
// it is not empty.
func (p *HTTP) URL(userinfo string) string {
	scheme, rest, _ := strings.Cut(p.srv.URL, "://")
	if userinfo != "" {
		rest = userinfo + "@" + rest
	}
	return scheme + "://" + rest
}

// CACertPEM is the PEM of the certificate an https proxy presents.
func (p *HTTP) CACertPEM() []byte {
	return pemCert(p.srv.Certificate().Raw)
}

// Requests returns every request the proxy received so far.
func (p *HTTP) Requests() []HTTPRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]HTTPRequest(nil), p.reqs...)
}

func (p *HTTP) serve(w http.ResponseWriter, r *http.Request) {
	rec := HTTPRequest{Method: r.Method, Target: r.RequestURI, Auth: basicAuth(r.Header.Get("Proxy-Authorization"))}
	if r.Method == http.MethodConnect {
		rec.Target = r.Host
	}
	// Recorded at once: a tunnel's handler returns only when the tunnel closes.
	p.mu.Lock()
	i := len(p.reqs)
	p.reqs = append(p.reqs, rec)
	p.mu.Unlock()
	if p.auth != "" && rec.Auth != p.auth {
		w.Header().Set("Proxy-Authenticate", `Basic realm="proxytest"`)
		http.Error(w, "proxy credentials wanted", http.StatusProxyAuthRequired)
		return
	}
	switch {
	case r.Method == http.MethodConnect:
		p.tunnel(w, r)
	case r.URL.IsAbs() && r.URL.Scheme == "http":
		fwd := p.forward(w, r)
		p.mu.Lock()
		p.reqs[i].Forwarded = fwd
		p.mu.Unlock()
	default:
		http.Error(w, "not a proxy request", http.StatusBadRequest)
	}
}

// tunnel answers a CONNECT: 200, then bytes both ways until either side ends.
func (p *HTTP) tunnel(w http.ResponseWriter, r *http.Request) {
	origin, err := p.hosts.dial(r.Context(), r.Host)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.WriteHeader(http.StatusOK)
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		origin.Close()
		return
	}
	if n := buf.Reader.Buffered(); n > 0 {
		b, _ := buf.Reader.Peek(n)
		origin.Write(b)
	}
	if !p.tunnels.add(conn, origin) {
		return
	}
	pipe(conn, origin)
	p.tunnels.remove(conn, origin)
}

// forward relays a plain-http absolute-URI request to its origin, without the hop-by-hop
// Proxy-Authorization, and returns the header it was sent with.
func (p *HTTP) forward(w http.ResponseWriter, r *http.Request) http.Header {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Header.Del("Proxy-Authorization")
	out.Header.Del("Proxy-Connection")
	tr := &http.Transport{DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) { return p.hosts.dial(ctx, addr) }}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return out.Header
	}
	defer resp.Body.Close()
	for k, vv := range resp.Header {
		w.Header()[k] = vv
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
	return out.Header
}

// basicAuth decodes a Basic credentials header to "user:password"; anything else as is.
func basicAuth(h string) string {
	if v, ok := strings.CutPrefix(h, "Basic "); ok {
		if b, err := base64.StdEncoding.DecodeString(v); err == nil {
			return string(b)
		}
	}
	return h
}

// conns are the connections of open tunnels, closed when the proxy is.
type conns struct {
	mu     sync.Mutex
	set    map[net.Conn]bool
	closed bool
}

// add records cs; once the proxy is closed it closes them instead and returns false.
func (c *conns) add(cs ...net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		for _, x := range cs {
			x.Close()
		}
		return false
	}
	if c.set == nil {
		c.set = map[net.Conn]bool{}
	}
	for _, x := range cs {
		c.set[x] = true
	}
	return true
}

func (c *conns) remove(cs ...net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range cs {
		delete(c.set, x)
	}
}

func (c *conns) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for x := range c.set {
		x.Close()
	}
	c.set = nil
}

// pipe copies bytes both ways between a and b until either side ends, then closes both.
func pipe(a, b net.Conn) {
	var once sync.Once
	done := func() { once.Do(func() { a.Close(); b.Close() }) }
	go func() { io.Copy(a, b); done() }()
	io.Copy(b, a)
	done()
}
