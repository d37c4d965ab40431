package extract

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// ScopeMode says which pages a crawl follows, relative to its seeds.
type ScopeMode string

const (
	// ScopePrefix follows pages under the directory of a seed, on the same scheme, host and
	// port: seed https://example.org/gallery/index.html admits https://example.org/gallery/….
	// It is the default because it is what "mirror this gallery" means.
	ScopePrefix ScopeMode = "prefix"
	// ScopeHost follows pages on the host (and port) of a seed, over http or https.
	ScopeHost ScopeMode = "host"
	// ScopeDomain follows pages whose registrable domain (eTLD+1, by the public suffix list)
	// is a seed's: www.example.org and cdn.example.org, but not example.co.uk from co.uk. IP
	// addresses and single-label hosts such as localhost are their own domain.
	ScopeDomain ScopeMode = "domain"
)

// Reasons Decide gives for refusing a link, recorded with off-scope links.
const (
	ReasonInvalid        = "invalid"         // not an absolute http(s) URL, or an unknown Kind
	ReasonTooLong        = "too-long"        // longer than ScopeOptions.MaxURLLength
	ReasonOffScope       = "off-scope"       // a page outside the scope mode's pages
	ReasonOffHostAsset   = "off-host-asset"  // a requisite off the seeds' hosts, with SameHostAssets
	ReasonExcluded       = "excluded"        // matches an Exclude regexp
	ReasonNotIncluded    = "not-included"    // a page matching none of the Include regexps
	ReasonDepth          = "depth"           // a page deeper than MaxDepth
	ReasonRequisiteDepth = "requisite-depth" // a requisite deeper in a chain than MaxRequisiteLevel
)

// MaxCrawlURLLength is the default ScopeOptions.MaxURLLength. Calendar pages and session ids grow
// a crawl's URLs without bound, while real pages rarely pass a few hundred bytes: a link longer
// than this is recorded skipped (ReasonTooLong), never fetched.
const MaxCrawlURLLength = 2048

// MaxRequisiteLevel is how far down a chain of requisites a crawl goes by default: a page's own
// requisites are level 1, what a level-1 stylesheet imports or url()s is level 2, and so on. A
// page's fonts and backgrounds sit a level or two down; without a limit, a server answering each
// s.css?n=N with `@import "s.css?n=N+1"` would be fetched forever, since requisites are exempt from
// MaxDepth and the URLs stay short.
const MaxRequisiteLevel = 5

// ScopeOptions configures a Scope. The zero value is a valid configuration: prefix scope,
// unlimited depth, no filters, requisites from any host, MaxRequisiteLevel, MaxCrawlURLLength.
type ScopeOptions struct {
	// Mode is ScopePrefix, ScopeHost or ScopeDomain; empty means ScopePrefix.
	Mode ScopeMode
	// MaxDepth is the deepest page followed, counting seeds as depth 0; 0 means unlimited.
	// Requisites are exempt: a page at the last level still gets its images.
	MaxDepth int
	// MaxRequisiteLevel is the deepest requisite fetched in a chain of requisites (see the
	// constant MaxRequisiteLevel); 0 means MaxRequisiteLevel. There is no unlimited: a chain of
	// requisites is bounded by nothing else.
	MaxRequisiteLevel int
	// Include, if not empty, admits only pages whose URL matches at least one regexp.
	// Requisites are exempt: a page admitted by Include needs its images whatever their names.
	Include []*regexp.Regexp
	// Exclude refuses every link, page or requisite, whose URL matches any regexp.
	Exclude []*regexp.Regexp
	// SameHostAssets restricts requisites to the seeds' hosts (to the seeds' registrable
	// domains in ScopeDomain mode, where the site's own CDN hosts belong to it); otherwise
	// requisites may come from any host.
	SameHostAssets bool
	// MaxURLLength refuses longer links, pages and requisites alike, to keep calendar and
	// session-id traps finite; 0 means MaxCrawlURLLength. Normalize never returns more than
	// MaxURLLength, so a larger value admits everything.
	MaxURLLength int
}

// Scope decides which discovered links a crawl enqueues. It is immutable after NewScope and
// safe for concurrent use.
type Scope struct {
	opt      ScopeOptions
	prefixes []string            // "https://example.org/gallery/": scheme, host, directory
	hosts    map[string]struct{} // "example.org:8080"
	domains  map[string]struct{} // "example.org"
}

// NewScope returns the scope of a crawl from its seeds, which are normalized first. It fails on
// no seeds, an invalid seed, an unknown mode or a negative limit.
func NewScope(seeds []string, o ScopeOptions) (*Scope, error) {
	if len(seeds) == 0 {
		return nil, fmt.Errorf("extract: scope needs at least one seed")
	}
	switch o.Mode {
	case "":
		o.Mode = ScopePrefix
	case ScopePrefix, ScopeHost, ScopeDomain:
	default:
		return nil, fmt.Errorf("extract: unknown scope %q (want prefix, host or domain)", o.Mode)
	}
	if o.MaxDepth < 0 || o.MaxRequisiteLevel < 0 || o.MaxURLLength < 0 {
		return nil, fmt.Errorf("extract: negative depth, requisite level or URL length")
	}
	if o.MaxRequisiteLevel == 0 {
		o.MaxRequisiteLevel = MaxRequisiteLevel
	}
	if o.MaxURLLength == 0 {
		o.MaxURLLength = MaxCrawlURLLength
	}
	s := &Scope{opt: o, hosts: make(map[string]struct{}), domains: make(map[string]struct{})}
	for _, seed := range seeds {
		n, err := Normalize(seed)
		if err != nil {
			return nil, fmt.Errorf("extract: seed %q: %w", seed, err)
		}
		u, err := url.Parse(n)
		if err != nil {
			return nil, fmt.Errorf("extract: seed %q: %w", seed, err)
		}
		// The directory of the seed: everything up to its last slash, so a seed naming a file
		// (…/gallery/index.html) and one naming the directory (…/gallery/) agree.
		p := withoutUser(u)
		s.prefixes = append(s.prefixes, p[:strings.LastIndexByte(p, '/')+1])
		s.hosts[u.Host] = struct{}{}
		s.domains[domainOf(u.Hostname())] = struct{}{}
	}
	return s, nil
}

// Decide says whether link l should be enqueued, and if not, why (one of the Reason constants).
// The link was found in a file at crawl depth depth (seeds are depth 0) and requisite-chain level
// level: 0 for a page, n for a requisite at level n (a stylesheet).
//
// A Page must be in scope (see ScopeMode), match an Include regexp if any are given, match no
// Exclude regexp, and lie within MaxDepth (depth+1 <= MaxDepth). A Requisite is allowed from
// any host — or, with SameHostAssets, from the seeds' hosts — at any page depth; Exclude, the
// length limit and MaxRequisiteLevel (level+1 <= MaxRequisiteLevel) apply. The caller fetches
// requisites without following them, except that stylesheets are passed to CSS and their links
// decided as requisites in turn, one level deeper.
//
// The limits that depend on where the link was found are checked last, so a link refused for
// its own sake is refused for the same reason wherever it is met.
func (s *Scope) Decide(l Link, depth, level int) (ok bool, reason string) {
	if len(l.URL) > s.opt.MaxURLLength {
		return false, ReasonTooLong
	}
	u, err := url.Parse(l.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false, ReasonInvalid
	}
	switch l.Kind {
	case Requisite:
		if s.opt.SameHostAssets && !s.sameSite(u) {
			return false, ReasonOffHostAsset
		}
		if matchAny(s.opt.Exclude, l.URL) {
			return false, ReasonExcluded
		}
		if level+1 > s.opt.MaxRequisiteLevel {
			return false, ReasonRequisiteDepth
		}
		return true, ""
	case Page:
		if !s.inScope(u) {
			return false, ReasonOffScope
		}
		if matchAny(s.opt.Exclude, l.URL) {
			return false, ReasonExcluded
		}
		if len(s.opt.Include) > 0 && !matchAny(s.opt.Include, l.URL) {
			return false, ReasonNotIncluded
		}
		if s.opt.MaxDepth > 0 && depth+1 > s.opt.MaxDepth {
			return false, ReasonDepth
		}
		return true, ""
	}
	return false, ReasonInvalid
}

// inScope reports whether a page URL is inside the scope mode's pages.
func (s *Scope) inScope(u *url.URL) bool {
	switch s.opt.Mode {
	case ScopeHost:
		_, ok := s.hosts[u.Host]
		return ok
	case ScopeDomain:
		_, ok := s.domains[domainOf(u.Hostname())]
		return ok
	}
	p := withoutUser(u)
	for _, prefix := range s.prefixes {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// sameSite reports whether a requisite's host belongs to the crawl's sites, for SameHostAssets.
func (s *Scope) sameSite(u *url.URL) bool {
	if s.opt.Mode == ScopeDomain {
		_, ok := s.domains[domainOf(u.Hostname())]
		return ok
	}
	_, ok := s.hosts[u.Host]
	return ok
}

// domainOf returns the registrable domain of host, or host itself when it has none: IP
// addresses (whose last labels are not a domain), localhost and other single labels, hosts
// that are themselves public suffixes (github.io).
func domainOf(host string) string {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if _, err := netip.ParseAddr(host); err == nil {
		return host
	}
	d, err := publicsuffix.EffectiveTLDPlusOne(host)
	if err != nil {
		return host
	}
	return d
}

// withoutUser returns u as a string without its userinfo, so credentials in a seed do not
// change which pages it covers.
func withoutUser(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	v := *u
	v.User = nil
	return v.String()
}

func matchAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}
