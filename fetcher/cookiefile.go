package fetcher

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Cookie is one line of a Netscape cookies.txt file, the format curl, wget, aria2, yt-dlp and
// browser export extensions read and write:
//
//	[#HttpOnly_]domain <TAB> include-subdomains <TAB> path <TAB> secure <TAB> expiry <TAB> name <TAB> value
type Cookie struct {
	Domain     string // a host name or IP address, lower case, without a leading dot
	Subdomains bool   // sent to Domain's subdomains too (a domain cookie); false: to Domain alone
	Path       string
	Secure     bool      // sent over https only
	HTTPOnly   bool      // the #HttpOnly_ prefix; kept for browsers, it changes nothing here
	Expires    time.Time // zero: a session cookie (expiry 0 in the file)
	Name       string
	Value      string // as written, with its double quotes if it has them
}

// httpOnlyPrefix marks an HttpOnly cookie's line; any other line starting with # is a comment.
const httpOnlyPrefix = "#HttpOnly_"

// maxCookieLine bounds one line of a cookie file: a browser keeps a cookie under 4 KiB.
const maxCookieLine = 64 << 10

// ParseCookies reads a cookies.txt. Blank lines and # comments are skipped; any other line must
// be a cookie, else the error names the file (name) and the line.
func ParseCookies(r io.Reader, name string) ([]Cookie, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxCookieLine)
	var out []Cookie
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		c, ok, err := parseCookieLine(line)
		if err != nil {
			return nil, fmt.Errorf("cookie file %s line %d: %w", name, n, err)
		}
		if ok {
			out = append(out, c)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("cookie file %s: a line is longer than %d KiB: not a cookies.txt", name, maxCookieLine>>10)
		}
		return nil, fmt.Errorf("cookie file %s: %w", name, err)
	}
	return out, nil
}

// parseCookieLine reads one line; ok is false for a blank line or a comment.
func parseCookieLine(line string) (c Cookie, ok bool, err error) {
	if strings.HasPrefix(line, httpOnlyPrefix) {
		c.HTTPOnly = true
		line = line[len(httpOnlyPrefix):]
	} else if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
		return c, false, nil
	}
	f := strings.Split(line, "\t")
	if len(f) == 6 {
		f = append(f, "") // curl writes a cookie with an empty value without its last tab
	}
	if len(f) != 7 {
		return c, false, fmt.Errorf("want 7 tab-separated fields (domain, include-subdomains, path, secure, expiry, name, value), got %d", len(f))
	}
	if c.Domain, err = cookieDomainField(f[0]); err != nil {
		return c, false, err
	}
	if c.Subdomains, err = cookieBool("include-subdomains", f[1]); err != nil {
		return c, false, err
	}
	c.Path = f[2]
	if !strings.HasPrefix(c.Path, "/") || strings.ContainsFunc(c.Path, func(r rune) bool { return r <= ' ' || r == ';' || r == 0x7f }) {
		return c, false, fmt.Errorf("path %q: want an absolute path like /, without spaces or ';'", c.Path)
	}
	if c.Secure, err = cookieBool("secure", f[3]); err != nil {
		return c, false, err
	}
	if c.Expires, err = cookieExpiry(f[4]); err != nil {
		return c, false, err
	}
	c.Name, c.Value = f[5], f[6]
	if !isToken(c.Name) {
		return c, false, fmt.Errorf("cookie name %q: want letters, digits and !#$%%&'*+-.^_`|~ only", c.Name)
	}
	if v, _ := unquoteCookie(c.Value); strings.ContainsFunc(v, func(r rune) bool { return !cookieValueRune(r) }) {
		return c, false, fmt.Errorf("the value of cookie %s has a character a cookie cannot carry (a control character, '\"', ';', '\\' or non-ASCII)", c.Name)
	}
	return c, true, nil
}

// cookieDomainField reads the domain field: a host name or an IP address; a leading dot (the
// writer's mark of a domain cookie) is dropped, as the include-subdomains field says it.
func cookieDomainField(s string) (string, error) {
	d := strings.ToLower(strings.TrimPrefix(s, "."))
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(d, "["), "]")); err == nil {
		return ip.String(), nil
	}
	if d == "" || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") ||
		strings.ContainsFunc(d, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_')
		}) {
		return "", fmt.Errorf("domain %q: want a host name (in ASCII: xn-- for international names) or an IP address", s)
	}
	return d, nil
}

func cookieBool(field, s string) (bool, error) {
	switch {
	case strings.EqualFold(s, "TRUE"):
		return true, nil
	case strings.EqualFold(s, "FALSE"):
		return false, nil
	}
	return false, fmt.Errorf("%s %q: want TRUE or FALSE", field, s)
}

// cookieExpiry reads the expiry field: Unix seconds, 0 for a session cookie. A fraction of a
// second, which some exporters write, is dropped.
func cookieExpiry(s string) (time.Time, error) {
	whole, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || strings.ContainsAny(whole, "+") || strings.ContainsFunc(frac, func(r rune) bool { return r < '0' || r > '9' }) {
		return time.Time{}, fmt.Errorf("expiry %q: want Unix seconds (0 for a session cookie)", s)
	}
	if n == 0 {
		return time.Time{}, nil
	}
	// Far-future expiries (some writers use the largest int64) stay representable.
	const maxUnix = 253402300799 // 9999-12-31T23:59:59Z
	return time.Unix(min(n, maxUnix), 0).UTC(), nil
}

// isToken reports whether s is a non-empty RFC 9110 token, as a cookie name must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0) {
			return false
		}
	}
	return true
}

// cookieValueRune reports whether r may appear in a cookie's value as net/http sends it
// unchanged (spaces and commas make it quote the value).
func cookieValueRune(r rune) bool {
	return r >= 0x20 && r < 0x7f && r != '"' && r != ';' && r != '\\'
}

// unquoteCookie strips a value's surrounding double quotes, which RFC 6265 allows and net/http
// keeps apart (http.Cookie.Quoted).
func unquoteCookie(v string) (string, bool) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1], true
	}
	return v, false
}

// WriteCookies writes cookies in the Netscape format ParseCookies reads, sorted by domain, path
// and name.
func WriteCookies(w io.Writer, cookies []Cookie) error {
	cs := slices.Clone(cookies)
	slices.SortFunc(cs, func(a, b Cookie) int {
		return cmp.Or(cmp.Compare(a.Domain, b.Domain), cmp.Compare(a.Path, b.Path), cmp.Compare(a.Name, b.Name))
	})
	bw := bufio.NewWriter(w)
	bw.WriteString("# Netscape HTTP Cookie File\n# Written by trawl. It may hold logins: keep it private.\n\n")
	for _, c := range cs {
		if c.HTTPOnly {
			bw.WriteString(httpOnlyPrefix)
		}
		if c.Subdomains {
			bw.WriteByte('.')
		}
		var exp int64
		if !c.Expires.IsZero() {
			exp = max(c.Expires.Unix(), 1)
		}
		fmt.Fprintf(bw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", c.Domain, cookieFlag(c.Subdomains), c.Path,
			cookieFlag(c.Secure), exp, c.Name, c.Value)
	}
	return bw.Flush()
}

func cookieFlag(b bool) string {
	if b {
		return "TRUE"
	}
	return "FALSE"
}

// LoadCookieFile reads a cookies.txt file (see ParseCookies).
func LoadCookieFile(path string) ([]Cookie, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cookie file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("cookie file %s is not a regular file", path)
	}
	return ParseCookies(f, path)
}

// SaveCookieFile writes cookies to path atomically: a private temporary file in the same
// directory (mode 0600: cookies are often logins), flushed to disk, then renamed over path. A
// failed save leaves path as it was.
func SaveCookieFile(path string, cookies []Cookie) error {
	var buf bytes.Buffer
	if err := WriteCookies(&buf, cookies); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("cookie file: %w", err)
	}
	_, err = tmp.Write(buf.Bytes())
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cookie file: %w", err)
	}
	return nil
}
