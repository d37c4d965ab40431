package extract

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The two normalizers trawl had before Normalize was its only one, frozen as they were at commit
// ec8755f, as oracles for FuzzOneSpelling: a state file written then keys each record by
// oldListNormalize's spelling (of a list line or seed, or of a link after oldExtractNormalize),
// and Normalize must take each of those to the spelling it gives now.

// oldMaxURLLength was MaxURLLength: links and scope seeds were capped at 2 KiB.
const oldMaxURLLength = 2048

// oldExtractNormalize is extract.Normalize as it was.
func oldExtractNormalize(raw string) (string, error) {
	if len(raw) > 3*oldMaxURLLength+64 {
		return "", ErrTooLong
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	return oldNormalizeURL(u)
}

func oldNormalizeURL(u *url.URL) (string, error) {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", ErrNotHTTP
	}
	if u.Opaque != "" || u.Host == "" {
		return "", ErrNoHost
	}
	host, err := oldNormalizeHost(u.Host, scheme)
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
	path := oldRemoveDotSegments(oldNormalizeEscapes(oldRawPath(u), oldPathChar))
	if path == "" {
		path = "/"
	}
	b.WriteString(path)
	if q := oldNormalizeEscapes(u.RawQuery, oldQueryChar); q != "" {
		b.WriteByte('?')
		b.WriteString(q)
	}
	if b.Len() > oldMaxURLLength {
		return "", ErrTooLong
	}
	return b.String(), nil
}

func oldRawPath(u *url.URL) string {
	if u.RawPath != "" {
		return u.RawPath
	}
	return u.EscapedPath()
}

func oldNormalizeHost(hostport, scheme string) (string, error) {
	host, port := hostport, ""
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.Contains(hostport[i:], "]") {
		host, port = hostport[:i], hostport[i+1:]
	}
	if port != "" {
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
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return "", ErrBadHost
		}
		host = "[" + ip.String() + "]"
	} else {
		host = strings.ToLower(host)
		if !oldValidHostname(host) {
			return "", ErrBadHost
		}
	}
	if port != "" {
		host += ":" + port
	}
	return host, nil
}

func oldValidHostname(h string) bool {
	if h == "" || !utf8.ValidString(h) {
		return false
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
		case r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsDigit(r)):
			if unicode.ToLower(r) != r {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func oldPathChar(c byte) bool {
	return oldUnreserved(c) || strings.IndexByte("!$&'()*+,;=:@/", c) >= 0
}

func oldQueryChar(c byte) bool { return oldPathChar(c) || c == '?' }

func oldUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func oldNormalizeEscapes(s string, allowed func(byte) bool) string {
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
		case c == '%' && i+2 < len(s) && oldIshex(s[i+1]) && oldIshex(s[i+2]):
			v := oldUnhex(s[i+1])<<4 | oldUnhex(s[i+2])
			if oldUnreserved(v) {
				b.WriteByte(v)
			} else {
				oldWriteEscaped(&b, v)
			}
			i += 2
		case c == '%' || !allowed(c):
			oldWriteEscaped(&b, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func oldWriteEscaped(b *strings.Builder, c byte) {
	const hex = "0123456789ABCDEF"
	b.WriteByte('%')
	b.WriteByte(hex[c>>4])
	b.WriteByte(hex[c&15])
}

func oldIshex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func oldUnhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func oldRemoveDotSegments(p string) string {
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

// oldListNormalize is scheduler.NormalizeURL as it was (its URL, without userinfo, and host):
// list lines, arguments and seeds were keyed by it, and so were links, after oldExtractNormalize.
func oldListNormalize(raw string) (string, string, error) {
	if len(raw) > 8<<10 {
		return "", "", fmt.Errorf("URL longer than %d bytes", 8<<10)
	}
	if !utf8.ValidString(raw) {
		return "", "", fmt.Errorf("URL is not valid UTF-8")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", err
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", "", errors.New("not http")
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", "", errors.New("no host")
	}
	u.Scheme = scheme
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	u.Host = host
	u.Fragment, u.RawFragment = "", ""
	if u.Path == "" {
		u.Path = "/"
	}
	u.User = nil
	return u.String(), host, nil
}
