package fetcher

import (
	"errors"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/publicsuffix"
)

// cookieJar is a Fetcher's cookie jar: net/http/cookiejar, which follows RFC 6265 and the public
// suffix list (a cookie goes only to the hosts its domain and path allow, a redirect included,
// and no site can set one for all of .co.uk), plus, when asked, a record of what it holds, which
// cookiejar cannot list, for saving.
//
// The record is kept under the jar's own key for a cookie (domain, path, name), worked out from
// each Set-Cookie by the rules cookiejar applies, so a cookie set again replaces its entry and
// one deleted (Max-Age<0, an Expires in the past) drops it. What is saved is checked against the
// jar itself: an entry is written only if the jar still sends a cookie of that name and value to
// its domain and path, so a cookie the jar refused or has let expire is not.
type cookieJar struct {
	jar    *cookiejar.Jar
	record bool // keep the record (a Fetcher asked to save its cookies)

	mu   sync.Mutex
	kept map[string]Cookie // by domain;path;name, as cookiejar keys its entries
	now  func() time.Time  // time.Now; tests move it
}

var _ http.CookieJar = (*cookieJar)(nil)

func newCookieJar(record bool) *cookieJar {
	jar, _ := cookiejar.New(&cookiejar.Options{PublicSuffixList: publicsuffix.List}) // never fails
	return &cookieJar{jar: jar, record: record, kept: map[string]Cookie{}, now: time.Now}
}

// Cookies returns the cookies to send to u.
func (j *cookieJar) Cookies(u *url.URL) []*http.Cookie { return j.jar.Cookies(u) }

// SetCookies takes the cookies of a response from u.
func (j *cookieJar) SetCookies(u *url.URL, cookies []*http.Cookie) {
	j.jar.SetCookies(u, cookies)
	if !j.record || len(cookies) == 0 || u.Scheme != "http" && u.Scheme != "https" {
		return
	}
	host, err := canonicalCookieHost(u.Host)
	if err != nil {
		return
	}
	defPath := defaultCookiePath(u.Path)
	now := j.now()
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range cookies {
		domain, hostOnly, ok := cookieDomain(host, c.Domain)
		if !ok {
			continue
		}
		path := c.Path
		if path == "" || path[0] != '/' {
			path = defPath
		}
		id := domain + ";" + path + ";" + c.Name
		var expires time.Time // zero: a session cookie
		switch {
		case c.MaxAge < 0:
			delete(j.kept, id)
			continue
		case c.MaxAge > 0:
			expires = now.Add(time.Duration(c.MaxAge) * time.Second)
		case !c.Expires.IsZero() && !c.Expires.After(now):
			delete(j.kept, id)
			continue
		case !c.Expires.IsZero():
			expires = c.Expires
		}
		value := c.Value
		if c.Quoted {
			value = `"` + value + `"`
		}
		j.kept[id] = Cookie{Domain: domain, Subdomains: !hostOnly, Path: path, Secure: c.Secure,
			HTTPOnly: c.HttpOnly, Expires: expires, Name: c.Name, Value: value}
	}
}

// load puts the cookies of a file into the jar, as if the hosts they belong to had set them.
// Expired ones are skipped; the jar refuses, silently, one it would refuse from a server (a
// domain cookie for a public suffix).
func (j *cookieJar) load(cookies []Cookie) {
	now := j.now()
	for _, c := range cookies {
		if !c.Expires.IsZero() && !c.Expires.After(now) {
			continue
		}
		u := &url.URL{Scheme: "http", Host: urlHost(c.Domain), Path: c.Path}
		if c.Secure {
			u.Scheme = "https"
		}
		value, quoted := unquoteCookie(c.Value)
		hc := &http.Cookie{Name: c.Name, Value: value, Quoted: quoted, Path: c.Path, Secure: c.Secure,
			HttpOnly: c.HTTPOnly, Expires: c.Expires}
		if c.Subdomains {
			hc.Domain = c.Domain
		}
		j.SetCookies(u, []*http.Cookie{hc})
	}
}

// saved lists the recorded cookies the jar still holds: set (or loaded) during the run, neither
// deleted nor expired since.
func (j *cookieJar) saved() []Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.now()
	var out []Cookie
	for id, c := range j.kept {
		if !c.Expires.IsZero() && !c.Expires.After(now) {
			delete(j.kept, id)
			continue
		}
		if j.holds(c) {
			out = append(out, c)
		}
	}
	return out
}

// holds reports whether the jar sends c to its own domain and path.
func (j *cookieJar) holds(c Cookie) bool {
	value, quoted := unquoteCookie(c.Value)
	for _, hc := range j.jar.Cookies(&url.URL{Scheme: "https", Host: urlHost(c.Domain), Path: c.Path}) {
		if hc.Name == c.Name && hc.Value == value && hc.Quoted == quoted {
			return true
		}
	}
	return false
}

// urlHost is host as a URL's host: an IPv6 address in brackets.
func urlHost(host string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

// The functions below repeat how net/http/cookiejar reads a Set-Cookie (its canonicalHost,
// defaultPath, isIP and domainAndType), which it does not export: the record must key a cookie
// exactly as the jar does.

// errUnicodeHost: cookiejar keys a Unicode host name by its punycode, which is not worked out
// here; such a host's cookies work for the run but are not recorded.
var errUnicodeHost = errors.New("a Unicode host name")

// canonicalCookieHost is host without its port or trailing dot, in lower case.
func canonicalCookieHost(host string) (string, error) {
	if hasCookiePort(host) {
		h, _, err := net.SplitHostPort(host)
		if err != nil {
			return "", err
		}
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			return "", errUnicodeHost
		}
	}
	return strings.ToLower(host), nil
}

func hasCookiePort(host string) bool {
	colons := strings.Count(host, ":")
	if colons == 0 {
		return false
	}
	if colons == 1 {
		return true
	}
	return host[0] == '[' && strings.Contains(host, "]:")
}

// defaultCookiePath is RFC 6265's default-path of a request path.
func defaultCookiePath(path string) string {
	if len(path) == 0 || path[0] != '/' {
		return "/"
	}
	i := strings.LastIndex(path, "/")
	if i == 0 {
		return "/"
	}
	return path[:i]
}

func isCookieIP(host string) bool {
	return strings.ContainsAny(host, ":%") || net.ParseIP(host) != nil
}

// cookieDomain is the domain a cookie with the Domain attribute domain, set by host, belongs to,
// and whether it is host-only; ok is false for a cookie the jar refuses.
func cookieDomain(host, domain string) (string, bool, bool) {
	if domain == "" {
		return host, true, true
	}
	if isCookieIP(host) {
		// A Domain attribute on an IP address must be the address; the cookie is host-only.
		return host, true, host == domain
	}
	domain = strings.TrimPrefix(domain, ".")
	if domain == "" || domain[0] == '.' || domain[len(domain)-1] == '.' {
		return "", false, false
	}
	for i := 0; i < len(domain); i++ {
		if domain[i] >= 0x80 {
			return "", false, false
		}
	}
	domain = strings.ToLower(domain)
	if ps, _ := publicsuffix.PublicSuffix(domain); ps != "" && !strings.HasSuffix(domain, "."+ps) {
		// domain is itself a public suffix: only its own host may set it, as a host cookie.
		return host, true, host == domain
	}
	if host != domain && !strings.HasSuffix(host, "."+domain) {
		return "", false, false
	}
	return domain, false, true
}

// Cookies lists the cookies the Fetcher's jar holds that were loaded or set while
// Options.RecordCookies was on, for saving (SaveCookieFile). Expired and deleted ones are left out.
func (f *Fetcher) Cookies() []Cookie { return f.jar.saved() }
