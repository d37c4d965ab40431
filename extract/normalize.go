package extract

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxURLLength is the longest canonical URL, in bytes, that Normalize accepts. It is generous
// because list URLs may legitimately be long (signed URLs can carry kilobytes of query) and it is
// what common servers accept in a request line (Apache's and nginx's defaults are near 8 KiB). A
// crawl keeps its links much shorter by a scope rule, ScopeOptions.MaxURLLength, not by another
// normalizer.
const MaxURLLength = 8 << 10

// Normalize returns the canonical form of an absolute http(s) URL. It is trawl's one normalizer:
// list lines, seeds and links all go through it, and the state file keys records by its result,
// so that every spelling of a resource is one record, fetched once. The rules, from RFC 3986
// §6.2.2 and §6.2.3 and RFC 9110 §4.2.3:
//
//   - scheme and host lower-cased; IPv6 literals in their compressed form; internationalized
//     hosts kept as given, lower-cased (punycode stays punycode, Unicode stays Unicode: the HTTP
//     client converts it);
//   - the scheme's default port dropped, a port's leading zeros dropped, an empty port dropped;
//   - percent-encoding normalized in path and query: escapes of unreserved characters decoded
//     (%7E → ~, %41 → A), and in a path those of ! ' ( ) * too (see pathDecoded); other escapes
//     in upper-case hex (%2f → %2F, and never decoded: %2F in a path is not a "/"); a '%' that
//     starts no escape and bytes that may not appear raw (space, non-ASCII, brackets in a query)
//     escaped;
//   - dot segments removed, after the escapes are decoded (/a/%2E%2E/b → /b), never above the
//     root;
//   - an empty path made "/";
//   - an empty query ("?" alone) dropped: RFC 3986 does not license this for every scheme, but
//     HTTP servers read /a? as /a, and keeping both spellings would fetch the page twice;
//   - the fragment dropped: it never reaches the server;
//   - userinfo kept, escaped as net/url writes it (the caller decides what to do with it).
//
// Left as they are, because they can name different resources: the query's order and its '+',
// repeated slashes, a trailing dot in the host, the case of the path.
//
// It returns ErrNotHTTP for other schemes, ErrNoHost for URLs without a host, ErrBadHost for an
// invalid host or port, ErrTooLong beyond MaxURLLength, or the url.Parse error.
// Normalize(Normalize(x)) == Normalize(x).
func Normalize(raw string) (string, error) {
	// Escapes can shrink a URL at most threefold (%41 → A); anything longer cannot make it.
	if len(raw) > 3*MaxURLLength+64 {
		return "", ErrTooLong
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	return normalizeURL(u)
}

// normalizeURL builds the canonical string itself rather than trusting url.URL.String, whose
// re-escaping of Path can turn an escaped %2F into a real "/" and change the resource.
func normalizeURL(u *url.URL) (string, error) {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", ErrNotHTTP
	}
	if u.Opaque != "" || u.Host == "" {
		return "", ErrNoHost
	}
	host, err := normalizeHost(u.Host, scheme)
	if err != nil {
		return "", err
	}

	var b strings.Builder
	b.Grow(len(scheme) + 3 + len(host) + len(u.RawPath) + len(u.Path) + len(u.RawQuery) + 2)
	b.WriteString(scheme)
	b.WriteString("://")
	if u.User != nil {
		if ui := u.User.String(); ui != "" {
			b.WriteString(ui)
			b.WriteByte('@')
		}
	}
	b.WriteString(host)
	// Percent-encoding is normalized before dot segments are removed (RFC 3986 §6.2.2), so
	// that %2E%2E counts as ".." the way browsers and servers read it.
	path := removeDotSegments(normalizeEscapes(rawPath(u), pathChar, pathDecoded))
	if path == "" {
		path = "/"
	}
	b.WriteString(path)
	// An empty query ("?" alone) is dropped: no server tells it from no query.
	if q := normalizeEscapes(u.RawQuery, queryChar, unreserved); q != "" {
		b.WriteByte('?')
		b.WriteString(q)
	}
	if b.Len() > MaxURLLength {
		return "", ErrTooLong
	}
	return b.String(), nil
}

// rawPath returns the path exactly as it was written. url.Parse keeps the original in RawPath
// whenever it differs from the default escaping of Path, and otherwise the two agree.
func rawPath(u *url.URL) string {
	if u.RawPath != "" {
		return u.RawPath
	}
	return u.EscapedPath()
}

// normalizeHost lower-cases the host, validates it, and drops the scheme's default port.
func normalizeHost(hostport, scheme string) (string, error) {
	host, port := hostport, ""
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.Contains(hostport[i:], "]") {
		host, port = hostport[:i], hostport[i+1:]
	}
	if port != "" {
		// url.Parse guarantees digits; leading zeros and the default port must not make a
		// second spelling of the same origin.
		n, err := strconv.Atoi(port)
		if err != nil || n <= 0 || n > 65535 {
			return "", ErrBadHost
		}
		port = strconv.Itoa(n)
		if (scheme == "http" && n == 80) || (scheme == "https" && n == 443) {
			port = ""
		}
	}
	if strings.HasPrefix(host, "[") {
		ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
		// Zones name a local interface; no crawled link can mean one.
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return "", ErrBadHost
		}
		host = "[" + ip.String() + "]"
	} else {
		host = strings.ToLower(host)
		if !validHostname(host) {
			return "", ErrBadHost
		}
	}
	if port != "" {
		host += ":" + port
	}
	return host, nil
}

// validHostname accepts DNS-like names: ASCII letters, digits, '.', '-', '_' (common in real
// hostnames though not strictly legal), and Unicode letters, marks and digits of an IDN kept
// unconverted. Anything else cannot be resolved, and would complicate paths on disk.
func validHostname(h string) bool {
	if h == "" || !utf8.ValidString(h) {
		return false
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
		case r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsDigit(r)):
			// Lower-casing must be stable, or Normalize would not be idempotent.
			if unicode.ToLower(r) != r {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// pathChar and queryChar report the bytes RFC 3986 allows unescaped in a path and a query:
// unreserved, sub-delims, ':' and '@' (and '/', plus '?' in a query).
func pathChar(c byte) bool {
	return unreserved(c) || strings.IndexByte("!$&'()*+,;=:@/", c) >= 0
}

func queryChar(c byte) bool { return pathChar(c) || c == '?' }

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// pathDecoded reports the bytes whose escapes a path spells raw: the unreserved ones, and the
// sub-delims ! ' ( ) *, which HTTP gives no role in a path. Browsers leave those five raw, while
// net/url and Python's quote escape them: /a%20(1) and /a%20%281%29 are one file to servers, and
// an older trawl keyed list URLs by net/url's spelling.
func pathDecoded(c byte) bool { return unreserved(c) || strings.IndexByte("!'()*", c) >= 0 }

// normalizeEscapes rewrites one URL component into its canonical escaping: %XX of a character
// decoded reports becomes the character, other escapes get upper-case hex, a '%' that starts no
// escape becomes %25, and bytes not allowed raw are escaped. Escapes of other reserved characters
// stay escaped: %2F in a path is not a "/".
func normalizeEscapes(s string, allowed, decoded func(byte) bool) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '%' || !allowed(c) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]):
			v := unhex(s[i+1])<<4 | unhex(s[i+2])
			if decoded(v) {
				b.WriteByte(v)
			} else {
				writeEscaped(&b, v)
			}
			i += 2
		case c == '%' || !allowed(c):
			writeEscaped(&b, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// writeEscaped writes c as %XX, in upper case.
func writeEscaped(b *strings.Builder, c byte) {
	const hex = "0123456789ABCDEF"
	b.WriteByte('%')
	b.WriteByte(hex[c>>4])
	b.WriteByte(hex[c&15])
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// removeDotSegments resolves "." and ".." segments of an absolute path (RFC 3986 §5.2.4).
// ".." never climbs above the root, and a path ending in a dot segment keeps its trailing slash.
func removeDotSegments(p string) string {
	// A dot segment always follows a slash; file extensions alone need no work.
	if !strings.Contains(p, "/.") || !strings.HasPrefix(p, "/") {
		return p
	}
	segs := strings.Split(p[1:], "/")
	out := segs[:0:0]
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
			continue
		}
		if last {
			out = append(out, "")
		}
	}
	return "/" + strings.Join(out, "/")
}
