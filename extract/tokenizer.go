package extract

import (
	"bytes"
	"strings"
)

// tokenizer splits an HTML document held in memory into tokens exactly as
// golang.org/x/net/html's Tokenizer does (the tokenizer its parser uses), so that the links found
// are those of the document a browser would build, but without building it: no Token values,
// no attribute strings, no per-attribute allocation. Text is skipped with bytes.IndexByte.
// Spans index the input, which stays whole and unmodified, so they stay valid after next.
//
// Its behaviour — token boundaries, raw text elements, comments, bogus comments, CDATA, the
// script escape states, duplicate attributes, the self-closing flag, what happens at the end of
// the input — is the x/net tokenizer's, step for step; FuzzTokenizer checks it against that.
type tokenizer struct {
	buf []byte
	// pos is the next byte to read; start is where the current token began.
	pos, start int
	// eof is set when a read found the end of buf (x/net's z.err == io.EOF).
	eof bool
	tt  tokenType
	// data is a tag's name, or a text or comment's content.
	data span
	// attrs are the current start tag's attributes, duplicates dropped (the first wins).
	attrs []attrSpan
	// styleAttr is the index in attrs of the style attribute, or -1: every element may have
	// one, and looking for it in attrs costs more than noticing it here.
	styleAttr int
	pending   attrSpan
	// rawTag is the lower-case name of the raw text element whose content comes next ("script",
	// "style", "textarea", …), or "".
	rawTag string
	// textIsRaw says the current text token's character references are not decoded;
	// convertNUL says its NUL bytes become U+FFFD.
	textIsRaw, convertNUL bool
	// allowCDATA says <![CDATA[…]]> is text (in foreign content) rather than a bogus comment.
	allowCDATA bool
	// skipText says the caller has no use for the text before the next tag: it is not
	// returned as a token of its own (which costs reading the tag twice).
	skipText bool
	// seenKeys holds the lower-cased keys of a tag with many attributes, where comparing each
	// new key with all the earlier ones would be quadratic.
	seenKeys map[string]struct{}
}

type tokenType uint8

const (
	errorToken tokenType = iota // the end of the input
	textToken
	startTagToken
	endTagToken
	selfClosingTagToken
	commentToken
	doctypeToken
)

type span struct{ start, end int }

// attrSpan is an attribute's key and value as they appear in the input (the value without its
// quotes); quote is the quote character or 0.
type attrSpan struct {
	key, val span
	quote    byte
}

// manyAttrs is the attribute count beyond which duplicates are found with a map.
const manyAttrs = 16

func newTokenizer(b []byte) *tokenizer {
	return &tokenizer{buf: b}
}

// readByte returns the next byte, or sets eof and returns 0.
func (z *tokenizer) readByte() byte {
	if z.pos >= len(z.buf) {
		z.eof = true
		return 0
	}
	c := z.buf[z.pos]
	z.pos++
	return c
}

func isWhite(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f'
}

func isLetter(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func (z *tokenizer) skipWhiteSpace() {
	if z.eof {
		return
	}
	buf := z.buf
	for i := z.pos; i < len(buf); i++ {
		if !isWhite(buf[i]) {
			z.pos = i
			return
		}
	}
	z.pos = len(buf)
	z.eof = true
}

// next scans the next token and returns its type. It is long because it follows x/net's
// Tokenizer.Next case for case (FuzzTokenizer compares the two); split, it would no longer read
// side by side with it.
func (z *tokenizer) next() tokenType {
	z.start = z.pos
	z.data = span{z.pos, z.pos}
	if z.eof {
		z.tt = errorToken
		return z.tt
	}
	if z.rawTag != "" {
		if z.rawTag == "plaintext" {
			z.pos = len(z.buf)
			z.eof = true
			z.data.end = z.pos
			z.textIsRaw = true
		} else {
			z.readRawOrRCDATA()
		}
		if z.data.end > z.data.start {
			z.tt = textToken
			z.convertNUL = true
			return z.tt
		}
	}
	z.textIsRaw = false
	z.convertNUL = false

	for {
		i := bytes.IndexByte(z.buf[z.pos:], '<')
		if i < 0 {
			z.pos = len(z.buf)
			z.eof = true
			break
		}
		z.pos += i + 1
		c := z.readByte()
		if z.eof {
			break
		}
		var tt tokenType
		switch {
		case isLetter(c):
			tt = startTagToken
		case c == '/':
			tt = endTagToken
		case c == '!' || c == '?':
			tt = commentToken
		default:
			z.pos-- // reconsume
			continue
		}
		// Text before the tag is a token of its own.
		if x := z.pos - len("<a"); z.start < x {
			if !z.skipText {
				z.pos = x
				z.data.end = x
				z.tt = textToken
				return z.tt
			}
			z.start, z.data = x, span{x, x}
		}
		switch tt {
		case startTagToken:
			z.tt = z.readStartTag()
			return z.tt
		case endTagToken:
			c = z.readByte()
			if z.eof {
				break
			}
			if c == '>' {
				// "</>" is no token; x/net reports an empty comment.
				z.tt = commentToken
				return z.tt
			}
			if isLetter(c) {
				z.readTag(false)
				if z.eof {
					z.tt = errorToken
				} else {
					z.tt = endTagToken
				}
				return z.tt
			}
			z.pos--
			z.readUntilCloseAngle()
			z.tt = commentToken
			return z.tt
		case commentToken:
			if c == '!' {
				z.tt = z.readMarkupDeclaration()
				return z.tt
			}
			z.pos--
			z.readUntilCloseAngle()
			z.tt = commentToken
			return z.tt
		}
		break // the end of the input inside "</"
	}
	if z.start < z.pos && !z.skipText {
		z.data.end = z.pos
		z.tt = textToken
		return z.tt
	}
	z.tt = errorToken
	return z.tt
}

// readRawOrRCDATA reads up to the next "</foo" (foo being rawTag) that ends the element.
func (z *tokenizer) readRawOrRCDATA() {
	if z.rawTag == "script" {
		z.readScript()
		z.textIsRaw = true
		z.rawTag = ""
		return
	}
	for {
		i := bytes.IndexByte(z.buf[z.pos:], '<')
		if i < 0 {
			z.pos = len(z.buf)
			z.eof = true
			break
		}
		z.pos += i + 1
		c := z.readByte()
		if z.eof {
			break
		}
		if c != '/' {
			z.pos--
			continue
		}
		if z.readRawEndTag() || z.eof {
			break
		}
	}
	z.data.end = z.pos
	// A textarea's or title's RCDATA can contain character references.
	z.textIsRaw = z.rawTag != "textarea" && z.rawTag != "title"
	z.rawTag = ""
}

// readRawEndTag reads "foo" and one delimiter after "</" where foo is rawTag; on success it
// backs up to the "<" so the end tag is read again as a token.
func (z *tokenizer) readRawEndTag() bool {
	for i := 0; i < len(z.rawTag); i++ {
		c := z.readByte()
		if z.eof {
			return false
		}
		if c != z.rawTag[i] && c != z.rawTag[i]-('a'-'A') {
			z.pos--
			return false
		}
	}
	c := z.readByte()
	if z.eof {
		return false
	}
	switch c {
	case ' ', '\n', '\r', '\t', '\f', '/', '>':
		z.pos -= 3 + len(z.rawTag)
		return true
	}
	z.pos--
	return false
}

// readScript reads up to the </script> that ends a script, following the escaping rules of
// the HTML standard (<!-- <script> … </script> --> hides an end tag). It is one long state
// machine, as x/net's readScript is, state for state, with the standard's state names as labels.
func (z *tokenizer) readScript() {
	defer func() { z.data.end = z.pos }()
	var c byte

scriptData:
	if i := bytes.IndexByte(z.buf[z.pos:], '<'); i >= 0 {
		z.pos += i + 1
	} else {
		z.pos = len(z.buf)
		z.eof = true
		return
	}
	goto scriptDataLessThanSign

scriptDataLessThanSign:
	c = z.readByte()
	if z.eof {
		return
	}
	switch c {
	case '/':
		goto scriptDataEndTagOpen
	case '!':
		goto scriptDataEscapeStart
	}
	z.pos--
	goto scriptData

scriptDataEndTagOpen:
	if z.readRawEndTag() || z.eof {
		return
	}
	goto scriptData

scriptDataEscapeStart:
	c = z.readByte()
	if z.eof {
		return
	}
	if c == '-' {
		goto scriptDataEscapeStartDash
	}
	z.pos--
	goto scriptData

scriptDataEscapeStartDash:
	c = z.readByte()
	if z.eof {
		return
	}
	if c == '-' {
		goto scriptDataEscapedDashDash
	}
	z.pos--
	goto scriptData

scriptDataEscaped:
	c = z.readByte()
	if z.eof {
		return
	}
	switch c {
	case '-':
		goto scriptDataEscapedDash
	case '<':
		goto scriptDataEscapedLessThanSign
	}
	goto scriptDataEscaped

scriptDataEscapedDash:
	c = z.readByte()
	if z.eof {
		return
	}
	switch c {
	case '-':
		goto scriptDataEscapedDashDash
	case '<':
		goto scriptDataEscapedLessThanSign
	}
	goto scriptDataEscaped

scriptDataEscapedDashDash:
	c = z.readByte()
	if z.eof {
		return
	}
	switch c {
	case '-':
		goto scriptDataEscapedDashDash
	case '<':
		goto scriptDataEscapedLessThanSign
	case '>':
		goto scriptData
	}
	goto scriptDataEscaped

scriptDataEscapedLessThanSign:
	c = z.readByte()
	if z.eof {
		return
	}
	if c == '/' {
		goto scriptDataEscapedEndTagOpen
	}
	if isLetter(c) {
		goto scriptDataDoubleEscapeStart
	}
	z.pos--
	goto scriptData

scriptDataEscapedEndTagOpen:
	if z.readRawEndTag() || z.eof {
		return
	}
	goto scriptDataEscaped

scriptDataDoubleEscapeStart:
	z.pos--
	for i := 0; i < len("script"); i++ {
		c = z.readByte()
		if z.eof {
			return
		}
		if c != "script"[i] && c != "SCRIPT"[i] {
			z.pos--
			goto scriptDataEscaped
		}
	}
	c = z.readByte()
	if z.eof {
		return
	}
	switch c {
	case ' ', '\n', '\r', '\t', '\f', '/', '>':
		goto scriptDataDoubleEscaped
	}
	z.pos--
	goto scriptDataEscaped

scriptDataDoubleEscaped:
	c = z.readByte()
	if z.eof {
		return
	}
	switch c {
	case '-':
		goto scriptDataDoubleEscapedDash
	case '<':
		goto scriptDataDoubleEscapedLessThanSign
	}
	goto scriptDataDoubleEscaped

scriptDataDoubleEscapedDash:
	c = z.readByte()
	if z.eof {
		return
	}
	switch c {
	case '-':
		goto scriptDataDoubleEscapedDashDash
	case '<':
		goto scriptDataDoubleEscapedLessThanSign
	}
	goto scriptDataDoubleEscaped

scriptDataDoubleEscapedDashDash:
	c = z.readByte()
	if z.eof {
		return
	}
	switch c {
	case '-':
		goto scriptDataDoubleEscapedDashDash
	case '<':
		goto scriptDataDoubleEscapedLessThanSign
	case '>':
		goto scriptData
	}
	goto scriptDataDoubleEscaped

scriptDataDoubleEscapedLessThanSign:
	c = z.readByte()
	if z.eof {
		return
	}
	if c == '/' {
		goto scriptDataDoubleEscapeEnd
	}
	z.pos--
	goto scriptDataDoubleEscaped

scriptDataDoubleEscapeEnd:
	if z.readRawEndTag() {
		z.pos += len("</script>")
		goto scriptDataEscaped
	}
	if z.eof {
		return
	}
	goto scriptDataDoubleEscaped
}

// readComment reads a comment after its "<!--".
func (z *tokenizer) readComment() {
	z.data.start = z.pos
	defer func() {
		if z.data.end < z.data.start {
			z.data.end = z.data.start // <!-->
		}
	}()
	dashCount := 0
	beginning := true
	for {
		c := z.readByte()
		if z.eof {
			z.data.end = z.abruptCommentDataEnd()
			return
		}
		switch c {
		case '-':
			dashCount++
			continue
		case '>':
			if dashCount >= 2 || beginning {
				z.data.end = z.pos - len("-->")
				return
			}
		case '!':
			if dashCount >= 2 {
				c = z.readByte()
				if z.eof {
					z.data.end = z.abruptCommentDataEnd()
					return
				} else if c == '>' {
					z.data.end = z.pos - len("--!>")
					return
				} else if c == '-' {
					dashCount = 1
					beginning = false
					continue
				}
			}
		}
		dashCount = 0
		beginning = false
	}
}

func (z *tokenizer) abruptCommentDataEnd() int {
	raw := z.buf[z.start:z.pos]
	if len(raw) >= len("<!--") {
		raw = raw[len("<!--"):]
		switch {
		case bytes.HasSuffix(raw, []byte("--!")):
			return z.pos - 3
		case bytes.HasSuffix(raw, []byte("--")):
			return z.pos - 2
		case bytes.HasSuffix(raw, []byte("-")):
			return z.pos - 1
		}
	}
	return z.pos
}

func (z *tokenizer) readUntilCloseAngle() {
	z.data.start = z.pos
	if i := bytes.IndexByte(z.buf[z.pos:], '>'); i >= 0 {
		z.pos += i + 1
		z.data.end = z.pos - 1
		return
	}
	z.pos = len(z.buf)
	z.eof = true
	z.data.end = z.pos
}

// readMarkupDeclaration reads what follows "<!": a comment, a doctype, CDATA or a bogus comment.
func (z *tokenizer) readMarkupDeclaration() tokenType {
	z.data.start = z.pos
	var c [2]byte
	for i := 0; i < 2; i++ {
		c[i] = z.readByte()
		if z.eof {
			z.data.end = z.pos
			if i == 1 && c[0] == '>' {
				z.data.end--
			}
			return commentToken
		}
	}
	if c[0] == '-' && c[1] == '-' {
		z.readComment()
		return commentToken
	}
	z.pos -= 2
	if z.readDoctype() {
		return doctypeToken
	}
	if z.allowCDATA && z.readCDATA() {
		z.convertNUL = true
		return textToken
	}
	z.readUntilCloseAngle()
	return commentToken
}

func (z *tokenizer) readDoctype() bool {
	const s = "DOCTYPE"
	for i := 0; i < len(s); i++ {
		c := z.readByte()
		if z.eof {
			// Read the fragment of "DOCTYPE" again; the end is found on the next read.
			z.pos = z.data.start
			z.eof = false
			return false
		}
		if c != s[i] && c != s[i]+('a'-'A') {
			z.pos = z.data.start
			return false
		}
	}
	if z.skipWhiteSpace(); z.eof {
		z.data.start = z.pos
		z.data.end = z.pos
		return true
	}
	z.readUntilCloseAngle()
	return true
}

func (z *tokenizer) readCDATA() bool {
	const s = "[CDATA["
	for i := 0; i < len(s); i++ {
		c := z.readByte()
		if z.eof {
			z.pos = z.data.start
			z.eof = false
			return false
		}
		if c != s[i] {
			z.pos = z.data.start
			return false
		}
	}
	z.data.start = z.pos
	brackets := 0
	for {
		c := z.readByte()
		if z.eof {
			z.data.end = z.pos
			return true
		}
		switch c {
		case ']':
			brackets++
		case '>':
			if brackets >= 2 {
				z.data.end = z.pos - len("]]>")
				return true
			}
			brackets = 0
		default:
			brackets = 0
		}
	}
}

// rawTags are the elements whose content the tokenizer reads as text up to their end tag.
var rawTags = []string{"iframe", "noembed", "noframes", "noscript", "plaintext", "script", "style", "textarea", "title", "xmp"}

func (z *tokenizer) readStartTag() tokenType {
	z.readTag(true)
	if z.eof {
		return errorToken
	}
	if name := z.buf[z.data.start:z.data.end]; len(name) >= 3 && len(name) <= 9 {
		switch name[0] | 0x20 {
		case 'i', 'n', 'p', 's', 't', 'x':
			for _, t := range rawTags {
				if asciiEqualFold(name, t) {
					z.rawTag = t
					break
				}
			}
		}
	}
	// Self-closing if the tag ends in "/>", unless that slash ends an unquoted value (<p a=/>).
	if n := len(z.attrs); z.buf[z.pos-2] == '/' && (n == 0 || z.pos-2 != z.attrs[n-1].val.end-1) {
		return selfClosingTagToken
	}
	return startTagToken
}

// readTag reads a tag's name and, if saveAttr, its attributes, after "<a" or "</a".
func (z *tokenizer) readTag(saveAttr bool) {
	z.attrs = z.attrs[:0]
	z.styleAttr = -1
	if z.seenKeys != nil {
		clear(z.seenKeys)
	}
	z.readTagName()
	if z.skipWhiteSpace(); z.eof {
		return
	}
	for {
		c := z.readByte()
		if z.eof || c == '>' {
			break
		}
		z.pos--
		z.readTagAttrKey()
		z.readTagAttrVal()
		if saveAttr && z.pending.key.start != z.pending.key.end && z.newKey() {
			if z.pending.key.end-z.pending.key.start == len("style") &&
				asciiEqualFold(z.buf[z.pending.key.start:z.pending.key.end], "style") {
				z.styleAttr = len(z.attrs)
			}
			z.attrs = append(z.attrs, z.pending)
		}
		if z.skipWhiteSpace(); z.eof {
			break
		}
	}
}

// newKey reports whether the pending attribute's key differs, ignoring ASCII case, from the
// keys already kept.
func (z *tokenizer) newKey() bool {
	key := z.buf[z.pending.key.start:z.pending.key.end]
	if len(z.attrs) < manyAttrs {
		for _, a := range z.attrs {
			if asciiEqualFoldBytes(z.buf[a.key.start:a.key.end], key) {
				return false
			}
		}
		return true
	}
	if z.seenKeys == nil {
		z.seenKeys = make(map[string]struct{})
	}
	if len(z.seenKeys) == 0 {
		for _, a := range z.attrs {
			z.seenKeys[string(lowerASCII(z.buf[a.key.start:a.key.end]))] = struct{}{}
		}
	}
	k := string(lowerASCII(key))
	if _, dup := z.seenKeys[k]; dup {
		return false
	}
	z.seenKeys[k] = struct{}{}
	return true
}

func (z *tokenizer) readTagName() {
	z.data.start = z.pos - 1
	buf := z.buf
	for i := z.pos; i < len(buf); i++ {
		switch buf[i] {
		case ' ', '\n', '\r', '\t', '\f':
			z.data.end = i
			z.pos = i + 1
			return
		case '/', '>':
			z.data.end = i
			z.pos = i
			return
		}
	}
	z.pos = len(buf)
	z.eof = true
	z.data.end = z.pos
}

func (z *tokenizer) readTagAttrKey() {
	start := z.pos
	z.pending.key.start = start
	for i := start; i < len(z.buf); i++ {
		switch z.buf[i] {
		case '=':
			if i == start {
				// An "=" before the name begins is part of the name.
				continue
			}
		case ' ', '\n', '\r', '\t', '\f', '/', '>':
		default:
			continue
		}
		z.pos = i
		z.pending.key.end = i
		return
	}
	z.pos = len(z.buf)
	z.eof = true
	z.pending.key.end = z.pos
}

func (z *tokenizer) readTagAttrVal() {
	z.pending.val = span{z.pos, z.pos}
	z.pending.quote = 0
	if z.skipWhiteSpace(); z.eof {
		return
	}
	c := z.readByte()
	if z.eof {
		return
	}
	if c == '/' {
		return
	}
	if c != '=' {
		z.pos--
		return
	}
	if z.skipWhiteSpace(); z.eof {
		return
	}
	quote := z.readByte()
	if z.eof {
		return
	}
	switch quote {
	case '>':
		z.pos--
		return
	case '\'', '"':
		z.pending.quote = quote
		z.pending.val.start = z.pos
		if i := bytes.IndexByte(z.buf[z.pos:], quote); i >= 0 {
			z.pending.val.end = z.pos + i
			z.pos += i + 1
			return
		}
		z.pos = len(z.buf)
		z.eof = true
		z.pending.val.end = z.pos
	default:
		z.pending.val.start = z.pos - 1
		buf := z.buf
		for i := z.pos; i < len(buf); i++ {
			switch buf[i] {
			case ' ', '\n', '\r', '\t', '\f':
				z.pending.val.end = i
				z.pos = i + 1
				return
			case '>':
				z.pending.val.end = i
				z.pos = i
				return
			}
		}
		z.pos = len(buf)
		z.eof = true
		z.pending.val.end = z.pos
	}
}

// asciiEqualFold reports whether b equals the lower-case ASCII string s, ignoring ASCII case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func asciiEqualFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// lowerASCII returns b with ASCII letters in lower case, copying only if it must.
func lowerASCII(b []byte) []byte {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			out := bytes.Clone(b)
			for j := i; j < len(out); j++ {
				if c := out[j]; 'A' <= c && c <= 'Z' {
					out[j] = c + 'a' - 'A'
				}
			}
			return out
		}
	}
	return b
}

// tagName returns the current tag's name as x/net reports it: lower case, NUL as U+FFFD. The
// result is the document's bytes when they are so already, else made in *scratch.
func (z *tokenizer) tagName(scratch *[]byte) []byte {
	name := z.buf[z.data.start:z.data.end]
	for _, c := range name {
		if 'A' <= c && c <= 'Z' || c == 0 {
			*scratch = lowerInto(*scratch, name)
			return *scratch
		}
	}
	return name
}

// lowerInto copies b into scratch with ASCII letters in lower case and NUL as U+FFFD.
func lowerInto(scratch, b []byte) []byte {
	out := scratch[:0]
	for _, c := range b {
		switch {
		case 'A' <= c && c <= 'Z':
			out = append(out, c+'a'-'A')
		case c == 0:
			out = append(out, "\ufffd"...)
		default:
			out = append(out, c)
		}
	}
	return out
}

// attrKey returns attribute a's key as x/net reports it: lower case, NUL as U+FFFD. The result
// is the document's bytes when they are so already, else made in *scratch.
func (z *tokenizer) attrKey(a attrSpan, scratch *[]byte) []byte {
	key := z.buf[a.key.start:a.key.end]
	for _, c := range key {
		if 'A' <= c && c <= 'Z' || c == 0 {
			*scratch = lowerInto(*scratch, key)
			return *scratch
		}
	}
	return key
}

// text returns the current text token's content as x/net's Text does.
func (z *tokenizer) text() string {
	s := z.buf[z.data.start:z.data.end]
	out := string(convertNewlines(s))
	if z.convertNUL && strings.IndexByte(out, 0) >= 0 {
		out = strings.ReplaceAll(out, "\x00", "\ufffd")
	}
	if !z.textIsRaw {
		out = unescapeText(out)
	}
	return out
}

// convertNewlines returns b with "\r\n" and "\r" as "\n", copying only if it must.
func convertNewlines(b []byte) []byte {
	if bytes.IndexByte(b, '\r') < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\r' {
			if i+1 < len(b) && b[i+1] == '\n' {
				continue
			}
			c = '\n'
		}
		out = append(out, c)
	}
	return out
}
