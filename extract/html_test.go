package extract

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

const pageURL = "https://example.org/gallery/index.html"

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// links parses page at pageURL and fails the test on error.
func links(t testing.TB, page string) []Link {
	t.Helper()
	got, err := HTML(strings.NewReader(page), mustURL(t, pageURL))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// P and R abbreviate expected links, relative to https://example.org/gallery/.
func P(s string) Link { return Link{URL: abs(s), Kind: Page} }
func R(s string) Link { return Link{URL: abs(s), Kind: Requisite} }

func abs(s string) string {
	if strings.Contains(s, "://") {
		return s
	}
	if strings.HasPrefix(s, "/") {
		return "https://example.org" + s
	}
	return "https://example.org/gallery/" + s
}

// htmlCase is a page and the links HTML must find in it.
type htmlCase struct {
	name, page string
	want       []Link
}

// htmlCases is the specification of what HTML finds, element by element.
var htmlCases = []htmlCase{
	{"a href", `<a href="next.html">n</a>`, []Link{P("next.html")}},
	{"a download", `<a href="f.zip" download>f</a>`, []Link{P("f.zip")}},
	{"area href", `<map><area href="/map/1" shape=rect></map>`, []Link{P("/map/1")}},
	{"img src", `<img src="a.jpg">`, []Link{R("a.jpg")}},
	{"img srcset", `<img srcset="a.jpg 1x, b.jpg 2x">`, []Link{R("a.jpg"), R("b.jpg")}},
	{"img src and srcset", `<img src="s.jpg" srcset="m.jpg 640w, l.jpg 1280w" sizes="50vw">`,
		[]Link{R("s.jpg"), R("m.jpg"), R("l.jpg")}},
	{"img data-src", `<img src="blank.gif" data-src="real.jpg">`, []Link{R("blank.gif"), R("real.jpg")}},
	{"img data-srcset", `<img data-srcset="a.jpg 1x,b.jpg 2x">`, []Link{R("a.jpg"), R("b.jpg")}},
	{"img other lazy attrs", `<img data-lazy-src="a.jpg" data-original="b.jpg" data-lazy-srcset="c.jpg 2x">`,
		[]Link{R("a.jpg"), R("b.jpg"), R("c.jpg")}},
	{"picture source srcset", `<picture><source srcset="a.webp" type="image/webp"><img src="a.jpg"></picture>`,
		[]Link{R("a.webp"), R("a.jpg")}},
	{"link stylesheet", `<link rel="stylesheet" href="/s.css">`, []Link{R("/s.css")}},
	{"link icon", `<link rel="icon" href="/favicon.ico">`, []Link{R("/favicon.ico")}},
	{"link shortcut icon", `<link rel="Shortcut Icon" href="/f.ico">`, []Link{R("/f.ico")}},
	{"link apple-touch-icon", `<link rel=apple-touch-icon href=/t.png>`, []Link{R("/t.png")}},
	{"link preload", `<link rel=preload as=font href=/f.woff2 crossorigin>`, []Link{R("/f.woff2")}},
	{"link preload imagesrcset", `<link rel=preload as=image imagesrcset="a.jpg 1x, b.jpg 2x">`,
		[]Link{R("a.jpg"), R("b.jpg")}},
	{"link modulepreload", `<link rel=modulepreload href=m.js>`, []Link{R("m.js")}},
	{"link prefetch", `<link rel=prefetch href=p.js>`, []Link{R("p.js")}},
	{"link manifest", `<link rel=manifest href=/m.json>`, []Link{R("/m.json")}},
	{"link alternate stylesheet", `<link rel="alternate stylesheet" href=alt.css>`, []Link{R("alt.css")}},
	{"link next", `<link rel=next href=page2.html>`, []Link{P("page2.html")}},
	{"link prev", `<link rel=prev href=page0.html>`, []Link{P("page0.html")}},
	{"link alternate", `<link rel=alternate hreflang=fr href=/fr/>`, []Link{P("/fr/")}},
	{"link canonical", `<link rel=canonical href="https://example.org/gallery/">`, []Link{P("/gallery/")}},
	{"link search help license author", `<link rel="search" type="application/opensearchdescription+xml" href="_static/opensearch.xml"><link rel=help href=help.html><link rel=license href=/license.html><link rel=author href=/about.html>`,
		[]Link{P("_static/opensearch.xml"), P("help.html"), P("/license.html"), P("/about.html")}},
	{"link ignored rels", `<link rel=dns-prefetch href=//cdn.example><link rel=preconnect href=https://cdn.example><link href=norel.css>`, nil},
	{"script src", `<script src="app.js"></script><script>var x = "<img src=no.jpg>"</script>`, []Link{R("app.js")}},
	{"iframe src", `<iframe src="embed.html"></iframe>`, []Link{P("embed.html")}},
	{"iframe data-src", `<iframe data-src="lazy.html"></iframe>`, []Link{P("lazy.html")}},
	{"frame src", `<frameset><frame src="f.html"></frameset>`, []Link{P("f.html")}},
	{"video src poster", `<video src="v.mp4" poster="v.jpg"></video>`, []Link{R("v.mp4"), R("v.jpg")}},
	{"video source track", `<video><source src="v.webm" type="video/webm"><track src="v.vtt"></video>`,
		[]Link{R("v.webm"), R("v.vtt")}},
	{"audio src", `<audio src="a.mp3"></audio><audio><source src="a.ogg"></audio>`, []Link{R("a.mp3"), R("a.ogg")}},
	{"embed object", `<embed src="e.swf"><object data="o.svg"></object>`, []Link{R("e.swf"), R("o.svg")}},
	{"input image", `<form><input type=image src="go.png"></form>`, []Link{R("go.png")}},
	{"body background", `<body background="bg.gif"><table background="t.gif"><tr><td background="c.gif">`,
		[]Link{R("bg.gif"), R("t.gif"), R("c.gif")}},
	{"meta refresh", `<meta http-equiv="refresh" content="5; url=/next">`, []Link{P("/next")}},
	{"meta refresh upper", `<meta http-equiv="REFRESH" content="0;URL='later.html'">`, []Link{P("later.html")}},
	{"meta refresh no url", `<meta http-equiv=refresh content="30">`, nil},
	{"meta other", `<meta name=refresh content="0; url=/no">`, nil},
	{"style attribute", `<div style="background: url('bg.png')"></div>`, []Link{R("bg.png")}},
	{"style element", `<style>@import "a.css"; body { background: url(b.png) }</style>`, []Link{R("a.css"), R("b.png")}},
	{"noscript fallback", `<noscript><img src="real.jpg"></noscript>`, []Link{R("real.jpg")}},
	{"svg image", `<svg><image href="i.png"/><image xlink:href="j.png"/><use href="sprite.svg#x"/></svg>`,
		[]Link{R("i.png"), R("j.png"), R("sprite.svg")}},
	{"svg a", `<svg><a href="s.html"><text>x</text></a></svg>`, []Link{P("s.html")}},
	{"template", `<template><img src="t.jpg"></template>`, []Link{R("t.jpg")}},
	{"ignored schemes", `<a href="javascript:void(0)">j</a><a href="mailto:x@example.org">m</a><a href="#top">t</a>
			<img src="data:image/gif;base64,R0lGOD"><a href="tel:1">t</a><a href="">e</a><a>none</a>`, nil},
	{"entities", `<a href="a.html?x=1&amp;y=2">e</a>`, []Link{P("a.html?x=1&y=2")}},
	{"dedup and order", `<a href="b.html">1</a><img src="a.jpg"><a href="./b.html#x">2</a><img src="A.jpg"><a href="a.jpg">3</a><img src=a.jpg>`,
		[]Link{P("b.html"), R("a.jpg"), R("A.jpg"), P("a.jpg")}},
	{"off-host kept", `<img src="https://cdn.example.net/x.jpg"><a href="http://other.example/">o</a>`,
		[]Link{R("https://cdn.example.net/x.jpg"), P("http://other.example/")}},
	{"uppercase tags", `<A HREF="Up.html">u</A><IMG SRC="I.PNG">`, []Link{P("Up.html"), R("I.PNG")}},
	{"broken markup", `<a href="x.html"<img src=y.jpg><a href='z.html`, []Link{P("x.html")}},
}

func TestHTML(t *testing.T) {
	for _, tc := range htmlCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := links(t, tc.page); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("HTML(%s)\n got %v\nwant %v", tc.page, got, tc.want)
			}
		})
	}
}

// htmlBaseCases are pages with a <base href>.
var htmlBaseCases = []htmlCase{
	{"absolute", `<base href="https://cdn.example.net/assets/"><img src="a.jpg"><a href="/p">p</a>`,
		[]Link{R("https://cdn.example.net/assets/a.jpg"), P("https://cdn.example.net/p")}},
	{"relative", `<base href="../other/"><img src="a.jpg">`, []Link{R("/other/a.jpg")}},
	{"root-relative", `<base href="/static/x.html"><img src="a.jpg">`, []Link{R("/static/a.jpg")}},
	{"late base still applies", `<img src="a.jpg"><base href="/b/">`, []Link{R("/b/a.jpg")}},
	{"first base wins", `<base href="/one/"><base href="/two/"><img src="a.jpg">`, []Link{R("/one/a.jpg")}},
	{"base without href skipped", `<base target="_blank"><base href="/two/"><img src="a.jpg">`, []Link{R("/two/a.jpg")}},
	{"javascript base ignored", `<base href="javascript:x"><img src="a.jpg">`, []Link{R("a.jpg")}},
	{"style resolved against base", `<base href="/css/"><div style="background:url(bg.png)">`, []Link{R("/css/bg.png")}},
}

func TestHTMLBase(t *testing.T) {
	for _, tc := range htmlBaseCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := links(t, tc.page); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestRefreshURL(t *testing.T) {
	for _, tc := range []struct {
		content, want string
	}{
		{"5; url=/next", "/next"},
		{"5;url=/next", "/next"},
		{"0; URL=/next", "/next"},
		{"0;Url = /next", "/next"},
		{"0; url='/next'", "/next"},
		{`0; url="/next" junk`, "/next"},
		{"0; url='/unterminated", "/unterminated"},
		{"3, /next", "/next"},
		{"3 /next", "/next"},
		{"1.5; url=/next", "/next"},
		{"url=/no-delay", "/no-delay"},
		{"0; urlish.html", "urlish.html"},
		{"  10  ", ""},
		{"", ""},
		{"0;", ""},
	} {
		t.Run(tc.content, func(t *testing.T) {
			got, ok := refreshURL(tc.content)
			if got != tc.want || ok != (tc.want != "") {
				t.Fatalf("refreshURL(%q) = %q, %v; want %q", tc.content, got, ok, tc.want)
			}
		})
	}
}

func TestHTMLBadBase(t *testing.T) {
	for _, base := range []string{"", "/relative", "ftp://example.org/", "mailto:x@example.org"} {
		_, err := HTML(strings.NewReader(`<a href="x">`), mustURL(t, base))
		if !errors.Is(err, ErrNoBase) {
			t.Errorf("base %q: err = %v, want ErrNoBase", base, err)
		}
	}
	if _, err := HTML(strings.NewReader(""), nil); !errors.Is(err, ErrNoBase) {
		t.Errorf("nil base: err = %v", err)
	}
}

func TestHTMLReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := io.MultiReader(strings.NewReader(`<a href="x">`), &failReader{boom})
	if _, err := HTML(r, mustURL(t, pageURL)); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
}

type failReader struct{ err error }

func (f *failReader) Read([]byte) (int, error) { return 0, f.err }

// countingReader counts the bytes read through it, to check how much a parser consumed.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestHTMLParseCap checks that a 10 MiB page is read only up to MaxParseBytes: links in its
// first part are found, links after the cap are not, and no more than the cap is consumed.
func TestHTMLParseCap(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(`<html><body><a href="first.html">f</a>`)
	filler := strings.Repeat("<p>lorem ipsum dolor sit amet</p>\n", 1024)
	for b.Len() < MaxParseBytes-len(filler) {
		b.WriteString(filler)
	}
	b.WriteString(`<a href="edge.html">e</a>`)
	for b.Len() < MaxParseBytes+len(filler) {
		b.WriteString(filler)
	}
	b.WriteString(`<a href="after-cap.html">a</a>`)
	for b.Len() < 10<<20 {
		b.WriteString(filler)
	}
	b.WriteString(`<a href="last.html">l</a></body></html>`)

	cr := &countingReader{r: &b}
	got, err := HTML(cr, mustURL(t, pageURL))
	if err != nil {
		t.Fatal(err)
	}
	want := []Link{P("first.html"), P("edge.html")}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if cr.n > MaxParseBytes {
		t.Fatalf("read %d bytes, cap is %d", cr.n, MaxParseBytes)
	}
}

func TestCSSParseCap(t *testing.T) {
	var b strings.Builder
	b.WriteString("a{background:url(first.png)}\n")
	b.WriteString(strings.Repeat("/* padding padding padding padding */\n", MaxParseBytes/38+1))
	b.WriteString("b{background:url(after.png)}\n")
	cr := &countingReader{r: strings.NewReader(b.String())}
	got, err := CSS(cr, mustURL(t, pageURL))
	if err != nil {
		t.Fatal(err)
	}
	if want := []Link{R("first.png")}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if cr.n > MaxParseBytes {
		t.Fatalf("read %d bytes, cap is %d", cr.n, MaxParseBytes)
	}
}

func ExampleHTML() {
	base, _ := url.Parse("https://example.org/gallery/")
	links, _ := HTML(strings.NewReader(`<a href="2.html">next</a> <img srcset="a.jpg 1x, a@2x.jpg 2x">`), base)
	for _, l := range links {
		fmt.Println(l.Kind, l.URL)
	}
	// Output:
	// page https://example.org/gallery/2.html
	// requisite https://example.org/gallery/a.jpg
	// requisite https://example.org/gallery/a@2x.jpg
}
