package extract

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"everything", "HTTP://Example.COM:80/a/./b/../c?x#f", "http://example.com/a/c?x"},
		{"https default port", "https://example.com:443/", "https://example.com/"},
		{"other port kept", "https://example.com:8443/x", "https://example.com:8443/x"},
		{"port leading zeros", "http://example.com:0080/", "http://example.com/"},
		{"empty port", "http://example.com:/a", "http://example.com/a"},
		{"empty path", "http://example.com", "http://example.com/"},
		{"empty path with query", "http://example.com?a=1", "http://example.com/?a=1"},
		{"fragment dropped", "http://example.com/a#top", "http://example.com/a"},
		{"empty query dropped", "http://example.com/a?", "http://example.com/a"},
		{"tilde decoded", "http://example.com/%7euser/", "http://example.com/~user/"},
		{"unreserved decoded", "http://example.com/%41%62%2d%5F%2E", "http://example.com/Ab-_."},
		{"slash kept escaped", "http://example.com/a%2fb", "http://example.com/a%2Fb"},
		{"path sub-delims decoded", "http://example.com/%21%27%28x%29%2a", "http://example.com/!'(x)*"},
		{"other path sub-delims kept", "http://example.com/%24%26%2B%2C%3B%3D%3A%40", "http://example.com/%24%26%2B%2C%3B%3D%3A%40"},
		{"query sub-delims kept", "http://example.com/?a=%28x%29", "http://example.com/?a=%28x%29"},
		{"hex upper-cased", "http://example.com/%c3%a9?q=%e2%82%ac", "http://example.com/%C3%A9?q=%E2%82%AC"},
		{"space escaped", "http://example.com/a b?c d", "http://example.com/a%20b?c%20d"},
		{"non-ASCII escaped", "http://example.com/é?é", "http://example.com/%C3%A9?%C3%A9"},
		{"reserved in query kept", "http://example.com/?a=1&b=%26&c=/?:@+", "http://example.com/?a=1&b=%26&c=/?:@+"},
		{"brackets in query escaped", "http://example.com/?a[]=1", "http://example.com/?a%5B%5D=1"},
		{"stray percent in query", "http://example.com/?p=100%", "http://example.com/?p=100%25"},
		{"encoded dot segments", "http://example.com/a/%2E%2E/b", "http://example.com/b"},
		{"dotdot above root", "http://example.com/../../a", "http://example.com/a"},
		{"trailing dot segment", "http://example.com/a/b/..", "http://example.com/a/"},
		{"trailing single dot", "http://example.com/a/.", "http://example.com/a/"},
		{"double slash kept", "http://example.com/a//b", "http://example.com/a//b"},
		{"dots in names kept", "http://example.com/a.b/..c/d..", "http://example.com/a.b/..c/d.."},
		{"IDN punycode", "http://XN--BCHER-KVA.Example/", "http://xn--bcher-kva.example/"},
		{"IDN unicode lower-cased", "http://BÜCHER.example/", "http://bücher.example/"},
		{"IDN escaped host", "http://b%C3%BCcher.example/", "http://bücher.example/"},
		{"IPv4", "http://192.168.0.1:80/", "http://192.168.0.1/"},
		{"IPv6", "http://[2001:DB8:0:0:0:0:0:1]:8080/a", "http://[2001:db8::1]:8080/a"},
		{"IPv6 default port", "https://[::1]:443", "https://[::1]/"},
		{"userinfo kept", "http://user:p%40ss@Example.com/", "http://user:p%40ss@example.com/"},
		{"underscore host", "http://my_host.example/", "http://my_host.example/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Normalize(tc.in)
			if err != nil || got != tc.want {
				t.Fatalf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			if again, err := Normalize(got); again != got || err != nil {
				t.Fatalf("not idempotent: Normalize(%q) = %q, %v", got, again, err)
			}
		})
	}
}

func TestNormalizeErrors(t *testing.T) {
	long := "http://example.com/" + strings.Repeat("a", MaxURLLength)
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"ftp", "ftp://example.com/", ErrNotHTTP},
		{"mailto", "mailto:a@example.com", ErrNotHTTP},
		{"relative", "/a/b", ErrNotHTTP},
		{"no host", "http:///a", ErrNoHost},
		{"opaque", "http:example.com", ErrNoHost},
		{"port range", "http://example.com:70000/", ErrBadHost},
		{"port zero", "http://example.com:0/", ErrBadHost},
		{"bad host char", "http://exa*mple.com/", ErrBadHost},
		{"IPv6 zone", "http://[fe80::1%25en0]/", ErrBadHost},
		{"IPv4 in brackets", "http://[1.2.3.4]/", nil}, // url.Parse refuses it itself
		{"too long", long, ErrTooLong},
		{"far too long", long + long + long + long, ErrTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Normalize(tc.in)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Normalize(%q) = %q, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
	if _, err := Normalize("http://exa mple.com/"); err == nil {
		t.Error("space in host accepted")
	}
}

func TestResolve(t *testing.T) {
	base, _ := url.Parse("https://example.org/gallery/page.html?p=1")
	for _, tc := range []struct {
		name, ref, want string
	}{
		{"relative", "img/a.jpg", "https://example.org/gallery/img/a.jpg"},
		{"parent", "../up.html", "https://example.org/up.html"},
		{"root", "/x", "https://example.org/x"},
		{"scheme-relative", "//CDN.example.net/a.png", "https://cdn.example.net/a.png"},
		{"absolute", "http://other.example/", "http://other.example/"},
		{"query only", "?p=2", "https://example.org/gallery/page.html?p=2"},
		{"fragment cut", "next.html#top", "https://example.org/gallery/next.html"},
		{"whitespace trimmed", " \n\tnext.html \n", "https://example.org/gallery/next.html"},
		{"newline inside", "ne\nxt.ht\tml", "https://example.org/gallery/next.html"},
		{"backslashes", "..\\img\\a.jpg?x=\\", "https://example.org/img/a.jpg?x=%5C"},
		{"raw space", "my photo.jpg", "https://example.org/gallery/my%20photo.jpg"},
		{"stray percent", "100%.html", "https://example.org/gallery/100%25.html"},
		{"escaped slash kept with space", "a b%2Fc", "https://example.org/gallery/a%20b%2Fc"},
		{"upper-case scheme", "HTTPS://Example.org/A", "https://example.org/A"},
		{"unicode", "фото.jpg", "https://example.org/gallery/%D1%84%D0%BE%D1%82%D0%BE.jpg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Resolve(base, tc.ref)
			if !ok || got != tc.want {
				t.Fatalf("Resolve(%q) = %q, %v; want %q", tc.ref, got, ok, tc.want)
			}
		})
	}
}

func TestResolveIgnores(t *testing.T) {
	base, _ := url.Parse("https://example.org/gallery/")
	for _, ref := range []string{
		"", "   ", "#", "#top",
		"javascript:void(0)", "JavaScript:alert(1)", " javascript:x",
		"mailto:a@example.org", "tel:+123", "data:image/png;base64,AAAA", "about:blank",
		"ftp://example.org/f", "blob:https://example.org/x", "http://", "http://[::1",
		"https://exa mple.org/",
		"/" + strings.Repeat("a", MaxURLLength),
	} {
		t.Run(ref, func(t *testing.T) {
			if got, ok := Resolve(base, ref); ok {
				t.Fatalf("Resolve(%q) = %q, want ignored", ref, got)
			}
		})
	}
}

// FuzzOneSpelling: Normalize is idempotent, and whatever spelling an older trawl keyed a URL's
// record by — oldListNormalize's, of a list line or seed as given, or of a link after
// oldExtractNormalize — Normalize takes it to the spelling it gives the URL itself (less its
// userinfo, which the record never held), so that the store respells the record to the key a
// run asks for now. A spelling Normalize refuses outright needs nothing: no run asks for it.
func FuzzOneSpelling(f *testing.F) {
	for _, s := range []string{
		"https://h/%7Euser/a/../b?", "https://h/~user/b", "https://h/%7euser/./b", "HTTPS://H:443/%7Euser/b#x",
		"http://h/a/%2e%2E/b/%2f?q=%7e&r=%c3%a9", "http://h/?a[]=1", "http://h/a b\\c", "http://h/100%",
		"http://user:p%40ss@h:0080/x", "http://[2001:DB8:0:0:0:0:0:1]:80/", "http://b%C3%BCcher.example/",
		"http://BÜCHER.example/é?é", "http://h", "http://h:/a?", "http://h/a;b=c/../d",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		n, err := Normalize(raw)
		if err != nil {
			return
		}
		if again, err := Normalize(n); err != nil || again != n {
			t.Fatalf("not idempotent: %q → %q → %q, %v", raw, n, again, err)
		}
		want := withoutUserinfo(n)
		if old, _, err := oldListNormalize(raw); err == nil && !lossyOldPath(raw) {
			if got, err := Normalize(old); err != nil || got != want {
				t.Fatalf("%q: kept as %q by the old list normalizer, which Normalize makes %q, %v; want %q", raw, old, got, err, want)
			}
		}
		e, err := oldExtractNormalize(raw)
		if err != nil {
			return
		}
		if got, err := Normalize(e); err != nil || got != n {
			t.Fatalf("%q: %q by the old link normalizer, which Normalize makes %q, %v; want %q", raw, e, got, err, n)
		}
		if old, _, err := oldListNormalize(e); err == nil {
			if got, err := Normalize(old); err != nil || got != want {
				t.Fatalf("%q: a link kept as %q, which Normalize makes %q, %v; want %q", raw, old, got, err, want)
			}
		}
	})
}

// lossyOldPath reports the one case where oldListNormalize lost part of a URL: a path net/url
// could not keep as written (a raw space, non-ASCII, '"'...) had its escapes of $ & + , / : ; = @
// decoded, since net/url re-escaped the decoded path. Whether such a character was escaped or not
// is lost with it, and can mean another resource (%2F is not "/"; S3 reads "+" in a path as
// itself but some servers as a space): such a record is not respelled, and fetched once more.
func lossyOldPath(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.RawPath == "" || u.EscapedPath() == u.RawPath {
		return false
	}
	p := strings.ToUpper(u.RawPath)
	for _, esc := range []string{"%24", "%26", "%2B", "%2C", "%2F", "%3A", "%3B", "%3D", "%40"} {
		if strings.Contains(p, esc) {
			return true
		}
	}
	return false
}

// withoutUserinfo is canonical URL n less its userinfo.
func withoutUserinfo(n string) string {
	i := strings.Index(n, "://") + len("://")
	j := i + strings.IndexByte(n[i:], '/')
	if at := strings.LastIndexByte(n[i:j], '@'); at >= 0 {
		return n[:i] + n[i+at+1:]
	}
	return n
}

// TestLongLinkIsAScopeRule: a URL longer than a crawl's cap but within MaxURLLength is one
// Normalize and Resolve accept (a list may name it); the scope refuses it as a crawl's link.
func TestLongLinkIsAScopeRule(t *testing.T) {
	const site = "https://example.org/"
	long := site + strings.Repeat("a", MaxCrawlURLLength)
	if n, err := Normalize(long); err != nil || n != long {
		t.Fatalf("Normalize of %d bytes = %v", len(long), err)
	}
	base, _ := url.Parse(site)
	l, ok := Resolve(base, long[len(site)-1:])
	if !ok || l != long {
		t.Fatalf("Resolve of %d bytes: %v", len(long), ok)
	}
	scope, err := NewScope([]string{site}, ScopeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []Kind{Page, Requisite} {
		if ok, reason := scope.Decide(Link{URL: l, Kind: k}, 0, 0); ok || reason != ReasonTooLong {
			t.Errorf("Decide(%v of %d bytes) = %v, %q; want %q", k, len(l), ok, reason, ReasonTooLong)
		}
	}
}
