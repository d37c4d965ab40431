package integration_test

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestListCommand: `trawl list` shows a job's URLs by state, tab-separated with the URL first —
// what failed with its status, class and attempts, what was skipped with the reason — or as JSON
// lines; a directory with no job is a usage error.
func TestListCommand(t *testing.T) {
	t.Parallel()
	site := newCrawlSite(t)
	site.page("/gallery/", `<a href="/elsewhere/page.html">out of scope</a><img src="a.png"><img src="gone.png">`)
	site.bin("/gallery/a.png", 100)
	ca := site.CAFile(t)
	out := t.TempDir()
	r := runTrawl(t, "crawl", "--ignore-robots", "-o", out, "--ca-cert", ca, site.URL("/gallery/"))
	wantExit(t, r, exitFailed) // gone.png: 404

	page, img, gone, off := site.URL("/gallery/"), site.URL("/gallery/a.png"), site.URL("/gallery/gone.png"), site.URL("/elsewhere/page.html")
	tests := []struct {
		name  string
		args  []string
		lines []string // in the order listed (by URL)
	}{
		{"failed", []string{"--failed"}, []string{gone + "\tfailed\t404\thttp\t1\tHTTP 404 Not Found"}},
		{"skipped", []string{"--skipped"}, []string{off + "\tskipped\toff-scope"}},
		{"done and skipped", []string{"--done", "--skipped"}, []string{
			off + "\tskipped\toff-scope",
			img + "\tdone\t100\t" + site.Addr() + "/gallery/a.png",
			page + "\tdone\t" + strconv.Itoa(len(site.body("/gallery/"))) + "\t" + site.Addr() + "/gallery/index.html",
		}},
		{"other host", []string{"--host", "example.org"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runTrawl(t, append([]string{"list", "-o", out}, tt.args...)...)
			wantExit(t, r, exitOK)
			got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
			if r.stdout == "" {
				got = nil
			}
			slices.Sort(got)
			want := slices.Clone(tt.lines)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("trawl list %s:\n%s\nwant:\n%s", strings.Join(tt.args, " "), strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}

	r = runTrawl(t, "list", "--json", "--failed", "--skipped", "-o", out)
	wantExit(t, r, exitOK)
	byURL := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		byURL[m["url"].(string)] = m
	}
	if m := byURL[gone]; len(byURL) != 2 || m["state"] != "failed" || m["status"] != 404.0 || m["class"] != "http" || m["attempts"] != 1.0 {
		t.Errorf("--json --failed --skipped: %v", byURL)
	}
	if m := byURL[off]; m["state"] != "skipped" || m["reason"] != "off-scope" {
		t.Errorf("--json skipped: %v", m)
	}

	r = runTrawl(t, "list", "-o", filepath.Join(out, "nowhere"))
	wantExit(t, r, exitUsage)
	if !strings.Contains(r.stderr, "no trawl job") {
		t.Errorf("stderr: %q", r.stderr)
	}
}

// TestListWhileRunning: while a run holds the state file, `trawl list` says so at once (exit 3,
// naming the holder) instead of waiting for it, and the run is not disturbed.
func TestListWhileRunning(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	g := newTransferGate(t)
	s.Handle("/held.bin", g.handler(testserver.Content(24, 64<<10)))
	out := t.TempDir()
	p := start(t, trawlCmd("get", "-o", out, "--ca-cert", ca, s.URL("/held.bin")))
	g.waitEntered(t, p)

	r := start(t, trawlCmd("list", "-o", out)).wait(promptly)
	wantExit(t, r, exitFatal)
	if !strings.Contains(r.stderr, "in use") || !strings.Contains(r.stderr, "once the run ends") {
		t.Errorf("stderr: %q", r.stderr)
	}
	g.open()
	wantExit(t, p.wait(runTimeout), exitOK)
	r = runTrawl(t, "list", "-o", out)
	wantExit(t, r, exitOK)
	if !strings.HasPrefix(r.stdout, s.URL("/held.bin")+"\tdone\t65536\t") {
		t.Errorf("after the run: %q", r.stdout)
	}
}
