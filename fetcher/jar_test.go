package fetcher

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestCookieJarRecord: the record keeps what the jar keeps, keyed as the jar keys it, so that
// a save writes exactly the cookies the jar would send.
func TestCookieJarRecord(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	type set struct {
		url    string
		header string // a Set-Cookie value
	}
	for _, tc := range []struct {
		name string
		sets []set
		want []Cookie
	}{
		{"host-only", []set{{"https://www.example.com/a/b.html", "h=1"}},
			[]Cookie{{Domain: "www.example.com", Path: "/a", Name: "h", Value: "1"}}},
		{"domain cookie", []set{{"https://www.example.com/", "d=1; Domain=.Example.COM; Path=/; Secure; HttpOnly; Max-Age=60"}},
			[]Cookie{{Domain: "example.com", Subdomains: true, Path: "/", Secure: true, HTTPOnly: true, Expires: now.Add(time.Minute), Name: "d", Value: "1"}}},
		{"another site's domain is refused", []set{{"https://www.example.com/", "x=1; Domain=example.org"}}, nil},
		{"a public suffix is refused", []set{{"https://www.example.co.uk/", "x=1; Domain=co.uk"}}, nil},
		{"a public suffix's own host keeps it as host-only", []set{{"https://github.io/", "x=1; Domain=github.io"}},
			[]Cookie{{Domain: "github.io", Path: "/", Name: "x", Value: "1"}}},
		{"an IP address is host-only", []set{{"http://127.0.0.1:8080/", "ip=1; Domain=127.0.0.1; Expires=Fri, 01 Jan 2100 00:00:00 GMT"}},
			[]Cookie{{Domain: "127.0.0.1", Path: "/", Expires: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), Name: "ip", Value: "1"}}},
		{"another IP address is refused", []set{{"http://127.0.0.1/", "ip=1; Domain=127.0.0.2"}}, nil},
		{"set again replaces", []set{{"https://h.example/", "a=1; Path=/"}, {"https://h.example/x", "a=2; Path=/"}},
			[]Cookie{{Domain: "h.example", Path: "/", Name: "a", Value: "2"}}},
		{"two paths are two cookies", []set{{"https://h.example/", "a=1; Path=/"}, {"https://h.example/", "a=2; Path=/p"}},
			[]Cookie{{Domain: "h.example", Path: "/", Name: "a", Value: "1"}, {Domain: "h.example", Path: "/p", Name: "a", Value: "2"}}},
		{"Max-Age=0 deletes", []set{{"https://h.example/", "a=1"}, {"https://h.example/", "a=; Max-Age=0"}}, nil},
		{"an Expires in the past deletes", []set{{"https://h.example/", "a=1"}, {"https://h.example/", "a=1; Expires=Thu, 01 Jan 1970 00:00:01 GMT"}}, nil},
		{"a quoted value stays quoted", []set{{"https://h.example/", `q="a b"`}},
			[]Cookie{{Domain: "h.example", Path: "/", Name: "q", Value: `"a b"`}}},
		{"not http", []set{{"ftp://h.example/", "a=1"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newCookieJar(true)
			j.now = func() time.Time { return now }
			for _, s := range tc.sets {
				u, _ := url.Parse(s.url)
				h := http.Header{"Set-Cookie": {s.header}}
				j.SetCookies(u, (&http.Response{Header: h}).Cookies())
			}
			got := sortCookies(j.saved())
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("saved\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// TestCookieJarSavesWhatItHolds: a cookie is saved only while the jar holds it; a loaded file's
// cookies are saved again, except the expired.
func TestCookieJarSavesWhatItHolds(t *testing.T) {
	j := newCookieJar(true)
	past := time.Now().Add(-time.Hour).Truncate(time.Second).UTC()
	later := time.Now().Add(time.Hour).Truncate(time.Second).UTC()
	loaded := []Cookie{
		{Domain: "example.com", Subdomains: true, Path: "/", Expires: later, Name: "keep", Value: "1"},
		{Domain: "example.com", Path: "/", Expires: past, Name: "old", Value: "1"},
		{Domain: "co.uk", Subdomains: true, Path: "/", Name: "psl", Value: "1"},
		{Domain: "h.example", Path: "/s", Secure: true, Name: "sec", Value: "1"},
	}
	j.load(loaded)
	want := []Cookie{{Domain: "co.uk", Path: "/", Name: "psl", Value: "1"}, loaded[0], loaded[3]}
	if got := sortCookies(j.saved()); !reflect.DeepEqual(got, want) {
		t.Fatalf("saved\n%+v\nwant\n%+v", got, want)
	}
	// The jar sends what it was loaded with, as RFC 6265 says.
	for _, tc := range []struct {
		url  string
		want string
	}{
		{"https://www.example.com/", "keep=1"},
		{"http://h.example/s/x", ""}, // secure: https only
		{"https://h.example/s/x", "sec=1"},
		{"https://h.example/other", ""},
		{"https://www.example.org/", ""},
	} {
		u, _ := url.Parse(tc.url)
		var got []string
		for _, c := range j.Cookies(u) {
			got = append(got, c.Name+"="+c.Value)
		}
		if strings.Join(got, "; ") != tc.want {
			t.Errorf("%s gets %q, want %q", tc.url, got, tc.want)
		}
	}
	// Expired in the jar since: not saved.
	j.now = func() time.Time { return later.Add(time.Second) }
	if got := j.saved(); len(got) != 2 { // the two session cookies
		t.Errorf("after expiry saved %+v", got)
	}
	// Without a record, nothing is listed.
	j = newCookieJar(false)
	j.load(loaded)
	if got := j.saved(); got != nil {
		t.Errorf("a jar without a record saved %+v", got)
	}
}

func sortCookies(cs []Cookie) []Cookie {
	slices.SortFunc(cs, func(a, b Cookie) int {
		return strings.Compare(a.Domain+";"+a.Path+";"+a.Name, b.Domain+";"+b.Path+";"+b.Name)
	})
	return cs
}

// TestCookiesFollowRFC6265: cookies a server sets go back to the hosts their domain covers, over
// a redirect to another host too, and never to another; a -H Cookie header still goes to the
// URL's own host alone; a cookie loaded from a file goes to its host.
func TestCookiesFollowRFC6265(t *testing.T) {
	a := testserver.New(t)
	b := testserver.New(t)
	port := func(s *testserver.Server) string { _, p, _ := net.SplitHostPort(s.Addr()); return p }
	aURL := func(host, path string) string { return "https://" + host + ":" + port(a) + path }
	bURL := func(host, path string) string { return "https://" + host + ":" + port(b) + path }
	// Every name under example.com is 127.0.0.1 (the shared test certificate covers example.com
	// and *.example.com): a's port or b's.
	loaded := []Cookie{{Domain: "www.example.com", Path: "/", Name: "fromfile", Value: "1"}}
	f := newFetcher(t, a, func(o *Options) {
		o.Header = http.Header{"Cookie": {"hdr=1"}}
		o.Cookies = loaded
		o.RecordCookies = true
	})
	d := f.dial
	f.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, _ := net.SplitHostPort(addr); strings.HasSuffix(host, "example.com") {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return d(ctx, network, addr)
	}
	root, _ := newRoot(t)

	a.Handle("/set", testserver.Header("Set-Cookie", "host=1; Path=/"),
		testserver.Header("Set-Cookie", "dom=1; Domain=example.com; Path=/"))
	if _, err := fetch(t, f, root, aURL("www.example.com", "/set"), "set"); err != nil {
		t.Fatal(err)
	}
	cookieOf := func(s *testserver.Server, path string) []string {
		t.Helper()
		reqs := s.RequestsFor(path)
		if len(reqs) == 0 {
			t.Fatalf("no request for %s", path)
		}
		var got []string
		for _, v := range reqs[len(reqs)-1].Header.Values("Cookie") {
			for _, c := range strings.Split(v, "; ") {
				got = append(got, c)
			}
		}
		slices.Sort(got)
		return got
	}
	if got := cookieOf(a, "/set"); !reflect.DeepEqual(got, []string{"fromfile=1", "hdr=1"}) {
		t.Errorf("first request carried %q", got)
	}

	for _, tc := range []struct {
		name     string
		from, to string // a redirect from a URL of a to one of b (or a)
		srv      *testserver.Server
		want     []string
	}{
		{"same host", aURL("www.example.com", "/r1"), aURL("www.example.com", "/d1"), a,
			[]string{"dom=1", "fromfile=1", "hdr=1", "host=1"}},
		{"another host the domain cookie covers", aURL("www.example.com", "/r2"), bURL("other.example.com", "/d2"), b,
			[]string{"dom=1"}},
		{"the domain itself", aURL("www.example.com", "/r3"), bURL("example.com", "/d3"), b,
			[]string{"dom=1"}},
		{"another port of the host: cookies are not per port", aURL("www.example.com", "/r4"), bURL("www.example.com", "/d4"), b,
			[]string{"dom=1", "fromfile=1", "host=1"}},
		{"an IP address nothing was set for", aURL("www.example.com", "/r5"), b.URL("/d5"), b, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.from[strings.LastIndex(tc.from, "/"):]
			a.Handle(path, testserver.Redirect(tc.to))
			if _, err := fetch(t, f, root, tc.from, strings.TrimPrefix(path, "/")); err != nil {
				t.Fatal(err)
			}
			dst := tc.to[strings.LastIndex(tc.to, "/"):]
			if got := cookieOf(tc.srv, dst); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("after the redirect %s got cookies %q, want %q", tc.to, got, tc.want)
			}
		})
	}

	saved := sortCookies(f.Cookies())
	want := []Cookie{
		{Domain: "example.com", Subdomains: true, Path: "/", Name: "dom", Value: "1"},
		{Domain: "www.example.com", Path: "/", Name: "fromfile", Value: "1"},
		{Domain: "www.example.com", Path: "/", Name: "host", Value: "1"},
	}
	if !reflect.DeepEqual(saved, want) {
		t.Fatalf("Cookies()\n%+v\nwant\n%+v", saved, want)
	}
}

// TestEveryClientSendsCookiesOnce: a big body asked again over HTTP/1.1, and the ranges of a
// segmented download, carry the jar's cookies and the .netrc login as the first request did:
// each once (the client adds the jar's cookies to a request's own header, so a request asked
// again must not start from that header).
func TestEveryClientSendsCookiesOnce(t *testing.T) {
	netrc, err := ParseNetrc(strings.NewReader("default login u password p\n"), "netrc")
	if err != nil {
		t.Fatal(err)
	}
	loaded := []Cookie{{Domain: "127.0.0.1", Path: "/", Name: "a", Value: "1"}}
	for _, tc := range []struct {
		name   string
		server []testserver.Option
		opts   func(*Options)
	}{
		{"asked again over HTTP/1.1", []testserver.Option{testserver.Size(BulkBodySize)}, func(o *Options) { o.Protocol = ProtocolAuto }},
		{"segments", []testserver.Option{testserver.Size(segSize), testserver.AcceptRanges()}, forceSplit(4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.New(t, tc.server...)
			f := newSegFetcher(t, srv, tc.opts, func(o *Options) { o.Cookies, o.Netrc = loaded, netrc })
			root, _ := newRoot(t)
			c := &conns{t: t, limit: 16}
			if _, err := fetchReq(t, f, root, c.request(srv.URL("/f"), "f")); err != nil {
				t.Fatal(err)
			}
			reqs := srv.RequestsFor("/f")
			if len(reqs) < 2 {
				t.Fatalf("%d requests, want the first and at least one more", len(reqs))
			}
			for i, r := range reqs {
				if got := r.Header.Values("Cookie"); !slices.Equal(got, []string{"a=1"}) {
					t.Errorf("request %d (%s, Range %q) carried cookies %q, want a=1 once", i, r.Proto, r.Header.Get("Range"), got)
				}
				if got := r.Header.Values("Authorization"); len(got) != 1 || !strings.HasPrefix(got[0], "Basic ") {
					t.Errorf("request %d carried Authorization %q, want the .netrc login once", i, got)
				}
			}
		})
	}
}
