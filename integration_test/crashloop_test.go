package integration_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
	"github.com/trawl-dev/trawl/queue"
)

// TestCrashLoop runs a mixed crawl — pages, small images and files, large files that take a
// while — and kills it with SIGKILL ten times at moments chosen by a seeded RNG (a number of
// server requests, then a few milliseconds more, so kills land between files, mid-body and
// mid-commit), rerunning the same command each time. After every kill, every done record must
// have its file with the recorded size and sha256, byte-identical to the server's; at the end
// every resource is done, no file is without a record, and no .part is left.
// TRAWL_TEST_SEED=N replays a run.
func TestCrashLoop(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("TRAWL_TEST_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("TRAWL_TEST_SEED: %v", err)
		}
	}
	t.Logf("seed %d (TRAWL_TEST_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	s, ca := server(t)
	s.Handle("/robots.txt", testserver.HandlerFunc(http.NotFound))
	want := map[string]bool{} // every path the crawl must save
	html := func(p, body string) {
		s.Handle(p, testserver.Body([]byte(body)), testserver.Header("Content-Type", "text/html; charset=utf-8"))
		want[p] = true
	}
	const pages = 6
	var index strings.Builder
	index.WriteString("<!doctype html><title>crash loop</title>\n")
	for i := range pages {
		fmt.Fprintf(&index, "<a href=\"p%d.html\">page %d</a>\n", i, i)
		var b strings.Builder
		fmt.Fprintf(&b, "<!doctype html><title>page %d</title><link rel=stylesheet href=\"style.css\">\n", i)
		for j := range 4 {
			img := fmt.Sprintf("/site/img/%d-%d.png", i, j)
			s.Handle(img, testserver.Size(int64(2000+rng.IntN(20_000))), testserver.Header("Content-Type", "image/png"))
			want[img] = true
			fmt.Fprintf(&b, "<img src=\"img/%d-%d.png\">\n", i, j)
		}
		for j := range 8 {
			f := fmt.Sprintf("/site/files/%d-%d.bin", i, j)
			s.Handle(f, testserver.Size(int64(rng.IntN(64<<10))), testserver.Drip(2<<10, 5*time.Millisecond))
			want[f] = true
			fmt.Fprintf(&b, "<a href=\"files/%d-%d.bin\">f</a>\n", i, j)
		}
		// ~2 MiB/s: a large file is in flight for a second or two.
		big := fmt.Sprintf("/site/files/big-%d.bin", i)
		s.Handle(big, testserver.Size(int64(2<<20+rng.IntN(2<<20))), testserver.Drip(32<<10, 15*time.Millisecond))
		want[big] = true
		fmt.Fprintf(&b, "<a href=\"files/big-%d.bin\">big</a> <a href=\"index.html\">up</a> <a href=\"p%d.html\">next</a>\n", i, (i+1)%pages)
		html(fmt.Sprintf("/site/p%d.html", i), b.String())
	}
	s.Handle("/site/style.css", testserver.Body([]byte("body{background:url(img/bg.png)}")), testserver.Header("Content-Type", "text/css"))
	s.Handle("/site/img/bg.png", testserver.Size(3000), testserver.Header("Content-Type", "image/png"))
	want["/site/style.css"], want["/site/img/bg.png"] = true, true
	html("/site/index.html", index.String())

	out := t.TempDir()
	args := []string{"crawl", "-o", out, "--ca-cert", ca, "-q", "-c", "2", "--per-host", "2", s.URL("/site/index.html")}
	state := defaultState(out)
	kills := 0
	for round := 0; round < 10; round++ {
		p := start(t, trawlCmd(args...))
		target := len(s.Requests()) + 1 + rng.IntN(8)
		extra := time.Duration(rng.IntN(150)) * time.Millisecond
		for len(s.WaitRequests(target, 50*time.Millisecond)) < target && !p.hasExited() {
		}
		// A few more milliseconds: into a body, a rename or a commit.
		tm := time.NewTimer(extra)
		select {
		case <-tm.C:
		case <-p.exited:
		}
		tm.Stop()
		if p.hasExited() {
			t.Logf("round %d: trawl finished (exit %d) before the kill", round, p.res.code)
			wantExit(t, p.res, exitOK)
			break
		}
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		r := p.wait(10 * time.Second)
		if r.code != -1 {
			t.Logf("round %d: trawl exited with %d just before SIGKILL", round, r.code)
		} else {
			kills++
		}
		recs := stateRecords(t, state)
		doneN := checkAgainstServer(t, s, out, recs)
		t.Logf("round %d: killed after %d requests (+%s); %d done, %d .part files",
			round, target, extra, doneN, len(partFiles(t, out)))
		if t.Failed() {
			t.Fatalf("round %d: state and disk disagree after SIGKILL (seed %d)", round, seed)
		}
	}
	if kills < 8 {
		t.Errorf("only %d kills landed while trawl was running: the job is too small to test anything (seed %d)", kills, seed)
	}

	wantExit(t, runTrawl(t, args...), exitOK)
	recs := stateRecords(t, state)
	done := checkDoneRecords(t, out, recs)
	checkAgainstServer(t, s, out, recs)
	checkNoStrayFiles(t, out, done)
	for p := range want {
		if _, ok := done[s.Addr()+p]; !ok {
			t.Errorf("%s is not done at the end", p)
		}
	}
	if len(done) != len(want) {
		t.Errorf("%d done records, want %d", len(done), len(want))
	}
	if parts := partFiles(t, out); len(parts) > 0 {
		t.Errorf("temporary files left behind: %s", strings.Join(parts, ", "))
	}
	t.Logf("%d kills, %d requests in all for %d resources (seed %d)", kills, len(s.Requests()), len(want), seed)
}

// checkAgainstServer checks every done record against its file on disk and against what the
// server sends, and returns how many records are done.
func checkAgainstServer(t *testing.T, s *testserver.Server, out string, recs []queue.Record) int {
	t.Helper()
	done := checkDoneRecords(t, out, recs)
	for _, r := range done {
		if got, want := r.SHA256, s.SHA256(strings.TrimPrefix(r.URL, s.Base())); got != want {
			t.Errorf("done %s: recorded sha256 %s, the server's is %s", r.URL, got, want)
		}
	}
	return len(done)
}
