package extract

import (
	"bytes"
	"strings"

	"golang.org/x/net/html/atom"
)

// scan reads a page's tokens once and records the references of its elements in a refSet, the
// way a walk over the parsed tree would meet them, without building the tree.
//
// What a tree builder decides and a tokenizer alone cannot is which elements are SVG or MathML
// (an <a> or <image> in SVG is not HTML's, a <style> or <title> there is not raw text) and which
// <style> an element's text belongs to. scan keeps the stack of open elements only from the
// outermost <svg> or <math> in, and applies the parser's rules for foreign content to it:
// breakout tags, integration points, end tags that close what is open. An HTML end tag that
// closes nothing on that stack is taken, when it names an element that holds content, as
// closing an HTML ancestor of the SVG (the tree builder would know; scan does not track HTML
// elements outside foreign content).
type scan struct {
	z      *tokenizer
	c      *refSet
	stack  []openElem
	styles []pendingStyle
	// rawStyle says an HTML <style> start tag was the last tag: its raw text, the next token,
	// belongs to styles' last entry.
	rawStyle bool
	base     string
	haveBase bool
	// guessed says an end tag in foreign content closed nothing on the stack, so whether it
	// closed an HTML ancestor was guessed (the differential tests skip such pages).
	guessed bool
	// starts, when not nil, counts the start tags read by name, for the differential tests.
	starts map[string]int
	name   []byte // scratch for tag names
	key    []byte // scratch for attribute keys
}

type namespace uint8

const (
	nsHTML namespace = iota
	nsSVG
	nsMath
)

// openElem is an open element of foreign content, or an HTML element inside an integration
// point.
type openElem struct {
	name     string // lower case, as the tokenizer reports it
	ns       namespace
	htmlIP   bool // an HTML integration point: SVG foreignObject, desc, title; MathML annotation-xml for HTML
	mathText bool // a MathML text integration point: mi, mo, mn, ms, mtext
	style    bool // a foreign <style>, collecting its text in styles' last entry
}

// pendingStyle is a <style> element whose text is being read: its CSS references are inserted
// at position at of the uses, where a tree walk meets the element.
type pendingStyle struct {
	at   int
	text []byte
}

// maxForeignDepth bounds the stack: a hostile page nesting SVG elements a million deep would
// make every end tag walk it. Elements deeper than this are taken as empty.
const maxForeignDepth = 512

func newScan(doc []byte) *scan {
	return &scan{z: newTokenizer(doc), c: newRefSet()}
}

func (s *scan) run() {
	for {
		top := len(s.stack) - 1
		s.z.allowCDATA = top >= 0 && s.stack[top].ns != nsHTML
		s.z.skipText = !s.rawStyle && (top < 0 || !s.stack[top].style)
		tt := s.z.next()
		if tt == textToken {
			s.text()
			continue
		}
		if s.rawStyle {
			s.rawStyle = false
			s.flushStyle()
		}
		switch tt {
		case errorToken:
			for len(s.styles) > 0 {
				s.flushStyle()
			}
			return
		case startTagToken, selfClosingTagToken:
			s.startTag(tt == selfClosingTagToken)
		case endTagToken:
			s.endTag()
		}
	}
}

// text gives a text token to the <style> it belongs to, if any.
func (s *scan) text() {
	if s.rawStyle || len(s.stack) > 0 && s.stack[len(s.stack)-1].style {
		// NUL is U+FFFD in raw text and, by the tree builder, in foreign content.
		t := strings.ReplaceAll(s.z.text(), "\x00", "\ufffd")
		st := &s.styles[len(s.styles)-1]
		st.text = append(st.text, t...)
	}
}

func (s *scan) openStyle() {
	s.styles = append(s.styles, pendingStyle{at: len(s.c.uses)})
}

func (s *scan) flushStyle() {
	st := s.styles[len(s.styles)-1]
	s.styles = s.styles[:len(s.styles)-1]
	s.c.cssAt(st.at, string(st.text))
}

func (s *scan) push(e openElem) {
	if len(s.stack) < maxForeignDepth {
		s.stack = append(s.stack, e)
	} else if e.style {
		s.flushStyle()
	}
}

// popTo closes the elements from the top of the stack down to index i.
func (s *scan) popTo(i int) {
	for j := len(s.stack) - 1; j >= i; j-- {
		if s.stack[j].style {
			s.flushStyle()
		}
	}
	s.stack = s.stack[:i]
}

// foreignStart reports whether a start tag named name is read as foreign content, with the
// current node at the top of the stack.
func (s *scan) foreignStart(name []byte) bool {
	if len(s.stack) == 0 {
		return false
	}
	top := s.stack[len(s.stack)-1]
	switch {
	case top.ns == nsHTML || top.htmlIP:
		return false
	case top.mathText && string(name) != "mglyph" && string(name) != "malignmark":
		return false
	case top.ns == nsMath && top.name == "annotation-xml" && string(name) == "svg":
		return false
	}
	return true
}

// popForeign closes foreign elements down to an HTML element or an integration point: what a
// breakout tag does.
func (s *scan) popForeign() {
	i := len(s.stack)
	for i > 0 {
		e := s.stack[i-1]
		if e.ns == nsHTML || e.htmlIP || e.mathText {
			break
		}
		i--
	}
	s.popTo(i)
}

func (s *scan) startTag(selfClosing bool) {
	name := s.z.tagName(&s.name)
	if s.starts != nil {
		s.starts[string(name)]++
	}
	if s.foreignStart(name) {
		if !s.breaksOut(name) {
			s.foreignElement(s.stack[len(s.stack)-1].ns, name, selfClosing)
			return
		}
		s.popForeign()
	}
	s.htmlElement(name, selfClosing)
}

// breakout are the HTML start tags that end foreign content.
var breakout = map[string]bool{
	"b": true, "big": true, "blockquote": true, "body": true, "br": true, "center": true, "code": true,
	"dd": true, "div": true, "dl": true, "dt": true, "em": true, "embed": true, "h1": true, "h2": true,
	"h3": true, "h4": true, "h5": true, "h6": true, "head": true, "hr": true, "i": true, "img": true,
	"li": true, "listing": true, "menu": true, "meta": true, "nobr": true, "ol": true, "p": true,
	"pre": true, "ruby": true, "s": true, "small": true, "span": true, "strong": true, "strike": true,
	"sub": true, "sup": true, "table": true, "tt": true, "u": true, "ul": true, "var": true,
}

func (s *scan) breaksOut(name []byte) bool {
	if breakout[string(name)] {
		return true
	}
	if string(name) != "font" {
		return false
	}
	for _, a := range s.z.attrs {
		if s.keyIs(a, "color") || s.keyIs(a, "face") || s.keyIs(a, "size") {
			return true
		}
	}
	return false
}

// attrKey returns attribute a's key as x/net reports it: lower case, NUL as U+FFFD.
func (s *scan) attrKey(a attrSpan) []byte {
	return s.z.attrKey(a, &s.key)
}

// keyIs reports whether attribute a's key is name, a lower-case ASCII name.
func (s *scan) keyIs(a attrSpan, name string) bool {
	return asciiEqualFold(s.z.buf[a.key.start:a.key.end], name)
}

// attrVal returns attribute a's value as x/net reports it: NUL as U+FFFD, newlines normalized,
// character references decoded. It shares memory with the document when it can.
func (s *scan) attrVal(a attrSpan) []byte {
	v := s.z.buf[a.val.start:a.val.end]
	if bytes.IndexByte(v, 0) >= 0 {
		v = bytes.ReplaceAll(v, []byte{0}, []byte("\ufffd"))
	}
	v = convertNewlines(v)
	if bytes.IndexByte(v, '&') >= 0 {
		v = unescapeAttr(v, a.quote)
	}
	return v
}

// attr returns the value of the current tag's attribute key, a lower-case ASCII name.
func (s *scan) attr(key string) ([]byte, bool) {
	for _, a := range s.z.attrs {
		if s.keyIs(a, key) {
			return s.attrVal(a), true
		}
	}
	return nil, false
}

// interned returns name as a string, without allocating for the names HTML knows.
func interned(name []byte) string {
	if a := atom.Lookup(name); a != 0 {
		return a.String()
	}
	return string(name)
}

func (s *scan) foreignElement(ns namespace, name []byte, selfClosing bool) {
	s.z.rawTag = "" // no raw text in foreign content (an SVG <style> or <title>)
	e := openElem{name: interned(name), ns: ns, style: string(name) == "style"}
	switch ns {
	case nsSVG:
		switch e.name {
		case "desc", "foreignobject", "title":
			e.htmlIP = true
		}
	case nsMath:
		switch e.name {
		case "mi", "mo", "mn", "ms", "mtext":
			e.mathText = true
		case "annotation-xml":
			if v, ok := s.attr("encoding"); ok {
				e.htmlIP = bytes.EqualFold(v, []byte("text/html")) || bytes.EqualFold(v, []byte("application/xhtml+xml"))
			}
		}
	}
	if e.style {
		s.openStyle()
	}
	s.foreignAttrs(ns, e.name)
	if selfClosing {
		if e.style {
			s.flushStyle()
		}
		return
	}
	s.push(e)
}

// foreignAttrs records the references of an SVG or MathML element: SVG's links by href or
// xlink:href, any element's style attribute, and a <base>.
func (s *scan) foreignAttrs(ns namespace, name string) {
	kind := Kind(0)
	if ns == nsSVG {
		kind = svgKinds[name]
	}
	findBase := name == "base" && !s.haveBase
	for _, a := range s.z.attrs {
		if s.keyIs(a, "href") || s.keyIs(a, "xlink:href") {
			if findBase {
				s.base, s.haveBase, findBase = string(s.attrVal(a)), true, false
			}
			if kind != 0 {
				s.c.add(s.attrVal(a), kind)
			}
		}
	}
	if v, ok := s.attr("style"); ok {
		s.c.css(v)
	}
}

// void reports the HTML elements that have no end tag: they never go on the stack.
func void(a atom.Atom) bool {
	switch a {
	case atom.Area, atom.Base, atom.Basefont, atom.Bgsound, atom.Br, atom.Col, atom.Embed,
		atom.Frame, atom.Hr, atom.Img, atom.Input, atom.Keygen, atom.Link, atom.Meta, atom.Param,
		atom.Source, atom.Track, atom.Wbr:
		return true
	}
	return false
}

// interesting is, by first letter, the lengths (bit 1<<len) of the names of the HTML elements
// htmlElement does more with than read a style attribute, so that the others cost no atom
// lookup: a, area, audio, base, body, embed, frame, iframe, image, img, input, link, math,
// meta, noscript, object, script, source, style, svg, table, td, th, track, video.
var interesting = func() (m [256]uint16) {
	for _, a := range []atom.Atom{atom.A, atom.Area, atom.Audio, atom.Base, atom.Body, atom.Embed,
		atom.Frame, atom.Iframe, atom.Image, atom.Img, atom.Input, atom.Link, atom.Math, atom.Meta,
		atom.Noscript, atom.Object, atom.Script, atom.Source, atom.Style, atom.Svg, atom.Table,
		atom.Td, atom.Th, atom.Track, atom.Video} {
		n := a.String()
		m[n[0]] |= 1 << len(n)
	}
	return m
}()

func (s *scan) htmlElement(name []byte, selfClosing bool) {
	var a atom.Atom
	if len(s.stack) > 0 || len(name) > 0 && len(name) < 16 && interesting[name[0]]&(1<<len(name)) != 0 {
		a = atom.Lookup(name)
	}
	switch a {
	case atom.Image:
		a = atom.Img // as the tree builder reads it
	case atom.Noscript:
		s.z.rawTag = "" // scripting is off: <noscript> holds markup
	case atom.Svg, atom.Math:
		ns := nsSVG
		if a == atom.Math {
			ns = nsMath
		}
		s.foreignAttrs(ns, a.String())
		if !selfClosing {
			s.push(openElem{name: a.String(), ns: ns})
		}
		return
	case atom.Style:
		s.openStyle()
		s.rawStyle = true
	}
	if len(s.stack) > 0 && !void(a) {
		n := a.String()
		if a == 0 {
			n = string(name)
		}
		s.push(openElem{name: n, ns: nsHTML})
	}
	switch a {
	case atom.Link:
		s.link()
	case atom.Meta:
		s.meta()
	default:
		if roles := urlAttrs(a); roles != nil {
			for _, at := range s.z.attrs {
				if r, ok := roles[string(s.attrKey(at))]; ok {
					if r.srcset {
						s.c.addSrcset(s.attrVal(at), r.kind)
					} else {
						s.c.add(s.attrVal(at), r.kind)
					}
				}
			}
		}
	}
	if a == atom.Base && !s.haveBase {
		if v, ok := s.attr("href"); ok {
			s.base, s.haveBase = string(v), true
		}
	}
	if i := s.z.styleAttr; i >= 0 {
		s.c.css(s.attrVal(s.z.attrs[i]))
	}
}

// link handles <link>: rel decides the Kind; a rel naming both (rel="alternate stylesheet")
// is a requisite, since the page uses it.
func (s *scan) link() {
	rel, _ := s.attr("rel")
	kind := Kind(0)
	for _, tok := range strings.Fields(strings.ToLower(string(rel))) {
		if k := linkRels[tok]; k == Requisite || (k == Page && kind == 0) {
			kind = k
		}
	}
	if kind == 0 {
		return
	}
	for _, a := range s.z.attrs {
		switch {
		case s.keyIs(a, "href"):
			s.c.add(s.attrVal(a), kind)
		case s.keyIs(a, "imagesrcset"): // <link rel=preload as=image imagesrcset=…>
			s.c.addSrcset(s.attrVal(a), kind)
		}
	}
}

func (s *scan) meta() {
	v, _ := s.attr("http-equiv")
	if !strings.EqualFold(strings.TrimSpace(string(v)), "refresh") {
		return
	}
	content, _ := s.attr("content")
	if ref, ok := refreshURL(string(content)); ok {
		s.c.addString(ref, Page)
	}
}

func (s *scan) endTag() {
	if len(s.stack) == 0 {
		return
	}
	name := s.z.tagName(&s.name)
	if s.stack[len(s.stack)-1].ns != nsHTML {
		for i := len(s.stack) - 1; i >= 0; i-- {
			if strings.EqualFold(s.stack[i].name, string(name)) {
				s.popTo(i)
				return
			}
			if i > 0 && s.stack[i-1].ns == nsHTML {
				break
			}
		}
	}
	s.htmlEndTag(name)
}

// htmlEndTag applies an end tag the foreign rules left to the HTML ones, as far as it closes
// elements on the stack.
func (s *scan) htmlEndTag(name []byte) {
	switch string(name) {
	case "br": // read as <br>, which breaks out of foreign content
		if s.foreignStart(name) {
			s.popForeign()
		}
		return
	case "p":
		if i, found := s.inScope("p", true); found {
			s.popTo(i)
		} else if s.foreignStart(name) { // an implied <p>
			s.popForeign()
		}
		return
	case "body", "html":
		return
	}
	if scopedEnds[string(name)] {
		if i, found := s.inScope(string(name), false); found {
			s.popTo(i)
		} else if i < 0 {
			s.guessed = true
			s.popTo(0) // taken to close an HTML ancestor
		}
		return
	}
	for i := len(s.stack) - 1; i >= 0; i-- {
		e := s.stack[i]
		if e.ns == nsHTML && e.name == string(name) {
			s.popTo(i)
			return
		}
		if e.htmlIP || e.mathText || e.ns == nsMath && e.name == "annotation-xml" ||
			e.ns == nsHTML && specialElements[e.name] {
			return
		}
	}
	if a := atom.Lookup(name); void(a) || rawTextElements[a] {
		return // never an open ancestor
	}
	s.guessed = true
	if specialElements[string(name)] || inlineContainers[string(name)] {
		s.popTo(0) // taken to close an HTML ancestor
	}
}

// rawTextElements hold only text: none is ever open around an SVG.
var rawTextElements = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Textarea: true, atom.Title: true, atom.Xmp: true,
	atom.Iframe: true, atom.Noembed: true, atom.Noframes: true, atom.Plaintext: true,
}

// inScope looks for an open HTML element name in scope (button scope if button): its index
// and true; else the index of the boundary met, or -1 if the stack ran out first.
func (s *scan) inScope(name string, button bool) (int, bool) {
	for i := len(s.stack) - 1; i >= 0; i-- {
		e := s.stack[i]
		if e.ns == nsHTML && e.name == name {
			return i, true
		}
		if e.htmlIP || e.mathText || e.ns == nsMath && e.name == "annotation-xml" ||
			e.ns == nsHTML && (scopeBoundaries[e.name] || button && e.name == "button") {
			return i, false
		}
	}
	return -1, false
}

// scopedEnds are the end tags that close an element in scope rather than the nearest one.
var scopedEnds = map[string]bool{
	"address": true, "article": true, "aside": true, "blockquote": true, "button": true, "center": true,
	"details": true, "dialog": true, "dir": true, "div": true, "dl": true, "fieldset": true,
	"figcaption": true, "figure": true, "footer": true, "header": true, "hgroup": true, "listing": true,
	"main": true, "menu": true, "nav": true, "ol": true, "pre": true, "search": true, "section": true,
	"select": true, "summary": true, "ul": true, "form": true, "li": true, "dd": true, "dt": true,
	"h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true, "applet": true,
	"marquee": true, "object": true,
}

var scopeBoundaries = map[string]bool{
	"applet": true, "caption": true, "html": true, "table": true, "td": true, "th": true,
	"marquee": true, "object": true, "template": true,
}

// specialElements are the HTML elements an end tag of another name does not close through.
var specialElements = map[string]bool{
	"address": true, "applet": true, "area": true, "article": true, "aside": true, "base": true,
	"basefont": true, "bgsound": true, "blockquote": true, "body": true, "br": true, "button": true,
	"caption": true, "center": true, "col": true, "colgroup": true, "dd": true, "details": true,
	"dir": true, "div": true, "dl": true, "dt": true, "embed": true, "fieldset": true,
	"figcaption": true, "figure": true, "footer": true, "form": true, "frame": true, "frameset": true,
	"h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true, "head": true,
	"header": true, "hgroup": true, "hr": true, "html": true, "iframe": true, "img": true,
	"input": true, "keygen": true, "li": true, "link": true, "listing": true, "main": true,
	"marquee": true, "menu": true, "meta": true, "nav": true, "noembed": true, "noframes": true,
	"noscript": true, "object": true, "ol": true, "p": true, "param": true, "plaintext": true,
	"pre": true, "script": true, "section": true, "select": true, "source": true, "style": true,
	"summary": true, "table": true, "tbody": true, "td": true, "template": true, "textarea": true,
	"tfoot": true, "th": true, "thead": true, "title": true, "tr": true, "track": true, "ul": true,
	"wbr": true, "xmp": true,
}

// inlineContainers are the HTML elements other than special ones that commonly hold an inline
// SVG icon, so that their end tag is taken to close one left open.
var inlineContainers = map[string]bool{
	"a": true, "span": true, "label": true, "i": true, "b": true, "em": true, "strong": true,
	"small": true, "code": true, "picture": true, "q": true, "cite": true, "mark": true,
}
