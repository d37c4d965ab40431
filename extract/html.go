package extract

import (
	"bytes"
	"io"
	"io/fs"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// MaxParseBytes caps how much of a document HTML and CSS read. 4 MiB holds every link of any
// ordinary page; larger files are saved whole by the fetcher, but only their first
// MaxParseBytes are searched for links.
const MaxParseBytes = 4 << 20

// HTML reads at most MaxParseBytes of r (a page as saved) and returns its links, resolved
// against base (the page's final URL, after redirects) or against the page's <base href> if it
// has one, and normalized. Links a page can never fetch (javascript:, mailto:, data:, fragment-
// only…) are left out. Duplicates — same URL and same Kind — are removed and the order is
// document order; a URL used both ways (<a href=x.jpg><img src=x.jpg>) appears once per Kind so
// that Scope.Decide can judge each use.
//
// The page is read as a stream of tags (see scan), not built into a tree: tags are split as an
// HTML5 parser splits them, and SVG and MathML content is recognised as the parser recognises
// it, but elements the parser's error recovery would drop or merge — a <frame> outside a
// <frameset>, a table cell outside a table, the attributes of a second <body> — still yield
// their links. Content inside <noscript> is read as markup, because lazy-loading galleries put
// their only plain <img> there. An error is returned only for a bad base or a failing reader.
func HTML(r io.Reader, base *url.URL) ([]Link, error) {
	if !absHTTP(base) {
		return nil, ErrNoBase
	}
	buf := docBufs.Get().(*[]byte)
	defer docBufs.Put(buf)
	doc, err := readDoc(r, (*buf)[:0])
	*buf = doc
	if err != nil {
		return nil, err
	}
	s := newScan(doc)
	s.run()
	return s.c.links(documentBase(s.base, s.haveBase, base)), nil
}

// docBufs holds the buffers pages are read into: a crawl reads thousands of pages, each up to
// MaxParseBytes, and growing a fresh buffer for each would dominate the garbage.
var docBufs = sync.Pool{New: func() any { return new([]byte) }}

// readDoc reads at most MaxParseBytes of r into buf, sized at once when r says its length.
func readDoc(r io.Reader, buf []byte) ([]byte, error) {
	want := 0
	switch r := r.(type) {
	case interface{ Len() int }: // *bytes.Reader, *strings.Reader, *bytes.Buffer
		want = r.Len()
	case interface{ Stat() (fs.FileInfo, error) }: // *os.File
		if fi, err := r.Stat(); err == nil && fi.Mode().IsRegular() {
			want = int(min(fi.Size(), MaxParseBytes))
		}
	}
	// One byte more than the length, so the read that finds the end needs no room of its own.
	if want = min(want, MaxParseBytes) + 1; cap(buf) < want {
		buf = make([]byte, 0, want)
	}
	lr := io.LimitedReader{R: r, N: MaxParseBytes}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// documentBase returns the URL relative links resolve against: the first <base href>, itself
// resolved against the page URL, wherever it appears (as in browsers), else the page URL.
func documentBase(href string, ok bool, page *url.URL) *url.URL {
	if !ok {
		return page
	}
	s, ok := Resolve(page, href)
	if !ok {
		return page
	}
	u, err := url.Parse(s)
	if err != nil {
		return page
	}
	return u
}

// role says what an attribute holds: a single URL or a srcset, used as Kind.
type role struct {
	kind   Kind
	srcset bool
}

var (
	page      = role{kind: Page}
	requisite = role{kind: Requisite}
	srcset    = role{kind: Requisite, srcset: true}
)

// htmlAttrs maps an HTML element to its URL attributes. The data-* names are the lazy-load
// conventions (lazysizes, lozad, jQuery lazyload) whose real URL the src only promises.
var htmlAttrs = map[atom.Atom]map[string]role{
	atom.A:      {"href": page},
	atom.Area:   {"href": page},
	atom.Iframe: {"src": page, "data-src": page},
	atom.Frame:  {"src": page},
	atom.Img: {"src": requisite, "srcset": srcset, "data-src": requisite, "data-srcset": srcset,
		"data-lazy-src": requisite, "data-lazy-srcset": srcset, "data-original": requisite},
	atom.Source: {"src": requisite, "srcset": srcset, "data-src": requisite, "data-srcset": srcset},
	atom.Script: {"src": requisite},
	atom.Video:  {"src": requisite, "poster": requisite, "data-src": requisite, "data-poster": requisite},
	atom.Audio:  {"src": requisite},
	atom.Track:  {"src": requisite},
	atom.Embed:  {"src": requisite},
	atom.Object: {"data": requisite},
	atom.Input:  {"src": requisite}, // type=image
	atom.Body:   {"background": requisite},
	atom.Table:  {"background": requisite},
	atom.Td:     {"background": requisite},
	atom.Th:     {"background": requisite},
}

// urlAttrs returns htmlAttrs[a]: most elements have none, and a switch says so faster than
// a map.
func urlAttrs(a atom.Atom) map[string]role {
	switch a {
	case atom.A, atom.Area, atom.Iframe, atom.Frame, atom.Img, atom.Source, atom.Script, atom.Video,
		atom.Audio, atom.Track, atom.Embed, atom.Object, atom.Input, atom.Body, atom.Table, atom.Td, atom.Th:
		return htmlAttrs[a]
	}
	return nil
}

// linkRels classifies <link rel> tokens. Other rels (dns-prefetch, preconnect, pingback, …)
// name origins or services, not resources, and are ignored.
var linkRels = map[string]Kind{
	"stylesheet": Requisite, "icon": Requisite, "shortcut": Requisite,
	"apple-touch-icon": Requisite, "apple-touch-icon-precomposed": Requisite, "mask-icon": Requisite,
	"preload": Requisite, "modulepreload": Requisite, "prefetch": Requisite, "manifest": Requisite,
	"next": Page, "prev": Page, "previous": Page, "alternate": Page, "canonical": Page,
	// Documents about the page, followed in scope as wget and wget2 do (an OpenSearch
	// description, help, license and author pages).
	"search": Page, "help": Page, "license": Page, "author": Page,
}

// svgKinds are the SVG elements that reference other files, by href or the older xlink:href.
var svgKinds = map[string]Kind{"a": Page, "image": Requisite, "use": Requisite, "feimage": Requisite}

// refreshURL extracts the URL of a <meta http-equiv=refresh> content value: "5; url=/next",
// "0;URL='/next'", "3, /next". It follows the HTML standard's algorithm loosely, also accepting
// a missing delay. A refresh without a URL reloads the page itself and yields nothing.
func refreshURL(content string) (string, bool) {
	s := strings.TrimLeft(content, " \t\n\f\r")
	s = strings.TrimLeft(s, "0123456789.")
	s = strings.TrimLeft(s, " \t\n\f\r")
	if s != "" && (s[0] == ';' || s[0] == ',') {
		s = strings.TrimLeft(s[1:], " \t\n\f\r")
	}
	if hasPrefixFold(s, "url") {
		rest := strings.TrimLeft(s[3:], " \t\n\f\r")
		if strings.HasPrefix(rest, "=") {
			s = strings.TrimLeft(rest[1:], " \t\n\f\r")
		}
	}
	if s != "" && (s[0] == '"' || s[0] == '\'') {
		if end := strings.IndexByte(s[1:], s[0]); end >= 0 {
			s = s[1 : 1+end]
		} else {
			s = s[1:]
		}
	}
	s = strings.TrimSpace(s)
	return s, s != ""
}

// unescapeText decodes the character references of text outside attributes.
func unescapeText(s string) string {
	if strings.IndexByte(s, '&') < 0 {
		return s
	}
	return html.UnescapeString(s)
}

// unescapeAttr decodes the character references of an attribute value (b, as quoted by quote,
// or unquoted if quote is 0) by the rules for attributes: "&amp;" and numeric references to
// printable ASCII, which are most of what links hold, here; anything else by x/net's
// tokenizer, whose entity table and rules (a reference without ";" before "=" stays as written)
// are the parser's.
func unescapeAttr(b []byte, quote byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		c := b[i]
		if c != '&' {
			out = append(out, c)
			i++
			continue
		}
		r, n := simpleEntity(b[i:])
		if n == 0 {
			return unescapeAttrSlow(b, quote)
		}
		out = append(out, r)
		i += n
	}
	return out
}

// simpleEntity decodes the reference at the start of b if it is one of the common forms whose
// decoding no rule of the standard changes, returning its byte and length, or n == 0.
func simpleEntity(b []byte) (byte, int) {
	for _, e := range [...]struct {
		name string
		r    byte
	}{{"&amp;", '&'}, {"&quot;", '"'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&apos;", '\''}} {
		if bytes.HasPrefix(b, []byte(e.name)) {
			return e.r, len(e.name)
		}
	}
	if len(b) < 4 || b[1] != '#' {
		return 0, 0
	}
	i, base := 2, 10
	if b[2] == 'x' || b[2] == 'X' {
		i, base = 3, 16
	}
	start, x := i, 0
	for i < len(b) && i-start < 4 {
		d := digit(b[i], base)
		if d < 0 {
			break
		}
		x = x*base + d
		i++
	}
	if i == start || i >= len(b) || b[i] != ';' || x < 0x20 || x > 0x7e {
		return 0, 0
	}
	return byte(x), i + 1
}

// digit returns the value of c as a digit in base 10 or 16, or -1.
func digit(c byte, base int) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case base == 16 && 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case base == 16 && 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// unescapeAttrSlow decodes an attribute value by tokenizing it, in its own quotes, as the
// only attribute of a tag.
func unescapeAttrSlow(b []byte, quote byte) []byte {
	tag := make([]byte, 0, len(b)+8)
	tag = append(tag, "<a x="...)
	if quote != 0 {
		tag = append(tag, quote)
	}
	tag = append(tag, b...)
	if quote != 0 {
		tag = append(tag, quote)
	}
	tag = append(tag, '>')
	z := html.NewTokenizer(bytes.NewReader(tag))
	z.Next()
	_, val, _ := z.TagAttr()
	return bytes.Clone(val)
}

// absHTTP reports whether u can serve as a base: absolute, http(s), with a host.
func absHTTP(u *url.URL) bool {
	return u != nil && (strings.EqualFold(u.Scheme, "http") || strings.EqualFold(u.Scheme, "https")) && u.Host != ""
}
