package extract

import (
	"io"
	"net/url"
	"strings"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// htmlDOM is how HTML found links before it read tokens: it builds the page's tree with the
// HTML5 parser and walks every element with goquery. It is kept as the oracle the differential
// tests (differential_test.go) compare HTML with.
func htmlDOM(r io.Reader, base *url.URL) ([]Link, error) {
	if !absHTTP(base) {
		return nil, ErrNoBase
	}
	root, err := html.ParseWithOptions(io.LimitReader(r, MaxParseBytes), html.ParseOptionEnableScripting(false))
	if err != nil {
		return nil, err
	}
	doc := goquery.NewDocumentFromNode(root)
	c := newCollector(domBase(doc, base))
	for _, n := range doc.Find("*").Nodes {
		domElement(c, n)
	}
	return c.links, nil
}

func domBase(doc *goquery.Document, page *url.URL) *url.URL {
	href, ok := doc.Find("base[href]").First().Attr("href")
	return documentBase(href, ok, page)
}

func domElement(c *collector, n *html.Node) {
	if n.Data == "style" { // HTML and SVG alike
		c.css(domText(n))
	}
	switch n.Namespace {
	case "":
		domHTMLElement(c, n)
	case "svg":
		domSVGElement(c, n)
	}
	if v, ok := domAttr(n, "style"); ok {
		c.css(v)
	}
}

func domHTMLElement(c *collector, n *html.Node) {
	switch n.DataAtom {
	case atom.Link:
		domLink(c, n)
		return
	case atom.Meta:
		if v, _ := domAttr(n, "http-equiv"); strings.EqualFold(strings.TrimSpace(v), "refresh") {
			content, _ := domAttr(n, "content")
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
			domAddRole(c, a.Val, r)
		}
	}
}

func domAddRole(c *collector, val string, r role) {
	if !r.srcset {
		c.add(val, r.kind)
		return
	}
	for _, u := range parseSrcset(val) {
		c.add(u, r.kind)
	}
}

func domLink(c *collector, n *html.Node) {
	rel, _ := domAttr(n, "rel")
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
		case a.Key == "imagesrcset":
			domAddRole(c, a.Val, role{kind: kind, srcset: true})
		}
	}
}

func domSVGElement(c *collector, n *html.Node) {
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

func domAttr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key && a.Namespace == "" {
			return a.Val, true
		}
	}
	return "", false
}

func domText(n *html.Node) string {
	var b strings.Builder
	for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
		if ch.Type == html.TextNode {
			b.WriteString(ch.Data)
		}
	}
	return b.String()
}
