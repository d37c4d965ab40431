package integration_test

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// sidecarSegments reads the ranges a segmented .part's sidecar records, [start, next, end) each
// (nil if there is no sidecar, or it lists none).
func sidecarSegments(t testing.TB, meta string) [][3]int64 {
	t.Helper()
	b, err := os.ReadFile(meta)
	if err != nil {
		return nil
	}
	var m struct {
		Segments [][3]int64 `json:"segments"`
	}
	if json.Unmarshal(b, &m) != nil {
		return nil // caught mid-write: not yet
	}
	return m.Segments
}

// TestKill9SegmentedResume kills trawl with SIGKILL in the middle of a big file it fetches in
// segments (the server gives each connection about 5 MiB/s, so the default policy splits it after
// its warm-up). The rerun continues every unfinished range where the sidecar says it stopped,
// asks for no byte of a range finished before the kill, and publishes the file byte for byte.
func TestKill9SegmentedResume(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	const path = "/dumps/nightly.bin"
	s.Handle(path, testserver.AcceptRanges(), testserver.Body(testserver.Content(3, 48<<20)), slow)
	out := t.TempDir()
	args := []string{"get", "-o", out, "--ca-cert", ca, s.URL(path)}
	part := mirrorPath(out, s, path) + ".part"

	p := start(t, trawlCmd(args...))
	var segs [][3]int64
	eventually(t, "a range of the segmented download to finish", 30*time.Second, p.exited, func() bool {
		segs = sidecarSegments(t, part+".meta")
		for _, r := range segs {
			if r[1] == r[2] && r[0] > 0 {
				return true // a range of a split, not only the first stream's
			}
		}
		return false
	})
	p.kill9()
	// What the rerun will trust: the sidecar as the killed process left it.
	segs = sidecarSegments(t, part+".meta")
	if len(segs) < 2 {
		t.Fatalf("sidecar after the kill lists %v", segs)
	}
	first := len(s.RequestsFor(path))

	// The rerun's requests carry a header of their own: a request the killed process had sent may
	// reach the server's log only now.
	s.Handle(path, fast)
	r := runTrawl(t, append(args, "-H", "X-Run: rerun")...)
	wantExit(t, r, exitOK)
	wantFile(t, out, s, path)

	starts := map[int64]bool{}
	for _, req := range s.RequestsFor(path) {
		if req.Header.Get("X-Run") != "rerun" {
			continue
		}
		from, to, ok := closedRange(req.Header.Get("Range"))
		if !ok {
			t.Fatalf("rerun request with Range %q: the segmented .part was not resumed", req.Header.Get("Range"))
		}
		if req.Header.Get("If-Range") == "" {
			t.Errorf("rerun request for bytes %d-%d has no If-Range", from, to)
		}
		starts[from] = true
		for _, seg := range segs {
			if from < seg[1] && to >= seg[0] {
				t.Errorf("rerun asked for bytes %d-%d; %d-%d were written before the kill (sidecar %v)", from, to, seg[0], seg[1]-1, segs)
			}
		}
	}
	for _, seg := range segs {
		if seg[1] < seg[2] && !starts[seg[1]] {
			t.Errorf("no rerun request starts at %d, where a range stopped (sidecar %v)", seg[1], segs)
		}
	}
	if first < 2 {
		t.Errorf("the killed run made %d requests: it did not split", first)
	}
	if parts := partFiles(t, out); len(parts) > 0 {
		t.Errorf("temporary files left behind: %s", strings.Join(parts, ", "))
	}
}

// closedRange reads "bytes=a-b".
func closedRange(v string) (from, to int64, ok bool) {
	spec, ok := strings.CutPrefix(v, "bytes=")
	if !ok {
		return 0, 0, false
	}
	a, b, _ := strings.Cut(spec, "-")
	from, err1 := strconv.ParseInt(a, 10, 64)
	to, err2 := strconv.ParseInt(b, 10, 64)
	return from, to, err1 == nil && err2 == nil
}
