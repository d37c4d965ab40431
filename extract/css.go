package extract

import (
	"io"
	"net/url"
	"strings"
	"unicode/utf8"
)

// CSS reads at most MaxParseBytes of a stylesheet and returns the targets of its url(...)
// tokens, @import rules and image-set() strings, resolved against base (the stylesheet's own
// URL, as CSS requires) and normalized. All are Requisites. Duplicates are removed; order is
// document order.
func CSS(r io.Reader, base *url.URL) ([]Link, error) {
	if !absHTTP(base) {
		return nil, ErrNoBase
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxParseBytes))
	if err != nil {
		return nil, err
	}
	c := newCollector(base)
	c.css(string(b))
	return c.links, nil
}

// cssRefs returns, in document order, the raw references of a stylesheet or style attribute:
// url(...) in all its quotings, the string form of @import, and strings inside image-set().
// It is a small tokenizer rather than a regexp so that comments and ordinary strings
// (content: "url(x)", format("woff2")) are skipped as CSS skips them. It never fails: malformed
// CSS yields whatever references can be read, as browsers do.
func cssRefs(css string) []string {
	var refs []string
	imageSet := 0 // parenthesis depth inside image-set(), where strings are URLs
	for i := 0; i < len(css); {
		c := css[i]
		switch {
		case c == '/' && strings.HasPrefix(css[i:], "/*"):
			i = skipComment(css, i)
		case c == '\\':
			// An escaped character starts nothing: \" is not a string.
			i += 2
		case c == '"' || c == '\'':
			var s string
			s, i = readString(css, i)
			if imageSet > 0 {
				refs = append(refs, s)
			}
		case c == '@' && hasPrefixFold(css[i+1:], "import") && !identChar(at(css, i+7)):
			i = skipSpace(css, i+7)
			if i < len(css) && (css[i] == '"' || css[i] == '\'') {
				var s string
				s, i = readString(css, i)
				refs = append(refs, s)
			}
			// @import url(...) is picked up by the url( case on the next turn.
		case (c == 'u' || c == 'U') && hasPrefixFold(css[i:], "url(") && (i == 0 || !identChar(css[i-1])):
			var s string
			s, i = readURL(css, i+4)
			refs = append(refs, s)
		case (c == 'i' || c == 'I') && hasPrefixFold(css[i:], "image-set("):
			// No identifier-boundary check: -webkit-image-set( is the same function.
			imageSet++
			i += len("image-set(")
		case c == '(' && imageSet > 0:
			imageSet++
			i++
		case c == ')' && imageSet > 0:
			imageSet--
			i++
		default:
			i++
		}
	}
	return refs
}

// at returns css[i], or 0 past the end.
func at(css string, i int) byte {
	if i < len(css) {
		return css[i]
	}
	return 0
}

func skipComment(css string, i int) int {
	end := strings.Index(css[i+2:], "*/")
	if end < 0 {
		return len(css)
	}
	return i + 2 + end + 2
}

// skipSpace skips whitespace and comments.
func skipSpace(css string, i int) int {
	for i < len(css) {
		switch {
		case isSpace(css[i]):
			i++
		case strings.HasPrefix(css[i:], "/*"):
			i = skipComment(css, i)
		default:
			return i
		}
	}
	return i
}

// readString reads the quoted string starting at css[i] and returns its value with escapes
// decoded, and the index after it. An unescaped newline ends a (bad) string, as in CSS.
func readString(css string, i int) (string, int) {
	quote := css[i]
	i++
	var b strings.Builder
	for i < len(css) {
		c := css[i]
		switch {
		case c == quote:
			return b.String(), i + 1
		case c == '\n':
			return b.String(), i
		case c == '\\' && i+1 < len(css) && css[i+1] == '\n':
			i += 2 // line continuation
		case c == '\\':
			i = readEscape(css, i, &b)
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), i
}

// readURL reads the body of url( starting at css[i] (after the parenthesis), quoted or not, and
// returns it and the index after the closing parenthesis.
func readURL(css string, i int) (string, int) {
	i = skipSpace(css, i)
	var s string
	if i < len(css) && (css[i] == '"' || css[i] == '\'') {
		s, i = readString(css, i)
	} else {
		var b strings.Builder
		for i < len(css) && css[i] != ')' && !isSpace(css[i]) {
			if css[i] == '\\' {
				i = readEscape(css, i, &b)
				continue
			}
			b.WriteByte(css[i])
			i++
		}
		s = b.String()
	}
	if end := strings.IndexByte(css[i:], ')'); end >= 0 {
		return s, i + end + 1
	}
	return s, len(css)
}

// readEscape decodes the CSS escape at css[i] ('\\') into b and returns the index after it:
// up to six hex digits and one optional whitespace, or the escaped character itself.
func readEscape(css string, i int, b *strings.Builder) int {
	i++
	if i >= len(css) {
		return i
	}
	if !ishex(css[i]) {
		r, n := utf8.DecodeRuneInString(css[i:])
		b.WriteRune(r)
		return i + n
	}
	var r rune
	n := 0
	for ; n < 6 && i < len(css) && ishex(css[i]); n++ {
		r = r<<4 | rune(unhex(css[i]))
		i++
	}
	if i < len(css) && isSpace(css[i]) {
		i++
	}
	if r == 0 || r > utf8.MaxRune || (r >= 0xD800 && r <= 0xDFFF) {
		r = utf8.RuneError
	}
	b.WriteRune(r)
	return i
}

// identChar reports bytes that continue a CSS identifier, so that "myurl(" is not "url(".
func identChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c >= utf8.RuneSelf
}

// hasPrefixFold is strings.HasPrefix ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
