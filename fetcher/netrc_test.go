package fetcher

import (
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/internal/testserver"
)

func TestParseNetrc(t *testing.T) {
	const file = `# logins
machine files.example.com login alice password "s3cret pass"
machine Other.Example.ORG.
  login bob
  account ignored
  password p\w#1

macdef init
cd /pub
machine fake login mallory password nope

machine nopw login carol
machine nologin password x
default login anonymous password guest@
machine after login dave password d
`
	n, err := ParseNetrc(strings.NewReader(file), ".netrc")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, login, password string
		ok                    bool
	}{
		{"files.example.com", "alice", "s3cret pass", true},
		{"FILES.example.com.", "alice", "s3cret pass", true},
		{"other.example.org", "bob", `p\w#1`, true},
		{"fake", "anonymous", "guest@", true}, // inside the macro: not an entry
		{"nopw", "carol", "", true},
		{"nologin", "", "x", false},
		{"after", "dave", "d", true},
		{"elsewhere.example", "anonymous", "guest@", true},
	} {
		login, pw, ok := n.Login(tc.host)
		if login != tc.login || pw != tc.password || ok != tc.ok {
			t.Errorf("Login(%q) = %q, %q, %v; want %q, %q, %v", tc.host, login, pw, ok, tc.login, tc.password, tc.ok)
		}
	}
	n, err = ParseNetrc(strings.NewReader("machine a login x password y\n"), "f")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := n.Login("b"); ok {
		t.Error("a host without an entry, and no default, has a login")
	}
	if _, _, ok := (*Netrc)(nil).Login("a"); ok {
		t.Error("a nil Netrc has a login")
	}
	n, err = ParseNetrc(strings.NewReader(`machine q login "a\"b" password "\\\t\n"`), "f")
	if login, pw, _ := n.Login("q"); err != nil || login != `a"b` || pw != "\\\t\n" {
		t.Errorf("escapes: %q %q %v", login, pw, err)
	}
}

func TestParseNetrcErrors(t *testing.T) {
	for _, tc := range []struct {
		file string
		line int
		want string
	}{
		{"machine a login x\npassword", 2, "password needs a value"},
		{"machine", 1, "machine needs a value"},
		{"login x password y", 1, "login before any machine or default"},
		{"machine a\n\n login x passwd secretword", 3, "unexpected word"},
		{"machine a login x password my secret", 1, "unexpected word"},
		{"machine a login x password y # work account", 1, "a # comment must start its line"},
		{"machine a login x password y #secret", 1, "a # comment must start its line"},
		{"machine a login x password \"open", 1, "quoted value does not end"},
		{"machine a login x\npassword \"open\nmore\"", 2, "does not end on its line"},
		{"machine \"\" login x", 1, "machine needs a host name"},
	} {
		_, err := ParseNetrc(strings.NewReader(tc.file), "/home/u/.netrc")
		if err == nil {
			t.Errorf("%q: no error", tc.file)
			continue
		}
		prefix := "netrc file /home/u/.netrc line " + itoa(int64(tc.line)) + ": "
		if msg := err.Error(); !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tc.want) {
			t.Errorf("%q: error %q, want %q...%q", tc.file, msg, prefix, tc.want)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: the error repeats a password: %q", tc.file, err)
		}
	}
}

// TestLoadNetrc: a .netrc others may read or write is refused, with the fix in the message.
func TestLoadNetrc(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "netrc")
	if err := os.WriteFile(path, []byte("machine h login u password p\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := LoadNetrc(path)
	if err != nil {
		t.Fatal(err)
	}
	if u, _, ok := n.Login("h"); !ok || u != "u" {
		t.Fatalf("Login: %q %v", u, ok)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620, 0o602} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadNetrc(path)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	if _, err := LoadNetrc(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing file: %v", err)
	}
	if _, err := LoadNetrc(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory: %v", err)
	}
}

// TestNetrcCredentials: a .netrc login goes to its host as Basic credentials, follows a redirect
// within the origin, and never one to another host, which gets its own entry's login (an entry
// names a host, not a port: the same name on another port is that host); userinfo in the URL
// and an Authorization of -H take precedence.
func TestNetrcCredentials(t *testing.T) {
	a := testserver.New(t)
	b := testserver.New(t)
	netrc, err := ParseNetrc(strings.NewReader("machine login.example.com login alice password wonderland\nmachine other.example.com login bob password builder\n"), "netrc")
	if err != nil {
		t.Fatal(err)
	}
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	port := func(s *testserver.Server) string { _, p, _ := net.SplitHostPort(s.Addr()); return p }
	aURL := "https://login.example.com:" + port(a)
	for _, tc := range []struct {
		name      string
		header    http.Header
		from, to  string
		dst       *testserver.Server
		wantFirst string // Authorization of the first request
		wantLast  string // of the request after the redirect
	}{
		{"same host", nil, aURL + "/s1", aURL + "/d1", a, basic("alice:wonderland"), basic("alice:wonderland")},
		{"another host", nil, aURL + "/s2", b.URL("/d2"), b, basic("alice:wonderland"), ""},
		{"the same name on another port", nil, aURL + "/s3", "https://login.example.com:" + port(b) + "/d3", b, basic("alice:wonderland"), basic("alice:wonderland")},
		{"another host with an entry", nil, aURL + "/s7", "https://other.example.com:" + port(b) + "/d7", b, basic("alice:wonderland"), basic("bob:builder")},
		{"-H to another host with an entry", http.Header{"Authorization": {"Bearer tok"}}, aURL + "/s8", "https://other.example.com:" + port(b) + "/d8", b, "Bearer tok", basic("bob:builder")},
		{"userinfo first", nil, "https://me:pw@login.example.com:" + port(a) + "/s4", aURL + "/d4", a, basic("me:pw"), ""},
		{"-H first", http.Header{"Authorization": {"Bearer tok"}}, aURL + "/s5", aURL + "/d5", a, "Bearer tok", "Bearer tok"},
		{"a host without an entry", nil, a.URL("/s6"), a.URL("/d6"), a, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFetcher(t, a, func(o *Options) { o.Netrc, o.Header = netrc, tc.header })
			d := f.dial
			f.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				if host, p, _ := net.SplitHostPort(addr); host == "login.example.com" || host == "other.example.com" {
					addr = net.JoinHostPort("127.0.0.1", p)
				}
				return d(ctx, network, addr)
			}
			root, _ := newRoot(t)
			src := tc.from[strings.LastIndex(tc.from, "/"):]
			a.Handle(src, testserver.Redirect(tc.to))
			if _, err := fetch(t, f, root, tc.from, "f"); err != nil {
				t.Fatal(err)
			}
			first := a.RequestsFor(src)
			last := tc.dst.RequestsFor(tc.to[strings.LastIndex(tc.to, "/"):])
			if len(first) != 1 || len(last) != 1 {
				t.Fatalf("%d and %d requests", len(first), len(last))
			}
			if got := first[0].Header.Get("Authorization"); got != tc.wantFirst {
				t.Errorf("first request: Authorization %q, want %q", got, tc.wantFirst)
			}
			if got := last[0].Header.Get("Authorization"); got != tc.wantLast {
				t.Errorf("after the redirect: Authorization %q, want %q", got, tc.wantLast)
			}
		})
	}
}

func FuzzParseNetrc(f *testing.F) {
	for _, s := range []string{
		"machine a login b password c\ndefault login d password e\n",
		"# c\nmachine \"a b\" login \"x\\\"y\" password \"\\n\"\n",
		"macdef m\nline\n\nmachine z login y\n",
		"machine a\n  login\n  b\n",
		"password",
		"machine a login x password \"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNetrc(strings.NewReader(s), "fuzz")
		if err != nil {
			if strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "netrc file fuzz line ") {
				t.Fatalf("error %q", err)
			}
			return
		}
		for _, e := range n.machines {
			if e.machine == "" {
				t.Fatal("a machine entry without a name")
			}
			n.Login(e.machine)
		}
	})
}
