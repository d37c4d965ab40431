package extract

import (
	"io"
	"net/url"
	"strings"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// MaxParseBytes caps how much of a document HTML and CSS read. A parsed DOM costs several
// times its source in memory, and a crawl parses pages concurrently; 4 MiB holds every link of
// any ordinary page. Larger files are saved whole by the fetcher, but only their first
// MaxParseBytes are searched for links.
const MaxParseBytes = 4 << 20

// HTML reads at most MaxParseBytes of r (a page as saved) and returns its links, resolved
// against base (the page's final URL, after redirects) or against the page's <base href> if it
// has one, and normalized. Links a page can never fetch (javascript:, mailto:, data:, fragment-
// only…) are left out. Duplicates — same URL and same Kind — are removed and the order is
// document order; a URL used both ways (<a href=x.jpg><img src=x.jpg>) appears once per Kind so
// that Scope.Decide can judge each use.
//
// Content inside <noscript> is parsed as markup, because lazy-loading galleries put their only
// plain <img> there. An error is returned only for a bad base or a failing reader.
func HTML(r io.Reader, base *url.URL) ([]Link, error) {
	if !absHTTP(base) {
		return nil, ErrNoBase
	}
	root, err := html.ParseWithOptions(io.LimitReader(r, MaxParseBytes), html.ParseOptionEnableScripting(false))
	if err != nil {
		return nil, err
	}
	doc := goquery.NewDocumentFromNode(root)
	c := newCollector(documentBase(doc, base))
	for _, n := range doc.Find("*").Nodes {
		c.element(n)
	}
	return c.links, nil
}

// documentBase returns the URL relative links resolve against: the first <base href>, itself
// resolved against the page URL, wherever it appears (as in browsers), else the page URL.
func documentBase(doc *goquery.Document, page *url.URL) *url.URL {
	href, ok := doc.Find("base[href]").First().Attr("href")
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

// collector resolves, normalizes and dedups the links of one document.
type collector struct {
	base  *url.URL
	seen  map[Link]struct{}
	links []Link
}

func newCollector(base *url.URL) *collector {
	return &collector{base: base, seen: make(map[Link]struct{})}
}

func (c *collector) add(ref string, k Kind) {
	s, ok := Resolve(c.base, ref)
	if !ok {
		return
	}
	l := Link{URL: s, Kind: k}
	if _, dup := c.seen[l]; dup {
		return
	}
	c.seen[l] = struct{}{}
	c.links = append(c.links, l)
}

func (c *collector) addRole(val string, r role) {
	if !r.srcset {
		c.add(val, r.kind)
		return
	}
	for _, u := range parseSrcset(val) {
		c.add(u, r.kind)
	}
}

// css adds the references of a stylesheet, <style> element or style attribute. In HTML they
// resolve against the document's base, not against any stylesheet.
func (c *collector) css(text string) {
	for _, ref := range cssRefs(text) {
		c.add(ref, Requisite)
	}
}

// element adds the links of one element, attributes in source order.
func (c *collector) element(n *html.Node) {
	if n.Data == "style" { // HTML and SVG alike
		c.css(text(n))
	}
	switch n.Namespace {
	case "":
		c.htmlElement(n)
	case "svg":
		c.svgElement(n)
	}
	if v, ok := attr(n, "style"); ok {
		c.css(v)
	}
}

func (c *collector) htmlElement(n *html.Node) {
	switch n.DataAtom {
	case atom.Link:
		c.link(n)
		return
	case atom.Meta:
		if v, _ := attr(n, "http-equiv"); strings.EqualFold(strings.TrimSpace(v), "refresh") {
			content, _ := attr(n, "content")
			if ref, ok := refreshURL(content); ok {
				c.add(ref, Page)
			}
		}
		return
	}
	roles := htmlAttrs[n.DataAtom]
	if roles == nil {
		return
	}
	for _, a := range n.Attr {
		if r, ok := roles[a.Key]; ok && a.Namespace == "" {
			c.addRole(a.Val, r)
		}
	}
}

// link handles <link>: rel decides the Kind; a rel naming both (rel="alternate stylesheet")
// is a requisite, since the page uses it.
func (c *collector) link(n *html.Node) {
	rel, _ := attr(n, "rel")
	kind := Kind(0)
	for _, tok := range strings.Fields(strings.ToLower(rel)) {
		if k := linkRels[tok]; k == Requisite || (k == Page && kind == 0) {
			kind = k
		}
	}
	if kind == 0 {
		return
	}
	for _, a := range n.Attr {
		switch {
		case a.Namespace != "":
		case a.Key == "href":
			c.add(a.Val, kind)
		case a.Key == "imagesrcset": // <link rel=preload as=image imagesrcset=…>
			c.addRole(a.Val, role{kind: kind, srcset: true})
		}
	}
}

// svgElement handles the SVG elements that reference other files, by href or the older
// xlink:href.
func (c *collector) svgElement(n *html.Node) {
	var kind Kind
	switch n.Data {
	case "a":
		kind = Page
	case "image", "use", "feImage":
		kind = Requisite
	default:
		return
	}
	for _, a := range n.Attr {
		if a.Key == "href" && (a.Namespace == "" || a.Namespace == "xlink") {
			c.add(a.Val, kind)
		}
	}
}

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

// attr returns the value of n's attribute key in no namespace.
func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key && a.Namespace == "" {
			return a.Val, true
		}
	}
	return "", false
}

// text returns the concatenated text children of n (the body of a <style>).
func text(n *html.Node) string {
	if f := n.FirstChild; f != nil && f.NextSibling == nil && f.Type == html.TextNode {
		return f.Data
	}
	var b strings.Builder
	for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
		if ch.Type == html.TextNode {
			b.WriteString(ch.Data)
		}
	}
	return b.String()
}

// absHTTP reports whether u can serve as a base: absolute, http(s), with a host.
func absHTTP(u *url.URL) bool {
	return u != nil && (strings.EqualFold(u.Scheme, "http") || strings.EqualFold(u.Scheme, "https")) && u.Host != ""
}
