package integration_test

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/internal/proxytest"
	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestProxy: downloads through an HTTP CONNECT proxy and a SOCKS5 server arrive whole. The
// origin is named origin.example.com, which only the proxies resolve, so every file that arrives
// went through one; each proxy saw the credentials of --proxy, the origin never did, and the
// log never shows the password.
func TestProxy(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	const cred, password = "pu:pr0xyPass", "pr0xyPass"
	hosts := proxytest.Hosts{"origin.example.com": "127.0.0.1"}
	httpProxy := proxytest.NewHTTP(t, hosts, cred, false)
	socks := proxytest.NewSOCKS(t, hosts, cred)
	_, port, _ := net.SplitHostPort(s.Addr())
	origin := "https://origin.example.com:" + port

	for _, tc := range []struct {
		name    string
		proxy   string
		carried func() bool
	}{
		{"http CONNECT", httpProxy.URL(cred), func() bool {
			for _, r := range httpProxy.Requests() {
				if r.Method == "CONNECT" && r.Target == "origin.example.com:"+port && r.Auth == cred {
					return true
				}
			}
			return false
		}},
		{"socks5h", "socks5h://" + cred + "@" + socks.Addr(), func() bool {
			for _, c := range socks.Conns() {
				if c.Name && c.Target == "origin.example.com:"+port && c.Auth == cred {
					return true
				}
			}
			return false
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			path := "/" + strings.ReplaceAll(tc.name, " ", "-") + ".bin"
			s.Handle(path, testserver.Size(200<<10))
			r := runTrawl(t, "get", "-o", out, "--ca-cert", ca, "-v", "--proxy", tc.proxy, origin+path)
			wantExit(t, r, exitOK)
			if got, want := fileSHA256(t, filepath.Join(out, "origin.example.com:"+port, path[1:])), s.SHA256(path); got != want {
				t.Errorf("the file differs from the origin's")
			}
			if !tc.carried() {
				t.Errorf("the proxy saw no tunnel to the origin with the credentials")
			}
			for _, req := range s.Requests() {
				if v := req.Header.Get("Proxy-Authorization"); v != "" {
					t.Errorf("the origin saw Proxy-Authorization %q", v)
				}
			}
			if strings.Contains(r.stderr, password) {
				t.Errorf("the log shows the proxy password:\n%s", r.stderr)
			}
		})
	}

	t.Run("wrong credentials fail, unshown", func(t *testing.T) {
		for _, p := range []string{httpProxy.URL("pu:Wr0ngPass"), "socks5h://pu:Wr0ngPass@" + socks.Addr()} {
			out := filepath.Join(t.TempDir(), "out")
			r := runTrawl(t, "get", "-o", out, "--ca-cert", ca, "--retries", "0", "--proxy", p, origin+"/denied.bin")
			if r.code == exitOK {
				t.Fatalf("%s: a download went through a proxy that refused its credentials", p)
			}
			if strings.HasPrefix(p, "http:") && (r.code != exitFailed || !strings.Contains(r.stderr, "HTTP 407 Proxy Authentication Required: the proxy refused a tunnel")) {
				// The proxy's refusal is an answer, not a network failure to retry.
				t.Errorf("exit %d, want %d with the 407 in the log:\n%s", r.code, exitFailed, r.stderr)
			}
			if strings.Contains(r.stderr, "Wr0ngPass") {
				t.Errorf("the log shows the proxy password:\n%s", r.stderr)
			}
		}
	})
}

// TestProxyUsageErrors: a --proxy trawl cannot use, or a malformed --no-proxy, is a usage error
// before any work, in one line that never shows the proxy password.
func TestProxyUsageErrors(t *testing.T) {
	t.Parallel()
	const url = "https://127.0.0.1:1/never.bin" // nothing listens: a run that started would fail with 1
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"scheme", []string{"--proxy", "ftp://u:Secr3t@proxy.example:21"}, `--proxy: ftp://u:xxxxx@proxy.example:21: unsupported proxy scheme "ftp" (want http, https, socks5 or socks5h)`},
		{"unparsable", []string{"--proxy", "http://u:Secr3t@proxy example"}, "--proxy: not a proxy URL"},
		{"path", []string{"--proxy", "http://u:Secr3t@proxy.example/p"}, "no path or query"},
		{"no-proxy", []string{"--no-proxy", "intranet.example,10.0.0.0/40"}, `--no-proxy: "10.0.0.0/40" is not a CIDR block`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			r := runTrawl(t, append(append([]string{"get", "-o", out}, tc.args...), url)...)
			wantExit(t, r, exitUsage)
			if !strings.Contains(r.stderr, tc.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
				t.Errorf("stderr:\n%s\nwant one line with %q", r.stderr, tc.want)
			}
			if strings.Contains(r.stderr, "Secr3t") {
				t.Errorf("stderr shows the password:\n%s", r.stderr)
			}
			wantNoFile(t, out)
		})
	}
}
