package integration_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStateDirSymlinkRefused: a .trawl symlink planted in the output directory must not carry the
// state file (or its lock and status notes) outside it.
func TestStateDirSymlinkRefused(t *testing.T) {
	t.Parallel()
	out, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(out, ".trawl")); err != nil {
		t.Fatal(err)
	}
	res := runTrawl(t, "get", "-o", out, "-q", "https://127.0.0.1:1/x")
	wantExit(t, res, exitFatal)
	if !strings.Contains(res.stderr, "symbolic link") {
		t.Errorf("stderr %q does not say why", res.stderr)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("wrote outside the output directory: %v", entries)
	}
}
