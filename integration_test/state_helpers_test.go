package integration_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/store"
)

// stateRecords reads every record of the state file read-only (the run must have exited).
func stateRecords(t testing.TB, statePath string) []queue.Record {
	t.Helper()
	st, err := store.Open(statePath, &store.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("opening the state file read-only: %v", err)
	}
	defer st.Close()
	var recs []queue.Record
	if err := st.ForEach(func(r queue.Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatalf("reading the state file: %v", err)
	}
	return recs
}

// defaultState is where trawl keeps the state of a job writing to out.
func defaultState(out string) string { return filepath.Join(out, ".trawl", "state.db") }

// checkDoneRecords fails unless every Done record's file exists under out with the recorded
// size and sha256. It returns the Done records by path.
func checkDoneRecords(t testing.TB, out string, recs []queue.Record) map[string]queue.Record {
	t.Helper()
	done := map[string]queue.Record{}
	for _, r := range recs {
		if r.State != queue.Done {
			continue
		}
		done[r.Path] = r
		name := filepath.Join(out, filepath.FromSlash(r.Path))
		fi, err := os.Lstat(name)
		if err != nil {
			t.Errorf("done record %s: file %s: %v", r.URL, r.Path, err)
			continue
		}
		if !fi.Mode().IsRegular() || fi.Size() != r.Bytes {
			t.Errorf("done record %s: %s is %v with %d bytes, recorded %d", r.URL, r.Path, fi.Mode(), fi.Size(), r.Bytes)
			continue
		}
		if got := fileSHA256(t, name); got != r.SHA256 {
			t.Errorf("done record %s: %s has sha256 %s, recorded %s", r.URL, r.Path, got, r.SHA256)
		}
	}
	return done
}

// outputFiles lists every non-directory under out except trawl's state directory, as
// slash-separated paths relative to out.
func outputFiles(t testing.TB, out string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		if d.IsDir() {
			if rel == ".trawl" {
				return filepath.SkipDir
			}
			return nil
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// checkNoStrayFiles fails if out holds a file that no Done record accounts for (a .part, or a
// file published without being recorded).
func checkNoStrayFiles(t testing.TB, out string, done map[string]queue.Record) {
	t.Helper()
	for _, f := range outputFiles(t, out) {
		if _, ok := done[f]; !ok {
			t.Errorf("%s is in the output but no done record has it", f)
		}
	}
}

// treeSnapshot lists everything under dir (relative, with a trailing / for directories), to
// show that a run left a directory outside its output alone.
func treeSnapshot(t testing.TB, dir string) string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// mountTmpfs mounts a tmpfs with opts (e.g. "size=1m", "ro") on dir, skipping the test with a
// message where that is not possible, and unmounts it at cleanup.
func mountTmpfs(t testing.TB, dir, opts string) {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs on %s (needs root or CAP_SYS_ADMIN): %v: %s", dir, err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// remount changes the options of a tmpfs mounted by mountTmpfs.
func remount(t testing.TB, dir, opts string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+opts, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s: %v: %s", dir, err, out)
	}
}
