package integration_test

import (
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// slowShallowSites are two sites of one crawl (--scope domain: both are 127.0.0.1): a, fast, with
// the seed, and s, slow, with a page one link from the seed, so that what the slow page links is
// met after what a's pages lead to, unless the crawl goes level by level.
func slowShallowSites(t *testing.T) (a, s *crawlSite) {
	a, s = newCrawlSite(t), newCrawlSite(t)
	// The server's response time, not a wait of the test's: it puts the slow page's links last
	// for a crawl that does not wait for them, which the result must not depend on.
	s.setDelay(300 * time.Millisecond)
	return a, s
}

// crawlAnswered runs a crawl with args from a's home page and returns the pages the sites
// answered, as a:path and s:path.
func crawlAnswered(t *testing.T, a, s *crawlSite, args ...string) []string {
	t.Helper()
	out := t.TempDir()
	r := runTrawl(t, append(append([]string{"crawl", "-o", out, "--ca-cert", a.CAFile(t), "-q", "--scope", "domain"},
		args...), a.URL("/"))...)
	wantExit(t, r, exitOK)
	var got []string
	for name, site := range map[string]*crawlSite{"a": a, "s": s} {
		for p := range site.answeredURLs() {
			if p != "/robots.txt" {
				got = append(got, name+":"+p)
			}
		}
	}
	slices.Sort(got)
	return got
}

// TestCrawlDepthShortestPath: --depth 2 fetches the pages within two links of the seed, though
// d.html, two links away through the slow page, is met first three links away through fast ones.
func TestCrawlDepthShortestPath(t *testing.T) {
	t.Parallel()
	a, s := slowShallowSites(t)
	a.page("/", `<a href="{B}/s.html">s</a> <a href="a.html">a</a>`, s)
	a.page("/a.html", `<a href="b.html">b</a>`)
	a.page("/b.html", `<a href="d.html">d</a>`)
	a.page("/d.html", `<a href="e.html">e</a>`)
	a.page("/e.html", `deep`)
	s.page("/s.html", `<a href="{B}/d.html">d</a>`, a)
	got := crawlAnswered(t, a, s, "--depth", "2")
	want := []string{"a:/", "a:/a.html", "a:/b.html", "a:/d.html", "s:/s.html"}
	if !slices.Equal(got, want) {
		t.Errorf("fetched %v, want %v", got, want)
	}
}

// TestCrawlMaxPagesBreadthFirst: --max-pages takes the shallowest pages, ties in the order the
// links are found in a crawl fetching one page at a time: the slow page's link comes before
// that of the fast page the seed links after it.
func TestCrawlMaxPagesBreadthFirst(t *testing.T) {
	t.Parallel()
	a, s := slowShallowSites(t)
	a.page("/", `<a href="{B}/s.html">s</a> <a href="a.html">a</a>`, s)
	a.page("/a.html", `<a href="from-a.html">x</a>`)
	a.page("/from-a.html", `x`)
	a.page("/from-s.html", `x`)
	s.page("/s.html", `<a href="{B}/from-s.html">d</a>`, a)
	got := crawlAnswered(t, a, s, "--max-pages", "4")
	want := []string{"a:/", "a:/a.html", "a:/from-s.html", "s:/s.html"}
	if !slices.Equal(got, want) {
		t.Errorf("fetched %v, want %v", got, want)
	}
}

// emptyDirs lists the empty directories under out.
func emptyDirs(t *testing.T, out string) []string {
	t.Helper()
	var empty []string
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if ents, err := os.ReadDir(p); err == nil && len(ents) == 0 {
			empty = append(empty, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return empty
}

// TestCrawlSaveWidened: a crawl that kept only images (--save) leaves no empty directories; run
// again without --save, it fetches the files it did not keep, once each, reports them new (not
// unchanged), and leaves the mirror an uninterrupted crawl without --save leaves.
func TestCrawlSaveWidened(t *testing.T) {
	t.Parallel()
	a, _, fetch, _ := gallery(t)
	out := t.TempDir()
	args := []string{"crawl", "-o", out, "--ca-cert", a.CAFile(t), "-q"}
	wantExit(t, runTrawl(t, append(args, "--save", "image/*", a.URL("/site/"))...), exitOK)
	if empty := emptyDirs(t, out); len(empty) > 0 {
		t.Errorf("--save left empty directories: %v", empty)
	}
	before := countRequestURLs(a.Requests())

	report := filepath.Join(t.TempDir(), "report.json")
	wantExit(t, runTrawl(t, append(args, "--report", report, a.URL("/site/"))...), exitOK)
	wantSaved(t, out, fetch)
	after := countRequestURLs(a.Requests())
	notKept := 0
	for _, r := range fetch {
		if r.s != a {
			continue
		}
		want := 0
		if !r.image {
			want, notKept = 1, notKept+1
		}
		if n := after[r.path] - before[r.path]; n != want {
			t.Errorf("%s requested %d times by the second run, want %d", r.path, n, want)
		}
	}
	var rep struct {
		Counts struct {
			New       int `json:"new"`
			Unchanged int `json:"unchanged"`
		} `json:"counts"`
		Job crawlJobCounts `json:"job"`
	}
	if b, err := os.ReadFile(report); err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	if rep.Counts.New != notKept || rep.Counts.Unchanged != 0 || rep.Job.Pending != 0 {
		t.Errorf("second run: new %d, unchanged %d, pending %d; want new %d (the files not kept), unchanged 0",
			rep.Counts.New, rep.Counts.Unchanged, rep.Job.Pending, notKept)
	}
	// And once all is kept, nothing is fetched again.
	wantExit(t, runTrawl(t, append(args, a.URL("/site/"))...), exitOK)
	if again := countRequestURLs(a.Requests()); len(again) != len(after) || again["/site/"] != after["/site/"] {
		t.Errorf("a third run requested again: %v, then %v", after, again)
	}
}

// TestCrawlStatusHostsWithWork: `trawl status` lists the hosts with URLs to fetch, not those a
// crawl only linked to, and counts the skipped URLs by reason.
func TestCrawlStatusHostsWithWork(t *testing.T) {
	t.Parallel()
	a, other := newCrawlSite(t), newCrawlSite(t)
	a.page("/site/", `<a href="{B}/x.html">x</a> <a href="{B}/y.html">y</a> <a href="/elsewhere/">e</a> <a href="p.html">p</a>`, other)
	a.page("/site/p.html", `<a href="../">up</a>`) // the site's root: above the seed, off scope
	out := t.TempDir()
	wantExit(t, runTrawl(t, "crawl", "-o", out, "--ca-cert", a.CAFile(t), "-q", "--depth", "1", a.URL("/site/")), exitOK)

	r := runTrawl(t, "status", "-o", out, "--json")
	wantExit(t, r, exitOK)
	var st struct {
		Hosts            map[string]json.RawMessage `json:"hosts"`
		HostsSkippedOnly int                        `json:"hosts_skipped_only"`
		SkippedBy        map[string]int             `json:"skipped_by"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if _, ok := st.Hosts[a.Addr()]; len(st.Hosts) != 1 || !ok || st.HostsSkippedOnly != 1 {
		t.Errorf("status hosts %v and %d with skipped URLs only; want %s alone, and 1",
			slices.Sorted(maps.Keys(st.Hosts)), st.HostsSkippedOnly, a.Addr())
	}
	if want := map[string]int{"off-scope": 4}; !maps.Equal(st.SkippedBy, want) {
		t.Errorf("skipped by reason %v, want %v", st.SkippedBy, want)
	}
	r = runTrawl(t, "status", "-o", out)
	wantExit(t, r, exitOK)
	if strings.Contains(r.stdout, other.Addr()) || !strings.Contains(r.stdout, "4 off-scope") {
		t.Errorf("status lists %s, or does not count the skipped by reason:\n%s", other.Addr(), r.stdout)
	}
}
