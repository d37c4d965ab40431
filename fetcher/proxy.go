package fetcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/proxy"
)

// Proxies. Options.Proxy sends every request whose host NoProxy does not list through one proxy:
//
//   - http:// — plain-http URLs as absolute-URI requests, https ones through a CONNECT tunnel in
//     which trawl does TLS with the origin itself (its certificate checked as without a proxy,
//     HTTP/2 offered as without one). Credentials in the proxy URL go to the proxy alone, in
//     Proxy-Authorization.
//   - https:// — the same, over TLS to the proxy, whose certificate is checked like an origin's
//     (system roots plus CACertFile); HTTP/1.1 is spoken to it.
//   - socks5:// and socks5h:// — a SOCKS5 tunnel (RFC 1928), with username/password
//     authentication (RFC 1929) when the URL has credentials; socks5 resolves host names here and
//     hands the proxy an address, socks5h hands it the name. TLS, when the URL is https, is then
//     done through the tunnel as over any connection.
//
// Without Options.Proxy the HTTP_PROXY, HTTPS_PROXY and NO_PROXY environment applies, as net/http
// reads it (which never proxies localhost or a loopback address); Options.NoProxy then replaces
// NO_PROXY.

// proxyPorts are the ports of proxy URLs that give none, as net/http assumes them.
var proxyPorts = map[string]string{"http": "80", "https": "443", "socks5": "1080", "socks5h": "1080"}

// ParseProxy reads a proxy URL: [scheme://][user:password@]host[:port], the scheme http (the
// default), https, socks5 or socks5h. Its errors never repeat the password.
func ParseProxy(s string) (*url.URL, error) {
	raw := s
	if !strings.Contains(s, "://") {
		raw = "http://" + s
	}
	const want = "want [http|https|socks5|socks5h://][user:password@]host[:port]"
	u, err := url.Parse(raw)
	if err != nil {
		// url's errors quote the whole URL, password and all.
		return nil, fmt.Errorf("not a proxy URL (%s)", want)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	shown := u.Redacted()
	switch {
	case proxyPorts[u.Scheme] == "":
		return nil, fmt.Errorf("%s: unsupported proxy scheme %q (want http, https, socks5 or socks5h)", shown, u.Scheme)
	case u.Hostname() == "":
		return nil, fmt.Errorf("%s: no proxy host (%s)", shown, want)
	case strings.ContainsFunc(u.Hostname(), func(r rune) bool { return r >= 0x80 }):
		return nil, fmt.Errorf("%s: write an international host name in its xn-- form", shown)
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return nil, fmt.Errorf("%s: a proxy URL has no path or query (%s)", shown, want)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%s: port %s is not a port number", shown, p)
		}
	}
	u.Path = ""
	return u, nil
}

// proxyAddr is the host:port a transport dials for proxy u.
func proxyAddr(u *url.URL) string {
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = proxyPorts[u.Scheme]
	}
	return net.JoinHostPort(host, port)
}

// NoProxy is a parsed list of hosts reached directly, not through the proxy, as NO_PROXY writes
// it: comma-separated entries, each "*" (every host), an IP address, a CIDR block, or a domain
// name, which matches that name and its subdomains (".example.org" and "*.example.org": the
// subdomains only). An IP address or a domain may carry a :port, to match that port alone.
type NoProxy struct {
	all      bool
	prefixes []netip.Prefix
	ips      []hostPort
	domains  []domainRule
}

type hostPort struct {
	ip   netip.Addr
	port string
}

type domainRule struct {
	suffix   string // ".example.org"
	withSelf bool   // "example.org" itself matches too
	port     string
}

// ParseNoProxy reads a NO_PROXY-style list (see NoProxy).
func ParseNoProxy(s string) (NoProxy, error) {
	var n NoProxy
	for _, e := range strings.Split(s, ",") {
		e = strings.ToLower(strings.TrimSpace(e))
		switch {
		case e == "":
			continue
		case e == "*":
			n.all = true
			continue
		case strings.Contains(e, "://"):
			// NO_PROXY lists hosts; a scheme would otherwise be read as a broken CIDR block.
			return NoProxy{}, fmt.Errorf("%q is a URL: list its host name alone (no scheme or path)", e)
		case strings.Contains(e, "/"):
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return NoProxy{}, fmt.Errorf("%q is not a CIDR block like 10.0.0.0/8", e)
			}
			n.prefixes = append(n.prefixes, p.Masked())
			continue
		}
		host, port := e, ""
		if ip, err := netip.ParseAddr(e); err == nil {
			n.ips = append(n.ips, hostPort{ip: ip.Unmap()})
			continue
		}
		if h, p, err := net.SplitHostPort(e); err == nil {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return NoProxy{}, fmt.Errorf("%q: %q is not a port number", e, p)
			}
			host, port = h, p
		}
		if h, ok := strings.CutPrefix(host, "["); ok && strings.HasSuffix(h, "]") {
			host = strings.TrimSuffix(h, "]")
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			n.ips = append(n.ips, hostPort{ip: ip.Unmap(), port: port})
			continue
		}
		r := domainRule{port: port, withSelf: true}
		switch {
		case strings.HasPrefix(host, "*."):
			host, r.withSelf = host[1:], false
		case strings.HasPrefix(host, "."):
			r.withSelf = false
		default:
			host = "." + host
		}
		if len(host) < 2 || strings.ContainsAny(host, "*[]:@ ") || strings.Contains(host, "..") {
			return NoProxy{}, fmt.Errorf("%q is not a host name, IP address, CIDR block or *", e)
		}
		r.suffix = strings.TrimSuffix(host, ".")
		n.domains = append(n.domains, r)
	}
	return n, nil
}

// Match reports whether a request to host (a name or an IP address, without brackets) on port
// goes direct.
func (n NoProxy) Match(host, port string) bool {
	if n.all {
		return true
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		for _, p := range n.prefixes {
			if p.Contains(ip) {
				return true
			}
		}
		for _, h := range n.ips {
			if h.ip == ip && (h.port == "" || h.port == port) {
				return true
			}
		}
		return false
	}
	for _, d := range n.domains {
		if (strings.HasSuffix(host, d.suffix) || d.withSelf && host == d.suffix[1:]) && (d.port == "" || d.port == port) {
			return true
		}
	}
	return false
}

// urlPort is u's port, or its scheme's default.
func urlPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	return defaultPort(u.Scheme)
}

// proxyFunc is the transport's Proxy for opts: the one proxy for hosts np does not list, or,
// without one, the environment's. A SOCKS5 proxy is not the transport's: it is dialled through
// (see socksDial).
func proxyFunc(opts Options, np NoProxy) (func(*http.Request) (*url.URL, error), error) {
	switch {
	case opts.Proxy != nil && strings.HasPrefix(opts.Proxy.Scheme, "socks5"):
		return nil, nil
	case opts.Proxy != nil:
		px := opts.Proxy
		return func(r *http.Request) (*url.URL, error) {
			if np.Match(r.URL.Hostname(), urlPort(r.URL)) {
				return nil, nil
			}
			return px, nil
		}, nil
	case opts.NoProxy != "":
		return envProxy(np)
	}
	return http.ProxyFromEnvironment, nil
}

// tlsProxies are the addresses of the https:// proxies a Fetcher with opts may dial:
// Options.Proxy, or those of the environment.
func tlsProxies(opts Options) map[string]bool {
	pxs := []*url.URL{opts.Proxy}
	if opts.Proxy == nil {
		for _, name := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
			if u, err := ParseProxy(os.Getenv(name)); err == nil {
				pxs = append(pxs, u)
			}
		}
	}
	m := map[string]bool{}
	for _, u := range pxs {
		if u != nil && u.Scheme == "https" {
			m[proxyAddr(u)] = true
		}
	}
	return m
}

// envProxy is http.ProxyFromEnvironment with np in place of NO_PROXY: HTTPS_PROXY for https
// URLs, HTTP_PROXY for http ones (not in a CGI program, where a request can set it), never for
// localhost or a loopback address.
func envProxy(np NoProxy) (func(*http.Request) (*url.URL, error), error) {
	px := map[string]*url.URL{}
	for scheme, names := range map[string][2]string{"http": {"HTTP_PROXY", "http_proxy"}, "https": {"HTTPS_PROXY", "https_proxy"}} {
		v := os.Getenv(names[0])
		if v == "" {
			v = os.Getenv(names[1])
		}
		if v == "" || scheme == "http" && os.Getenv("REQUEST_METHOD") != "" {
			continue
		}
		u, err := ParseProxy(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", names[0], err)
		}
		px[scheme] = u
	}
	return func(r *http.Request) (*url.URL, error) {
		host := r.URL.Hostname()
		if ip, err := netip.ParseAddr(host); host == "localhost" || err == nil && ip.IsLoopback() {
			return nil, nil
		}
		if np.Match(host, urlPort(r.URL)) {
			return nil, nil
		}
		return px[r.URL.Scheme], nil
	}, nil
}

// proxyRefused is the transport's OnProxyConnectResponse: a proxy's refusal of a tunnel becomes
// the error of its status, so that a 407 (credentials missing or wrong) or a 403 fails at once
// instead of being retried as a network error, while a 502, 503 or 504 is retried.
func proxyRefused(_ context.Context, _ *url.URL, req *http.Request, resp *http.Response) error {
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	e := httpError("", resp, time.Now())
	// The transport's CONNECT request names its target in Host (its URL is opaque).
	e.Err = fmt.Errorf("the proxy refused a tunnel to %s", cmp.Or(req.Host, req.URL.Host, req.URL.Opaque))
	return e
}

// contextDialer adapts a dial function to proxy.ContextDialer.
type contextDialer func(ctx context.Context, network, addr string) (net.Conn, error)

func (d contextDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return d(ctx, network, addr)
}

func (d contextDialer) Dial(network, addr string) (net.Conn, error) {
	return d(context.Background(), network, addr)
}

// socksConn is a connection through a SOCKS5 tunnel; NetConn is the socket to the proxy, for
// receiveQueue.
type socksConn struct {
	net.Conn
	raw net.Conn
}

func (c *socksConn) NetConn() net.Conn { return c.raw }

// socksDial returns a dial function that connects through the SOCKS5 proxy px with base, except
// to the hosts np lists, which base dials directly. The tunnel is set up within timeout.
func socksDial(px *url.URL, np NoProxy, base contextDialer, timeout time.Duration) contextDialer {
	var auth *proxy.Auth
	if px.User != nil {
		pw, _ := px.User.Password()
		auth = &proxy.Auth{User: px.User.Username(), Password: pw}
	}
	addr := proxyAddr(px)
	remoteDNS := px.Scheme == "socks5h"
	return func(ctx context.Context, network, target string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(target)
		if err != nil {
			return nil, err
		}
		if np.Match(host, port) {
			return base(ctx, network, target)
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		targets := []string{target}
		if _, err := netip.ParseAddr(host); err != nil && !remoteDNS {
			ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			if err != nil {
				return nil, err
			}
			targets = targets[:0]
			for _, ip := range ips {
				targets = append(targets, net.JoinHostPort(ip.Unmap().String(), port))
			}
		}
		var errs []error
		for _, t := range targets {
			var raw net.Conn
			d, _ := proxy.SOCKS5("tcp", addr, auth, contextDialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := base(ctx, network, addr)
				raw = c
				return c, err
			})) // never fails
			c, err := d.(proxy.ContextDialer).DialContext(ctx, network, t)
			if err == nil {
				return &socksConn{Conn: c, raw: raw}, nil
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		return nil, errors.Join(errs...)
	}
}
