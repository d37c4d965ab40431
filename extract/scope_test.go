package extract

import (
	"regexp"
	"strings"
	"testing"
)

func TestDecide(t *testing.T) {
	re := regexp.MustCompile
	type check struct {
		link   Link
		depth  int
		reason string // "" = allowed
	}
	page := func(u string) Link { return Link{URL: u, Kind: Page} }
	req := func(u string) Link { return Link{URL: u, Kind: Requisite} }
	for _, tc := range []struct {
		name   string
		seeds  []string
		opt    ScopeOptions
		checks []check
	}{
		{"prefix of directory", []string{"https://example.org/gallery/"}, ScopeOptions{}, []check{
			{page("https://example.org/gallery/"), 0, ""},
			{page("https://example.org/gallery/2019/a.html"), 5, ""},
			{page("https://example.org/gallery"), 0, ReasonOffScope},
			{page("https://example.org/galleryx/"), 0, ReasonOffScope},
			{page("https://example.org/"), 0, ReasonOffScope},
			{page("http://example.org/gallery/a.html"), 0, ReasonOffScope},
			{page("https://example.org:8443/gallery/a.html"), 0, ReasonOffScope},
			{page("https://www.example.org/gallery/a.html"), 0, ReasonOffScope},
			{page("https://example.org.evil.example/gallery/"), 0, ReasonOffScope},
		}},
		{"prefix of file", []string{"https://example.org/gallery/index.html"}, ScopeOptions{Mode: ScopePrefix}, []check{
			{page("https://example.org/gallery/page2.html"), 0, ""},
			{page("https://example.org/other/"), 0, ReasonOffScope},
		}},
		{"prefix of host", []string{"https://Example.org"}, ScopeOptions{}, []check{
			{page("https://example.org/anything/at/all?x=1"), 0, ""},
			{page("https://sub.example.org/"), 0, ReasonOffScope},
		}},
		{"prefix of several seeds", []string{"https://a.example/x/", "https://b.example/y/z.html"}, ScopeOptions{}, []check{
			{page("https://a.example/x/1"), 0, ""},
			{page("https://b.example/y/2"), 0, ""},
			{page("https://b.example/x/1"), 0, ReasonOffScope},
		}},
		{"prefix ignores userinfo", []string{"https://u:p@example.org/g/"}, ScopeOptions{}, []check{
			{page("https://example.org/g/a"), 0, ""},
		}},
		{"host", []string{"https://example.org/gallery/"}, ScopeOptions{Mode: ScopeHost}, []check{
			{page("https://example.org/"), 0, ""},
			{page("http://example.org/other"), 0, ""},
			{page("https://example.org:8443/"), 0, ReasonOffScope},
			{page("https://www.example.org/"), 0, ReasonOffScope},
		}},
		{"domain", []string{"https://www.example.co.uk/"}, ScopeOptions{Mode: ScopeDomain}, []check{
			{page("https://example.co.uk/"), 0, ""},
			{page("http://img.cdn.example.co.uk:8080/a"), 0, ""},
			{page("https://other.co.uk/"), 0, ReasonOffScope},
			{page("https://co.uk/"), 0, ReasonOffScope},
		}},
		{"domain of IP and localhost", []string{"http://127.0.0.1:8080/", "http://localhost/"}, ScopeOptions{Mode: ScopeDomain}, []check{
			{page("http://127.0.0.1/x"), 0, ""},
			{page("http://10.0.0.1/"), 0, ReasonOffScope},
			{page("http://localhost:9000/"), 0, ""},
			{page("http://foo.localhost/"), 0, ReasonOffScope},
		}},
		{"domain of public suffix host", []string{"https://user.github.io/"}, ScopeOptions{Mode: ScopeDomain}, []check{
			{page("https://user.github.io/repo/"), 0, ""},
			{page("https://other.github.io/"), 0, ReasonOffScope},
		}},
		{"depth", []string{"https://example.org/"}, ScopeOptions{MaxDepth: 2}, []check{
			{page("https://example.org/a"), 0, ""},
			{page("https://example.org/a"), 1, ""},
			{page("https://example.org/a"), 2, ReasonDepth},
			{req("https://example.org/a.jpg"), 2, ""},
			{req("https://example.org/a.jpg"), 100, ""},
		}},
		{"depth unlimited", []string{"https://example.org/"}, ScopeOptions{}, []check{
			{page("https://example.org/a"), 1000, ""},
		}},
		{"include", []string{"https://example.org/"}, ScopeOptions{Include: []*regexp.Regexp{re(`/photos/`), re(`\.html$`)}}, []check{
			{page("https://example.org/photos/1"), 0, ""},
			{page("https://example.org/a.html"), 0, ""},
			{page("https://example.org/blog/1"), 0, ReasonNotIncluded},
			{req("https://example.org/style.css"), 0, ""},
		}},
		{"exclude", []string{"https://example.org/"}, ScopeOptions{Exclude: []*regexp.Regexp{re(`[?&]sessionid=`), re(`\.zip$`)}}, []check{
			{page("https://example.org/a?sessionid=1"), 0, ReasonExcluded},
			{page("https://example.org/a?x=1"), 0, ""},
			{req("https://cdn.example.net/big.zip"), 0, ReasonExcluded},
			{page("https://other.example/a.zip"), 0, ReasonOffScope},
		}},
		{"exclude wins over include", []string{"https://example.org/"},
			ScopeOptions{Include: []*regexp.Regexp{re(`/a`)}, Exclude: []*regexp.Regexp{re(`/a/private`)}}, []check{
				{page("https://example.org/a/public"), 0, ""},
				{page("https://example.org/a/private"), 0, ReasonExcluded},
			}},
		{"requisites off-host", []string{"https://example.org/gallery/"}, ScopeOptions{}, []check{
			{req("https://cdn.example.net/a.jpg"), 0, ""},
			{req("https://example.org/static/s.css"), 0, ""},
		}},
		{"requisites same host", []string{"https://example.org/gallery/"}, ScopeOptions{SameHostAssets: true}, []check{
			{req("https://example.org/static/s.css"), 0, ""},
			{req("http://example.org/static/s.css"), 0, ""},
			{req("https://cdn.example.org/a.jpg"), 0, ReasonOffHostAsset},
			{req("https://cdn.example.net/a.jpg"), 0, ReasonOffHostAsset},
		}},
		{"requisites same domain", []string{"https://www.example.org/"}, ScopeOptions{Mode: ScopeDomain, SameHostAssets: true}, []check{
			{req("https://cdn.example.org/a.jpg"), 0, ""},
			{req("https://cdn.example.net/a.jpg"), 0, ReasonOffHostAsset},
		}},
		{"too long", []string{"https://example.org/"}, ScopeOptions{MaxURLLength: 40}, []check{
			{page("https://example.org/short"), 0, ""},
			{page("https://example.org/" + strings.Repeat("a", 21)), 0, ReasonTooLong},
			{req("https://cdn.example.net/" + strings.Repeat("a", 30)), 0, ReasonTooLong},
		}},
		{"too long default", []string{"https://example.org/"}, ScopeOptions{}, []check{
			{page("https://example.org/" + strings.Repeat("a", MaxURLLength)), 0, ReasonTooLong},
		}},
		{"invalid", []string{"https://example.org/"}, ScopeOptions{}, []check{
			{page("ftp://example.org/"), 0, ReasonInvalid},
			{page("/relative"), 0, ReasonInvalid},
			{Link{URL: "https://example.org/"}, 0, ReasonInvalid},
			{Link{URL: "https://example.org/", Kind: 9}, 0, ReasonInvalid},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewScope(tc.seeds, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tc.checks {
				ok, reason := s.Decide(c.link, c.depth, 0)
				if ok != (c.reason == "") || reason != c.reason {
					t.Errorf("Decide(%v %s, depth %d) = %v, %q; want reason %q", c.link.Kind, c.link.URL, c.depth, ok, reason, c.reason)
				}
			}
		})
	}
}

// TestDecideRequisiteLevel: a requisite found in a file at requisite-chain level n (0: a page) is
// at level n+1, refused beyond MaxRequisiteLevel whatever the page depth; a refusal that depends
// only on the URL wins, so the URL is refused for the same reason at any level.
func TestDecideRequisiteLevel(t *testing.T) {
	req := func(u string) Link { return Link{URL: u, Kind: Requisite} }
	const css = "https://example.org/s.css"
	for _, tc := range []struct {
		name         string
		opt          ScopeOptions
		link         Link
		depth, level int // of the file the link is found in
		reason       string
	}{
		{"a page's requisite", ScopeOptions{}, req(css), 0, 0, ""},
		{"a deep page's requisite", ScopeOptions{MaxDepth: 2}, req(css), 2, 0, ""},
		{"last level", ScopeOptions{}, req(css), 0, MaxRequisiteLevel - 1, ""},
		{"beyond the default", ScopeOptions{}, req(css), 0, MaxRequisiteLevel, ReasonRequisiteDepth},
		{"far beyond", ScopeOptions{}, req(css), 0, 3000, ReasonRequisiteDepth},
		{"own limit, last level", ScopeOptions{MaxRequisiteLevel: 2}, req(css), 0, 1, ""},
		{"own limit, beyond", ScopeOptions{MaxRequisiteLevel: 2}, req(css), 0, 2, ReasonRequisiteDepth},
		{"a page link is not a requisite", ScopeOptions{}, Link{URL: "https://example.org/a", Kind: Page}, 0, MaxRequisiteLevel, ""},
		{"excluded first", ScopeOptions{Exclude: []*regexp.Regexp{regexp.MustCompile(`\.css$`)}}, req(css), 0, MaxRequisiteLevel, ReasonExcluded},
		{"off host first", ScopeOptions{SameHostAssets: true}, req("https://cdn.example.net/s.css"), 0, MaxRequisiteLevel, ReasonOffHostAsset},
		{"too long first", ScopeOptions{}, req(css + "?" + strings.Repeat("a", MaxURLLength)), 0, MaxRequisiteLevel, ReasonTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewScope([]string{"https://example.org/"}, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			ok, reason := s.Decide(tc.link, tc.depth, tc.level)
			if ok != (tc.reason == "") || reason != tc.reason {
				t.Errorf("Decide(%v %s, depth %d, level %d) = %v, %q; want reason %q",
					tc.link.Kind, tc.link.URL, tc.depth, tc.level, ok, reason, tc.reason)
			}
		})
	}
}

func TestNewScopeErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		seeds []string
		opt   ScopeOptions
	}{
		{"no seeds", nil, ScopeOptions{}},
		{"bad seed", []string{"ftp://example.org/"}, ScopeOptions{}},
		{"relative seed", []string{"example.org"}, ScopeOptions{}},
		{"bad mode", []string{"https://example.org/"}, ScopeOptions{Mode: "planet"}},
		{"negative depth", []string{"https://example.org/"}, ScopeOptions{MaxDepth: -1}},
		{"negative length", []string{"https://example.org/"}, ScopeOptions{MaxURLLength: -1}},
		{"negative requisite level", []string{"https://example.org/"}, ScopeOptions{MaxRequisiteLevel: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewScope(tc.seeds, tc.opt); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
