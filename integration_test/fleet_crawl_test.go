package integration_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/natstest"
)

// linkedSites are n sites (hosts) of pages under /s/, each page with its own image and the site's
// stylesheet (which has an image of its own), linking to pages of its site in cycles and to a
// page of the next site, by absolute URL. Robots.txt keeps /s/private/ out; some pages link
// there and off scope. Every page is reachable from each site's /s/p00.html.
func linkedSites(t *testing.T, n, pages int) []*crawlSite {
	ss := make([]*crawlSite, n)
	for i := range ss {
		ss[i] = newCrawlSite(t)
	}
	for i, s := range ss {
		next := ss[(i+1)%n]
		s.robots("User-agent: *\nDisallow: /s/private/\n")
		s.add("/s/style.css", []byte("body { background: url(img/bg.png) }\n"))
		s.bin("/s/img/bg.png", 700+i)
		for p := range pages {
			var b strings.Builder
			fmt.Fprintf(&b, "<!doctype html><title>%d/%d</title><link rel=stylesheet href=style.css>\n<img src=\"img/%02d.png\">\n", i, p, p)
			for _, q := range []int{(p + 1) % pages, (5*p + 2) % pages} {
				fmt.Fprintf(&b, "<a href=\"p%02d.html\">%d</a>\n", q, q)
			}
			fmt.Fprintf(&b, "<a href=\"%s/s/p%02d.html\">next site</a>\n", next.Base(), (3*p)%pages)
			if p%7 == 0 {
				fmt.Fprintf(&b, "<a href=\"private/%d.html\">no</a> <a href=\"/away/%d.html\">away</a>\n", p, p)
				s.page(fmt.Sprintf("/s/private/%d.html", p), "private")
				s.page(fmt.Sprintf("/away/%d.html", p), "away")
			}
			s.page(fmt.Sprintf("/s/p%02d.html", p), b.String())
			s.bin(fmt.Sprintf("/s/img/%02d.png", p), 500+37*p+i)
		}
	}
	return ss
}

// TestFleetCrawl: a crawl shared by three workers on NATS ends with exactly the files of the same
// crawl by one trawl alone: the same set of files over the workers' outputs, byte for byte, none
// of them saved by two workers, and every URL requested once by the fleet.
func TestFleetCrawl(t *testing.T) {
	t.Parallel()
	const hosts, pages = 10, 24
	ss := linkedSites(t, hosts, pages)
	var seeds []string
	for _, s := range ss {
		seeds = append(seeds, s.URL("/s/p00.html"))
	}
	ca := t.TempDir() + "/ca.pem"
	if err := ss[0].WriteCACert(ca); err != nil {
		t.Fatal(err)
	}

	alone := t.TempDir()
	wantExit(t, runTrawl(t, append([]string{"crawl", "-o", alone, "--ca-cert", ca}, seeds...)...), exitOK)
	want := map[string][]byte{}
	for _, name := range crawlFiles(t, alone) {
		want[name] = readFile(t, filepath.Join(alone, name))
	}
	// The crawl alone saved every page and image of every site, and nothing else.
	if n := hosts * (2*pages + 2); len(want) != n {
		t.Fatalf("the crawl alone saved %d files, want %d", len(want), n)
	}
	before := map[*crawlSite]int{}
	for _, s := range ss {
		before[s] = len(s.Requests())
	}

	nats := natstest.Server(t).ClientURL()
	outs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	var ws []*proc
	for _, out := range outs {
		ws = append(ws, start(t, trawlCmd(append([]string{"crawl", "-o", out, "--ca-cert", ca, "--queue", nats, "--job", "crawl",
			"--lease-time", "3s"}, seeds...)...)))
	}
	for i, w := range ws {
		if r := w.wait(2 * time.Minute); r.code != exitOK {
			t.Fatalf("worker %d exited %d:\n%s", i, r.code, tail(r.stderr))
		}
	}

	got := map[string][]byte{}
	saved := make([]int, len(outs))
	for i, out := range outs {
		for _, name := range crawlFiles(t, out) {
			b := readFile(t, filepath.Join(out, name))
			if old, ok := got[name]; ok {
				t.Errorf("%s saved by two workers", name)
				if !bytes.Equal(old, b) {
					t.Errorf("%s: the two copies differ", name)
				}
			}
			got[name] = b
			saved[i]++
		}
	}
	for name, b := range want {
		switch g, ok := got[name]; {
		case !ok:
			t.Errorf("the fleet did not save %s", name)
		case !bytes.Equal(g, b):
			t.Errorf("%s: the fleet's file differs from the crawl alone's", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("the fleet saved %s, which the crawl alone did not", name)
		}
	}
	if slices.Contains(saved, len(got)) {
		t.Errorf("files saved by each worker: %v: one worker did the whole crawl", saved)
	}
	for _, s := range ss {
		for u, n := range countRequestURLs(s.Requests()[before[s]:]) {
			// robots.txt is read once per worker that serves the host.
			if n > 1 && u != "/robots.txt" {
				t.Errorf("%s%s requested %d times by the fleet", s.Addr(), u, n)
			}
		}
	}
	t.Logf("files saved by each worker: %v", saved)
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
