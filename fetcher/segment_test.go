package fetcher

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// conns is a fake of the scheduler's per-host connection grants (Request.MoreConns/ConnDone):
// at most limit granted connections out at once; it fails the test if more are given back than
// were granted.
type conns struct {
	t     testing.TB
	mu    sync.Mutex
	limit int
	out   int // granted and not given back
	peak  int
	asks  int // calls of more
	total int // connections granted in all
}

func (c *conns) more(n int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asks++
	if n <= 0 {
		c.t.Errorf("MoreConns(%d)", n)
	}
	k := max(0, min(n, c.limit-c.out))
	c.out += k
	c.total += k
	c.peak = max(c.peak, c.out)
	return k
}

func (c *conns) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out--
	if c.out < 0 {
		c.t.Error("ConnDone called more often than connections were granted")
	}
}

// balanced fails the test unless every granted connection was given back.
func (c *conns) balanced() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.out != 0 {
		c.t.Errorf("%d granted connections never given back (ConnDone)", c.out)
	}
	if c.peak > c.limit {
		c.t.Errorf("%d connections out at once, %d granted", c.peak, c.limit)
	}
}

func (c *conns) request(url, path string) Request {
	return Request{URL: url, Path: path, MoreConns: c.more, ConnDone: c.done}
}

// newSegFetcher is newFetcher with room for a loaded -race run: several connections of one file
// may each wait for their answer's headers.
func newSegFetcher(t testing.TB, srv *testserver.Server, mod ...func(*Options)) *Fetcher {
	t.Helper()
	return newFetcher(t, srv, append([]func(*Options){func(o *Options) { o.IdleTimeout = 30 * time.Second }}, mod...)...)
}

// forceSplit makes a Fetcher split whenever a file is big enough, over at most max connections.
func forceSplit(max int) func(*Options) {
	return func(o *Options) { o.SegmentMin, o.MaxSegments, o.SplitAfter = 4<<20, max, -1 }
}

const segSize = 8 << 20

// rangeOf is a request's Range as [first, last], or ok false.
func rangeOf(r testserver.Request) (first, last int64, ok bool) {
	spec, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes=")
	if !ok {
		return 0, 0, false
	}
	a, b, _ := strings.Cut(spec, "-")
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return first, last, true
}

func fetchReq(t testing.TB, f *Fetcher, root *os.Root, req Request) (Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return f.Fetch(ctx, root, req)
}

// TestSegmentedFetch: a big file fetched in segments (splitting forced) is published byte for
// byte with the whole file's sha256; the first request streams from byte 0, every other is a
// Range request over an HTTP/1.1 connection of its own carrying the first's headers and If-Range;
// connections stay within MaxSegments and what MoreConns grants, each given back. A server without
// Accept-Ranges or a strong validator gets one stream.
func TestSegmentedFetch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		server  []testserver.Option
		limit   int // connections MoreConns grants at once
		max     int // Options.MaxSegments
		ranges  int // range requests expected: at least this many (a range may be split again)
		etag    bool
		lastMod bool
	}{
		{"4 connections", nil, 16, 4, 3, true, true},
		{"HTTP/1.1 server", []testserver.Option{testserver.HTTP1Only()}, 16, 4, 3, true, true},
		{"MaxSegments bounds the connections", nil, 16, 2, 1, true, true},
		{"grants bound the connections", nil, 1, 16, 1, true, true},
		{"no grant: one stream", nil, 0, 16, 0, true, true},
		{"Last-Modified alone as validator", []testserver.Option{testserver.ETag("")}, 16, 4, 3, false, true},
		{"no Accept-Ranges: one stream", []testserver.Option{testserver.Header("Accept-Ranges", "none")}, 16, 4, 0, true, true},
		{"no strong validator: one stream", []testserver.Option{testserver.ETag(`W/"weak"`), testserver.LastModified(time.Time{})}, 16, 4, 0, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.New(t, append([]testserver.Option{testserver.AcceptRanges(), testserver.Size(segSize)}, tc.server...)...)
			f := newSegFetcher(t, srv, forceSplit(tc.max), func(o *Options) {
				o.Header = http.Header{"X-Token": {"secret"}}
			})
			root, dir := newRoot(t)
			c := &conns{t: t, limit: tc.limit}
			var progress int64
			var pmu sync.Mutex
			req := c.request(srv.URL("/big.iso"), "big.iso")
			req.OnBytes = func(n int) { pmu.Lock(); progress += int64(n); pmu.Unlock() }
			var sent atomic.Int32
			req.OnSent = func() { sent.Add(1) }
			resp, err := fetchReq(t, f, root, req)
			if err != nil {
				t.Fatal(err)
			}
			c.balanced()
			if !bytes.Equal(readFile(t, dir, "big.iso"), srv.Body("/big.iso")) || resp.SHA256 != srv.SHA256("/big.iso") {
				t.Fatal("file or sha256 differs from the server's")
			}
			if resp.Status != 200 || resp.Bytes != segSize || resp.Resumed || progress != segSize ||
				(resp.ETag != "") != tc.etag || (resp.LastModified != "") != tc.lastMod {
				t.Fatalf("response %+v, progress %d", resp, progress)
			}
			if exists(dir, "big.iso.part") || exists(dir, "big.iso.part.meta") {
				t.Fatal(".part or sidecar left behind")
			}
			fi, _ := os.Stat(filepath.Join(dir, "big.iso"))
			if lm, err := http.ParseTime(resp.LastModified); err == nil && !fi.ModTime().Equal(lm) {
				t.Fatalf("mtime %v, want Last-Modified %v", fi.ModTime(), lm)
			}

			reqs := srv.RequestsFor("/big.iso")
			if int(sent.Load()) != len(reqs) {
				t.Errorf("OnSent told of %d requests sent, the server saw %d", sent.Load(), len(reqs))
			}
			if reqs[0].Header.Get("Range") != "" {
				t.Fatalf("first request has Range %q", reqs[0].Header.Get("Range"))
			}
			remotes := map[string]bool{reqs[0].Remote: true}
			for _, r := range reqs[1:] {
				if _, _, ok := rangeOf(r); !ok {
					t.Fatalf("request without a closed Range: %q", r.Header.Get("Range"))
				}
				remotes[r.Remote] = true
				if r.Proto != "HTTP/1.1" {
					t.Errorf("range request over %s, want its own HTTP/1.1 connection", r.Proto)
				}
				if ir := r.Header.Get("If-Range"); ir == "" || ir != resp.ETag && ir != resp.LastModified {
					t.Errorf("range request If-Range %q", ir)
				}
				for k, want := range map[string]string{"User-Agent": "trawl/" + Version, "Accept-Encoding": "identity", "X-Token": "secret"} {
					if got := r.Header.Get(k); got != want {
						t.Errorf("range request %s %q, want %q", k, got, want)
					}
				}
			}
			switch n := len(reqs) - 1; {
			case n < tc.ranges, tc.ranges == 0 && n > 0:
				t.Fatalf("%d range requests, want %d", n, tc.ranges)
			case n > 0 && len(remotes) < 2:
				// At least two connections; not one per range: a connection that finished its
				// range may carry the next range request, the sooner the busier the machine.
				t.Errorf("%d requests over %d connection", n+1, len(remotes))
			case c.peak > tc.max:
				t.Errorf("%d granted connections at once, MaxSegments %d", c.peak, tc.max)
			}
		})
	}
}

// TestSegmentedFastNotSplit: with the default policy, a file that arrives fast (loopback) stays
// one stream: no connection is asked for, no range requested.
func TestSegmentedFastNotSplit(t *testing.T) {
	const size = 32 << 20
	srv := testserver.New(t, testserver.AcceptRanges(), testserver.Size(size))
	f := newSegFetcher(t, srv)
	root, dir := newRoot(t)
	c := &conns{t: t, limit: 16}
	resp, err := fetchReq(t, f, root, c.request(srv.URL("/f"), "f"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.SHA256 != srv.SHA256("/f") || fileSize(t, dir, "f") != size {
		t.Fatalf("response %+v", resp)
	}
	if n := len(srv.RequestsFor("/f")); n != 1 || c.asks != 0 {
		t.Fatalf("%d requests, %d asks for more connections: a fast file was split", n, c.asks)
	}
}

// TestSegmentedSlowConnectionSplits: with the default policy, a file whose connection is slow
// (the server sends each connection about 6 MB/s) gets more connections after the warm-up.
func TestSegmentedSlowConnectionSplits(t *testing.T) {
	const size = 32 << 20
	srv := testserver.New(t, testserver.AcceptRanges(), testserver.Size(size), testserver.Drip(64<<10, 10*time.Millisecond))
	f := newSegFetcher(t, srv)
	root, dir := newRoot(t)
	c := &conns{t: t, limit: 16}
	resp, err := fetchReq(t, f, root, c.request(srv.URL("/f"), "f"))
	if err != nil {
		t.Fatal(err)
	}
	c.balanced()
	if resp.SHA256 != srv.SHA256("/f") || !bytes.Equal(readFile(t, dir, "f"), srv.Body("/f")) {
		t.Fatal("file differs from the server's")
	}
	if n := len(srv.RequestsFor("/f")); n < 3 || c.total < 2 {
		t.Fatalf("%d requests, %d connections granted: a slow file was not split", n, c.total)
	}
}

// sharedRate serves body (strong ETag, ranges as http.ServeContent does them) at rate bytes per
// second for all connections together: a server or a link that is the limit whatever the number
// of connections.
func sharedRate(body []byte, rate float64) http.HandlerFunc {
	lim := newRate(rate)
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"shared"`)
		http.ServeContent(&paced{w, lim, r}, r, "f", time.Time{}, bytes.NewReader(body))
	}
}

func newRate(bps float64) *rate.Limiter { return rate.NewLimiter(rate.Limit(bps), 32<<10) }

type paced struct {
	http.ResponseWriter
	lim *rate.Limiter
	r   *http.Request
}

func (p *paced) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		c := min(len(b)-n, 32<<10)
		if err := p.lim.WaitN(p.r.Context(), c); err != nil {
			return n, err
		}
		m, err := p.ResponseWriter.Write(b[n : n+c])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestSegmentedNoGainNoGrowth: a file whose server gives all connections together what it gave one
// (the gate's case: see TestSegmentGate for the rule) still arrives whole, each connection granted
// given back.
func TestSegmentedNoGainNoGrowth(t *testing.T) {
	const size = 16 << 20
	body := testserver.Content(5, size)
	srv := testserver.New(t, testserver.HandlerFunc(sharedRate(body, 8<<20)))
	f := newSegFetcher(t, srv, func(o *Options) {
		// At 8 MiB/s a connection is worth 4 MiB: three at the first look (after 200 ms), and
		// as many as 14 once they share the 8 MiB/s, were it not for the gate.
		o.SegmentMin, o.SplitAfter = 4<<20, 500*time.Millisecond
	})
	f.seg.warmup = 200 * time.Millisecond
	root, dir := newRoot(t)
	c := &conns{t: t, limit: 16}
	if _, err := fetchReq(t, f, root, c.request(srv.URL("/f"), "f")); err != nil {
		t.Fatal(err)
	}
	c.balanced()
	if !bytes.Equal(readFile(t, dir, "f"), body) {
		t.Fatal("file differs")
	}
	// How many connections a real server gets depends on the rates this machine measures; the
	// rule itself is TestSegmentGate's. Here: a round was tried and the grants balance.
	if c.total == 0 {
		t.Fatal("no connection added")
	}
}

// TestSegmentGate: connections added in a round are judged two warm-ups later by the rate they
// brought; a round that brought less than minGain times the rate before stops all growth beyond
// the most connections there have been.
func TestSegmentGate(t *testing.T) {
	const w = time.Second
	t0 := time.Now()
	for _, tc := range []struct {
		name   string
		round  growRound
		total  int64 // bytes written by the time of the call
		after  time.Duration
		noGrow bool // already judged
		worth  int
		want   int
		stuck  bool // noGrow after the call
	}{
		{"no round: what the file is worth", growRound{}, 0, 0, false, 8, 8, false},
		{"a round too young to judge holds at peak", growRound{t0, 0, 4 << 20}, 6 << 20, w, false, 8, 3, false},
		{"a round that paid lets it grow", growRound{t0, 0, 4 << 20}, 12 << 20, 2 * w, false, 8, 8, false},
		{"a round that did not pay stops growth", growRound{t0, 0, 4 << 20}, 9 << 20, 2 * w, false, 8, 3, true},
		{"stopped growth stays stopped", growRound{}, 0, 0, true, 8, 3, true},
		{"fewer than peak are allowed", growRound{}, 0, 0, true, 2, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &segTransfer{splitAfter: w, warmup: w, round: tc.round, peak: 3, noGrow: tc.noGrow, total: tc.total}
			if got := s.gate(t0.Add(tc.after), tc.worth); got != tc.want || s.noGrow != tc.stuck {
				t.Errorf("gate = %d, noGrow %v; want %d, %v", got, s.noGrow, tc.want, tc.stuck)
			}
		})
	}
}

// TestSegmentedReaderBoundNotSplit: a file that arrives slowly because this side reads it slowly
// (here the bandwidth cap; on loopback, a CPU shared by many transfers) is not split, though its
// rate alone would say so: the bytes wait in the socket, and more connections would not bring
// them sooner.
func TestSegmentedReaderBoundNotSplit(t *testing.T) {
	const size = 8 << 20
	srv := testserver.New(t, testserver.AcceptRanges(), testserver.Size(size))
	f := newSegFetcher(t, srv, func(o *Options) {
		o.SegmentMin, o.SplitAfter = 4<<20, 250*time.Millisecond
		o.Bandwidth = rate.NewLimiter(4<<20, 256<<10)
	})
	root, _ := newRoot(t)
	c := &conns{t: t, limit: 16}
	resp, err := fetchReq(t, f, root, c.request(srv.URL("/f"), "f"))
	if err != nil || resp.SHA256 != srv.SHA256("/f") {
		t.Fatalf("%+v %v", resp, err)
	}
	if n := len(srv.RequestsFor("/f")); n != 1 || c.asks != 0 {
		t.Fatalf("%d requests, %d asks for connections: a file this side was slow to read was split", n, c.asks)
	}
}

// TestSegmentedLyingServer: a server whose answers to ranges are not of the body the first
// response began never gets a spliced file published. The download fails with a retryable
// ClassRange error and leaves nothing; the retry fetches the file whole over one stream.
func TestSegmentedLyingServer(t *testing.T) {
	other := testserver.Content(99, segSize+4096) // what a changed file has
	for _, tc := range []struct {
		name  string
		base  []testserver.Option
		later []testserver.Option // for every request after the first
		want  []byte              // the file the retry must get; nil: the server's Body
	}{
		{"200 to a range", nil, []testserver.Option{testserver.IgnoreRange()}, nil},
		{"ETag changes", []testserver.Option{testserver.ETag(`"v1"`)},
			[]testserver.Option{testserver.ETag(`"v2"`), testserver.Body(other[:segSize]), testserver.IgnoreIfRange()}, other[:segSize]},
		{"Last-Modified changes", []testserver.Option{testserver.ETag("")},
			[]testserver.Option{testserver.LastModified(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)), testserver.Body(other[:segSize]), testserver.IgnoreIfRange()}, other[:segSize]},
		{"total changes, same ETag", []testserver.Option{testserver.ETag(`"same"`)},
			[]testserver.Option{testserver.Body(other)}, other},
		{"range starts elsewhere", nil, []testserver.Option{testserver.WrongRangeStart(-4096)}, nil},
		{"file shrank (416)", []testserver.Option{testserver.ETag(`"same"`)},
			[]testserver.Option{testserver.Body(other[:1<<20])}, other[:1<<20]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.New(t, testserver.AcceptRanges(), testserver.Size(segSize))
			srv.Handle("/f", append(tc.base, testserver.PerRequest(func(n int, _ *http.Request) []testserver.Option {
				if n == 0 {
					return nil
				}
				return tc.later
			}))...)
			want := tc.want
			if want == nil {
				want = srv.Body("/f")
			}
			f := newSegFetcher(t, srv, forceSplit(4))
			root, dir := newRoot(t)
			c := &conns{t: t, limit: 16}
			_, err := fetchReq(t, f, root, c.request(srv.URL("/f"), "f"))
			wantError(t, err, ClassRange, true)
			c.balanced()
			if exists(dir, "f") || exists(dir, "f.part") || exists(dir, "f.part.meta") {
				t.Fatal("a file, .part or sidecar left after answers that failed their check")
			}

			// The retry's URL has a query, to tell its requests from the first attempt's: one of
			// those cancelled in flight may reach the server's log only now.
			resp, err := fetchReq(t, f, root, c.request(srv.URL("/f?retry"), "f"))
			if err != nil {
				t.Fatal(err)
			}
			c.balanced()
			if !bytes.Equal(readFile(t, dir, "f"), want) || resp.SHA256 != sha(want) {
				t.Fatal("the retry's file is not the server's current one")
			}
			var retry []testserver.Request
			for _, r := range srv.RequestsFor("/f") {
				if r.RawQuery == "retry" {
					retry = append(retry, r)
				}
			}
			if len(retry) != 1 || retry[0].Header.Get("Range") != "" {
				t.Fatalf("the retry made %d requests, want one stream", len(retry))
			}
		})
	}
}

// TestSegmentedRangeFailsOnce: a range request that fails mid-way (connection reset) is not the
// end of the file: its range is fetched again from where it stopped.
func TestSegmentedRangeFailsOnce(t *testing.T) {
	srv := testserver.New(t, testserver.AcceptRanges(), testserver.Size(segSize), testserver.HTTP1Only())
	var once sync.Once
	srv.Handle("/f", testserver.PerRequest(func(n int, r *http.Request) []testserver.Option {
		var opts []testserver.Option
		if r.Header.Get("Range") != "" {
			once.Do(func() { opts = []testserver.Option{testserver.ResetAfter(300 << 10)} })
		}
		return opts
	}))
	f := newSegFetcher(t, srv, forceSplit(4))
	root, dir := newRoot(t)
	c := &conns{t: t, limit: 16}
	resp, err := fetchReq(t, f, root, c.request(srv.URL("/f"), "f"))
	if err != nil {
		t.Fatal(err)
	}
	c.balanced()
	if !bytes.Equal(readFile(t, dir, "f"), srv.Body("/f")) || resp.SHA256 != srv.SHA256("/f") {
		t.Fatal("file differs from the server's")
	}
	// The first, 3 ranges, and the failed one again from where it stopped.
	reqs := srv.RequestsFor("/f")
	again := false
	for _, r := range reqs {
		first, _, ok := rangeOf(r)
		again = again || ok && first%(1<<20) != 0
	}
	if len(reqs) < 5 || !again {
		t.Fatalf("%d requests; the failed range was asked for again from where it stopped: %v", len(reqs), again)
	}
}

// TestSegmentedResume: a segmented download interrupted is continued by the next Fetch: every
// unfinished range from where it stopped, no finished range requested again, and the file
// published whole. The interruption is a cancelled context (the transfer records its progress as
// it stops), or a copy of the .part and its sidecar taken while the transfer runs, as a kill -9
// would leave them: the sidecar copied first, so the copy of the .part has at least the bytes it
// describes, and no more than the sidecar's promise can be trusted.
func TestSegmentedResume(t *testing.T) {
	const done = 4 << 20 // the range starting here finishes before the interruption
	for _, tc := range []struct {
		name  string
		limit int // grants for the resume
		nilMC bool
		kill9 bool
	}{
		{"in parallel", 16, false, false},
		{"without MoreConns", 0, true, false},
		{"kill -9", 16, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testserver.New(t, testserver.AcceptRanges(), testserver.Size(segSize))
			stalling := true
			var smu sync.Mutex
			srv.Handle("/f", testserver.PerRequest(func(n int, r *http.Request) []testserver.Option {
				smu.Lock()
				defer smu.Unlock()
				if first, _, ok := rangeOf(testserver.Request{Header: r.Header}); stalling && (!ok || first != done) {
					return []testserver.Option{testserver.StallAfter(300 << 10)}
				}
				return nil
			}))
			f := newSegFetcher(t, srv, forceSplit(4))
			root, dir := newRoot(t)
			snap, snapDir := newRoot(t)
			finished := make(chan struct{})
			var fonce sync.Once
			f.seg.observe = func(segs [][3]int64) {
				for _, r := range segs {
					if r[0] <= done && r[2] > done && r[1] == r[2] {
						fonce.Do(func() {
							// Called right after the sidecar was written, before the transfer
							// goes on: what a kill -9 now would leave.
							for _, name := range []string{"f.part.meta", "f.part"} {
								if err := os.WriteFile(filepath.Join(snapDir, name), readFile(t, dir, name), 0o644); err != nil {
									t.Error(err)
								}
							}
							close(finished)
						})
					}
				}
			}
			c := &conns{t: t, limit: 16}
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() {
				_, err := f.Fetch(ctx, root, c.request(srv.URL("/f"), "f"))
				errc <- err
			}()
			select {
			case <-finished:
			case err := <-errc:
				t.Fatalf("Fetch ended before a range finished: %v", err)
			case <-time.After(20 * time.Second):
				t.Fatal("no range finished")
			}
			cancel()
			wantError(t, <-errc, ClassCanceled, false)
			c.balanced()
			f.seg.observe = nil
			if tc.kill9 {
				root, dir = snap, snapDir
			}

			if got := fileSize(t, dir, "f.part"); got != segSize {
				t.Fatalf(".part is %d bytes, want the body's %d", got, segSize)
			}
			var m partMeta
			if err := json.Unmarshal(readFile(t, dir, "f.part.meta"), &m); err != nil || len(m.Segments) < 2 {
				t.Fatalf("sidecar %+v %v", m, err)
			}
			var kept int64
			partial := 0
			for _, r := range m.Segments {
				kept += r[1] - r[0]
				if r[1] > r[0] && r[1] < r[2] {
					partial++
				}
			}
			if partial == 0 && !tc.kill9 {
				t.Fatalf("no range was interrupted mid-way: %v", m.Segments)
			}

			smu.Lock()
			stalling = false
			smu.Unlock()
			// The resume's requests are told from the first run's by their User-Agent: one of
			// those cancelled in flight may reach the server's log only now.
			f2 := newSegFetcher(t, srv, forceSplit(4), func(o *Options) { o.UserAgent = "resume" })
			c2 := &conns{t: t, limit: tc.limit}
			req := c2.request(srv.URL("/f"), "f")
			if tc.nilMC {
				req.MoreConns, req.ConnDone = nil, nil
			}
			resp, err := fetchReq(t, f2, root, req)
			if err != nil {
				t.Fatal(err)
			}
			c2.balanced()
			if !bytes.Equal(readFile(t, dir, "f"), srv.Body("/f")) || resp.SHA256 != srv.SHA256("/f") {
				t.Fatal("resumed file differs from the server's")
			}
			if !resp.Resumed || resp.Offset != kept || resp.Status != 206 {
				t.Fatalf("response %+v, want resumed with %d bytes kept", resp, kept)
			}
			// Every unfinished range is asked for from where it stopped (and may be split again);
			// no finished byte is asked for.
			want := map[int64]bool{}
			for _, r := range m.Segments {
				if r[1] < r[2] {
					want[r[1]] = true
				}
			}
			got := map[int64]bool{}
			var resumed []testserver.Request
			for _, r := range srv.RequestsFor("/f") {
				if r.Header.Get("User-Agent") == "resume" {
					resumed = append(resumed, r)
				}
			}
			for _, r := range resumed {
				first, last, ok := rangeOf(r)
				if !ok {
					t.Fatalf("resume request with Range %q", r.Header.Get("Range"))
				}
				got[first] = true
				for _, s := range m.Segments {
					if first < s[1] && last >= s[0] {
						t.Errorf("resume asked for bytes %d-%d, finished before the interruption (%v)", first, last, s)
					}
				}
			}
			for at := range want {
				if !got[at] {
					t.Fatalf("no resume request starts at %d, where a range stopped (sidecar %v, requests from %v)", at, m.Segments, got)
				}
			}
			if exists(dir, "f.part") || exists(dir, "f.part.meta") {
				t.Fatal(".part or sidecar left behind")
			}
		})
	}
}

// TestSegmentedCredentialsStayHome: range requests carry the -H headers to the URL's own host
// only; a redirect to another host drops them, as for the first request.
func TestSegmentedCredentialsStayHome(t *testing.T) {
	b := testserver.New(t, testserver.AcceptRanges(), testserver.Size(segSize))
	a := testserver.New(t, testserver.Redirect(b.URL("/f")))
	f := newSegFetcher(t, a, forceSplit(4), func(o *Options) {
		o.Header = http.Header{"Authorization": {"Bearer a-only"}}
	})
	root, dir := newRoot(t)
	c := &conns{t: t, limit: 16}
	if _, err := fetchReq(t, f, root, c.request(a.URL("/f"), "f")); err != nil {
		t.Fatal(err)
	}
	c.balanced()
	if !bytes.Equal(readFile(t, dir, "f"), b.Body("/f")) {
		t.Fatal("file differs")
	}
	ranges := 0
	for _, r := range b.Requests() {
		if r.Header.Get("Authorization") != "" {
			t.Fatalf("the other host got Authorization (Range %q)", r.Header.Get("Range"))
		}
		if r.Header.Get("Range") != "" {
			ranges++
		}
	}
	if ranges == 0 {
		t.Fatal("no range request reached the redirect's target")
	}
	for _, r := range a.Requests() {
		if r.Header.Get("Authorization") == "" {
			t.Fatal("the URL's own host did not get Authorization")
		}
	}
}

func TestConnsWorth(t *testing.T) {
	const MB = 1e6
	for _, tc := range []struct {
		name    string
		left    int64
		rate    float64
		worth   int
		minHalf int64
	}{
		{"loopback, 1 GB/s", 200 << 20, 1000 * MB, 0, 1000 * MB},
		{"loopback, 4 files sharing the CPU", 128 << 20, 250 * MB, 0, 250 * MB},
		{"8 MB/s, 256 MiB", 256 << 20, 8 * MB, 16, 8 * MB},
		{"8 MB/s, 20 MB", 20 * MB, 8 * MB, 2, 8 * MB},
		{"8 MB/s, 15 MB: half would take < 1s", 15 * MB, 8 * MB, 1, 8 * MB},
		{"stalled", 100 << 20, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, h := connsWorth(tc.left, tc.rate, time.Second, 16)
			if w != tc.worth || h != tc.minHalf {
				t.Fatalf("connsWorth = %d, %d; want %d, %d", w, h, tc.worth, tc.minHalf)
			}
		})
	}
}

func TestCheckSegment(t *testing.T) {
	m := partMeta{ETag: `"e"`, LastModified: "Tue, 02 Jan 2024 03:04:05 GMT", Size: 1000}
	ok := func() *http.Response {
		return &http.Response{StatusCode: 206, ContentLength: 100, Header: http.Header{
			"Etag": {`"e"`}, "Last-Modified": {m.LastModified}, "Content-Range": {"bytes 100-199/1000"}}}
	}
	for _, tc := range []struct {
		name string
		mod  func(*http.Response)
		good bool
	}{
		{"exact", func(*http.Response) {}, true},
		{"to the end of the body", func(r *http.Response) {
			r.Header.Set("Content-Range", "bytes 100-999/1000")
			r.ContentLength = 900
		}, true},
		{"no Content-Length", func(r *http.Response) { r.ContentLength = -1 }, true},
		{"200", func(r *http.Response) { r.StatusCode = 200 }, false},
		{"other ETag", func(r *http.Response) { r.Header.Set("ETag", `"f"`) }, false},
		{"no ETag", func(r *http.Response) { r.Header.Del("ETag") }, false},
		{"other Last-Modified", func(r *http.Response) { r.Header.Set("Last-Modified", "Wed, 03 Jan 2024 03:04:05 GMT") }, false},
		{"other total", func(r *http.Response) { r.Header.Set("Content-Range", "bytes 100-199/1001") }, false},
		{"unknown total", func(r *http.Response) { r.Header.Set("Content-Range", "bytes 100-199/*") }, false},
		{"other start", func(r *http.Response) { r.Header.Set("Content-Range", "bytes 99-199/1000"); r.ContentLength = 101 }, false},
		{"shorter", func(r *http.Response) { r.Header.Set("Content-Range", "bytes 100-198/1000"); r.ContentLength = 99 }, false},
		{"longer, not to the end", func(r *http.Response) { r.Header.Set("Content-Range", "bytes 100-200/1000"); r.ContentLength = 101 }, false},
		{"Content-Length disagrees", func(r *http.Response) { r.ContentLength = 50 }, false},
		{"no Content-Range", func(r *http.Response) { r.Header.Del("Content-Range") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ok()
			tc.mod(r)
			if err := checkSegment(r, 100, 200, m); (err == nil) != tc.good {
				t.Fatalf("checkSegment: %v, want ok %v", err, tc.good)
			}
		})
	}
}

func TestSegmentsFit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		segs     [][3]int64
		partSize int64
		good     bool
	}{
		{"two ranges", [][3]int64{{0, 10, 50}, {50, 60, 100}}, 100, true},
		{"finished and unstarted", [][3]int64{{0, 50, 50}, {50, 50, 100}}, 100, true},
		{".part not yet extended", [][3]int64{{0, 10, 50}, {50, 50, 100}}, 10, true},
		{"written past the .part", [][3]int64{{0, 10, 50}, {50, 60, 100}}, 55, false},
		{".part longer than the body", [][3]int64{{0, 10, 100}}, 101, false},
		{"gap", [][3]int64{{0, 10, 40}, {50, 60, 100}}, 100, false},
		{"overlap", [][3]int64{{0, 10, 60}, {50, 60, 100}}, 100, false},
		{"short of the size", [][3]int64{{0, 10, 50}, {50, 60, 90}}, 100, false},
		{"next before start", [][3]int64{{0, 10, 50}, {50, 40, 100}}, 100, false},
		{"next past end", [][3]int64{{0, 60, 50}, {50, 60, 100}}, 100, false},
		{"empty range", [][3]int64{{0, 0, 0}, {0, 10, 100}}, 100, false},
		{"none", [][3]int64{}, 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := partMeta{URL: "u", ETag: `"e"`, Size: 100, Segments: tc.segs}
			if got := m.segmentsFit(tc.partSize); got != tc.good {
				t.Fatalf("segmentsFit = %v", got)
			}
		})
	}
}

// TestResumePointSegmented: a segmented .part's size is never taken for a resume offset, and a
// sidecar whose ranges do not fit its .part restarts the file.
func TestResumePointSegmented(t *testing.T) {
	root, dir := newRoot(t)
	os.WriteFile(filepath.Join(dir, "f.part"), make([]byte, 100), 0o644)
	for _, tc := range []struct {
		name string
		meta string
		segs bool
	}{
		{"segmented", `{"url":"u","etag":"\"e\"","size":100,"segments":[[0,10,50],[50,60,100]]}`, true},
		{"ranges do not fit", `{"url":"u","etag":"\"e\"","size":100,"segments":[[0,10,50]]}`, false},
		{"empty list", `{"url":"u","etag":"\"e\"","size":100,"segments":[]}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(filepath.Join(dir, "f.part.meta"), []byte(tc.meta), 0o644)
			off, m, found := resumePoint(root, -1, "f.part", "f.part.meta", "u")
			if off != 0 || !found || (len(m.Segments) > 0) != tc.segs {
				t.Fatalf("resumePoint = %d, %+v, %v", off, m, found)
			}
		})
	}
}

// TestSegmentedNotForOldStyle: an interrupted download that never split leaves an ordinary .part
// (a prefix, with a sidecar without segments), which resumes as any other.
func TestSegmentedNotForOldStyle(t *testing.T) {
	srv := testserver.New(t, testserver.AcceptRanges(), testserver.Size(segSize), testserver.HTTP1Only())
	srv.Handle("/f", testserver.PerRequest(func(n int, _ *http.Request) []testserver.Option {
		if n == 0 {
			return []testserver.Option{testserver.TruncateAfter(3 << 20)}
		}
		return nil
	}))
	f := newSegFetcher(t, srv, func(o *Options) { o.SegmentMin = 4 << 20 })
	root, dir := newRoot(t)
	c := &conns{t: t, limit: 0} // nothing granted: never split
	_, err := fetchReq(t, f, root, c.request(srv.URL("/f"), "f"))
	wantError(t, err, ClassShortBody, true)
	var m partMeta
	if err := json.Unmarshal(readFile(t, dir, "f.part.meta"), &m); err != nil || m.Segments != nil || fileSize(t, dir, "f.part") != 3<<20 {
		t.Fatalf("sidecar %+v %v, .part %d bytes", m, err, fileSize(t, dir, "f.part"))
	}
	resp, err := fetchReq(t, f, root, c.request(srv.URL("/f"), "f"))
	if err != nil || !resp.Resumed || resp.Offset != 3<<20 || resp.SHA256 != srv.SHA256("/f") {
		t.Fatalf("%+v %v", resp, err)
	}
	if rg := srv.RequestsFor("/f")[1].Header.Get("Range"); rg != "bytes=3145728-" {
		t.Fatalf("resume Range %q", rg)
	}
}
