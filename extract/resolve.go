package extract

import (
	"net/url"
	"strings"
)

// Resolve resolves ref, as written in a document, against base (the document's base URL) and
// returns its canonical form. It reports ok=false for refs that name nothing to fetch: empty or
// fragment-only refs (the page itself), non-http(s) schemes such as javascript:, mailto:, data:,
// tel: and about:, and anything Normalize rejects.
//
// Like a browser, it forgives what authors get away with: surrounding whitespace, tabs and
// newlines inside the URL (wrapped attributes), backslashes for slashes, raw spaces and
// non-ASCII characters, a '%' that starts no escape.
func Resolve(base *url.URL, ref string) (string, bool) {
	ref = cleanRef(ref)
	if ref == "" || ref[0] == '#' {
		return "", false
	}
	if s, ok := scheme(ref); ok && s != "http" && s != "https" {
		// Checked before parsing so a multi-megabyte data: URI costs nothing more.
		return "", false
	}
	if len(ref) > 3*MaxURLLength+64 {
		return "", false
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", false
	}
	s, err := normalizeURL(base.ResolveReference(r))
	return s, err == nil
}

// scheme returns the lower-cased scheme of ref, if it has one (RFC 3986: a letter, then letters,
// digits, '+', '-', '.', up to the first ':').
func scheme(ref string) (string, bool) {
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.':
			if i == 0 {
				return "", false
			}
		case c == ':':
			return strings.ToLower(ref[:i]), i > 0
		default:
			return "", false
		}
	}
	return "", false
}

// cleanRef does what the WHATWG URL parser does before parsing and url.Parse does not: strip
// leading and trailing whitespace and control characters, drop tabs and newlines anywhere, read
// '\' as '/' before the query, and escape bytes url.Parse would reject or re-escape lossily. The
// fragment is cut off, since it never reaches the server.
func cleanRef(ref string) string {
	ref = strings.TrimFunc(ref, func(r rune) bool { return r <= ' ' })
	if i := strings.IndexByte(ref, '#'); i > 0 {
		ref = ref[:i]
	}
	dirty := false
	for i := 0; i < len(ref); i++ {
		if c := ref[i]; c == '%' || c == '\\' || needsEscape(c) {
			dirty = true
			break
		}
	}
	if !dirty {
		return ref
	}
	var b strings.Builder
	b.Grow(len(ref) + 16)
	inQuery := false
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		switch {
		case c == '\t' || c == '\n' || c == '\r':
		case c == '?':
			inQuery = true
			b.WriteByte(c)
		case c == '\\' && !inQuery:
			b.WriteByte('/')
		case c == '%' && (i+2 >= len(ref) || !ishex(ref[i+1]) || !ishex(ref[i+2])):
			b.WriteString("%25")
		case c == '\\' || needsEscape(c):
			writeEscaped(&b, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// needsEscape reports bytes that may not appear raw anywhere in a URL and that url.Parse either
// rejects (controls) or accepts but then re-escapes in a way that can lose an existing %2F.
func needsEscape(c byte) bool {
	return c <= ' ' || c >= 0x7f || strings.IndexByte("\"<>^`{|}", c) >= 0
}
