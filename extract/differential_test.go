package extract

import (
	"bufio"
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/html"
)

// The differential tests hold HTML (a pass over tokens) to htmlDOM (the tree walk it replaced,
// dom_test.go): the same links in the same order on the specification's pages, the fuzz
// corpus, the benchmark pages and, when installed, Python's documentation; the same set of
// links on fuzz inputs, except where HTML deliberately differs (see divergent).

// corpusPages are the pages both must agree on, link for link and in order.
func corpusPages(t testing.TB) map[string]string {
	pages := map[string]string{}
	for _, tc := range slices.Concat(htmlCases, htmlBaseCases) {
		pages["case/"+tc.name] = tc.page
	}
	for name, page := range fuzzCorpus(t, "FuzzHTML") {
		pages["fuzz/"+name] = page
	}
	pages["bench/gallery"] = string(benchPage())
	pages["bench/docs-toc"] = string(docsTOCPage())
	pages["bench/docs-page"] = string(docsPage())
	return pages
}

// fuzzCorpus reads the string inputs in testdata/fuzz/NAME.
func fuzzCorpus(t testing.TB, name string) map[string]string {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", name)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<24)
		for sc.Scan() {
			if lit, ok := strings.CutPrefix(sc.Text(), "string("); ok {
				s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
				if err != nil {
					t.Fatalf("%s: %v", e.Name(), err)
				}
				out[e.Name()] = s
			}
		}
	}
	return out
}

func TestHTMLMatchesDOM(t *testing.T) {
	base := mustURL(t, "https://example.org/dir/page.html")
	for name, page := range corpusPages(t) {
		t.Run(name, func(t *testing.T) {
			sameLinks(t, page, base, true)
		})
	}
}

// TestHTMLMatchesDOMPythonDocs compares the pages of Python's documentation, when installed:
// every fourth page, or all 530 (48 MB) with $TRAWL_TEST_ALL_DOCS set.
func TestHTMLMatchesDOMPythonDocs(t *testing.T) {
	if testing.Short() {
		t.Skip("parses megabytes twice")
	}
	for i, p := range readTree(t, pythonDocs) {
		if i%4 != 0 && os.Getenv("TRAWL_TEST_ALL_DOCS") == "" {
			continue
		}
		t.Run(strings.TrimPrefix(p.url.Path, "/"), func(t *testing.T) {
			sameLinks(t, string(p.body), p.url, true)
		})
	}
}

// sameLinks fails t unless HTML and htmlDOM find the same links in page: in the same order if
// ordered, else as sets.
func sameLinks(t *testing.T, page string, base *url.URL, ordered bool) {
	t.Helper()
	got, err := HTML(strings.NewReader(page), base)
	if err != nil {
		t.Fatal(err)
	}
	want, err := htmlDOM(strings.NewReader(page), base)
	if err != nil {
		t.Fatal(err)
	}
	if !ordered {
		got, want = sortedLinks(got), sortedLinks(want)
	}
	if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("page %q:\n tokens %v\n    DOM %v", clip(page), got, want)
	}
}

func sortedLinks(l []Link) []Link {
	l = slices.Clone(l)
	slices.SortFunc(l, func(a, b Link) int {
		if c := strings.Compare(a.URL, b.URL); c != 0 {
			return c
		}
		return int(a.Kind) - int(b.Kind)
	})
	return l
}

func clip(s string) string {
	if len(s) > 2000 {
		return s[:2000] + fmt.Sprintf("… (%d bytes)", len(s))
	}
	return s
}

// FuzzHTMLMatchesDOM checks that HTML and htmlDOM find the same set of links in any input, but
// for the inputs divergent names. Order may differ: HTML gives source order, htmlDOM tree
// order, which the tree builder's error recovery rearranges (content misnested in a table is
// moved before it).
func FuzzHTMLMatchesDOM(f *testing.F) {
	for _, page := range corpusPages(f) {
		if len(page) < 64<<10 {
			f.Add(page)
		}
	}
	for _, s := range foreignSeeds {
		f.Add(s)
	}
	base := mustURL(f, "https://example.org/dir/page.html")
	f.Fuzz(func(t *testing.T, page string) {
		if reason := divergent(page); reason != "" {
			t.Skip(reason)
		}
		sameLinks(t, page, base, false)
	})
}

// foreignSeeds exercise SVG and MathML content: integration points, breakouts, raw text
// that is not raw there, CDATA, end tags that close what is open and what is not.
var foreignSeeds = []string{
	`<svg><foreignObject><div><svg><image href=a.png></svg></div></foreignObject><style>p{background:url(b.png)}</style></svg><img src=c.png>`,
	`<math><mi><a href=x.html></a></mi><annotation-xml encoding="text/html"><img src=y.png></annotation-xml><mglyph style="background:url(g.png)"></math>`,
	`<div><svg><g></div><video src=v.mp4><image href=i.png>`,
	`<svg><![CDATA[>]]><a href=z.html></a><use xlink:href="s.svg#i"/></svg>`,
	`<svg><title><a href=t.html></title><desc><iframe src=f.html></iframe></desc></svg>`,
	`<svg><font color=red><img src=i.png><font><image href=j.png>`,
	`<span><svg><p><image href=x.png></span><image src=y.png>`,
	`<svg><style>a{}<!--x-->b{background:url(s.png)}<g>url(no.png)</g>c{background:url(t.png)}</style><feImage href=fe.png></svg>`,
	`<math><annotation-xml><svg><a href=m.html></a></svg></annotation-xml><style>@import "m.css";</style></math>`,
	`<svg><script>var x="<a href=no.html>"</script><base href="/b/"><image href=k.png></svg>`,
	`<svg><a href=1.html><br></a></svg><a href=2.html></a></br><svg><g></p><image href=q.png>`,
}

// divergent says why HTML may find other links than htmlDOM in page, or "". HTML finds more
// where the tree builder drops or merges elements that carry links: a <frame> outside a
// frameset and everything but frames inside one; a table cell outside a table; the attributes
// of a second <body> or <html>. It may find other ones where an end tag in SVG or MathML
// content closes none of its elements: whether it closes an HTML element around it is guessed.
func divergent(page string) string {
	s := newScan([]byte(page))
	s.starts = map[string]int{}
	s.run()
	count := s.starts
	switch {
	case count["frameset"] > 0 || count["frame"] > 0:
		return "frames"
	case count["td"] > 0 || count["th"] > 0:
		return "table cells"
	case count["body"] > 1 || count["html"] > 1:
		return "a second body or html"
	case s.guessed:
		return "an end tag in foreign content that closes nothing there"
	}
	return ""
}

// FuzzTokenizer checks that tokenizer splits any input into the tokens x/net's Tokenizer does:
// the same raw bytes, types, tag names, attributes and text, with NextIsNotRawText and
// AllowCDATA driven the same way; and, with skipText, the same tokens but text.
func FuzzTokenizer(f *testing.F) {
	for _, page := range corpusPages(f) {
		if len(page) < 64<<10 {
			f.Add(page)
		}
	}
	for _, s := range []string{
		`<script><!--<script>x</script>--></script><a>`, `<style>a</style b><title>&amp;</title>`,
		`<textarea></textarea/><plaintext><a>`, `<!--->x<!-- --!>y<!-- -- -->`, `<!doctype html><![CDATA[x]]>`,
		`<a b='c' d="e" f=g h/ i=/ j=k/>`, `<a/b>`, `</>`, `</ >`, `<?x>`, `<!`, `<!-`, `<!D`, `<![CDATA`,
		"<a \x00=\x00 b=\r\n>", `<a a=1 A=2 a=3>`, `<xmp><a></xmp><iframe><a></iframe>`, `<noscript><a></noscript>`,
		`x<!--a`, `x<!--a-`, `x<!--a--`, `x<!--a--!`, `x<a`, `x</a`, `x<`, `x</`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, page string) {
		for _, skipText := range []bool{false, true} {
			want, got := xnetTokens(page, skipText), ourTokens(page, skipText)
			for i := range max(len(want), len(got)) {
				var w, g string
				if i < len(want) {
					w = want[i]
				}
				if i < len(got) {
					g = got[i]
				}
				if w != g {
					t.Fatalf("skipText %v, token %d:\n got %q\nwant %q", skipText, i, g, w)
				}
			}
		}
	})
}

// tokenDriver decides, as a parser would, when the next token is not raw text and when CDATA
// is allowed: arbitrarily, but the same way for both tokenizers.
type tokenDriver struct{ starts int }

func (d *tokenDriver) cdata() bool { return d.starts%3 == 1 }

// started counts a start tag and says whether to call NextIsNotRawText.
func (d *tokenDriver) started(name []byte) bool {
	d.starts++
	return len(name)%2 == 1
}

// xnetTokens describes the tokens x/net's Tokenizer finds in page, text left out if skipText.
func xnetTokens(page string, skipText bool) []string {
	z := html.NewTokenizer(strings.NewReader(page))
	var d tokenDriver
	var out []string
	for {
		z.AllowCDATA(d.cdata())
		tt := z.Next()
		if tt == html.ErrorToken {
			return append(out, "end")
		}
		desc := fmt.Sprintf("%v %q", tt, z.Raw())
		switch tt {
		case html.TextToken:
			if skipText {
				continue
			}
			desc += fmt.Sprintf(" text=%q", z.Text())
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, more := z.TagName()
			desc += fmt.Sprintf(" name=%q", name)
			if tt != html.EndTagToken {
				for more {
					var k, v []byte
					k, v, more = z.TagAttr()
					desc += fmt.Sprintf(" %q=%q", k, v)
				}
				if d.started(name) {
					z.NextIsNotRawText()
				}
			}
		}
		out = append(out, desc)
	}
}

// ourTokens describes the tokens tokenizer finds in page, as xnetTokens does.
func ourTokens(page string, skipText bool) []string {
	z := newTokenizer([]byte(page))
	s := &scan{z: z}
	var d tokenDriver
	var out []string
	for {
		z.allowCDATA = d.cdata()
		z.skipText = skipText
		tt := z.next()
		if tt == errorToken {
			return append(out, "end")
		}
		desc := fmt.Sprintf("%v %q", xnetType[tt], z.buf[z.start:z.pos])
		switch tt {
		case textToken:
			if skipText {
				continue
			}
			desc += fmt.Sprintf(" text=%q", z.text())
		case startTagToken, selfClosingTagToken, endTagToken:
			name := z.tagName(new([]byte))
			desc += fmt.Sprintf(" name=%q", name)
			if tt != endTagToken {
				for _, a := range z.attrs {
					desc += fmt.Sprintf(" %q=%q", z.attrKey(a, new([]byte)), s.attrVal(a))
				}
				if d.started(name) {
					z.rawTag = ""
				}
			}
		}
		out = append(out, desc)
	}
}

var xnetType = map[tokenType]html.TokenType{
	errorToken: html.ErrorToken, textToken: html.TextToken, startTagToken: html.StartTagToken,
	endTagToken: html.EndTagToken, selfClosingTagToken: html.SelfClosingTagToken,
	commentToken: html.CommentToken, doctypeToken: html.DoctypeToken,
}

// TestHTMLConcurrent parses pages of one directory at once, as a crawl's workers do, so that
// the race detector sees the resolution cache shared; each must get the links it gets alone.
func TestHTMLConcurrent(t *testing.T) {
	pages := []string{string(docsPage()), string(benchPage()), htmlCases[0].page, htmlBaseCases[0].page}
	base := mustURL(t, "https://docs.example.org/3.11/library/functools.html")
	want := make([][]Link, len(pages))
	for i, p := range pages {
		want[i], _ = htmlDOM(strings.NewReader(p), base)
	}
	resolved.reset()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for r := range 20 {
				i := (w + r) % len(pages)
				got, err := HTML(strings.NewReader(pages[i]), base)
				if err != nil {
					t.Error(err)
					return
				}
				if !reflect.DeepEqual(got, want[i]) {
					t.Errorf("page %d: got %d links, want %d", i, len(got), len(want[i]))
					return
				}
			}
		})
	}
	wg.Wait()
}
