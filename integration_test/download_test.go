package integration_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestBulkDownload is the headline promise: a large list over several hosts ends with exit 0,
// every file byte-identical to what its server sent, every URL requested exactly once, and no
// temporary files left behind.
func TestBulkDownload(t *testing.T) {
	t.Parallel()
	const hosts, perHost = 5, 400
	ss, ca := servers(t, hosts)

	var lines []string
	for h, s := range ss {
		for i := range perHost {
			n := h*perHost + i
			path := fmt.Sprintf("/d%d/f%04d.bin", i%7, n)
			// Generated once and served as is: cheaper under -race than regenerating per request.
			s.Handle(path, testserver.Body(testserver.Content(uint64(n), bulkSize(n))))
			lines = append(lines, s.URL(path))
		}
	}
	list := writeList(t, lines...)
	out := t.TempDir()

	r := runTrawl(t, "get", "-i", list, "-o", out, "--ca-cert", ca)
	wantExit(t, r, exitOK)
	t.Logf("trawl: %s", lastLine(r.stderr, "msg=summary"))

	for h, s := range ss {
		counts := countPaths(s.Requests())
		if len(counts) != perHost {
			t.Errorf("server %d saw %d distinct paths, want %d", h, len(counts), perHost)
		}
		for i := range perHost {
			path := fmt.Sprintf("/d%d/f%04d.bin", i%7, h*perHost+i)
			if counts[path] != 1 {
				t.Errorf("%s requested %d times, want exactly once", s.URL(path), counts[path])
			}
			wantFile(t, out, s, path)
		}
	}
	if parts := partFiles(t, out); len(parts) > 0 {
		t.Errorf("temporary files left behind: %s", strings.Join(parts, ", "))
	}
}

// bulkSize spreads sizes over 0..64 KiB, weighted to small files as real lists are, with the
// edges (empty, one byte, exactly 64 KiB) and a few files of about 1 MiB.
func bulkSize(n int) int64 {
	switch {
	case n%500 == 250:
		return 1<<20 + int64(n) // ~1 MiB, not a round number
	case n%100 == 1:
		return 0
	case n%100 == 2:
		return 1
	case n%100 == 3:
		return 64 << 10
	}
	x := uint64(n)*0x9e3779b97f4a7c15>>40%1000 + 1 // 1..1000, scattered
	return int64(x * x * (64 << 10) / 1_000_000)   // quadratic: mostly small
}

// TestRerunFinishedJob: the same URL twice is fetched once, and running a finished job again
// requests nothing.
func TestRerunFinishedJob(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	out := t.TempDir()
	args := []string{"get", "-o", out, "--ca-cert", ca, s.URL("/a.bin"), s.URL("/b.bin"), s.URL("/a.bin"), s.URL("/a.bin#frag")}
	wantExit(t, runTrawl(t, args...), exitOK)
	if n := len(s.Requests()); n != 2 {
		t.Errorf("first run sent %d requests, want 2 (duplicates are one job)", n)
	}
	wantFile(t, out, s, "/a.bin")
	wantFile(t, out, s, "/b.bin")
	wantExit(t, runTrawl(t, args...), exitOK)
	if n := len(s.Requests()); n != 2 {
		t.Errorf("rerunning a finished job sent %d more requests, want none", n-2)
	}
}
