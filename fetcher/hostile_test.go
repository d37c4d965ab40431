package fetcher

// Tests for hostile servers and hostile local state that the happy-path and fault tests in
// fetch_test.go do not already cover. Each test names the case of the hardening issue it holds.

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestHostileResumeValidatorChanged: a server that honours Range whatever If-Range says (a
// broken origin or cache) answers the resume with a 206 of a new version. Its ETag or
// Last-Modified differs from the .part's: the bytes must not be spliced onto the old ones.
func TestHostileResumeValidatorChanged(t *testing.T) {
	const size, cut = 50_000, 20_000
	v2 := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		name string
		v1   []testserver.Option // the version the .part is of
		v2   []testserver.Option // what the server has now
	}{
		{"ETag changed", nil, []testserver.Option{testserver.Seed(99)}},
		{"Last-Modified changed", []testserver.Option{testserver.ETag("")},
			[]testserver.Option{testserver.ETag(""), testserver.Seed(99), testserver.LastModified(v2)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.New(t, testserver.HTTP1Only(), testserver.Size(size), testserver.IgnoreIfRange())
			f := newFetcher(t, srv)
			root, dir := newRoot(t)
			srv.Handle("/f", tc.v1...)
			partial(t, srv, f, root, dir, "/f", "f", cut)
			srv.Handle("/f", tc.v2...)

			resp, err := fetch(t, f, root, srv.URL("/f"), "f")
			if err == nil {
				if !bytes.Equal(readFile(t, dir, "f"), srv.Body("/f")) {
					t.Fatalf("spliced two versions into one file (response %+v)", resp)
				}
				return // restarted from zero at once: also fine
			}
			wantError(t, err, ClassRange, true)
			if exists(dir, "f") || exists(dir, "f.part") || exists(dir, "f.part.meta") {
				t.Fatal("files of the old version left after a 206 of another version")
			}
			resp, err = fetch(t, f, root, srv.URL("/f"), "f")
			if err != nil || resp.Resumed || !bytes.Equal(readFile(t, dir, "f"), srv.Body("/f")) || resp.SHA256 != srv.SHA256("/f") {
				t.Fatalf("retry after the refused 206: %+v, %v", resp, err)
			}
		})
	}
}

// TestHostileBadChunked: malformed chunked encoding, and a chunk cut short, are network
// failures worth a retry; nothing is published.
func TestHostileBadChunked(t *testing.T) {
	for _, tc := range []struct {
		name, body string
	}{
		{"bad chunk size", "5\r\nhello\r\nzz\r\nxx\r\n0\r\n\r\n"},
		{"chunk size overflow", "ffffffffffffffffff\r\nx\r\n"},
		{"chunk shorter than declared", "64\r\nonly a few bytes"},
		{"missing chunk CRLF", "5\r\nhelloXX3\r\nabc\r\n0\r\n\r\n"},
		{"no terminating chunk", "5\r\nhello\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: \"x\"\r\nConnection: close\r\n\r\n" + tc.body
			srv := testserver.New(t, testserver.HTTP1Only(), testserver.RawResponse(raw))
			f := newFetcher(t, srv)
			root, dir := newRoot(t)
			_, err := fetch(t, f, root, srv.URL("/f"), "f")
			e := Classify(err)
			if e == nil || !e.Retryable || (e.Class != ClassNetwork && e.Class != ClassShortBody) {
				t.Fatalf("bad chunked body: %v (class %v)", err, e)
			}
			if exists(dir, "f") {
				t.Fatal("final file published from a broken chunked body")
			}
		})
	}
}

// TestHostileEndlessHeaders: a server that never stops sending header lines is cut off at the
// 1 MiB header limit, promptly, with nothing written.
func TestHostileEndlessHeaders(t *testing.T) {
	srv := testserver.New(t, testserver.HTTP1Only(), testserver.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		bw.WriteString("HTTP/1.1 200 OK\r\n")
		line := "X-Junk: " + strings.Repeat("j", 1000) + "\r\n"
		for i := 0; i < 100_000; i++ { // 100 MB at most: the client must give up long before
			if _, err := bw.WriteString(line); err != nil {
				return
			}
			if i%64 == 0 {
				if bw.Flush() != nil {
					return
				}
			}
		}
	}))
	f := newFetcher(t, srv)
	root, dir := newRoot(t)
	start := time.Now()
	_, err := fetch(t, f, root, srv.URL("/f"), "f")
	if err == nil {
		t.Fatal("endless headers accepted")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v to give up on endless headers", d)
	}
	if exists(dir, "f") || exists(dir, "f.part") {
		t.Fatal("something was written")
	}
}

// TestHostileRedirects: loops end at the redirect limit; redirects to file:, ftp:, data: and
// javascript: are refused without being followed; none is retried.
func TestHostileRedirects(t *testing.T) {
	srv := testserver.New(t)
	f := newFetcher(t, srv, func(o *Options) { o.MaxRedirects = 5 })
	root, dir := newRoot(t)
	t.Run("loop", func(t *testing.T) {
		srv.Handle("/loop1", testserver.Redirect("/loop2"))
		srv.Handle("/loop2", testserver.Redirect("/loop1"))
		_, err := fetch(t, f, root, srv.URL("/loop1"), "loop")
		wantError(t, err, ClassRedirect, false)
		if n := len(srv.RequestsFor("/loop1")) + len(srv.RequestsFor("/loop2")); n > 6 {
			t.Fatalf("%d requests for a redirect loop with MaxRedirects 5", n)
		}
	})
	t.Run("self", func(t *testing.T) {
		srv.Handle("/self", testserver.RedirectStatus(http.StatusMovedPermanently, "/self"))
		_, err := fetch(t, f, root, srv.URL("/self"), "self")
		wantError(t, err, ClassRedirect, false)
	})
	for _, target := range []string{"file:///etc/passwd", "ftp://127.0.0.1/x", "data:text/plain,hi", "javascript:alert(1)", "gopher://127.0.0.1/x"} {
		t.Run(target, func(t *testing.T) {
			p := "/to-" + strings.SplitN(target, ":", 2)[0]
			srv.Handle(p, testserver.Redirect(target))
			_, err := fetch(t, f, root, srv.URL(p), "other")
			e := wantError(t, err, ClassRedirect, false)
			if !strings.Contains(e.Error(), "scheme") {
				t.Fatalf("message %q does not say the scheme is refused", e)
			}
		})
	}
	if exists(dir, "other") || exists(dir, "loop") || exists(dir, "self") {
		t.Fatal("a refused redirect wrote a file")
	}
}

// TestHostileContentDisposition: the server's file name, however hostile, never chooses the
// path (nor a directory): the body lands at the mapped path and nowhere else.
func TestHostileContentDisposition(t *testing.T) {
	for _, cd := range []string{
		`attachment; filename="../../escape.sh"`,
		`attachment; filename="/etc/cron.d/evil"`,
		`attachment; filename="sub/dir/"`,
		`attachment; filename*=UTF-8''..%2F..%2Fescape`,
		`inline; filename=".trawl"`,
	} {
		t.Run(cd, func(t *testing.T) {
			srv := testserver.New(t, testserver.Header("Content-Disposition", cd))
			f := newFetcher(t, srv)
			parent := t.TempDir()
			dir := filepath.Join(parent, "out")
			os.Mkdir(dir, 0o755)
			root, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			resp, err := fetch(t, f, root, srv.URL("/dl"), "a/dl.bin")
			if err != nil || resp.Path != "a/dl.bin" {
				t.Fatalf("%+v %v", resp, err)
			}
			if got := treeOf(t, parent); strings.Join(got, " ") != "out out/a out/a/dl.bin" {
				t.Fatalf("files after the download: %v", got)
			}
		})
	}
}

// treeOf lists everything under dir, relative and sorted.
func treeOf(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// TestHostileGzipBomb: 64 MiB of zeros gzipped to a few dozen KiB, served with
// Content-Encoding: gzip, is saved as the small file it is — never inflated.
func TestHostileGzipBomb(t *testing.T) {
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 64 {
		zw.Write(zeros)
	}
	zw.Close()
	for _, ct := range []string{"application/gzip", "text/html"} {
		t.Run(ct, func(t *testing.T) {
			srv := testserver.New(t, testserver.Body(gz.Bytes()), testserver.Header("Content-Encoding", "gzip"), testserver.Header("Content-Type", ct))
			f := newFetcher(t, srv)
			root, dir := newRoot(t)
			var seen int
			resp, err := f.Fetch(t.Context(), root, Request{URL: srv.URL("/bomb"), Path: "bomb", OnBytes: func(n int) { seen += n }})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Bytes != int64(gz.Len()) || seen != gz.Len() || fileSize(t, dir, "bomb") != int64(gz.Len()) || resp.SHA256 != sha(gz.Bytes()) {
				t.Fatalf("bomb of %d bytes saved as %d (read %d): inflated?", gz.Len(), resp.Bytes, seen)
			}
		})
	}
}

// TestHostileDrip: one byte at a time is fine while each comes within the idle timeout; a
// byte every few idle timeouts is a stall, retried.
func TestHostileDrip(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, proto func(*Options)) {
		t.Run("one byte per interval under the idle timeout", func(t *testing.T) {
			srv := testserver.New(t, testserver.Size(6), testserver.Drip(1, 100*time.Millisecond))
			f := newFetcher(t, srv, proto, func(o *Options) { o.IdleTimeout = 600 * time.Millisecond })
			root, dir := newRoot(t)
			if _, err := fetch(t, f, root, srv.URL("/f"), "f"); err != nil || !bytes.Equal(readFile(t, dir, "f"), srv.Body("/f")) {
				t.Fatal(err)
			}
		})
		t.Run("one byte per interval over the idle timeout", func(t *testing.T) {
			srv := testserver.New(t, testserver.Size(100), testserver.Drip(1, 3*stallTimeout))
			f := newFetcher(t, srv, proto, func(o *Options) { o.IdleTimeout = stallTimeout })
			root, dir := newRoot(t)
			start := time.Now()
			_, err := fetch(t, f, root, srv.URL("/f"), "f")
			wantError(t, err, ClassStall, true)
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("stall noticed after %v", d)
			}
			if exists(dir, "f") {
				t.Fatal("final file written after a stall")
			}
		})
	})
}

// TestHostilePartFile: a .part that is not provably of this URL's current content — no
// sidecar, a sidecar of another URL, a garbled sidecar, or longer than the remote file — is
// restarted from zero, never trusted.
func TestHostilePartFile(t *testing.T) {
	const size = 30_000
	garbage := bytes.Repeat([]byte("NOT THE CONTENT "), 4000) // 64,000 bytes: longer than the file
	for _, tc := range []struct {
		name string
		meta func(srv *testserver.Server) []byte // nil: no sidecar
		part []byte
	}{
		{"no sidecar", nil, garbage[:10_000]},
		{"no sidecar, longer than the file", nil, garbage},
		{"sidecar of another URL", func(srv *testserver.Server) []byte {
			return []byte(`{"url":"` + srv.URL("/other") + `","etag":` + strconvQuote(etagOf(srv, "/f")) + `}`)
		}, garbage[:10_000]},
		{"garbled sidecar", func(*testserver.Server) []byte { return []byte("{\x00\xff") }, garbage[:10_000]},
		{"sidecar without validator", func(srv *testserver.Server) []byte { return []byte(`{"url":"` + srv.URL("/f") + `"}`) }, garbage[:10_000]},
		{"empty part with sidecar", func(srv *testserver.Server) []byte {
			return []byte(`{"url":"` + srv.URL("/f") + `","etag":` + strconvQuote(etagOf(srv, "/f")) + `}`)
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.New(t, testserver.Size(size))
			f := newFetcher(t, srv)
			root, dir := newRoot(t)
			os.WriteFile(filepath.Join(dir, "f.part"), tc.part, 0o644)
			if tc.meta != nil {
				os.WriteFile(filepath.Join(dir, "f.part.meta"), tc.meta(srv), 0o644)
			}
			n0 := len(srv.RequestsFor("/f"))
			resp, err := fetch(t, f, root, srv.URL("/f"), "f")
			if err != nil || resp.Resumed || resp.Status != 200 {
				t.Fatalf("%+v %v", resp, err)
			}
			if rg := srv.RequestsFor("/f")[n0].Header.Get("Range"); rg != "" {
				t.Fatalf("an untrusted .part was resumed with Range %q", rg)
			}
			if !bytes.Equal(readFile(t, dir, "f"), srv.Body("/f")) || exists(dir, "f.part") || exists(dir, "f.part.meta") {
				t.Fatal("wrong file, or .part files left")
			}
		})
	}
	t.Run("longer than the file, validator matches (416)", func(t *testing.T) {
		srv := testserver.New(t, testserver.Size(size))
		f := newFetcher(t, srv)
		root, dir := newRoot(t)
		os.WriteFile(filepath.Join(dir, "f.part"), garbage, 0o644)
		os.WriteFile(filepath.Join(dir, "f.part.meta"), []byte(`{"url":"`+srv.URL("/f")+`","etag":`+strconvQuote(etagOf(srv, "/f"))+`}`), 0o644)
		_, err := fetch(t, f, root, srv.URL("/f"), "f")
		wantError(t, err, ClassRange, true)
		resp, err := fetch(t, f, root, srv.URL("/f"), "f")
		if err != nil || resp.Resumed || !bytes.Equal(readFile(t, dir, "f"), srv.Body("/f")) {
			t.Fatalf("%+v %v", resp, err)
		}
	})
}

func etagOf(srv *testserver.Server, p string) string { return `"` + sha(srv.Body(p))[:16] + `"` }

func strconvQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// mountTmpfs mounts a tmpfs with opts on dir, skipping the test where that is not possible,
// and unmounts it at cleanup.
func mountTmpfs(t *testing.T, dir, opts string) {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// TestReadOnlyMountIsFatal is TestReadOnlyOutputIsFatal for root, who ignores directory
// permissions: a read-only file system (EROFS) dooms every file, so it is Fatal.
func TestReadOnlyMountIsFatal(t *testing.T) {
	srv := testserver.New(t)
	f := newFetcher(t, srv)
	dir := t.TempDir()
	mountTmpfs(t, dir, "ro,size=1m")
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	_, err = fetch(t, f, root, srv.URL("/x"), "sub/x")
	if e := wantError(t, err, ClassLocal, false); !e.Fatal {
		t.Fatalf("%q not fatal", e)
	}
}

// TestDiskFullIsFatal: ENOSPC in the middle of a body is Fatal, publishes nothing and leaves at
// most a .part behind.
func TestDiskFullIsFatal(t *testing.T) {
	srv := testserver.New(t, testserver.Size(3<<20))
	f := newFetcher(t, srv)
	dir := t.TempDir()
	mountTmpfs(t, dir, "size=1m")
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	_, err = fetch(t, f, root, srv.URL("/big"), "big")
	if e := wantError(t, err, ClassLocal, false); !e.Fatal {
		t.Fatalf("%q not fatal", e)
	}
	if exists(dir, "big") {
		t.Fatal("a file was published from a body the disk could not hold")
	}
}

// endAfterCancel is a transport whose response body sends one byte and then ends cleanly, but
// only once the request has been cancelled: the clean end of a chunked body that a server (or a
// proxy) sends when it sees the client leave, arriving after trawl decided to stop.
type endAfterCancel struct{ started chan struct{} }

func (e endAfterCancel) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Etag": {`"e1"`}},
		ContentLength: -1,
		Body:          &endOnCancelBody{ctx: req.Context(), started: e.started},
		Request:       req,
	}, nil
}

type endOnCancelBody struct {
	ctx     context.Context
	started chan struct{}
	sent    bool
}

func (b *endOnCancelBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		p[0] = 'x'
		close(b.started)
		return 1, nil
	}
	<-b.ctx.Done()
	return 0, io.EOF
}

func (b *endOnCancelBody) Close() error { return nil }

// TestHostileEndAfterCancel: a transfer trawl cancelled — by the stall watchdog or by the caller
// — is never published, even when its body then ends cleanly.
func TestHostileEndAfterCancel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cancel bool // the caller cancels; otherwise the idle watchdog fires
		class  Class
	}{
		{"stall watchdog", false, ClassStall},
		{"caller cancel", true, ClassCanceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFetcher(t, nil, func(o *Options) { o.IdleTimeout = 50 * time.Millisecond })
			if tc.cancel {
				f.opts.IdleTimeout = time.Hour
			}
			started := make(chan struct{})
			f.client.Transport = endAfterCancel{started: started}
			root, dir := newRoot(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				go func() { <-started; cancel() }()
			}
			_, err := f.Fetch(ctx, root, Request{URL: "https://drip.test/f", Path: "f"})
			wantError(t, err, tc.class, tc.class != ClassCanceled)
			if exists(dir, "f") {
				t.Fatalf("a cancelled transfer was published: %q", readFile(t, dir, "f"))
			}
		})
	}
}

// TestHostileResumeOtherLength: a resume answered with a 206 that continues at the right offset
// and carries the same ETag, but of a body of another total length, is of another body: the
// .part is discarded and the file fetched whole, never spliced.
func TestHostileResumeOtherLength(t *testing.T) {
	const size, cut, newSize = 600_000, 300_000, 700_000
	srv := testserver.New(t, testserver.HTTP1Only(), testserver.Size(size), testserver.ETag(`"t1"`))
	f := newFetcher(t, srv)
	root, dir := newRoot(t)
	partial(t, srv, f, root, dir, "/f", "f", cut)
	srv.Handle("/f", testserver.Size(newSize), testserver.ETag(`"t1"`), testserver.Seed(7))
	_, err := fetch(t, f, root, srv.URL("/f"), "f")
	wantError(t, err, ClassRange, true)
	if exists(dir, "f") || exists(dir, "f.part") || exists(dir, "f.part.meta") {
		t.Fatal("files left after a 206 of another length")
	}
	resp, err := fetch(t, f, root, srv.URL("/f"), "f")
	if err != nil || resp.Resumed || !bytes.Equal(readFile(t, dir, "f"), srv.Body("/f")) {
		t.Fatalf("retry: %+v %v", resp, err)
	}
}

// TestHostilePartTakenByAnother: another process writing the same path of the output directory
// publishes the .part this transfer was writing. The rename then finds no .part: a retryable
// failure (the work is another process's, not a fault of the URL), and nothing is published.
func TestHostilePartTakenByAnother(t *testing.T) {
	body := bytes.Repeat([]byte("a"), 4096)
	half, release := make(chan struct{}), make(chan struct{})
	srv := testserver.New(t, testserver.HTTP1Only(), testserver.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", itoa(int64(len(body))))
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		close(half)
		<-release
		w.Write(body[len(body)/2:])
	}))
	f := newFetcher(t, srv)
	root, dir := newRoot(t)
	go func() {
		<-half
		// The other process renames "its" .part into place while this transfer still writes it.
		for deadline := time.Now().Add(5 * time.Second); !exists(dir, "f.part") && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		if err := os.Rename(filepath.Join(dir, "f.part"), filepath.Join(dir, "f")); err != nil {
			t.Error(err)
		}
		close(release)
	}()
	_, err := fetch(t, f, root, srv.URL("/f"), "f")
	e := wantError(t, err, ClassLocal, true)
	if e.Fatal || !strings.Contains(e.Error(), "another process") {
		t.Fatalf("error %v: fatal %v", e, e.Fatal)
	}
}

// TestHostileUnaskedPartial: a 206 to a request that asked for the whole body (no .part to
// resume) is refused as a range failure worth a retry, with nothing left on disk, whether the
// file's directory exists or is still to be made: the refusal must not look for a .part in a
// directory that is not there.
func TestHostileUnaskedPartial(t *testing.T) {
	srv := testserver.New(t, testserver.HTTP1Only(), testserver.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			t.Errorf("%s asked with Range %q", r.URL.Path, r.Header.Get("Range"))
		}
		w.Header().Set("Content-Range", "bytes 0-3/4")
		w.Header().Set("Content-Length", "4")
		w.WriteHeader(http.StatusPartialContent)
		w.Write([]byte("abcd"))
	}))
	f := newFetcher(t, srv)
	for _, name := range []string{"f", "new/dir/f"} {
		t.Run(name, func(t *testing.T) {
			root, dir := newRoot(t)
			_, err := fetch(t, f, root, srv.URL("/"+name), name)
			wantError(t, err, ClassRange, true)
			if exists(dir, name) || exists(dir, name+".part") || exists(dir, name+".part.meta") {
				t.Fatal("files left after an unasked 206")
			}
		})
	}
}
