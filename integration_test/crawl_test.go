package integration_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/extract"
	"github.com/trawl-dev/trawl/internal/testserver"
	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/store"
)

// siteRes is one resource (URL) of a crawled site.
type siteRes struct {
	s     *crawlSite
	path  string
	image bool
}

func (r siteRes) url() string { return r.s.URL(r.path) }

// gallery is the site of the crawl acceptance tests: site a, crawled from a's /site/, and b,
// another host (a different port) serving an image a's home page shows. It returns what a
// crawl from /site/ must fetch (pages in cycles and every kind of requisite) and what it must
// never request (off-scope pages, pages robots.txt disallows, pages of the other site).
func gallery(t testing.TB) (a, b *crawlSite, fetch, never []siteRes) {
	t.Helper()
	a, b = newCrawlSite(t), newCrawlSite(t)
	// The "*" group would forbid everything: the rules that apply are the trawl group's.
	a.robots("User-agent: *\nDisallow: /\n\nUser-agent: trawl\nDisallow: /site/private/\nCrawl-delay: 0.02\n")

	a.page("/site/", `<!doctype html><html><head><title>home</title>
<link rel="stylesheet" href="css/style.css">
<link rel="icon" href="/favicon.ico">
<script src="js/app.js"></script>
</head><body>
<img src="img/a.png" alt="">
<img src="img/s1.png" srcset="img/s1.png 1x, img/s2.png 2x" alt="">
<img src="img/placeholder.gif" data-src="img/lazy.jpg" alt="">
<picture><source srcset="img/pic.webp" type="image/webp"><img src="img/pic.jpg" alt=""></picture>
<img src="{B}/cdn/remote.png" alt="">
<a href="a.html">a</a> <a href="b.html">b</a> <a href="sub/c.html">c</a>
<a href="private/secret.html">disallowed</a>
<a href="/other/off.html">off the seed's directory</a>
<a href="{B}/cdn/page.html">another site</a>
<a href="mailto:someone@example.org">mail</a>
</body></html>
`, b)
	a.page("/site/a.html", `<!doctype html><title>a</title>
<img src="img/a.png">
<div style="background-image: url('img/inline.png')">x</div>
<a href="b.html">b</a> <a href="./">home</a> <a href="#top">top</a> <a href="sub/c.html">c</a>
`)
	a.page("/site/b.html", `<!doctype html><title>b</title>
<a href="a.html">a</a> <a href="../site/">home</a> <a href="private/">disallowed too</a>
`)
	a.page("/site/sub/c.html", `<!doctype html><title>c</title>
<img src="../img/c.png"> <a href="../a.html">a</a> <a href="../">home</a>
`)
	a.add("/site/css/style.css", []byte(`@import url("print.css");
body { background: url(../img/bg.png) }
.logo { background-image: url('/site/img/logo.png') }
@font-face { font-family: f; src: url(fonts/f.woff2) format("woff2") }
p::before { content: "url(not-a-link.png)" }
`))
	a.add("/site/css/print.css", []byte(".p { background: url(\"../img/print-bg.png\") }\n"))
	a.add("/site/js/app.js", []byte("console.log('trawl')\n"))
	for i, p := range []string{"a.png", "s1.png", "s2.png", "placeholder.gif", "lazy.jpg", "pic.webp",
		"pic.jpg", "inline.png", "c.png", "bg.png", "logo.png", "print-bg.png"} {
		a.bin("/site/img/"+p, 500+i*101)
	}
	a.bin("/site/css/fonts/f.woff2", 777)
	a.bin("/favicon.ico", 318)
	// Served, but never to be requested.
	a.page("/site/private/secret.html", `<img src="../img/secret.png">`)
	a.page("/site/private/", `<a href="secret.html">s</a>`)
	a.page("/other/off.html", `<img src="/other/img.png">`)
	b.bin("/cdn/remote.png", 1234)
	b.page("/cdn/page.html", `<a href="more.html">more</a>`)

	for _, p := range []string{"/site/", "/site/a.html", "/site/b.html", "/site/sub/c.html",
		"/site/css/style.css", "/site/css/print.css", "/site/css/fonts/f.woff2", "/site/js/app.js"} {
		fetch = append(fetch, siteRes{a, p, false})
	}
	for _, p := range []string{"/site/img/a.png", "/site/img/s1.png", "/site/img/s2.png",
		"/site/img/placeholder.gif", "/site/img/lazy.jpg", "/site/img/pic.webp", "/site/img/pic.jpg",
		"/site/img/inline.png", "/site/img/c.png", "/site/img/bg.png", "/site/img/logo.png",
		"/site/img/print-bg.png", "/favicon.ico"} {
		fetch = append(fetch, siteRes{a, p, true})
	}
	fetch = append(fetch, siteRes{b, "/cdn/remote.png", true})
	never = []siteRes{{a, "/site/private/secret.html", false}, {a, "/site/private/", false},
		{a, "/other/off.html", false}, {a, "/site/css/not-a-link.png", false}, {b, "/cdn/page.html", false}}
	return a, b, fetch, never
}

// TestCrawlSite is the crawl's acceptance test: crawling the gallery saves exactly the pages in
// scope and their requisites (byte for byte; off-host requisites included), requests every one
// of them exactly once despite the cycles, and never requests an off-scope page, a page of
// another site or a page robots.txt disallows, even though all of them are linked.
func TestCrawlSite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		// saved says whether a resource is kept on disk, fetched whether it is fetched.
		saved, fetched func(siteRes) bool
		skipped        int // links recorded as not to be fetched
	}{{
		name:    "mirror",
		saved:   func(siteRes) bool { return true },
		fetched: func(siteRes) bool { return true },
		// private/secret.html and private/ (robots.txt), /other/off.html and b's page (scope).
		skipped: 4,
	}, {
		name: "save images only",
		args: []string{"--save", "image/*"},
		// Pages and stylesheets are still fetched and parsed: their images are found.
		saved:   func(r siteRes) bool { return r.image },
		fetched: func(siteRes) bool { return true },
		skipped: 4,
	}, {
		name:    "same-host assets",
		args:    []string{"--same-host-assets"},
		saved:   func(r siteRes) bool { return r.path != "/cdn/remote.png" },
		fetched: func(r siteRes) bool { return r.path != "/cdn/remote.png" },
		skipped: 5, // and b's image
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b, fetch, never := gallery(t)
			out := t.TempDir()
			report := filepath.Join(t.TempDir(), "report.json")
			args := append([]string{"crawl", "-o", out, "--ca-cert", a.CAFile(t), "-q", "--report", report},
				tt.args...)
			r := runTrawl(t, append(args, a.URL("/site/"))...)
			wantExit(t, r, exitOK)

			var want []siteRes
			for _, res := range fetch {
				if tt.saved(res) {
					want = append(want, res)
				}
			}
			wantSaved(t, out, want)

			perURL := map[string]int{}
			for _, s := range []*crawlSite{a, b} {
				for _, req := range s.Requests() {
					perURL[s.URL(req.Path)]++
					if req.RawQuery != "" {
						t.Errorf("request with a query: %s?%s", s.URL(req.Path), req.RawQuery)
					}
				}
			}
			for _, res := range fetch {
				n := perURL[res.url()]
				delete(perURL, res.url())
				want := 0
				if tt.fetched(res) {
					want = 1
				}
				if n != want {
					t.Errorf("%s requested %d times, want %d", res.url(), n, want)
				}
			}
			// Once per host contacted: b only for its image.
			for _, s := range []*crawlSite{a, b} {
				want := 0
				for _, res := range fetch {
					if res.s == s && tt.fetched(res) {
						want = 1
					}
				}
				if n := perURL[s.URL("/robots.txt")]; n != want {
					t.Errorf("%s requested %d times, want %d", s.URL("/robots.txt"), n, want)
				}
				delete(perURL, s.URL("/robots.txt"))
			}
			for _, res := range never {
				if n := perURL[res.url()]; n > 0 {
					t.Errorf("%s requested %d times, want never", res.url(), n)
					delete(perURL, res.url())
				}
			}
			for u, n := range perURL {
				t.Errorf("unexpected request for %s (%d times)", u, n)
			}

			fetched, onDisk := 0, int64(0)
			for _, res := range fetch {
				if tt.fetched(res) {
					fetched++
				}
			}
			for _, res := range want {
				onDisk += int64(len(res.s.body(res.path)))
			}
			rep := readCrawlReport(t, report)
			if rep.Counts.New != fetched || rep.Counts.Failed != 0 || rep.Job.Pending != 0 {
				t.Errorf("report counts new=%d failed=%d pending=%d, want new=%d failed=0 pending=0",
					rep.Counts.New, rep.Counts.Failed, rep.Job.Pending, fetched)
			}
			st := crawlStatus(t, out)
			if st.Job.Skipped != tt.skipped || st.Job.Done != fetched {
				t.Errorf("status: job.skipped=%d done=%d, want %d and %d (%+v)", st.Job.Skipped, st.Job.Done,
					tt.skipped, fetched, st.Job)
			}
			// status shows the bytes on disk: files fetched and not kept (--save) are not there.
			if st.Job.Bytes != onDisk {
				t.Errorf("status: job.bytes=%d, want %d, the size of the saved files", st.Job.Bytes, onDisk)
			}
		})
	}
}

// TestCrawlBrokenLink: a link to a page that does not exist fails the crawl with exit 1 and a
// report naming it, and everything else is still crawled.
func TestCrawlBrokenLink(t *testing.T) {
	t.Parallel()
	s := newCrawlSite(t)
	s.page("/w/", `<a href="ok.html">ok</a> <a href="gone.html">gone</a> <img src="gone.png">`)
	s.page("/w/ok.html", `<img src="i.png">`)
	s.bin("/w/i.png", 100)
	out := t.TempDir()
	report := filepath.Join(t.TempDir(), "report.json")
	r := runTrawl(t, "crawl", "-o", out, "--ca-cert", s.CAFile(t), "-q", "--report", report, s.URL("/w/"))
	wantExit(t, r, exitFailed)

	wantSaved(t, out, []siteRes{{s, "/w/", false}, {s, "/w/ok.html", false}, {s, "/w/i.png", true}})
	rep := readCrawlReport(t, report)
	var failed []string
	for _, f := range rep.Failures {
		if f.Status != 404 {
			t.Errorf("failure %s has status %d, want 404", f.URL, f.Status)
		}
		failed = append(failed, f.URL)
	}
	slices.Sort(failed)
	if want := []string{s.URL("/w/gone.html"), s.URL("/w/gone.png")}; !slices.Equal(failed, want) {
		t.Errorf("report failures %q, want %q", failed, want)
	}
	for _, p := range []string{"/w/gone.html", "/w/gone.png"} {
		if n := len(s.RequestsFor(p)); n != 1 {
			t.Errorf("%s requested %d times, want once (404 is permanent)", s.URL(p), n)
		}
	}
}

// TestCrawlRequisiteAlsoLinked: an image a page shows is a requisite and is fetched even when it
// is off scope, also when the page links to it as well (a thumbnail linking to its full-size
// image), whichever of the two comes first.
func TestCrawlRequisiteAlsoLinked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, html string
	}{
		{"image first", `<img src="/full/x.jpg"> <a href="/full/x.jpg">full size</a>`},
		{"link first", `<a href="/full/x.jpg"><img src="/full/x.jpg"></a>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newCrawlSite(t)
			s.page("/g/", tt.html)
			s.bin("/full/x.jpg", 2000)
			out := t.TempDir()
			r := runTrawl(t, "crawl", "-o", out, "--ca-cert", s.CAFile(t), "-q", s.URL("/g/"))
			wantExit(t, r, exitOK)
			wantSaved(t, out, []siteRes{{s, "/g/", false}, {s, "/full/x.jpg", true}})
		})
	}
}

// TestCrawlDelay: robots.txt's Crawl-delay spaces the requests to its host, as the server's
// clock sees them, whatever the concurrency allows.
func TestCrawlDelay(t *testing.T) {
	t.Parallel()
	s := newCrawlSite(t)
	s.robots("User-agent: trawl\nCrawl-delay: 1\n")
	s.page("/d/", `<a href="1.html">1</a> <a href="2.html">2</a> <a href="3.html">3</a>`)
	for i := 1; i <= 3; i++ {
		s.page(fmt.Sprintf("/d/%d.html", i), `<a href="../">home</a>`)
	}
	out := t.TempDir()
	r := runTrawl(t, "crawl", "-o", out, "--ca-cert", s.CAFile(t), "-q", "-c", "8", "--per-host", "8", s.URL("/d/"))
	wantExit(t, r, exitOK)

	var times []time.Time
	for _, req := range s.Requests() {
		if req.Path != "/robots.txt" {
			times = append(times, req.Time)
		}
	}
	if len(times) != 4 {
		t.Fatalf("%d page requests, want 4", len(times))
	}
	// Arrival times jitter a little around the limiter's spacing.
	const tolerance = 300 * time.Millisecond
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < time.Second-tolerance {
			t.Errorf("requests %d and %d arrived %s apart, want 1s (Crawl-delay: 1; at least %s allowing for jitter)", i, i+1, gap, time.Second-tolerance)
		}
	}
}

// TestCrawlTrap: a site with an unbounded supply of links (a calendar with session ids) is
// crawled to the limits and no further, and the crawl ends normally.
func TestCrawlTrap(t *testing.T) {
	t.Parallel()
	calPage := regexp.MustCompile(`^/cal/(\d+)\.html$`)
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, pages map[string]int)
	}{{
		name: "max-pages",
		args: []string{"--max-pages", "50"},
		check: func(t *testing.T, pages map[string]int) {
			total := 0
			for _, n := range pages {
				total += n
			}
			if total != 50 {
				t.Errorf("%d page requests, want 50 (--max-pages 50; images don't count)", total)
			}
		},
	}, {
		name: "depth",
		args: []string{"--depth", "3"},
		check: func(t *testing.T, pages map[string]int) {
			// /cal/N.html is at depth N; each page's session link adds one level, so page N has
			// 3-N session variants within depth 3.
			want := map[string]int{}
			for n := 0; n <= 3; n++ {
				want[fmt.Sprintf("/cal/%d.html", n)] = 1
				if n < 3 {
					want[fmt.Sprintf("/cal/%d.html?session", n)] = 3 - n
				}
			}
			if !maps.Equal(pages, want) {
				t.Errorf("page requests %v, want %v", pages, want)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := trapSite(t)
			out := t.TempDir()
			args := append([]string{"crawl", "-o", out, "--ca-cert", s.CAFile(t), "-q"}, tt.args...)
			r := runTrawl(t, append(args, s.URL("/cal/0.html"))...)
			wantExit(t, r, exitOK)
			pages := map[string]int{} // path, "?session" for any session id
			for _, req := range s.Requests() {
				if !calPage.MatchString(req.Path) {
					continue
				}
				k := req.Path
				if req.RawQuery != "" {
					k += "?session"
				}
				pages[k]++
			}
			tt.check(t, pages)
			for k, n := range pages {
				if !strings.HasSuffix(k, "?session") && n != 1 {
					t.Errorf("%s requested %d times, want once", k, n)
				}
			}
		})
	}
}

// chainSite is a stylesheet trap: /c/ shows s.css?n=0, and each s.css?n=N imports s.css?n=N+1
// and uses a background image of its own, so the URLs stay short and requisites never run out.
// The chain ends at chainEnd only so that a crawl that follows it fails its test in seconds rather
// than at the run timeout. Pages /c/1.html to /c/<chainPages>.html, each showing s.css?n=0, link
// onwards, for --depth and --max-pages to limit.
func chainSite(t testing.TB) *crawlSite {
	t.Helper()
	s := newCrawlSite(t)
	s.page("/c/", `<link rel=stylesheet href="s.css?n=0"><a href="1.html">1</a>`)
	s.setGen(func(r *http.Request) (siteFile, bool) {
		var n int
		if _, err := fmt.Sscanf(r.URL.Path, "/c/%d.html", &n); err == nil && n <= chainPages {
			html := `<link rel=stylesheet href="s.css?n=0">`
			if n < chainPages {
				html += fmt.Sprintf(`<a href="%d.html">next</a>`, n+1)
			}
			return siteFile{"text/html; charset=utf-8", []byte(html)}, true
		}
		if r.URL.Path == "/c/bg.png" {
			return siteFile{"image/png", []byte("png")}, true
		}
		if r.URL.Path != "/c/s.css" {
			return siteFile{}, false
		}
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil {
			return siteFile{}, false
		}
		css := fmt.Sprintf("body { background: url(bg.png?n=%d) }\n", n)
		if n < chainEnd {
			css = fmt.Sprintf("@import \"s.css?n=%d\";\n", n+1) + css
		}
		return siteFile{"text/css; charset=utf-8", []byte(css)}, true
	})
	return s
}

const chainEnd, chainPages = 200, 30

// TestCrawlRequisiteChain: a chain of stylesheets importing stylesheets is fetched to
// extract.MaxRequisiteLevel and no further, with or without page limits (requisites count against
// neither --depth nor --max-pages), and the crawl ends normally; the first link beyond is recorded
// skipped with its reason. With --max-pages, requisites beyond the budget it sets are skipped too.
func TestCrawlRequisiteChain(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"max-pages and depth", []string{"--max-pages", "20", "--depth", "2"}},
		{"no page limits", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := chainSite(t)
			out := t.TempDir()
			args := append([]string{"crawl", "-o", out, "--ca-cert", s.CAFile(t), "-q"}, tt.args...)
			r := runTrawl(t, append(args, s.URL("/c/"))...)
			wantExit(t, r, exitOK)

			const levels = extract.MaxRequisiteLevel
			sheets := map[string]int{}
			for _, req := range s.Requests() {
				if req.Path == "/c/s.css" {
					sheets[req.RawQuery]++
				}
			}
			want := map[string]int{}
			for n := range levels {
				want[fmt.Sprintf("n=%d", n)] = 1
			}
			if !maps.Equal(sheets, want) {
				t.Errorf("%d stylesheets requested; want s.css?n=0 to n=%d once each (%d levels of requisites)",
					len(sheets), levels-1, levels)
				if len(sheets) <= 2*levels {
					t.Logf("requested: %v", sheets)
				}
			}
			var skipped []string
			for _, rec := range stateRecords(t, defaultState(out)) {
				if rec.State == queue.Skipped && rec.LastError == extract.ReasonRequisiteDepth {
					skipped = append(skipped, rec.URL)
				}
			}
			slices.Sort(skipped)
			wantSkipped := []string{s.URL(fmt.Sprintf("/c/bg.png?n=%d", levels-1)), s.URL(fmt.Sprintf("/c/s.css?n=%d", levels))}
			if !slices.Equal(skipped, wantSkipped) {
				t.Errorf("recorded skipped for %q: %v; want %v", extract.ReasonRequisiteDepth, skipped, wantSkipped)
			}
		})
	}

	t.Run("budget", func(t *testing.T) {
		t.Parallel()
		s := newCrawlSite(t)
		const images = store.RequisitesPerPage + 50
		var page strings.Builder
		for i := range images {
			fmt.Fprintf(&page, "<img src=\"%d.png\">\n", i)
			s.bin(fmt.Sprintf("/b/%d.png", i), 100)
		}
		s.page("/b/", page.String())
		out := t.TempDir()
		r := runTrawl(t, "crawl", "-o", out, "--ca-cert", s.CAFile(t), "-q", "--max-pages", "1", s.URL("/b/"))
		wantExit(t, r, exitOK)
		fetched := 0
		for _, req := range s.Requests() {
			if strings.HasSuffix(req.Path, ".png") {
				fetched++
			}
		}
		skipped := 0
		for _, rec := range stateRecords(t, defaultState(out)) {
			if rec.State == queue.Skipped && rec.LastError == store.ReasonRequisiteBudget {
				skipped++
			}
		}
		if fetched != store.RequisitesPerPage || skipped != images-store.RequisitesPerPage {
			t.Errorf("%d images fetched, %d skipped for the budget; want %d and %d (--max-pages 1)",
				fetched, skipped, store.RequisitesPerPage, images-store.RequisitesPerPage)
		}
	})
}

// TestCrawlKill9Resume: a crawl killed with SIGKILL at a random moment and run again ends with
// exactly the files of an uninterrupted crawl of the same site, nothing the state recorded done
// is fetched again, and the only other pages fetched twice are the ones in flight at the kill
// (at most -c of them) or answered before it while their outcome waited for its commit batch.
// TRAWL_TEST_SEED replays a run's kill moment.
func TestCrawlKill9Resume(t *testing.T) {
	t.Parallel()
	const pages, conc = 300, 8
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("TRAWL_TEST_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("TRAWL_TEST_SEED: %v", err)
		}
	}
	t.Logf("seed %d (TRAWL_TEST_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	ref, killed := bigSite(t, pages), bigSite(t, pages)
	for _, s := range []*crawlSite{ref, killed} {
		s.setDelay(8 * time.Millisecond) // a crawl of a couple of seconds: time to catch it mid-way
	}
	ca := ref.CAFile(t)
	args := func(s *crawlSite, out string) []string {
		return []string{"crawl", "-o", out, "--ca-cert", ca, "-q", "-c", strconv.Itoa(conc),
			"--per-host", strconv.Itoa(conc), s.URL("/big/p000.html")}
	}
	refOut, out := t.TempDir(), t.TempDir()
	refRun := start(t, trawlCmd(args(ref, refOut)...)) // meanwhile

	// robots.txt, pages, their images, the stylesheet and its image.
	const total = 1 + 2*pages + 2
	after := 20 + rng.IntN(total/2-20) // half the crawl left: it is still running at the kill
	p := start(t, trawlCmd(args(killed, out)...))
	if n := len(killed.WaitRequests(after, runTimeout)); n < after {
		t.Fatalf("only %d requests before the timeout, waiting for %d", n, after)
	}
	killedAt := time.Now()
	p.kill9()
	// Taken once trawl is dead and the server has finished with its requests, not before the
	// signal: a response finished while the signal was on its way, or before its handler got to
	// record it, is answered, not in flight. Counting it as in flight let 9 requests look in
	// flight with -c 8.
	eventually(t, "the server to finish the killed crawl's requests", 10*time.Second, nil, killed.idle)
	answered := killed.answeredURLs()
	before := countRequestURLs(killed.Requests())
	doneAtKill := map[string]bool{} // path?query
	for _, r := range stateRecords(t, defaultState(out)) {
		if r.State == queue.Done {
			u, err := url.Parse(r.URL)
			if err != nil {
				t.Fatalf("state record %q: %v", r.URL, err)
			}
			doneAtKill[pathQuery(u.Path, u.RawQuery)] = true
		}
	}
	t.Logf("killed after %d requests (%d URLs, %d recorded done)", after, len(before), len(doneAtKill))
	// A page's links are committed with its Done record, so everything fetched before the kill
	// but the seed was linked from a file recorded done by then. This holds whenever the kill
	// lands, and it keeps the check on re-fetches below from passing on an empty state.
	linkedFrom := killed.linkedFrom()
	for u := range before {
		switch {
		case u == "/robots.txt":
		case u == "/big/p000.html":
			if !doneAtKill[u] {
				t.Errorf("the seed %s is not recorded done, yet its links were fetched", u)
			}
		case !slices.ContainsFunc(linkedFrom[u], func(p string) bool { return doneAtKill[p] }):
			t.Errorf("%s was fetched before the kill, but none of the files linking to it (%s) was recorded done",
				u, strings.Join(linkedFrom[u], ", "))
		}
	}

	wantExit(t, runTrawl(t, args(killed, out)...), exitOK)
	wantExit(t, refRun.wait(runTimeout), exitOK)

	refFiles, files := crawlHostFiles(t, refOut, ref), crawlHostFiles(t, out, killed)
	if len(refFiles) != 2*pages+2 {
		t.Errorf("the uninterrupted crawl saved %d files, want %d", len(refFiles), 2*pages+2)
	}
	for name, b := range refFiles {
		if got, ok := files[name]; !ok {
			t.Errorf("%s: saved by the uninterrupted crawl, missing after kill and rerun", name)
		} else if !bytes.Equal(got, b) {
			t.Errorf("%s: differs from the uninterrupted crawl's", name)
		}
	}
	for name := range files {
		if _, ok := refFiles[name]; !ok {
			t.Errorf("%s: saved after kill and rerun, not by the uninterrupted crawl", name)
		}
	}
	if parts := partFiles(t, out); len(parts) > 0 {
		t.Errorf("temporary files left behind: %s", strings.Join(parts, ", "))
	}
	if a, b := crawlStatus(t, refOut).Job, crawlStatus(t, out).Job; a != b {
		t.Errorf("job counts after kill and rerun %+v, uninterrupted %+v", b, a)
	}

	all := countRequestURLs(killed.Requests())
	var twice []string
	inFlight, redone := 0, 0
	for u, n := range all {
		again := n - before[u]                                                   // by the rerun
		if before[u] == 0 || again == 0 || strings.HasSuffix(u, "/robots.txt") { // robots.txt: cached once fetched
			continue
		}
		when := "in flight at the kill"
		switch at, ok := answered[u]; {
		case doneAtKill[u]:
			redone += again
			when = "RECORDED DONE before the kill"
		case ok && at.After(killedAt):
			when = "answered in full as the kill landed"
		case ok:
			// Its outcome waited for a commit batch, and each batch first flushes the output
			// file system, which on a loaded machine can take a while.
			when = fmt.Sprintf("answered in full %s before the kill, not yet committed", killedAt.Sub(at).Round(time.Millisecond))
		default:
			inFlight += again
		}
		twice = append(twice, fmt.Sprintf("%s (%d times, %d before the kill; %s)", u, n, before[u], when))
	}
	slices.Sort(twice)
	if inFlight > conc || redone > 0 {
		t.Errorf("fetched again: %d in flight at the kill (want at most -c %d), %d recorded done (want 0):\n%s",
			inFlight, conc, redone, strings.Join(twice, "\n"))
	} else if len(twice) > 0 {
		t.Logf("requested again after the kill: %s", strings.Join(twice, ", "))
	}
	if n := all["/robots.txt"]; n > 2 {
		t.Errorf("robots.txt requested %d times, want at most once per run", n)
	}
	if n, m := len(all), len(countRequestURLs(ref.Requests())); n != m {
		t.Errorf("kill and rerun requested %d distinct URLs, the uninterrupted crawl %d", n, m)
	}
}

// countRequestURLs counts requests per path and query.
func countRequestURLs(reqs []testserver.Request) map[string]int {
	n := map[string]int{}
	for _, r := range reqs {
		n[pathQuery(r.Path, r.RawQuery)]++
	}
	return n
}

// pathQuery is how the crawl tests name a URL of a site: path, and ?query if there is one.
func pathQuery(path, rawQuery string) string {
	if rawQuery == "" {
		return path
	}
	return path + "?" + rawQuery
}

// crawlFiles lists the files under out (slash-separated, relative to out), without trawl's own
// state directory.
func crawlFiles(t testing.TB, out string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".trawl" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			rel, err := filepath.Rel(out, p)
			if err != nil {
				return err
			}
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// wantSaved fails unless the files under out are exactly want, each byte-identical to what its
// site serves.
func wantSaved(t testing.TB, out string, want []siteRes) {
	t.Helper()
	var names []string
	for _, r := range want {
		name := savedAs(r.s, r.path)
		names = append(names, name)
		got, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(name)))
		if err != nil {
			continue // reported below as missing
		}
		if !bytes.Equal(got, r.s.body(r.path)) {
			t.Errorf("%s: saved file differs from what %s serves", name, r.url())
		}
	}
	slices.Sort(names)
	got := crawlFiles(t, out)
	for _, n := range got {
		if _, ok := slices.BinarySearch(names, n); !ok {
			t.Errorf("saved %s, want no such file", n)
		}
	}
	for _, n := range names {
		if _, ok := slices.BinarySearch(got, n); !ok {
			t.Errorf("missing %s", n)
		}
	}
}

// crawlHostFiles reads every file saved under out for s, by path on the site.
func crawlHostFiles(t testing.TB, out string, s *crawlSite) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	prefix := s.Addr() + "/"
	for _, name := range crawlFiles(t, out) {
		p, ok := strings.CutPrefix(name, prefix)
		if !ok {
			t.Errorf("saved %s, not from %s", name, s.Addr())
			continue
		}
		b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		files[p] = b
	}
	return files
}

// crawlReport is the part of --report's JSON the crawl tests read.
type crawlReport struct {
	ExitCode int `json:"exit_code"`
	Counts   struct {
		New     int `json:"new"`
		Failed  int `json:"failed"`
		Skipped int `json:"skipped"`
	} `json:"counts"`
	Job      crawlJobCounts `json:"job"`
	Failures []struct {
		URL    string `json:"url"`
		Status int    `json:"status"`
	} `json:"failures"`
}

// crawlJobCounts are a job's records by state, as report and status show them.
type crawlJobCounts struct {
	Total   int   `json:"total"`
	Done    int   `json:"done"`
	Failed  int   `json:"failed"`
	Pending int   `json:"pending"`
	Skipped int   `json:"skipped"`
	Bytes   int64 `json:"bytes"`
}

func readCrawlReport(t testing.TB, file string) crawlReport {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	var r crawlReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	return r
}

// crawlStatus is `trawl status -o out --json`.
func crawlStatus(t testing.TB, out string) struct{ Job crawlJobCounts } {
	t.Helper()
	r := runTrawl(t, "status", "-o", out, "--json")
	wantExit(t, r, exitOK)
	var st struct{ Job crawlJobCounts }
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	return st
}

// TestCrawlFollowSelect: --follow and --select keep only the page links and requisites carried by
// elements matching their CSS selectors; the others are never requested.
func TestCrawlFollowSelect(t *testing.T) {
	t.Parallel()
	s := newCrawlSite(t)
	s.page("/g/", `<a class="next" href="p2.html">next</a> <a href="ads.html">ads</a>
		<img class="photo" src="a.png"> <img src="logo.png">`)
	s.page("/g/p2.html", `<a class="next" href="p3.html">next</a> <img class="photo" src="b.png">`)
	s.page("/g/p3.html", `no more`)
	s.page("/g/ads.html", `<img class="photo" src="ad.png">`)
	for _, p := range []string{"/g/a.png", "/g/b.png", "/g/logo.png", "/g/ad.png"} {
		s.bin(p, 100)
	}
	out := t.TempDir()
	r := runTrawl(t, "crawl", "-o", out, "--ca-cert", s.CAFile(t), "-q", "--follow", "a.next", "--select", "img.photo", s.URL("/g/"))
	wantExit(t, r, exitOK)
	wantSaved(t, out, []siteRes{{s, "/g/", false}, {s, "/g/p2.html", false}, {s, "/g/p3.html", false},
		{s, "/g/a.png", true}, {s, "/g/b.png", true}})
	for _, p := range []string{"/g/ads.html", "/g/logo.png", "/g/ad.png"} {
		if n := len(s.RequestsFor(p)); n != 0 {
			t.Errorf("%s requested %d times: no selected element carries it", s.URL(p), n)
		}
	}
	r = runTrawl(t, "crawl", "-o", t.TempDir(), "--follow", "a[", s.URL("/g/"))
	wantExit(t, r, exitUsage)
	if !strings.Contains(r.stderr, "--follow") {
		t.Errorf("a bad selector's error does not name the flag: %s", tail(r.stderr))
	}
}
