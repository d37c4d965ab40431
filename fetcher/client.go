package fetcher

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Defaults for zero Options fields.
const (
	DefaultConnectTimeout = 30 * time.Second
	DefaultIdleTimeout    = 60 * time.Second
	DefaultMaxRedirects   = 10
)

// Fetcher downloads URLs to files. It is safe for concurrent use; one Fetcher (one
// connection pool) serves all workers.
type Fetcher struct {
	opts      Options
	transport *http.Transport
	client    *http.Client
	// bulk is an HTTP/1.1-only client for the big bodies of ProtocolAuto (see BulkBodySize);
	// nil with a forced protocol.
	bulkTransport *http.Transport
	bulk          *http.Client
	dialer        *net.Dialer
	// dial is dialer.DialContext; tests swap it to map test host names to loopback.
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
	tlsConfig *tls.Config // offers opts.Protocol's ALPN names
	tlsHTTP1  *tls.Config // offers HTTP/1.1 alone, for the bulk transport and an https proxy
	// tlsProxies are the addresses of the https:// proxies requests may go through (Options.Proxy
	// or the environment's): the main transport dials them with tlsHTTP1, as a proxy is spoken to
	// in HTTP/1.1.
	tlsProxies map[string]bool
	jar        *cookieJar
	// credKeys are the canonical names of headers that carry credentials for the
	// original host only: dropped on a cross-host redirect.
	credKeys []string
	dirs     dirCache     // open output directories
	reserved atomic.Int64 // bytes preallocated for .parts in flight (see reserve)
	first    firstRequests
	seg      segmenter // segmented downloads' own HTTP/1.1 client, and hosts never segmented again (segment.go)
}

// New builds a Fetcher. It fails if a CA or client certificate file cannot be loaded.
func New(opts Options) (*Fetcher, error) {
	opts = opts.withDefaults()
	noProxy, err := ParseNoProxy(opts.NoProxy)
	if err != nil {
		return nil, fmt.Errorf("no-proxy list: %w", err)
	}
	tc, err := tlsConfig(opts)
	if err != nil {
		return nil, err
	}
	h1 := tc.Clone()
	h1.NextProtos = []string{"http/1.1"}
	f := &Fetcher{
		opts:      opts,
		tlsConfig: tc,
		tlsHTTP1:  h1,
		dialer:    &net.Dialer{Timeout: opts.ConnectTimeout, KeepAlive: 30 * time.Second},
		credKeys:  []string{"Authorization", "Cookie", "Proxy-Authorization"},
		jar:       newCookieJar(opts.RecordCookies),
	}
	f.jar.load(opts.Cookies)
	f.dial = f.dialer.DialContext
	if px := opts.Proxy; px != nil && strings.HasPrefix(px.Scheme, "socks5") {
		f.dial = socksDial(px, noProxy, f.dialer.DialContext, opts.ConnectTimeout)
	}
	f.tlsProxies = tlsProxies(opts)
	for k := range opts.Header {
		f.credKeys = append(f.credKeys, http.CanonicalHeaderKey(k))
	}
	proxyOf, err := proxyFunc(opts, noProxy)
	if err != nil {
		return nil, err
	}
	f.transport = f.newTransport(proxyOf)
	f.client = &http.Client{Transport: f.transport, CheckRedirect: f.checkRedirect, Jar: f.jar}
	if opts.Protocol == ProtocolAuto {
		f.bulkTransport = f.newBulkTransport()
		f.bulk = &http.Client{Transport: f.bulkTransport, CheckRedirect: f.checkRedirect, Jar: f.jar}
	}
	return f, nil
}

// withDefaults fills o's zero fields with their defaults, and copies the header the Fetcher keeps,
// so the caller's map is not shared.
func (o Options) withDefaults() Options {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxRedirects <= 0 {
		o.MaxRedirects = DefaultMaxRedirects
	}
	if o.UserAgent == "" {
		o.UserAgent = "trawl/" + Version
	}
	o.Header = o.Header.Clone()
	return o
}

// newTransport is the connection pool every request starts on, going through proxyOf's proxy.
func (f *Fetcher) newTransport(proxyOf func(*http.Request) (*url.URL, error)) *http.Transport {
	opts := &f.opts
	return &http.Transport{
		Proxy:                  proxyOf,
		OnProxyConnectResponse: proxyRefused,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return f.dial(ctx, network, addr)
		},
		// Our own TLS dial so a failed handshake is known to be a TLS failure by
		// construction (see tlsError), not guessed from its message. The transport still
		// does TLS itself through proxies, using TLSClientConfig.
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if f.tlsProxies[addr] {
				return f.dialTLS(ctx, network, addr, f.tlsHTTP1)
			}
			return f.dialTLS(ctx, network, addr, f.tlsConfig)
		},
		TLSClientConfig:     f.tlsConfig,
		TLSHandshakeTimeout: opts.ConnectTimeout,
		// Set explicitly: with a custom dialer, net/http would otherwise leave HTTP/2 off.
		Protocols: protocols(opts.Protocol),
		// Bulk downloads hit the same hosts over and over: keep plenty of warm
		// connections so workers don't pay a handshake per file.
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 64,
		MaxConnsPerHost:     opts.MaxConnsPerHost,
		IdleConnTimeout:     90 * time.Second,
		// Headers must arrive within the idle timeout; the body is watched by the stall
		// watchdog. There is deliberately no whole-request timeout: a big file on a slow
		// link is fine as long as bytes keep coming.
		ResponseHeaderTimeout:  opts.IdleTimeout,
		MaxResponseHeaderBytes: 1 << 20,
		ExpectContinueTimeout:  time.Second,
		// We ask for identity encoding explicitly; this only makes sure the transport
		// never adds gzip and transparently decodes behind our back.
		DisableCompression: true,
		// The connection buffers stay at net/http's 4 KiB: body reads into our 256 KiB
		// buffers bypass them, and an idle connection to each of a thousand hosts keeps
		// its pair (bigger read buffers are no faster for bulk bodies).
		HTTP2: &http.HTTP2Config{
			// Ping an HTTP/2 connection that has gone quiet, so a dead connection shared
			// by many streams is noticed instead of starving all of them.
			SendPingTimeout: opts.IdleTimeout,
			PingTimeout:     min(opts.IdleTimeout, 15*time.Second),
		},
	}
}

// newBulkTransport is the main transport's HTTP/1.1-only twin, for the big bodies of ProtocolAuto
// (see BulkBodySize): each gets a connection of its own instead of a stream of a shared one.
func (f *Fetcher) newBulkTransport() *http.Transport {
	t := f.transport.Clone()
	t.Protocols = protocols(ProtocolHTTP1)
	t.TLSClientConfig = f.tlsHTTP1
	t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return f.dialTLS(ctx, network, addr, f.tlsHTTP1)
	}
	return t
}

// Close closes idle connections. In-flight fetches are not interrupted.
func (f *Fetcher) Close() {
	f.transport.CloseIdleConnections()
	f.seg.close()
	if f.bulkTransport != nil {
		f.bulkTransport.CloseIdleConnections()
	}
	f.dirs.close()
}

// multiplexed reports whether requests may share HTTP/2 connections.
func (f *Fetcher) multiplexed() bool { return f.opts.Protocol != ProtocolHTTP1 }

// protocols is what the transport speaks for p. Forced HTTP/2 speaks it over plain http too
// (prior knowledge), as it has no HTTP/1.1 to fall back to.
func protocols(p Protocol) *http.Protocols {
	ps := new(http.Protocols)
	ps.SetHTTP1(p != ProtocolHTTP2)
	ps.SetHTTP2(p != ProtocolHTTP1)
	ps.SetUnencryptedHTTP2(p == ProtocolHTTP2)
	return ps
}

// sessionCacheSize is how many hosts' TLS sessions are kept for resumption.
const sessionCacheSize = 1024

func tlsConfig(opts Options) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Set by our own dialer: the transport speaks HTTP/2 only on a connection whose
		// ALPN negotiated "h2".
		NextProtos:         []string{"h2", "http/1.1"},
		InsecureSkipVerify: opts.Insecure, // only when the user asked; cmd/ warns
		// Over HTTP/1.1 a host gets a connection per concurrent request. One opened after an
		// earlier connection to the host has its session ticket resumes that session instead of a
		// full handshake, for both sides (connections opened at the same moment cannot).
		ClientSessionCache: tls.NewLRUClientSessionCache(sessionCacheSize),
	}
	switch opts.Protocol {
	case ProtocolHTTP1:
		tc.NextProtos = []string{"http/1.1"}
	case ProtocolHTTP2:
		tc.NextProtos = []string{"h2"}
	}
	if opts.CACertFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			// No system roots (e.g. a scratch container): the given CA alone.
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(opts.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("CA certificate: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA certificate %s: no PEM certificates found", opts.CACertFile)
		}
		tc.RootCAs = pool
	}
	switch {
	case opts.ClientCertFile != "" && opts.ClientKeyFile != "":
		cert, err := tls.LoadX509KeyPair(opts.ClientCertFile, opts.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	case opts.ClientCertFile != "" || opts.ClientKeyFile != "":
		return nil, errors.New("client certificate: both a certificate and a key file are needed")
	}
	return tc, nil
}

// dialTLS connects (within the dialer's ConnectTimeout) and completes the handshake
// (within another ConnectTimeout, like TLSHandshakeTimeout), marking any handshake failure
// as a tlsError. The transport applies neither timeout to a custom TLS dialer itself.
func (f *Fetcher) dialTLS(ctx context.Context, network, addr string, tc *tls.Config) (net.Conn, error) {
	raw, err := f.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	cfg := tc.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	hctx, cancel := context.WithTimeout(ctx, f.opts.ConnectTimeout)
	defer cancel()
	conn := tls.Client(&readAheadConn{Conn: raw}, cfg)
	if err := conn.HandshakeContext(hctx); err != nil {
		raw.Close()
		if hctx.Err() != nil {
			// A handshake cut short by the timeout or the caller is not a TLS verdict.
			return nil, fmt.Errorf("TLS handshake: %w", hctx.Err())
		}
		return nil, &tlsError{err}
	}
	return conn, nil
}

// requestHeader is the header a request for u starts with: the -H headers, identity encoding
// (bytes saved exactly as sent), the User-Agent and, for a host with a .netrc entry, its Basic
// credentials, unless u has userinfo (which net/http sends instead) or -H gave an Authorization.
// Like the -H headers, they follow a redirect only within the origin; another host gets its own
// entry's (checkRedirect).
func (f *Fetcher) requestHeader(u *url.URL) http.Header {
	h := f.opts.Header.Clone()
	if h == nil {
		h = make(http.Header, 4)
	}
	h.Set("Accept-Encoding", "identity")
	h.Set("User-Agent", f.opts.UserAgent)
	f.netrcLogin(h, u)
	return h
}

// netrcLogin gives h the Basic credentials of u's host's .netrc entry, unless u has userinfo
// (which net/http sends instead) or h has an Authorization already.
func (f *Fetcher) netrcLogin(h http.Header, u *url.URL) {
	if f.opts.Netrc != nil && u.User == nil && h.Get("Authorization") == "" {
		if login, password, ok := f.opts.Netrc.Login(u.Hostname()); ok {
			h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(login+":"+password)))
		}
	}
}

// checkRedirect bounds the chain, allows only http(s) targets, and keeps credentials for
// the host they were given for.
func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > f.opts.MaxRedirects {
		return &Error{URL: redact(via[0].URL.String()), Class: ClassRedirect,
			Err: fmt.Errorf("%w (more than %d)", errTooManyRedirects, f.opts.MaxRedirects)}
	}
	if s := req.URL.Scheme; s != "http" && s != "https" {
		return &Error{URL: redact(via[0].URL.String()), Class: ClassRedirect,
			Err: fmt.Errorf("redirect to unsupported scheme %q", s)}
	}
	// Go re-copies the original request's headers onto every hop and only drops
	// Authorization and Cookie when the host *name* changes (ports are ignored, and
	// subdomains count as the same). The -H headers are never dropped by Go. So decide
	// here, against the original host, for every credential-like header.
	if crossHost(via[0].URL, req.URL) {
		for _, k := range f.credKeys {
			req.Header.Del(k)
		}
		// The new host's own .netrc entry is its own to receive (as curl and wget send it),
		// but not in clear text after https.
		if via[0].URL.Scheme == "http" || req.URL.Scheme == "https" {
			f.netrcLogin(req.Header, req.URL)
		}
	}
	return nil
}

// crossHost reports whether dst is a different origin than orig for credentials: another
// host name or port, or a downgrade from https to http. The common upgrade
// http://h → https://h keeps them.
func crossHost(orig, dst *url.URL) bool {
	if !strings.EqualFold(orig.Hostname(), dst.Hostname()) {
		return true
	}
	if orig.Scheme == "https" && dst.Scheme == "http" {
		return true
	}
	if orig.Scheme == dst.Scheme {
		return portOf(orig) != portOf(dst)
	}
	// http → https on the same name: only the default-port upgrade is the same site.
	return portOf(orig) != "80" || portOf(dst) != "443"
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	return defaultPort(u.Scheme)
}
