package extract

// Kind says how a page uses a link, which decides whether the crawl follows it.
type Kind uint8

// Kinds start at 1 so that a zero Kind — a Link built by mistake or a corrupt record — is
// recognisably invalid instead of silently meaning Page.
const (
	// Page is a link to be followed: a, area, iframe, frame, meta refresh, link rel=next/prev/
	// alternate/canonical. It is subject to the full page scope.
	Page Kind = iota + 1
	// Requisite is a resource the page embeds: img, srcset, script, link rel=stylesheet/icon/
	// preload/manifest, video/audio/source/track/poster, embed/object, CSS url() and @import. It
	// is fetched even outside the page scope but never parsed for further links, except that
	// stylesheets are passed to CSS (their url()s are requisites of the same page).
	Requisite
)

// String returns "page" or "requisite", the names used in logs and reports.
func (k Kind) String() string {
	switch k {
	case Page:
		return "page"
	case Requisite:
		return "requisite"
	}
	return "invalid"
}

// Link is one discovered link: an absolute, normalized http(s) URL and how the page uses it.
type Link struct {
	URL  string
	Kind Kind
}
