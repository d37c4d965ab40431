package scheduler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/extract"
	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/internal/testserver"
	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/ratelimit"
	"github.com/trawl-dev/trawl/store"
)

// realFetcher is a fetcher.Fetcher that trusts srv.
func realFetcher(t *testing.T, srv *testserver.Server) *fetcher.Fetcher {
	t.Helper()
	f, err := fetcher.New(fetcher.Options{CACertFile: srv.CAFile(t), Protocol: fetcher.ProtocolHTTP1,
		IdleTimeout: 5 * time.Second, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// outDir opens a fresh output directory.
func outDir(t *testing.T) (*os.Root, string) {
	t.Helper()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root, dir
}

// files lists the regular files under dir, relative, slash-separated and sorted.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func fileSum(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// listed enqueues list lines (a URL, then a tab and a path, if given) as the CLI does.
func listed(t *testing.T, st *store.Store, layout fetcher.Layout, lines ...string) {
	t.Helper()
	var batch []queue.NewURL
	for _, l := range lines {
		e, ok, err := ParseListLine(l)
		if err != nil || !ok {
			t.Fatalf("list line %q: %v", l, err)
		}
		nu, err := e.NewURL(layout, 0)
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, nu)
	}
	if _, err := st.Enqueue(batch); err != nil {
		t.Fatal(err)
	}
}

// TestContentDispositionNames: with ContentDisposition, a URL's first download is stored under the
// name its answer gives, recorded Named with the URL; two URLs given one name get the name and a
// collision suffix (which gets which depends on which answer came first); a URL without a name, or
// with a path its list line gave, keeps its path; a URL that fails after its answer named it keeps
// the name in its failed record. Without ContentDisposition every URL keeps its mapped path.
func TestContentDispositionNames(t *testing.T) {
	srv := testserver.New(t)
	named := testserver.Header("Content-Disposition", `attachment; filename="report.pdf"`)
	srv.Handle("/a/dl.php", named)
	srv.Handle("/b/dl.php", named)
	srv.Handle("/plain.bin")
	srv.Handle("/given", named)
	srv.Handle("/fails", testserver.Header("Content-Disposition", `attachment; filename*=UTF-8''broken%20file.bin`),
		testserver.NoValidators(), testserver.Size(10_000), testserver.TruncateAfter(100))
	lines := []string{srv.URL("/a/dl.php"), srv.URL("/b/dl.php"), srv.URL("/plain.bin"), srv.URL("/given") + "\tmine/given.bin", srv.URL("/fails")}

	for _, on := range []bool{true, false} {
		t.Run(map[bool]string{true: "on", false: "off"}[on], func(t *testing.T) {
			st := openStore(t)
			listed(t, st, fetcher.Flat, lines...)
			root, dir := outDir(t)
			opts := fastOptions()
			opts.ContentDisposition, opts.Retries = on, 1
			if err := New(st, realFetcher(t, srv), ratelimit.New(ratelimit.Options{PerHost: 2}), root, opts).Run(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			got := states(t, st)
			want := map[string]struct {
				path  string
				named bool
				state queue.State
			}{
				srv.URL("/a/dl.php"):  {"dl.php", false, queue.Done},
				srv.URL("/b/dl.php"):  {"dl~2.php", false, queue.Done},
				srv.URL("/plain.bin"): {"plain.bin", false, queue.Done},
				srv.URL("/given"):     {"mine/given.bin", true, queue.Done},
				srv.URL("/fails"):     {"fails", false, queue.Failed},
			}
			if on {
				a, b := got[srv.URL("/a/dl.php")].Path, got[srv.URL("/b/dl.php")].Path
				if a == "report~2.pdf" && b == "report.pdf" {
					a, b = b, a // the other answer came first
				}
				if a != "report.pdf" || b != "report~2.pdf" {
					t.Errorf("two answers named report.pdf stored at %q and %q, want report.pdf and report~2.pdf", got[srv.URL("/a/dl.php")].Path, got[srv.URL("/b/dl.php")].Path)
				}
				for _, u := range []string{srv.URL("/a/dl.php"), srv.URL("/b/dl.php")} {
					want[u] = struct {
						path  string
						named bool
						state queue.State
					}{got[u].Path, true, queue.Done}
				}
				w := want[srv.URL("/fails")]
				w.path, w.named = "broken file.bin", true
				want[srv.URL("/fails")] = w
			}
			var wantFiles []string
			for u, w := range want {
				r := got[u]
				if r.Path != w.path || r.Named != w.named || r.State != w.state {
					t.Errorf("%s: %v at %q (named %v), want %v at %q (named %v)", u, r.State, r.Path, r.Named, w.state, w.path, w.named)
				}
				if w.state == queue.Done {
					wantFiles = append(wantFiles, w.path)
					if sum := fileSum(t, filepath.Join(dir, filepath.FromSlash(r.Path))); sum != srv.SHA256(mustPath(t, u)) {
						t.Errorf("%s: %s does not hold its body", u, r.Path)
					}
				}
			}
			sort.Strings(wantFiles)
			if got := files(t, dir); !slices.Equal(got, wantFiles) {
				t.Errorf("files %q, want %q", got, wantFiles)
			}
		})
	}
}

func mustPath(t *testing.T, raw string) string {
	t.Helper()
	e, err := NormalizeURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	return e.URL[len("https://"+e.Host):]
}

// TestCrawlSlashRedirect: a mirror crawl meets a link to a directory without its slash, which the
// server redirects to the directory: the page is saved as the directory's index.html and its links
// are taken relative to the directory, so every file of the directory lands in it — no file named
// like the directory beside a second, suffixed directory. The directory's own URL, linked back from
// its pages, is recorded skipped rather than fetched into a second copy.
func TestCrawlSlashRedirect(t *testing.T) {
	srv := testserver.New(t)
	html := func(body string) []testserver.Option {
		return []testserver.Option{testserver.Body([]byte(body)), testserver.Header("Content-Type", "text/html")}
	}
	srv.Handle("/", html(`<a href="listing">listing</a>`)...)
	srv.Handle("/listing", testserver.RedirectStatus(http.StatusMovedPermanently, "/listing/"))
	srv.Handle("/listing/", html(`<a href="a.html">a</a> <a href="b.html">b</a> <a href="./">here</a>`)...)
	srv.Handle("/listing/a.html", html(`<a href="../listing/">up</a>`)...)
	srv.Handle("/listing/b.html", html(`b`)...)
	for _, breadth := range []bool{false, true} {
		t.Run(map[bool]string{false: "queue order", true: "breadth-first"}[breadth], func(t *testing.T) {
			scope, err := extract.NewScope([]string{srv.URL("/")}, extract.ScopeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			st := openStore(t)
			if breadth {
				if err := st.BreadthFirst(); err != nil {
					t.Fatal(err)
				}
			}
			enqueueAll(t, st, []string{srv.URL("/")})
			root, dir := outDir(t)
			opts := fastOptions()
			opts.Crawl = &Crawl{Scope: scope, Layout: fetcher.Mirror}
			before := len(srv.RequestsFor("/listing/"))
			if err := New(st, realFetcher(t, srv), ratelimit.New(ratelimit.Options{PerHost: 2}), root, opts).Run(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			h := srv.Addr()
			want := []string{h + "/index.html", h + "/listing/a.html", h + "/listing/b.html", h + "/listing/index.html"}
			if got := files(t, dir); !slices.Equal(got, want) {
				t.Errorf("files %q, want %q", got, want)
			}
			got := states(t, st)
			if r := got[srv.URL("/listing")]; r.State != queue.Done || r.Path != h+"/listing/index.html" || !r.Named {
				t.Errorf("/listing: %v at %q (named %v), want done at %s/listing/index.html", r.State, r.Path, r.Named, h)
			}
			if r := got[srv.URL("/listing/")]; r.State != queue.Skipped || r.LastError != ReasonRedirectTarget {
				t.Errorf("/listing/: %v (%q), want skipped as %q", r.State, r.LastError, ReasonRedirectTarget)
			}
			if n := len(srv.RequestsFor("/listing/")) - before; n != 1 {
				t.Errorf("/listing/ requested %d times, want once (through the redirect)", n)
			}
		})
	}
}
