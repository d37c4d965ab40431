package fetcher

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// renamer is a fake of the scheduler's answer to Naming.Rename: it records each proposal and
// answers with give(proposal) (nil: the proposal itself).
type renamer struct {
	mu    sync.Mutex
	asked []string
	give  func(string) (string, error)
}

func (r *renamer) rename(p string) (string, error) {
	r.mu.Lock()
	r.asked = append(r.asked, p)
	r.mu.Unlock()
	if r.give != nil {
		return r.give(p)
	}
	return p, nil
}

func (r *renamer) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.asked...)
}

// cdNaming is the Naming of --content-disposition, answered by r.
func cdNaming(r *renamer) *Naming { return &Naming{ContentDisposition: true, Rename: r.rename} }

// TestFetchNamedByContentDisposition: with Naming, the Content-Disposition name replaces the leaf
// of the path before anything is written, at the path the caller's Rename gives (the proposal, or
// one with a collision suffix), over HTTP/1.1 and HTTP/2; nothing is written at the request's path.
func TestFetchNamedByContentDisposition(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, proto func(*Options)) {
		srv := testserver.New(t)
		srv.Handle("/dl.php", testserver.Size(50_000),
			testserver.Header("Content-Disposition", `attachment; filename="fallback.txt"; filename*=UTF-8''na%C3%AFve%20file.txt`))
		f := newFetcher(t, srv, proto)
		for _, tc := range []struct {
			name string
			give func(string) (string, error)
			want string
		}{
			{"as proposed", nil, "a/naïve file.txt"},
			{"with a collision suffix", func(string) (string, error) { return "a/naïve file~2.txt", nil }, "a/naïve file~2.txt"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				root, dir := newRoot(t)
				r := &renamer{give: tc.give}
				resp, err := fetchReq(t, f, root, Request{URL: srv.URL("/dl.php"), Path: "a/dl.php", Naming: cdNaming(r)})
				if err != nil {
					t.Fatal(err)
				}
				if got := r.calls(); len(got) != 1 || got[0] != "a/naïve file.txt" {
					t.Fatalf("Rename asked %q, want once for %q", got, "a/naïve file.txt")
				}
				if resp.Path != tc.want {
					t.Errorf("Response.Path %q, want %q", resp.Path, tc.want)
				}
				if got := sha(readFile(t, dir, tc.want)); got != srv.SHA256("/dl.php") || resp.SHA256 != got {
					t.Errorf("%s has sha256 %s (response %s), want %s", tc.want, got, resp.SHA256, srv.SHA256("/dl.php"))
				}
				if tree := strings.Join(treeOf(t, dir), " "); tree != "a "+tc.want {
					t.Errorf("files after the download: %s", tree)
				}
			})
		}
	})
}

// TestFetchNamingHostile: with Naming on, a hostile Content-Disposition still never chooses a
// directory or leaves the output: the name is the last element, made safe, in the request's
// directory; a name with nothing usable leaves the request's path, and Rename is not asked.
func TestFetchNamingHostile(t *testing.T) {
	for _, tc := range []struct{ cd, want string }{
		{`attachment; filename="../../etc/x"`, "a/x"},
		{`attachment; filename="/abs/path"`, "a/path"},
		{`attachment; filename="..\\..\\win"`, "a/win"},
		{`attachment; filename=".hidden"`, "a/_hidden"},
		{`inline; filename=".trawl"`, "a/_trawl"},
		{"attachment; filename*=UTF-8''ctl%01%0A%1B.bin", "a/ctl___.bin"},
		{`attachment; filename*=UTF-8''..%2F..%2Fescape`, "a/escape"},
		{`attachment; filename="sub/dir/"`, "a/dl.bin"},
		{`attachment; filename=""`, "a/dl.bin"},
		{`attachment; filename="..."`, "a/dl.bin"},
		{`attachment; filename=".."`, "a/dl.bin"},
		{`attachment; filename*=UTF-8''%FF%FE.bin`, "a/dl.bin"},
		{`attachment; filename*=UTF-8''bad%Z`, "a/dl.bin"},
		{`attachment; filename="` + strings.Repeat("L", 400) + `.bin"`, "a/" + strings.Repeat("L", 255-13) + "~" + hash8(strings.Repeat("L", 400)+".bin") + ".bin"},
		{`attachment; filename="dl.part"`, "a/dl.part_"},
	} {
		t.Run(tc.cd, func(t *testing.T) {
			srv := testserver.New(t, testserver.Header("Content-Disposition", tc.cd))
			f := newFetcher(t, srv)
			parent := t.TempDir()
			dir := filepath.Join(parent, "out")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			root, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			r := &renamer{}
			resp, err := fetchReq(t, f, root, Request{URL: srv.URL("/dl"), Path: "a/dl.bin", Naming: cdNaming(r)})
			if err != nil || resp.Path != tc.want {
				t.Fatalf("Path %q, %v; want %q", resp.Path, err, tc.want)
			}
			if asked := r.calls(); (tc.want == "a/dl.bin") != (len(asked) == 0) {
				t.Errorf("Rename asked %q", asked)
			}
			if got := strings.Join(treeOf(t, parent), " "); got != "out out/a out/"+tc.want {
				t.Fatalf("files after the download: %v", got)
			}
		})
	}
}

// TestFetchNamingResumeKeepsPath: a .part being resumed keeps its path whatever the answer names:
// the name was settled when the .part was begun. Rename is not asked.
func TestFetchNamingResumeKeepsPath(t *testing.T) {
	srv := testserver.New(t, testserver.ETag(`"v1"`), testserver.Header("Content-Disposition", `attachment; filename="other.bin"`))
	srv.Handle("/big.bin", testserver.Size(3<<20))
	f := newFetcher(t, srv)
	root, dir := newRoot(t)
	body := srv.Body("/big.bin")
	const kept = 1 << 20
	if err := os.MkdirAll(filepath.Join(dir, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a", "named.bin.part"), body[:kept], 0o644); err != nil {
		t.Fatal(err)
	}
	m, _ := json.Marshal(partMeta{URL: srv.URL("/big.bin"), ETag: `"v1"`, Size: int64(len(body))})
	if err := os.WriteFile(filepath.Join(dir, "a", "named.bin.part.meta"), m, 0o644); err != nil {
		t.Fatal(err)
	}
	r := &renamer{}
	resp, err := fetchReq(t, f, root, Request{URL: srv.URL("/big.bin"), Path: "a/named.bin", Naming: cdNaming(r)})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Resumed || resp.Offset != kept || resp.Path != "a/named.bin" {
		t.Errorf("resumed %v from %d into %q, want a resume from %d into a/named.bin", resp.Resumed, resp.Offset, resp.Path, kept)
	}
	if asked := r.calls(); len(asked) != 0 {
		t.Errorf("Rename asked %q while resuming", asked)
	}
	if got := sha(readFile(t, dir, "a/named.bin")); got != srv.SHA256("/big.bin") {
		t.Errorf("sha256 %s, want %s", got, srv.SHA256("/big.bin"))
	}
	if tree := strings.Join(treeOf(t, dir), " "); tree != "a a/named.bin" {
		t.Errorf("files: %s", tree)
	}
}

// TestFetchNamingStalePartDiscarded: a .part at the request's path that cannot be resumed (no
// sidecar) is not left behind when the answer names the file elsewhere.
func TestFetchNamingStalePartDiscarded(t *testing.T) {
	srv := testserver.New(t, testserver.Header("Content-Disposition", `attachment; filename="new.bin"`))
	f := newFetcher(t, srv)
	root, dir := newRoot(t)
	if err := os.MkdirAll(filepath.Join(dir, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a", "old.bin.part"), []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := fetchReq(t, f, root, Request{URL: srv.URL("/x"), Path: "a/old.bin", Naming: cdNaming(&renamer{})})
	if err != nil || resp.Path != "a/new.bin" {
		t.Fatalf("%+v %v", resp, err)
	}
	if tree := strings.Join(treeOf(t, dir), " "); tree != "a a/new.bin" {
		t.Errorf("files: %s", tree)
	}
}

// TestFetchNamingRenameFails: a Rename that fails (the state cannot be written) fails the fetch
// as Fatal before anything is written.
func TestFetchNamingRenameFails(t *testing.T) {
	srv := testserver.New(t, testserver.Header("Content-Disposition", `attachment; filename="new.bin"`))
	f := newFetcher(t, srv)
	root, dir := newRoot(t)
	r := &renamer{give: func(string) (string, error) { return "", errors.New("state file is read-only") }}
	_, err := fetchReq(t, f, root, Request{URL: srv.URL("/x"), Path: "a/old.bin", Naming: cdNaming(r)})
	e := wantError(t, err, ClassLocal, false)
	if !e.Fatal || !strings.Contains(e.Error(), "read-only") {
		t.Errorf("error %q (fatal %v), want a fatal one naming the cause", e, e.Fatal)
	}
	if tree := treeOf(t, dir); len(tree) != 0 {
		t.Errorf("files written: %v", tree)
	}
	// A Rename that gives a path Fetch refuses is not followed either.
	r.give = func(string) (string, error) { return "../escape", nil }
	_, err = fetchReq(t, f, root, Request{URL: srv.URL("/x"), Path: "a/old.bin", Naming: cdNaming(r)})
	wantError(t, err, ClassURL, false)
	if tree := treeOf(t, dir); len(tree) != 0 {
		t.Errorf("files written: %v", tree)
	}
}

// TestFetchNamingNotOnRevalidation: a conditional request answered 304 names nothing; one
// answered 200 keeps the path of the copy it replaces.
func TestFetchNamingNotOnRevalidation(t *testing.T) {
	srv := testserver.New(t, testserver.ETag(`"v1"`), testserver.Header("Content-Disposition", `attachment; filename="new.bin"`))
	f := newFetcher(t, srv)
	root, dir := newRoot(t)
	if _, err := fetch(t, f, root, srv.URL("/x"), "a/old.bin"); err != nil {
		t.Fatal(err)
	}
	for _, etag := range []string{`"v1"`, `"v0"`} {
		r := &renamer{}
		resp, err := fetchReq(t, f, root, Request{URL: srv.URL("/x"), Path: "a/old.bin", ETag: etag, Naming: cdNaming(r)})
		if err != nil || resp.Path != "a/old.bin" || resp.NotModified != (etag == `"v1"`) {
			t.Fatalf("If-None-Match %s: %+v %v", etag, resp, err)
		}
		if asked := r.calls(); len(asked) != 0 {
			t.Errorf("If-None-Match %s: Rename asked %q", etag, asked)
		}
	}
	if tree := strings.Join(treeOf(t, dir), " "); tree != "a a/old.bin" {
		t.Errorf("files: %s", tree)
	}
}

// TestFetchNamedBySlashRedirect: a URL redirected to itself with a "/" added is a directory: with
// SlashRedirect its page is stored as the target's mirror path, its index.html. Another redirect
// keeps the request's path.
func TestFetchNamedBySlashRedirect(t *testing.T) {
	srv := testserver.New(t)
	srv.Handle("/listing", testserver.RedirectStatus(http.StatusMovedPermanently, "/listing/"))
	srv.Handle("/listing/", testserver.Body([]byte("<a href=a.html>a</a>")), testserver.Header("Content-Type", "text/html"))
	srv.Handle("/moved", testserver.RedirectStatus(http.StatusMovedPermanently, "/listing/"))
	f := newFetcher(t, srv)
	root, dir := newRoot(t)
	for _, tc := range []struct{ path, want string }{
		{"/listing", "/listing/index.html"},
		{"/moved", "/moved"},
	} {
		rel, err := MapPath(srv.URL(tc.path), Mirror)
		if err != nil {
			t.Fatal(err)
		}
		r := &renamer{}
		resp, err := fetchReq(t, f, root, Request{URL: srv.URL(tc.path), Path: rel, Naming: &Naming{SlashRedirect: true, Rename: r.rename}})
		if err != nil {
			t.Fatal(err)
		}
		want := srv.Addr() + tc.want
		if resp.Path != want || resp.FinalURL != srv.URL("/listing/") {
			t.Errorf("%s: stored at %q from %q, want %q from %q", tc.path, resp.Path, resp.FinalURL, want, srv.URL("/listing/"))
		}
		if string(readFile(t, dir, want)) != "<a href=a.html>a</a>" {
			t.Errorf("%s: %s does not hold the page", tc.path, want)
		}
	}
	if exists(dir, srv.Addr()+"/listing") && !isDir(t, filepath.Join(dir, srv.Addr(), "listing")) {
		t.Errorf("a file stands at %s/listing, where the directory goes", srv.Addr())
	}
}

func isDir(t *testing.T, name string) bool {
	t.Helper()
	fi, err := os.Stat(name)
	return err == nil && fi.IsDir()
}

// TestFetchNamingSegmented: a big file fetched in segments goes to the named path too.
func TestFetchNamingSegmented(t *testing.T) {
	srv := testserver.New(t, testserver.AcceptRanges(), testserver.Header("Content-Disposition", `attachment; filename="big.iso"`))
	srv.Handle("/dl", testserver.Size(segSize))
	f := newSegFetcher(t, srv, forceSplit(4))
	root, dir := newRoot(t)
	c := &conns{t: t, limit: 3}
	req := c.request(srv.URL("/dl"), "a/dl")
	req.Naming = cdNaming(&renamer{})
	resp, err := fetchReq(t, f, root, req)
	if err != nil {
		t.Fatal(err)
	}
	c.balanced()
	if resp.Path != "a/big.iso" || sha(readFile(t, dir, "a/big.iso")) != srv.SHA256("/dl") {
		t.Errorf("stored at %q; want a/big.iso with the body", resp.Path)
	}
	if c.total == 0 {
		t.Errorf("not fetched in segments")
	}
	if tree := strings.Join(treeOf(t, dir), " "); tree != "a a/big.iso" {
		t.Errorf("files: %s", tree)
	}
}
