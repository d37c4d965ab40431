package integration_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnchangedListNotReread: a list queued whole before is not read again while it is unchanged,
// but its bad line is reported (and the run exits 1) every time; once it changes, its new URLs
// are fetched.
func TestUnchangedListNotReread(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	out, list := t.TempDir(), filepath.Join(t.TempDir(), "urls.txt")
	write := func(paths ...string) {
		var b strings.Builder
		for _, p := range paths {
			b.WriteString(s.URL(p) + "\n")
		}
		b.WriteString("not a url\n")
		if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("/a.bin", "/b.bin")
	args := []string{"get", "-i", list, "-o", out, "--ca-cert", ca}
	first := runTrawl(t, args...)
	wantExit(t, first, exitFailed)
	if !strings.Contains(first.stderr, "line=3") {
		t.Errorf("first run did not report the bad line:\n%s", first.stderr)
	}

	again := runTrawl(t, args...)
	wantExit(t, again, exitFailed)
	if !strings.Contains(again.stderr, "list unchanged") {
		t.Errorf("second run read the unchanged list again:\n%s", again.stderr)
	}
	if !strings.Contains(again.stderr, "line=3") {
		t.Errorf("second run did not report the bad line again:\n%s", again.stderr)
	}

	write("/a.bin", "/b.bin", "/c.bin")
	wantExit(t, runTrawl(t, args...), exitFailed)
	wantFile(t, out, s, "/c.bin")
	if n := len(s.RequestsFor("/a.bin")); n != 1 {
		t.Errorf("/a.bin requested %d times, want 1", n)
	}
}
