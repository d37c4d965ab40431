package fetcher

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/proxytest"
	"github.com/trawl-dev/trawl/internal/testserver"
)

func TestParseProxy(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{"proxy.example:3128", "http://proxy.example:3128", ""},
		{"http://u:p@proxy.example", "http://u:p@proxy.example", ""},
		{"HTTPS://proxy.example:8443/", "https://proxy.example:8443", ""},
		{"socks5://127.0.0.1:1080", "socks5://127.0.0.1:1080", ""},
		{"socks5h://u:p@[::1]:1080", "socks5h://u:p@[::1]:1080", ""},
		{"ftp://u:secret@proxy.example", "", `unsupported proxy scheme "ftp"`},
		{"socks4://proxy.example", "", `unsupported proxy scheme "socks4"`},
		{"http://u:secret@proxy.example/path", "", "no path or query"},
		{"http://u:secret@proxy.example:99999", "", "port 99999"},
		{"http://u:secret@:8080", "", "no proxy host"},
		{"http://u:sec ret@proxy.example", "", "not a proxy URL"},
		{"http://u:secret@pröxy.example", "", "xn--"},
	} {
		u, err := ParseProxy(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.err == "" && u.String() != tc.want:
			t.Errorf("%q: %s, want %s", tc.in, u, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
		case err != nil && strings.Contains(err.Error(), "secret"):
			t.Errorf("%q: the error shows the password: %v", tc.in, err)
		}
	}
}

func TestNoProxy(t *testing.T) {
	np, err := ParseNoProxy(" example.com, .sub.example.org,*.wild.example ,10.0.0.0/8, 192.168.1.1, [::1]:8080, only.example:81,BIG.Example.NET,")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, port string
		direct     bool
	}{
		{"example.com", "443", true},
		{"www.example.com", "443", true},
		{"EXAMPLE.com.", "80", true},
		{"notexample.com", "443", false},
		{"sub.example.org", "443", false}, // a leading dot: subdomains only
		{"a.sub.example.org", "443", true},
		{"wild.example", "443", false},
		{"x.wild.example", "443", true},
		{"10.1.2.3", "443", true},
		{"11.1.2.3", "443", false},
		{"192.168.1.1", "80", true},
		{"192.168.1.2", "80", false},
		{"::1", "8080", true},
		{"::1", "443", false},
		{"only.example", "81", true},
		{"only.example", "443", false},
		{"big.example.net", "443", true},
		{"127.0.0.1", "443", false}, // loopback is proxied unless listed
	} {
		if got := np.Match(tc.host, tc.port); got != tc.direct {
			t.Errorf("Match(%s, %s) = %v, want %v", tc.host, tc.port, got, tc.direct)
		}
	}
	all, err := ParseNoProxy("a.example,*")
	if err != nil || !all.Match("anything.example", "1") {
		t.Errorf("* does not match everything: %v", err)
	}
	for _, tc := range []struct{ bad, err string }{
		{"10.0.0.0/33", "not a CIDR block"},
		{"host:port", `"port" is not a port number`},
		{"exa mple.com", "not a host name"},
		{"a..b", "not a host name"},
		{"[::1", "not a host name"},
		{"http://intranet.example", "is a URL: list its host name alone"},
		{"https://10.0.0.1/", "is a URL"},
	} {
		_, err := ParseNoProxy("ok.example," + tc.bad)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: error %v, want %q", tc.bad, err, tc.err)
		}
	}
}

func FuzzParseNoProxy(f *testing.F) {
	for _, s := range []string{"example.com,.a.example,*.b.example", "10.0.0.0/8,::1,[::1]:80,h:81", "*", " , ,", "[::1", "a..b"} {
		f.Add(s, "www.example.com", "443")
	}
	f.Fuzz(func(t *testing.T, list, host, port string) {
		np, err := ParseNoProxy(list)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q", err)
			}
			return
		}
		np.Match(host, port)
		for _, d := range np.domains {
			// A rule matching the host itself must be found by it.
			if d.withSelf && d.port == "" && !np.Match(d.suffix[1:], port) {
				t.Fatalf("%q does not match its own host %q", list, d.suffix[1:])
			}
		}
	})
}

// originHosts is the proxies' resolver: the test's origins are reached as origin.example.com,
// which only the proxies resolve (to 127.0.0.1), so a request that arrives went through one.
var originHosts = proxytest.Hosts{"origin.example.com": "127.0.0.1"}

func originURL(s *testserver.Server, path string) string {
	_, port, _ := net.SplitHostPort(s.Addr())
	return "https://origin.example.com:" + port + path
}

// TestProxies: a download through each kind of proxy arrives whole; the proxy saw the
// credentials of the proxy URL, the origin never; TLS with the origin is still trawl's own,
// verified as without a proxy, and HTTP/2 still spoken through a tunnel.
func TestProxies(t *testing.T) {
	origin := testserver.New(t, testserver.Size(64<<10))
	const cred = "pu:pp"
	httpProxy := proxytest.NewHTTP(t, originHosts, cred, false)
	httpsProxy := proxytest.NewHTTP(t, originHosts, cred, true)
	socks := proxytest.NewSOCKS(t, originHosts, cred)

	for _, tc := range []struct {
		name     string
		proxy    string
		http2    bool
		carried  func() int // requests or tunnels the proxy saw with the right credentials
		nameSent bool       // socks: the name was handed to the proxy
	}{
		{"CONNECT over HTTP/1.1", httpProxy.URL(cred), false, connects(httpProxy, cred), true},
		{"CONNECT, HTTP/2 in the tunnel", httpProxy.URL(cred), true, connects(httpProxy, cred), true},
		{"https proxy", httpsProxy.URL(cred), true, connects(httpsProxy, cred), true},
		{"socks5h", "socks5h://" + cred + "@" + socks.Addr(), true, socksConns(socks, cred, true), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			px, err := ParseProxy(tc.proxy)
			if err != nil {
				t.Fatal(err)
			}
			f := newFetcher(t, origin, func(o *Options) { o.Proxy, o.Protocol = px, protoOf(tc.http2) })
			root, dir := newRoot(t)
			before := tc.carried()
			var multiplexed bool
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			path := "/" + strings.ReplaceAll(tc.name, " ", "-")
			_, err = f.Fetch(ctx, root, Request{URL: originURL(origin, path), Path: "f", OnAnswer: func(m bool) { multiplexed = m }})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := sha(readFile(t, dir, "f")), origin.SHA256(path); got != want {
				t.Fatal("the file differs from the origin's")
			}
			if tc.carried() <= before {
				t.Fatal("the proxy carried nothing with the credentials")
			}
			if multiplexed != tc.http2 {
				t.Errorf("answered over HTTP/2: %v, want %v", multiplexed, tc.http2)
			}
			wantNoProxyAuth(t, origin)
		})
	}

	t.Run("plain http through the proxy", func(t *testing.T) {
		plain := testserver.New(t, testserver.PlainHTTP())
		px, _ := ParseProxy(httpProxy.URL(cred))
		f := newFetcher(t, nil, func(o *Options) { o.Proxy = px })
		root, _ := newRoot(t)
		_, port, _ := net.SplitHostPort(plain.Addr())
		u := "http://origin.example.com:" + port + "/plain"
		if _, err := fetch(t, f, root, u, "p"); err != nil {
			t.Fatal(err)
		}
		var seen bool
		for _, r := range httpProxy.Requests() {
			if r.Method == "GET" && r.Target == u && r.Auth == cred {
				seen = true
				if r.Forwarded.Get("Proxy-Authorization") != "" {
					t.Error("the proxy was asked to forward Proxy-Authorization")
				}
			}
		}
		if !seen {
			t.Fatalf("the proxy saw no GET %s with the credentials: %+v", u, httpProxy.Requests())
		}
		wantNoProxyAuth(t, plain)
	})

	t.Run("socks5 resolves here", func(t *testing.T) {
		local := testserver.New(t, testserver.GeneratedCert([]string{"localhost"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)))
		px, _ := ParseProxy("socks5://" + cred + "@" + socks.Addr())
		f := newFetcher(t, local, func(o *Options) { o.Proxy = px })
		root, _ := newRoot(t)
		_, port, _ := net.SplitHostPort(local.Addr())
		before := len(socks.Conns())
		if _, err := fetch(t, f, root, "https://localhost:"+port+"/l", "l"); err != nil {
			t.Fatal(err)
		}
		conns := socks.Conns()[before:]
		if len(conns) == 0 || conns[0].Name || conns[0].Target != "127.0.0.1:"+port || conns[0].Auth != cred {
			t.Fatalf("the SOCKS server saw %+v, want an address resolved here with the credentials", conns)
		}
	})

	t.Run("an origin's certificate is still checked", func(t *testing.T) {
		untrusted := testserver.New(t, testserver.GeneratedCert([]string{"origin.example.com"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)))
		for _, p := range []string{httpProxy.URL(cred), "socks5h://" + cred + "@" + socks.Addr()} {
			px, _ := ParseProxy(p)
			f := newFetcher(t, origin, func(o *Options) { o.Proxy = px }) // trusts origin's CA, not untrusted's
			root, _ := newRoot(t)
			_, err := fetch(t, f, root, originURL(untrusted, "/x"), "x")
			wantError(t, err, ClassTLS, false)
		}
	})

	t.Run("a custom CA is trusted through the proxy", func(t *testing.T) {
		own := testserver.New(t, testserver.GeneratedCert([]string{"origin.example.com"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)))
		px, _ := ParseProxy(httpProxy.URL(cred))
		f := newFetcher(t, own, func(o *Options) { o.Proxy = px })
		root, _ := newRoot(t)
		if _, err := fetch(t, f, root, originURL(own, "/ca"), "ca"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("wrong proxy credentials", func(t *testing.T) {
		for _, p := range []string{httpProxy.URL("pu:wrong"), "socks5h://pu:wrong@" + socks.Addr()} {
			px, _ := ParseProxy(p)
			f := newFetcher(t, origin, func(o *Options) { o.Proxy = px })
			root, _ := newRoot(t)
			_, err := fetch(t, f, root, originURL(origin, "/denied"), "d")
			if err == nil {
				t.Fatalf("%s: fetched with wrong proxy credentials", p)
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Errorf("the error shows the proxy password: %v", err)
			}
			if strings.HasPrefix(p, "http:") {
				// A refused tunnel is the proxy's answer, not a network failure: not retried.
				if e := wantError(t, err, ClassHTTP, false); e.Status != http.StatusProxyAuthRequired {
					t.Errorf("status %d, want 407", e.Status)
				}
				// The error names the tunnel's target, for a user with several origins.
				if target := strings.TrimPrefix(originURL(origin, ""), "https://"); !strings.Contains(err.Error(), "refused a tunnel to "+target) {
					t.Errorf("the error does not name the tunnel's target %s: %v", target, err)
				}
			}
		}
	})

	t.Run("no-proxy hosts go direct", func(t *testing.T) {
		for _, p := range []string{httpProxy.URL(cred), "socks5://" + cred + "@" + socks.Addr()} {
			px, _ := ParseProxy(p)
			f := newFetcher(t, origin, func(o *Options) { o.Proxy, o.NoProxy = px, "127.0.0.0/8" })
			root, _ := newRoot(t)
			nh, ns := len(httpProxy.Requests()), len(socks.Conns())
			if _, err := fetch(t, f, root, origin.URL("/direct"), "direct"); err != nil {
				t.Fatal(err)
			}
			if len(httpProxy.Requests()) != nh || len(socks.Conns()) != ns {
				t.Fatalf("%s: a no-proxy host went through the proxy", p)
			}
		}
	})
}

// connects counts the CONNECTs p saw with cred.
func connects(p *proxytest.HTTP, cred string) func() int {
	return func() int {
		n := 0
		for _, r := range p.Requests() {
			if r.Method == "CONNECT" && strings.HasPrefix(r.Target, "origin.example.com:") && r.Auth == cred {
				n++
			}
		}
		return n
	}
}

// socksConns counts the tunnels s opened with cred, to a host name (name) or an address.
func socksConns(s *proxytest.SOCKS, cred string, name bool) func() int {
	return func() int {
		n := 0
		for _, c := range s.Conns() {
			if c.Auth == cred && c.Name == name {
				n++
			}
		}
		return n
	}
}

func wantNoProxyAuth(t *testing.T, s *testserver.Server) {
	t.Helper()
	for _, r := range s.Requests() {
		if v := r.Header.Get("Proxy-Authorization"); v != "" {
			t.Fatalf("the origin saw Proxy-Authorization %q", v)
		}
	}
}

// TestEnvironmentProxy: without Proxy the environment's proxy is used, and NoProxy replaces
// NO_PROXY.
func TestEnvironmentProxy(t *testing.T) {
	np, _ := ParseNoProxy("direct.example")
	t.Setenv("HTTPS_PROXY", "http://envproxy.example:3128")
	t.Setenv("HTTP_PROXY", "")
	t.Setenv("http_proxy", "")
	t.Setenv("NO_PROXY", "*")
	pf, err := envProxy(np)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ url, want string }{
		{"https://files.example/x", "http://envproxy.example:3128"},
		{"https://direct.example/x", ""},
		{"http://files.example/x", ""},
		{"https://localhost/x", ""},
		{"https://127.0.0.1/x", ""},
	} {
		u, _ := url.Parse(tc.url)
		got, err := pf(&http.Request{URL: u})
		if err != nil {
			t.Fatal(err)
		}
		s := ""
		if got != nil {
			s = got.String()
		}
		if s != tc.want {
			t.Errorf("%s: proxy %q, want %q", tc.url, s, tc.want)
		}
	}
	t.Setenv("HTTPS_PROXY", "ftp://bad")
	if _, err := envProxy(np); err == nil || !strings.Contains(err.Error(), "HTTPS_PROXY") {
		t.Errorf("a bad HTTPS_PROXY: %v", err)
	}
}

// TestEnvironmentHTTPSProxy: an https:// proxy of the environment is spoken to in HTTP/1.1 too,
// though it offers HTTP/2.
func TestEnvironmentHTTPSProxy(t *testing.T) {
	origin := testserver.New(t)
	p := proxytest.NewHTTP(t, originHosts, "", true)
	t.Setenv("HTTPS_PROXY", p.URL(""))
	// NoProxy makes the Fetcher read the environment itself (net/http reads it once a process).
	f := newFetcher(t, origin, func(o *Options) { o.NoProxy, o.Protocol = "direct.example", ProtocolAuto })
	root, _ := newRoot(t)
	if _, err := fetch(t, f, root, originURL(origin, "/env"), "env"); err != nil {
		t.Fatal(err)
	}
	if len(p.Requests()) != 1 {
		t.Fatalf("the proxy saw %+v", p.Requests())
	}
}

// TestHTTPSProxyCA: an https proxy's certificate is checked: one the Fetcher does not trust
// fails, with the TLS class.
func TestHTTPSProxyCA(t *testing.T) {
	origin := testserver.New(t)
	p := proxytest.NewHTTP(t, originHosts, "", true)
	own := testserver.New(t, testserver.GeneratedCert([]string{"x.example"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)))
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, own.CACertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	px, _ := ParseProxy(p.URL(""))
	f := newFetcher(t, nil, func(o *Options) { o.Proxy, o.CACertFile = px, ca })
	root, _ := newRoot(t)
	_, err := fetch(t, f, root, originURL(origin, "/x"), "x")
	wantError(t, err, ClassTLS, false)
	if len(p.Requests()) != 0 {
		t.Fatal("a request reached an untrusted proxy")
	}
}
