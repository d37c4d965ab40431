package extract

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxURLLength is the longest canonical URL, in bytes, that Normalize accepts. Calendar pages and
// session ids grow URLs without bound; real pages rarely pass a few hundred bytes, and many
// servers refuse more than 8 KiB of request line anyway.
const MaxURLLength = 2048

// Normalize returns the canonical form of an absolute http(s) URL, so that spellings of the same
// resource dedup to one queue entry: scheme and host lower-cased, default port dropped, fragment
// dropped, empty path made "/", dot segments resolved, and percent-encoding normalized (escapes
// of unreserved characters decoded, %41 → A; other escapes upper-cased, %2f → %2F; bytes that may
// not appear raw, such as spaces and non-ASCII, escaped). IPv6 literals are written in their
// compressed form; internationalized hosts are kept as given, lower-cased (punycode stays
// punycode, Unicode stays Unicode — the HTTP client converts it).
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
	path := removeDotSegments(normalizeEscapes(rawPath(u), pathChar))
	if path == "" {
		path = "/"
	}
	b.WriteString(path)
	// An empty query ("?" alone) is dropped: no server tells it from no query.
	if q := normalizeEscapes(u.RawQuery, queryChar); q != "" {
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

// normalizeEscapes rewrites one URL component into its canonical escaping: %XX of an unreserved
// character becomes the character, other escapes get upper-case hex, a '%' that starts no
// escape becomes %25, and bytes not allowed raw are escaped. Escapes of reserved characters stay
// escaped: %2F in a path is not a "/".
func normalizeEscapes(s string, allowed func(byte) bool) string {
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
			if unreserved(v) {
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
