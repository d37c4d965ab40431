package extract

import (
	"net/url"
	"strings"
	"testing"
)

// checkLinks asserts what every returned link promises: absolute http(s), already canonical,
// within MaxURLLength, with a valid Kind.
func checkLinks(t *testing.T, links []Link) {
	t.Helper()
	seen := make(map[Link]bool)
	for _, l := range links {
		if len(l.URL) > MaxURLLength {
			t.Fatalf("URL longer than MaxURLLength: %d bytes", len(l.URL))
		}
		if !strings.HasPrefix(l.URL, "http://") && !strings.HasPrefix(l.URL, "https://") {
			t.Fatalf("not http(s): %q", l.URL)
		}
		if n, err := Normalize(l.URL); err != nil || n != l.URL {
			t.Fatalf("not normalized: %q → %q, %v", l.URL, n, err)
		}
		if l.Kind != Page && l.Kind != Requisite {
			t.Fatalf("bad kind %d", l.Kind)
		}
		if seen[l] {
			t.Fatalf("duplicate %v", l)
		}
		seen[l] = true
	}
}

func FuzzHTML(f *testing.F) {
	for _, s := range []string{
		`<a href="next.html">n</a><img src="a.jpg" srcset="b.jpg 1x, c.jpg 2x">`,
		`<base href="//cdn.example.net/x/"><link rel="stylesheet icon" href="s.css"><script src=a.js></script>`,
		`<meta http-equiv=refresh content="0; url='../up'"><iframe src="/f"></iframe>`,
		`<div style="background:url( 'a b.png' )"><style>@import "x.css"; p{background:image-set("i.png" 1x)}</style>`,
		`<svg><image xlink:href="i.svg"/><a href="s.html"/></svg><noscript><img data-src=z.jpg></noscript>`,
		`<a href="HTTP://EXAMPLE.ORG:80/%7e/./a/../b?%41#x">`, `<a href=" java\nscript:x">`,
		`<img srcset=",,,a.jpg,, b.jpg (1, 2) 3x">`, `<a href="%zz%">`, `<a href="\\\\evil.example\\x">`,
		`<a href="http://[::1]:99/">`, `<a href="http://xn--bcher-kva.example/">`, `<a href="http://BÜCHER.example/">`,
		`<video poster=p.jpg><source src=v.mp4><track src=t.vtt></video><object data=o.swf>`,
	} {
		f.Add(s)
	}
	base, _ := url.Parse("https://example.org/dir/page.html")
	f.Fuzz(func(t *testing.T, page string) {
		links, err := HTML(strings.NewReader(page), base)
		if err != nil {
			t.Fatal(err)
		}
		checkLinks(t, links)
	})
}

func FuzzCSS(f *testing.F) {
	for _, s := range []string{
		`a{background:url("a.png")} b{background:url('b.png')} c{background:url(c.png)}`,
		`@import "x.css"; @import url(y.css) screen; @import 'z.css';`,
		`/* url(no) */ a:after{content:"url(no)"} @font-face{src:url(f.woff2) format("woff2")}`,
		`a{background:url(a\2e png)} b{background:url("a\"b\
c.png")}`, `a{background:-webkit-image-set("a.png" 1x, url(b.png) 2x)}`,
		`a{background:url(data:image/png;base64,AAAA)}`, `@import`, `url(`, `url("`, `\`, `/*`,
		`a{b:url(//cdn.example.net/%7e/../x.png?%2f#f)}`, `a{b:url(\0 \110000 \d800)}`,
	} {
		f.Add(s)
	}
	base, _ := url.Parse("https://example.org/css/site.css")
	f.Fuzz(func(t *testing.T, css string) {
		links, err := CSS(strings.NewReader(css), base)
		if err != nil {
			t.Fatal(err)
		}
		checkLinks(t, links)
		for _, l := range links {
			if l.Kind != Requisite {
				t.Fatalf("CSS link %v is not a requisite", l)
			}
		}
	})
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"HTTP://Example.COM:80/a/./b/../c?x#f", "http://example.com/%7e%2f%2e%2E/", "https://[2001:DB8::1]:443",
		"http://user:pass@host:8080/p?q=a b&r=é", "http://BÜCHER.example/", "http://b%C3%BCcher.example/",
		"http://example.com/a//b/../../../c/.", "http://example.com?", "http://example.com:0080", "http:x",
		"http://host/%", "http://host/?%zz", "http://[::ffff:1.2.3.4]/", "http://Ⅻ.example/",
		"http://İ.example/", "http://ǅ.example/", "http://\u212A.example/", "http://ΣΑΣ.example/", "http://%C3%9C.example/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		n, err := Normalize(raw)
		if err != nil {
			return
		}
		if len(n) > MaxURLLength {
			t.Fatalf("output longer than MaxURLLength: %d", len(n))
		}
		again, err := Normalize(n)
		if err != nil || again != n {
			t.Fatalf("not idempotent: %q → %q → %q, %v", raw, n, again, err)
		}
		u, err := url.Parse(n)
		if err != nil {
			t.Fatalf("output %q does not parse: %v", n, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			t.Fatalf("output %q: scheme %q host %q", n, u.Scheme, u.Host)
		}
	})
}
