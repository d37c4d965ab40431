package integration_test

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestContentDispositionE2E: with --content-disposition, files take the names their server's
// Content-Disposition gives — traversal cut to the last element, filename* percent-decoded from
// UTF-8 — inside -o and nowhere else; two URLs given one name get it and a collision suffix;
// hostile names (absolute, backslashes, hidden, control characters, empty, only dots, very long,
// undecodable filename*) become safe names or leave the URL's. Without the flag the same answers
// leave every URL its own name, as before.
func TestContentDispositionE2E(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	cd := func(v string) testserver.Option { return testserver.Header("Content-Disposition", v) }
	long := strings.Repeat("L", 300)
	hostile := []struct{ path, header, name string }{
		{"/h/1", `attachment; filename="../../etc/x"`, "x"},
		{"/h/2", `attachment; filename="/abs/path"`, "path"},
		{"/h/3", `attachment; filename="..\\..\\win"`, "win"},
		{"/h/4", `attachment; filename=".hidden"`, "_hidden"},
		{"/h/5", "attachment; filename*=UTF-8''ctl%07%0A%1B.bin", "ctl___.bin"},
		{"/h/6", `attachment; filename=""`, "6"},
		{"/h/7", `attachment; filename="...."`, "7"},
		{"/h/8", `attachment; filename="` + long + `.bin"`, ""}, // shortened with a hash: checked below
		{"/h/9", `attachment; filename*=UTF-8''%FF%FEbad.bin`, "9"},
		{"/h/10", `attachment; filename="fallback.bin"; filename*=UTF-8''bad%ZZ.bin`, "fallback.bin"},
		{"/h/11", `attachment; filename=".."`, "11"},
		{"/h/12", `inline; filename=".trawl"`, "_trawl"},
	}
	var urls []string
	for _, h := range hostile {
		s.Handle(h.path, cd(h.header))
		urls = append(urls, s.URL(h.path))
	}
	flat := []struct{ path, header string }{
		{"/a/dl.php", `attachment; filename="../../evil.sh"`},
		{"/b/dl.php", `attachment; filename*=UTF-8''na%C3%AFve%20file.txt`},
		{"/c/dl.php", `attachment; filename="same.bin"`},
		{"/d/dl.php", `attachment; filename="same.bin"`},
	}
	var flatURLs []string
	for _, f := range flat {
		s.Handle(f.path, cd(f.header))
		flatURLs = append(flatURLs, s.URL(f.path))
	}

	t.Run("mirror", func(t *testing.T) {
		t.Parallel()
		parent := t.TempDir()
		out := filepath.Join(parent, "out")
		r := runTrawl(t, append([]string{"get", "-o", out, "--ca-cert", ca, "--content-disposition"}, urls...)...)
		wantExit(t, r, exitOK)
		done := checkDoneRecords(t, out, stateRecords(t, defaultState(out)))
		checkNoStrayFiles(t, out, done)
		for _, h := range hostile {
			var got string
			for p, rec := range done {
				if rec.URL == s.URL(h.path) {
					got = p
				}
			}
			want := s.Addr() + "/h/" + h.name
			if h.name == "" {
				if !strings.HasPrefix(got, s.Addr()+"/h/LLLL") || len(filepath.Base(got)) != 255 || !strings.HasSuffix(got, ".bin") {
					t.Errorf("%s (%s): stored at %q, want a 255-byte name in %s/h/", h.path, h.header, got, s.Addr())
				}
				continue
			}
			if got != want {
				t.Errorf("%s (%s): stored at %q, want %q", h.path, h.header, got, want)
			}
		}
		onlyOut(t, parent)
	})

	for _, on := range []bool{true, false} {
		name := map[bool]string{true: "flat", false: "flat without the flag"}[on]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			out := filepath.Join(parent, "out")
			args := []string{"get", "-o", out, "--ca-cert", ca, "--layout", "flat"}
			if on {
				args = append(args, "--content-disposition")
			}
			wantExit(t, runTrawl(t, append(args, flatURLs...)...), exitOK)
			done := checkDoneRecords(t, out, stateRecords(t, defaultState(out)))
			checkNoStrayFiles(t, out, done)
			byURL := map[string]string{}
			for p, rec := range done {
				byURL[rec.URL] = p
			}
			want := map[string]string{ // the flat names without the flag, in list order
				s.URL("/a/dl.php"): "dl.php", s.URL("/b/dl.php"): "dl~2.php", s.URL("/c/dl.php"): "dl~3.php", s.URL("/d/dl.php"): "dl~4.php",
			}
			if on {
				want = map[string]string{s.URL("/a/dl.php"): "evil.sh", s.URL("/b/dl.php"): "naïve file.txt"}
				// One of the two answers named same.bin came first.
				c, d := byURL[s.URL("/c/dl.php")], byURL[s.URL("/d/dl.php")]
				if pair := []string{c, d}; !slices.Equal(pair, []string{"same.bin", "same~2.bin"}) && !slices.Equal(pair, []string{"same~2.bin", "same.bin"}) {
					t.Errorf("two URLs named same.bin stored at %q and %q, want same.bin and same~2.bin", c, d)
				}
				want[s.URL("/c/dl.php")], want[s.URL("/d/dl.php")] = c, d
			}
			for u, p := range want {
				if byURL[u] != p {
					t.Errorf("%s stored at %q, want %q", u, byURL[u], p)
				}
				if got := fileSHA256(t, filepath.Join(out, p)); got != s.SHA256(strings.TrimPrefix(u, s.Base())) {
					t.Errorf("%s: %s does not hold its body", u, p)
				}
			}
			onlyOut(t, parent)
		})
	}
}

// TestContentDispositionResumeE2E: the name a Content-Disposition gives is recorded when the
// answer's headers arrive, so a run killed with SIGKILL in the middle of the body (the server holds
// the rest back) leaves a .part under that name, and the same command resumes that .part with a
// Range request and finishes the file under that name — nothing at the URL's own path.
func TestContentDispositionResumeE2E(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	const path, size, sent = "/dl.php", 4 << 20, 2 << 20
	s.Handle(path, testserver.Size(size), testserver.Header("Content-Disposition", `attachment; filename*=UTF-8''na%C3%AFve%20file.bin`),
		firstOnly(s, path, testserver.StallAfter(sent)))
	out := t.TempDir()
	args := []string{"get", "-o", out, "--ca-cert", ca, "--http1.1", "--content-disposition", s.URL(path + "?id=7")}
	named := filepath.Join(out, s.Addr(), "naïve file.bin")

	p := start(t, trawlCmd(args...))
	eventually(t, "the named .part to hold the bytes sent", 30*time.Second, p.exited, func() bool { return fileSize(named+".part") == sent })
	p.kill9()

	wantExit(t, runTrawl(t, args...), exitOK)
	reqs := s.RequestsFor(path)
	if len(reqs) != 2 {
		t.Fatalf("%s requested %d times, want 2 (first run, resume)", path, len(reqs))
	}
	if got := reqs[1].Header.Get("Range"); got != "bytes=2097152-" {
		t.Errorf("the rerun asked Range %q, want bytes=2097152- (the named .part's size)", got)
	}
	if got := fileSHA256(t, named); got != s.SHA256(path) {
		t.Errorf("%s has sha256 %s, want %s", named, got, s.SHA256(path))
	}
	done := checkDoneRecords(t, out, stateRecords(t, defaultState(out)))
	checkNoStrayFiles(t, out, done)
	if _, ok := done[s.Addr()+"/naïve file.bin"]; !ok || len(done) != 1 {
		t.Errorf("done records %v, want the one named file", done)
	}
}

// TestCrawlSlashRedirectE2E: a page links a directory without its slash (href="listing"), which
// the server redirects to listing/; the directory's page and its files all land in the directory —
// host/listing/index.html, a.html, b.html — with no file named listing and no listing~2, as wget2
// saves them; the directory's URL, linked back from its pages, is not fetched a second time.
func TestCrawlSlashRedirectE2E(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	html := func(body string) []testserver.Option {
		return []testserver.Option{testserver.Body([]byte(body)), testserver.Header("Content-Type", "text/html; charset=utf-8")}
	}
	s.Handle("/robots.txt", testserver.Body([]byte("User-agent: *\nAllow: /\n")), testserver.Header("Content-Type", "text/plain"))
	s.Handle("/", html(`<a href="listing">the listing</a>`)...)
	s.Handle("/listing", testserver.RedirectStatus(http.StatusMovedPermanently, "/listing/"))
	s.Handle("/listing/", html(`<a href="a.html">a</a> <a href="b.html">b</a> <a href="./">this directory</a>`)...)
	s.Handle("/listing/a.html", html(`<a href="./">up</a> <a href="b.html">b</a>`)...)
	s.Handle("/listing/b.html", html(`<a href="../listing">the listing again</a>`)...)
	out := t.TempDir()
	r := runTrawl(t, "crawl", "-o", out, "--ca-cert", ca, s.URL("/"))
	wantExit(t, r, exitOK)

	h := s.Addr()
	want := []string{h + "/index.html", h + "/listing/a.html", h + "/listing/b.html", h + "/listing/index.html"}
	if got := outputFiles(t, out); !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
	for _, p := range []string{"/listing/", "/listing/a.html", "/listing/b.html"} {
		if got, err := os.ReadFile(filepath.Join(out, h, filepath.FromSlash(strings.TrimSuffix(p, "/")+map[bool]string{true: "/index.html"}[strings.HasSuffix(p, "/")]))); err != nil || string(got) != string(s.Body(p)) {
			t.Errorf("%s: %v, or not the page served", p, err)
		}
	}
	for _, p := range []string{"/listing", "/listing/"} {
		if n := len(s.RequestsFor(p)); n != 1 {
			t.Errorf("%s requested %d times, want once", p, n)
		}
	}
	checkNoStrayFiles(t, out, checkDoneRecords(t, out, stateRecords(t, defaultState(out))))

	// The same command again finds the job done.
	wantExit(t, runTrawl(t, "crawl", "-o", out, "--ca-cert", ca, s.URL("/")), exitOK)
	if n := len(s.RequestsFor("/listing/")); n != 1 {
		t.Errorf("/listing/ requested again by the second run")
	}
}

// TestContentDispositionRefusedOnQueue: a shared job cannot record a server's name yet, and says
// so before it starts.
func TestContentDispositionRefusedOnQueue(t *testing.T) {
	t.Parallel()
	r := runTrawl(t, "get", "-o", t.TempDir(), "--queue", "nats://127.0.0.1:1", "--job", "j", "--content-disposition", "https://127.0.0.1:1/x")
	wantExit(t, r, exitUsage)
	if !strings.Contains(r.stderr, "--content-disposition and --queue") {
		t.Errorf("stderr does not say why:\n%s", tail(r.stderr))
	}
}

// onlyOut fails unless everything under parent is its output directory out/ and what is in it.
func onlyOut(t *testing.T, parent string) {
	t.Helper()
	for _, p := range strings.Split(treeSnapshot(t, parent), "\n") {
		if p != "./" && !strings.HasPrefix(p, "out/") {
			t.Errorf("%s was written outside the output directory", p)
		}
	}
}
