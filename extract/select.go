package extract

import (
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/PuerkitoBio/goquery"
	"github.com/andybalholm/cascadia"
)

// Selectors are CSS selectors a crawl keeps links by (--follow, --select): only the links carried
// by elements that match one of them. Unlike finding every link, this needs the page's tree, which
// goquery builds.
type Selectors struct {
	exprs []string
	match goquery.Matcher
}

// CompileSelectors compiles CSS selectors, failing on the first that does not parse. No selectors
// give nil.
func CompileSelectors(exprs []string) (*Selectors, error) {
	if len(exprs) == 0 {
		return nil, nil
	}
	for _, e := range exprs {
		if _, err := cascadia.Compile(e); err != nil {
			return nil, fmt.Errorf("CSS selector %q: %w", e, err)
		}
	}
	m, err := cascadia.Compile(strings.Join(exprs, ", "))
	if err != nil {
		return nil, fmt.Errorf("CSS selectors %q: %w", exprs, err)
	}
	return &Selectors{exprs: exprs, match: m}, nil
}

// String lists the selectors as given.
func (s *Selectors) String() string { return strings.Join(s.exprs, ", ") }

// selectedAttrs are the attributes whose URLs a selected element gives: its link, its source, and
// their lazy-loading spellings.
var selectedAttrs = []string{"href", "src", "data-src", "poster"}

// Selected returns the normalized absolute URLs the elements of page that match s carry, resolved
// against base (or the page's <base href>).
func (s *Selectors) Selected(page io.Reader, base *url.URL) (map[string]bool, error) {
	doc, err := goquery.NewDocumentFromReader(io.LimitReader(page, MaxParseBytes))
	if err != nil {
		return nil, err
	}
	if h, ok := doc.Find("base[href]").First().Attr("href"); ok {
		if b, err := base.Parse(strings.TrimSpace(h)); err == nil {
			base = b
		}
	}
	out := map[string]bool{}
	doc.FindMatcher(s.match).Each(func(_ int, el *goquery.Selection) {
		for _, a := range selectedAttrs {
			v, ok := el.Attr(a)
			if !ok || strings.TrimSpace(v) == "" {
				continue
			}
			u, err := base.Parse(strings.TrimSpace(v))
			if err != nil {
				continue
			}
			if n, err := Normalize(u.String()); err == nil {
				out[n] = true
			}
		}
	})
	return out, nil
}
