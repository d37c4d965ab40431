package fetcher

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

func TestFetchHappyPath(t *testing.T) {
	for _, proto := range []struct {
		name  string
		opts  []testserver.Option
		http2 bool // ProtocolAuto (HTTP/2 offered), else HTTP/1.1
		want  string
	}{
		{"h2", nil, true, "HTTP/2.0"},
		{"h1", []testserver.Option{testserver.HTTP1Only()}, false, "HTTP/1.1"},
		{"h2 offered, h1 server", []testserver.Option{testserver.HTTP1Only()}, true, "HTTP/1.1"},
		{"h1 by default, h2 server", nil, false, "HTTP/1.1"},
	} {
		t.Run(proto.name, func(t *testing.T) {
			srv := testserver.New(t, proto.opts...)
			f := newFetcher(t, srv, func(o *Options) { o.Protocol = protoOf(proto.http2) })
			root, dir := newRoot(t)
			for _, size := range []int64{0, 1, 16 << 10, 1<<20 + 3} {
				p := "/files/f" + strings.Repeat("x", int(size%7))
				path := "a/b/" + strings.TrimPrefix(p, "/files/") + "-" + string(rune('0'+size%10))
				srv.Handle(p, testserver.Size(size))
				var progress int
				resp, err := f.Fetch(context.Background(), root, Request{URL: srv.URL(p), Path: path, OnBytes: func(n int) { progress += n }})
				if err != nil {
					t.Fatalf("size %d: %v", size, err)
				}
				got := readFile(t, dir, path)
				if !bytes.Equal(got, srv.Body(p)) || resp.SHA256 != sha(got) || resp.SHA256 != srv.SHA256(p) {
					t.Fatalf("size %d: content or sha256 mismatch", size)
				}
				if resp.Status != 200 || resp.Bytes != size || int64(progress) != size || resp.Path != path || resp.Resumed || resp.ETag == "" || resp.LastModified == "" {
					t.Fatalf("size %d: response %+v, progress %d", size, resp, progress)
				}
				if exists(dir, path+".part") || exists(dir, path+".part.meta") {
					t.Fatalf("size %d: .part or .part.meta left behind", size)
				}
				fi, _ := os.Stat(filepath.Join(dir, path))
				if lm, _ := http.ParseTime(resp.LastModified); !fi.ModTime().Equal(lm) {
					t.Fatalf("mtime %v, want Last-Modified %v", fi.ModTime(), lm)
				}
			}
			for _, r := range srv.Requests() {
				if r.Proto != proto.want {
					t.Fatalf("server saw %s, want %s", r.Proto, proto.want)
				}
				if r.Header.Get("Accept-Encoding") != "identity" || r.Header.Get("User-Agent") != "trawl/"+Version {
					t.Fatalf("request headers %v", r.Header)
				}
			}
		})
	}
}

func TestFetchGzipSavedAsSent(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(bytes.Repeat([]byte("hello trawl "), 1000))
	zw.Close()
	srv := testserver.New(t, testserver.Body(gz.Bytes()), testserver.Header("Content-Encoding", "gzip"))
	f := newFetcher(t, srv)
	root, dir := newRoot(t)
	if _, err := fetch(t, f, root, srv.URL("/a.tar.gz"), "a.tar.gz"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, dir, "a.tar.gz"), gz.Bytes()) {
		t.Fatal("gzip body was not saved byte for byte")
	}
	if ae := srv.Requests()[0].Header.Get("Accept-Encoding"); ae != "identity" {
		t.Fatalf("Accept-Encoding %q", ae)
	}
}

func TestFetchChunked(t *testing.T) {
	srv := testserver.New(t, testserver.HTTP1Only(), testserver.Chunked(), testserver.Size(100_000))
	f := newFetcher(t, srv)
	root, dir := newRoot(t)
	resp, err := fetch(t, f, root, srv.URL("/c"), "c")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Bytes != 100_000 || !bytes.Equal(readFile(t, dir, "c"), srv.Body("/c")) {
		t.Fatal("chunked body mismatch")
	}
	// A chunked body cut off mid-stream is an unexpected EOF: retryable.
	srv.Handle("/cut", testserver.TruncateAfter(5000))
	_, err = fetch(t, f, root, srv.URL("/cut"), "cut")
	wantError(t, err, ClassShortBody, true)
	if exists(dir, "cut") {
		t.Fatal("final file written for a truncated body")
	}
}

func TestFetchShortBodyThenResume(t *testing.T) {
	for _, proto := range []struct {
		name  string
		opts  []testserver.Option
		class Class // how the cut surfaces: EOF on HTTP/1, stream reset on HTTP/2
	}{
		{"h1", []testserver.Option{testserver.HTTP1Only()}, ClassShortBody},
		{"h2", nil, ClassNetwork},
	} {
		t.Run(proto.name, func(t *testing.T) {
			srv := testserver.New(t, append(proto.opts, testserver.Size(300_000))...)
			f := newFetcher(t, srv, func(o *Options) { o.Protocol = protoOf(proto.name == "h2") })
			root, dir := newRoot(t)
			srv.Handle("/f", testserver.TruncateAfter(100_000))
			_, err := fetch(t, f, root, srv.URL("/f"), "f")
			wantError(t, err, proto.class, true)
			if exists(dir, "f") {
				t.Fatal("final file exists after short body")
			}
			kept := fileSize(t, dir, "f.part")
			if kept == 0 || kept > 100_000 {
				t.Fatalf(".part has %d bytes", kept)
			}

			srv.Handle("/f", testserver.TruncateAfter(-1))
			resp, err := fetch(t, f, root, srv.URL("/f"), "f")
			if err != nil {
				t.Fatal(err)
			}
			if !resp.Resumed || resp.Offset != kept || resp.Status != 206 || resp.Bytes != 300_000 {
				t.Fatalf("response %+v, want resumed from %d", resp, kept)
			}
			if resp.SHA256 != srv.SHA256("/f") || !bytes.Equal(readFile(t, dir, "f"), srv.Body("/f")) {
				t.Fatal("resumed file differs from the server's")
			}
			reqs := srv.RequestsFor("/f")
			last := reqs[len(reqs)-1].Header
			if last.Get("Range") != "bytes="+itoa(kept)+"-" || last.Get("If-Range") != resp.ETag {
				t.Fatalf("resume request had Range %q If-Range %q", last.Get("Range"), last.Get("If-Range"))
			}
			if exists(dir, "f.part") || exists(dir, "f.part.meta") {
				t.Fatal(".part left after completion")
			}
		})
	}
}

// partial leaves a resumable .part of n bytes for path by failing a first fetch.
func partial(t *testing.T, srv *testserver.Server, f *Fetcher, root *os.Root, dir, p, path string, n int64) {
	t.Helper()
	srv.Handle(p, testserver.TruncateAfter(n))
	if _, err := fetch(t, f, root, srv.URL(p), path); err == nil {
		t.Fatal("truncated fetch succeeded")
	}
	if got := fileSize(t, dir, path+".part"); got != n {
		t.Fatalf(".part has %d bytes, want %d", got, n)
	}
	srv.Handle(p, testserver.TruncateAfter(-1))
}

func TestFetchResumeRefused(t *testing.T) {
	const size, cut = 50_000, 20_000
	t.Run("200 to Range restarts from zero", func(t *testing.T) {
		srv := testserver.New(t, testserver.HTTP1Only(), testserver.Size(size))
		f := newFetcher(t, srv)
		root, dir := newRoot(t)
		partial(t, srv, f, root, dir, "/f", "f", cut)
		srv.Handle("/f", testserver.IgnoreRange())
		resp, err := fetch(t, f, root, srv.URL("/f"), "f")
		if err != nil {
			t.Fatal(err)
		}
		if resp.Resumed || resp.Status != 200 || resp.SHA256 != srv.SHA256("/f") || fileSize(t, dir, "f") != size {
			t.Fatalf("response %+v", resp)
		}
	})
	t.Run("changed ETag fails If-Range and restarts", func(t *testing.T) {
		srv := testserver.New(t, testserver.HTTP1Only(), testserver.Size(size))
		f := newFetcher(t, srv)
		root, dir := newRoot(t)
		partial(t, srv, f, root, dir, "/f", "f", cut)
		srv.Handle("/f", testserver.ETag(`"v2"`), testserver.Seed(42))
		resp, err := fetch(t, f, root, srv.URL("/f"), "f")
		if err != nil {
			t.Fatal(err)
		}
		if resp.Resumed || resp.Status != 200 || !bytes.Equal(readFile(t, dir, "f"), srv.Body("/f")) {
			t.Fatalf("response %+v", resp)
		}
	})
	t.Run("206 at the wrong offset discards the part", func(t *testing.T) {
		srv := testserver.New(t, testserver.HTTP1Only(), testserver.Size(size))
		f := newFetcher(t, srv)
		root, dir := newRoot(t)
		partial(t, srv, f, root, dir, "/f", "f", cut)
		srv.Handle("/f", testserver.WrongRangeStart(-100))
		_, err := fetch(t, f, root, srv.URL("/f"), "f")
		wantError(t, err, ClassRange, true)
		if exists(dir, "f.part") || exists(dir, "f.part.meta") || exists(dir, "f") {
			t.Fatal("files left after a wrong 206")
		}
		srv.Handle("/f", testserver.WrongRangeStart(0))
		resp, err := fetch(t, f, root, srv.URL("/f"), "f")
		if err != nil || resp.Resumed || resp.SHA256 != srv.SHA256("/f") {
			t.Fatalf("retry: %+v %v", resp, err)
		}
		if rng := srv.RequestsFor("/f")[2].Header.Get("Range"); rng != "" {
			t.Fatalf("retry after a discarded part sent Range %q", rng)
		}
	})
	t.Run("416 discards the part", func(t *testing.T) {
		srv := testserver.New(t, testserver.HTTP1Only(), testserver.Size(size))
		f := newFetcher(t, srv)
		root, dir := newRoot(t)
		partial(t, srv, f, root, dir, "/f", "f", cut)
		// The file shrank below the .part's length; its validator matches the sidecar.
		srv.Handle("/f", testserver.Size(cut/2), testserver.ETag(`"same"`))
		// Rewrite the sidecar so If-Range matches and the server must answer 416.
		meta := partMeta{URL: srv.URL("/f"), ETag: `"same"`}
		if err := writeMeta(root, "f.part.meta", meta); err != nil {
			t.Fatal(err)
		}
		_, err := fetch(t, f, root, srv.URL("/f"), "f")
		wantError(t, err, ClassRange, true)
		if exists(dir, "f.part") || exists(dir, "f.part.meta") {
			t.Fatal(".part kept after 416")
		}
	})
	t.Run("no validator means no resume", func(t *testing.T) {
		srv := testserver.New(t, testserver.HTTP1Only(), testserver.Size(size), testserver.NoValidators())
		f := newFetcher(t, srv)
		root, dir := newRoot(t)
		srv.Handle("/f", testserver.TruncateAfter(cut))
		if _, err := fetch(t, f, root, srv.URL("/f"), "f"); err == nil {
			t.Fatal("truncated fetch succeeded")
		}
		if exists(dir, "f.part") {
			t.Fatal("unresumable .part kept")
		}
		srv.Handle("/f", testserver.TruncateAfter(-1))
		resp, err := fetch(t, f, root, srv.URL("/f"), "f")
		if err != nil || resp.Resumed || srv.RequestsFor("/f")[1].Header.Get("Range") != "" {
			t.Fatalf("%+v %v", resp, err)
		}
	})
	t.Run("weak ETag is not a validator", func(t *testing.T) {
		srv := testserver.New(t, testserver.HTTP1Only(), testserver.Size(size), testserver.ETag(`W/"weak"`), testserver.LastModified(time.Time{}))
		f := newFetcher(t, srv)
		root, dir := newRoot(t)
		srv.Handle("/f", testserver.TruncateAfter(cut))
		fetch(t, f, root, srv.URL("/f"), "f")
		if exists(dir, "f.part") {
			t.Fatal(".part with only a weak ETag kept")
		}
	})
	t.Run("Last-Modified validator", func(t *testing.T) {
		srv := testserver.New(t, testserver.HTTP1Only(), testserver.Size(size), testserver.ETag(""))
		f := newFetcher(t, srv)
		root, dir := newRoot(t)
		partial(t, srv, f, root, dir, "/f", "f", cut)
		resp, err := fetch(t, f, root, srv.URL("/f"), "f")
		if err != nil || !resp.Resumed || resp.SHA256 != srv.SHA256("/f") {
			t.Fatalf("%+v %v", resp, err)
		}
		if ir := srv.RequestsFor("/f")[1].Header.Get("If-Range"); ir != resp.LastModified {
			t.Fatalf("If-Range %q", ir)
		}
	})
}

func TestFetchResetMidBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []testserver.Option
	}{{"h1", []testserver.Option{testserver.HTTP1Only()}}, {"h2", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.New(t, append(tc.opts, testserver.Size(200_000), testserver.ResetAfter(50_000))...)
			f := newFetcher(t, srv, func(o *Options) { o.Protocol = protoOf(tc.name == "h2") })
			root, dir := newRoot(t)
			_, err := fetch(t, f, root, srv.URL("/f"), "f")
			e := Classify(err)
			if !e.Retryable || (e.Class != ClassNetwork && e.Class != ClassShortBody) {
				t.Fatalf("reset: %q class %s retryable %v", e, e.Class, e.Retryable)
			}
			if exists(dir, "f") {
				t.Fatal("final file written")
			}
		})
	}
}

func TestFetchStall(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, proto func(*Options)) {
		for _, tc := range []struct {
			name  string
			opts  []testserver.Option
			class Class
		}{
			{"after some body", []testserver.Option{testserver.StallAfter(10_000)}, ClassStall},
			{"after headers", []testserver.Option{testserver.StallAfter(0)}, ClassStall},
			{"before headers", []testserver.Option{testserver.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })}, ClassTimeout},
		} {
			t.Run(tc.name, func(t *testing.T) {
				srv := testserver.New(t, append(tc.opts, testserver.Size(100_000))...)
				f := newFetcher(t, srv, proto, func(o *Options) { o.IdleTimeout = stallTimeout })
				root, _ := newRoot(t)
				start := time.Now()
				_, err := fetch(t, f, root, srv.URL("/f"), "f")
				wantError(t, err, tc.class, true)
				if d := time.Since(start); d > 5*time.Second {
					t.Fatalf("stall detected after %v", d)
				}
			})
		}
		t.Run("slow drip under the idle timeout is fine", func(t *testing.T) {
			srv := testserver.New(t, testserver.Size(8<<10), testserver.Drip(1<<10, 20*time.Millisecond))
			f := newFetcher(t, srv, func(o *Options) { o.IdleTimeout = 500 * time.Millisecond })
			root, _ := newRoot(t)
			if _, err := fetch(t, f, root, srv.URL("/f"), "f"); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("caller cancel is not a stall", func(t *testing.T) {
			srv := testserver.New(t, testserver.StallAfter(0))
			f := newFetcher(t, srv)
			root, _ := newRoot(t)
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				srv.WaitRequests(1, 5*time.Second)
				cancel()
			}()
			_, err := f.Fetch(ctx, root, Request{URL: srv.URL("/f"), Path: "f"})
			wantError(t, err, ClassCanceled, false)
		})
	})
}

func TestFetchHTTPStatus(t *testing.T) {
	future := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		status     int
		retryAfter string
		retryable  bool
		wantAfter  time.Duration // exact, or lower bound when approx
		approx     bool
	}{
		{404, "", false, 0, false},
		{403, "", false, 0, false},
		{410, "", false, 0, false},
		{500, "", true, 0, false},
		{503, "", true, 0, false},
		{503, "120", true, 120 * time.Second, false},
		{429, "7", true, 7 * time.Second, false},
		{429, future, true, 85 * time.Second, true},
		{429, "soon", true, 0, false},
		{429, "99999999999999999999999", true, time.Hour, false},
		{429, "-3", true, 0, false},
	} {
		t.Run(itoa(int64(tc.status))+" "+tc.retryAfter, func(t *testing.T) {
			srv := testserver.New(t, testserver.Statuses(tc.status), testserver.RetryAfter(tc.retryAfter))
			f := newFetcher(t, srv)
			root, dir := newRoot(t)
			_, err := fetch(t, f, root, srv.URL("/f"), "f")
			e := wantError(t, err, ClassHTTP, tc.retryable)
			if e.Status != tc.status || !strings.Contains(e.Error(), "HTTP "+itoa(int64(tc.status))) {
				t.Fatalf("error %q status %d", e, e.Status)
			}
			if tc.approx {
				if e.RetryAfter < tc.wantAfter || e.RetryAfter > 91*time.Second {
					t.Fatalf("RetryAfter %v", e.RetryAfter)
				}
			} else if e.RetryAfter != tc.wantAfter {
				t.Fatalf("RetryAfter %v, want %v", e.RetryAfter, tc.wantAfter)
			}
			if exists(dir, "f") || exists(dir, "f.part") {
				t.Fatal("error body was written")
			}
			// The status sequence is used up: the next attempt succeeds.
			if _, err := fetch(t, f, root, srv.URL("/f"), "f"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFetchBadContentLength(t *testing.T) {
	for _, tc := range []struct {
		cl    string
		class Class
	}{
		{"-5", ClassNetwork},
		{"abc", ClassNetwork},
		{"99999999999999999999999", ClassNetwork},
		{"1, 2", ClassNetwork},
		{"1000000", ClassShortBody}, // declared far more than sent
	} {
		t.Run(tc.cl, func(t *testing.T) {
			raw := "HTTP/1.1 200 OK\r\nContent-Length: " + tc.cl + "\r\nETag: \"x\"\r\n\r\n" + strings.Repeat("z", 1000)
			srv := testserver.New(t, testserver.HTTP1Only(), testserver.RawResponse(raw))
			f := newFetcher(t, srv)
			root, dir := newRoot(t)
			_, err := fetch(t, f, root, srv.URL("/f"), "f")
			wantError(t, err, tc.class, true)
			if exists(dir, "f") {
				t.Fatal("file written despite a bad Content-Length")
			}
		})
	}
	t.Run("server lies low but net/http stops at the declared length", func(t *testing.T) {
		raw := "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n" + strings.Repeat("z", 1000)
		srv := testserver.New(t, testserver.HTTP1Only(), testserver.RawResponse(raw))
		f := newFetcher(t, srv)
		root, dir := newRoot(t)
		if resp, err := fetch(t, f, root, srv.URL("/f"), "f"); err != nil || resp.Bytes != 10 || fileSize(t, dir, "f") != 10 {
			t.Fatalf("%+v %v", resp, err)
		}
	})
}

func TestFetchConditional(t *testing.T) {
	srv := testserver.New(t)
	f := newFetcher(t, srv)
	root, dir := newRoot(t)
	first, err := fetch(t, f, root, srv.URL("/f"), "f")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("local copy"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		req      Request
		notMod   bool
		wantBody []byte
	}{
		{"etag matches", Request{ETag: first.ETag}, true, []byte("local copy")},
		{"not modified since", Request{LastModified: first.LastModified}, true, []byte("local copy")},
		{"etag differs", Request{ETag: `"old"`}, false, srv.Body("/f")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.URL, tc.req.Path = srv.URL("/f"), "f"
			resp, err := f.Fetch(context.Background(), root, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.NotModified != tc.notMod || (tc.notMod && resp.Status != 304) {
				t.Fatalf("response %+v", resp)
			}
			if !bytes.Equal(readFile(t, dir, "f"), tc.wantBody) || exists(dir, "f.part") {
				t.Fatal("file on disk is wrong")
			}
			h := srv.Requests()[len(srv.Requests())-1].Header
			if tc.req.ETag != "" && h.Get("If-None-Match") != tc.req.ETag || tc.req.LastModified != "" && h.Get("If-Modified-Since") != tc.req.LastModified {
				t.Fatalf("conditional headers %v", h)
			}
		})
	}
}

// fakeLimiter records WaitN calls and refuses more than its burst, like rate.Limiter.
type fakeLimiter struct {
	mu    sync.Mutex
	burst int
	total int
	calls int
}

func (l *fakeLimiter) Burst() int { return l.burst }
func (l *fakeLimiter) WaitN(ctx context.Context, n int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n > l.burst {
		panic("WaitN above burst")
	}
	l.total += n
	l.calls++
	return ctx.Err()
}

func TestFetchBandwidthLimiter(t *testing.T) {
	srv := testserver.New(t, testserver.Size(500_000))
	lim := &fakeLimiter{burst: 1000}
	f := newFetcher(t, srv, func(o *Options) { o.Bandwidth = lim })
	root, _ := newRoot(t)
	if _, err := fetch(t, f, root, srv.URL("/f"), "f"); err != nil {
		t.Fatal(err)
	}
	if lim.total != 500_000 || lim.calls < 500 {
		t.Fatalf("limiter saw %d bytes in %d calls", lim.total, lim.calls)
	}
}

func TestFetchRefusesBadInput(t *testing.T) {
	f := newFetcher(t, nil)
	root, _ := newRoot(t)
	for _, tc := range []struct{ url, path string }{
		{"ftp://example.com/x", "x"},
		{"https:///nohost", "x"},
		{"https://example.com/x", "../x"},
		{"https://example.com/x", "/abs"},
		{"https://example.com/x", "x.part"},
	} {
		_, err := fetch(t, f, root, tc.url, tc.path)
		wantError(t, err, ClassURL, false)
	}
}

// The sidecar exists during a large transfer (so even kill -9 can resume) but is only
// written on failure for small ones (one file per download keeps small files cheap).
func TestFetchSidecarTiming(t *testing.T) {
	for _, tc := range []struct {
		size      int64
		wantEager bool
	}{{eagerMetaSize + 1, true}, {64 << 10, false}} {
		t.Run(itoa(tc.size), func(t *testing.T) {
			srv := testserver.New(t, testserver.Size(tc.size))
			f := newFetcher(t, srv)
			root, dir := newRoot(t)
			var sawMeta, checked bool
			_, err := f.Fetch(context.Background(), root, Request{URL: srv.URL("/f"), Path: "f", OnBytes: func(int) {
				if !checked {
					checked, sawMeta = true, exists(dir, "f.part.meta")
				}
			}})
			if err != nil || sawMeta != tc.wantEager || exists(dir, "f.part.meta") {
				t.Fatalf("err %v, sidecar during transfer %v (want %v)", err, sawMeta, tc.wantEager)
			}
		})
	}
}

func TestFetchErrorBodyStall(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, proto func(*Options)) {
		srv := testserver.New(t, testserver.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(503)
			w.Write([]byte("partial error page"))
			http.NewResponseController(w).Flush()
			<-r.Context().Done()
		}))
		f := newFetcher(t, srv, proto, func(o *Options) { o.IdleTimeout = stallTimeout })
		root, _ := newRoot(t)
		_, err := fetch(t, f, root, srv.URL("/f"), "f")
		if e := wantError(t, err, ClassHTTP, true); e.Status != 503 {
			t.Fatalf("%+v", e)
		}
	})
}

// TestFetchOnLength: the caller hears the whole file's length once the answer declares it, and
// how much of it a resume keeps.
func TestFetchOnLength(t *testing.T) {
	const size, cut = 50_000, 20_000
	srv := testserver.New(t, testserver.HTTP1Only(), testserver.Size(size))
	f := newFetcher(t, srv)
	root, dir := newRoot(t)
	partial(t, srv, f, root, dir, "/f", "f", cut)
	var got [][2]int64
	req := Request{URL: srv.URL("/f"), Path: "f", OnLength: func(total, have int64) { got = append(got, [2]int64{total, have}) }}
	if _, err := f.Fetch(context.Background(), root, req); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != [2]int64{size, cut} {
		t.Fatalf("OnLength calls %v, want one with %d of which %d on disk", got, size, cut)
	}
	got = nil
	req.Path = "g"
	if _, err := f.Fetch(context.Background(), root, req); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != [2]int64{size, 0} {
		t.Fatalf("OnLength calls %v, want one with %d of which none on disk", got, size)
	}
}
