package fetcher

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/trawl-dev/trawl/internal/testserver"
)

func TestSymlinkEscape(t *testing.T) {
	srv := testserver.New(t)
	f := newFetcher(t, srv)
	root, dir := newRoot(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "evil")); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("keep me"), 0o644)
	if err := os.Symlink(victim, filepath.Join(dir, "leaf")); err != nil {
		t.Fatal(err)
	}

	t.Run("directory symlink", func(t *testing.T) {
		_, err := fetch(t, f, root, srv.URL("/x"), "evil/sub/x")
		wantError(t, err, ClassLocal, false)
		entries, _ := os.ReadDir(outside)
		if len(entries) != 1 {
			t.Fatalf("something was written outside the root: %v", entries)
		}
	})
	t.Run("leaf symlink is replaced, not followed", func(t *testing.T) {
		if _, err := fetch(t, f, root, srv.URL("/x"), "leaf"); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(victim); string(b) != "keep me" {
			t.Fatal("write followed the symlink out of the root")
		}
		if fi, _ := os.Lstat(filepath.Join(dir, "leaf")); !fi.Mode().IsRegular() {
			t.Fatal("leaf is not a regular file")
		}
	})
}

func TestDirectoryAtPath(t *testing.T) {
	srv := testserver.New(t)
	f := newFetcher(t, srv)
	root, dir := newRoot(t)
	os.MkdirAll(filepath.Join(dir, "d", "child"), 0o755)
	_, err := fetch(t, f, root, srv.URL("/d"), "d")
	e := wantError(t, err, ClassLocal, false)
	if e.Fatal || !errors.Is(err, errIsDirectory) {
		t.Fatalf("error %q fatal %v", e, e.Fatal)
	}
	// A first download finds out at publish (looking first would cost every file a syscall):
	// the directory is untouched and no .part is left behind.
	if entries, _ := os.ReadDir(filepath.Join(dir, "d")); len(entries) != 1 || entries[0].Name() != "child" || !entries[0].IsDir() {
		t.Fatalf("directory d changed: %v", entries)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("left in the output: %v", entries)
	}
	// A revalidation looks before it asks: no request is spent on it.
	before := len(srv.Requests())
	_, err = f.Fetch(t.Context(), root, Request{URL: srv.URL("/d"), Path: "d", ETag: `"v1"`})
	if e := wantError(t, err, ClassLocal, false); !errors.Is(err, errIsDirectory) {
		t.Fatalf("revalidation: error %q", e)
	}
	if len(srv.Requests()) != before {
		t.Fatal("a revalidation request was made for a path that is a directory")
	}
	// A file where a directory is needed.
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	_, err = fetch(t, f, root, srv.URL("/x"), "file/x")
	wantError(t, err, ClassLocal, false)
}

func TestReadOnlyOutputIsFatal(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	srv := testserver.New(t)
	f := newFetcher(t, srv)
	root, dir := newRoot(t)
	os.Chmod(dir, 0o555)
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	_, err := fetch(t, f, root, srv.URL("/x"), "x")
	if e := wantError(t, err, ClassLocal, false); !e.Fatal {
		t.Fatalf("%q not fatal", e)
	}
}

func TestClassify(t *testing.T) {
	pathErr := func(errno syscall.Errno) error { return &fs.PathError{Op: "write", Path: "x", Err: errno} }
	for _, tc := range []struct {
		err       error
		class     Class
		retryable bool
		fatal     bool
	}{
		{pathErr(syscall.ENOSPC), ClassLocal, false, true},
		{pathErr(syscall.EROFS), ClassLocal, false, true},
		{pathErr(syscall.EDQUOT), ClassLocal, false, true},
		{pathErr(syscall.EACCES), ClassLocal, false, true},
		{pathErr(syscall.EISDIR), ClassLocal, false, false},
		{fmt.Errorf("wrapped: %w", syscall.ECONNRESET), ClassNetwork, true, false},
		{errStalled, ClassStall, true, false},
		{fmt.Errorf("x: %w", errShortBody), ClassShortBody, true, false},
		{&Error{Class: ClassHTTP, Status: 404}, ClassHTTP, false, false},
	} {
		e := Classify(tc.err)
		if e.Class != tc.class || e.Retryable != tc.retryable || e.Fatal != tc.fatal {
			t.Errorf("Classify(%v) = %s retryable %v fatal %v", tc.err, e.Class, e.Retryable, e.Fatal)
		}
	}
	if Classify(nil) != nil {
		t.Error("Classify(nil) != nil")
	}
	// Local write errors from Fetch say so and are fatal when the disk is full.
	if e := localError("https://u:p@h/x", pathErr(syscall.ENOSPC)); !e.Fatal || e.URL != "https://h/x" {
		t.Errorf("localError: %+v", e)
	}
}

func TestErrorRedactsUserinfo(t *testing.T) {
	f := newFetcher(t, nil)
	root, _ := newRoot(t)
	_, err := fetch(t, f, root, "https://user:hunter2@127.0.0.1:1/x", "x")
	e := Classify(err)
	if e.URL != "https://127.0.0.1:1/x" || containsAny(e.Error(), "hunter2", "user") {
		t.Fatalf("error leaks userinfo: URL %q, message %q", e.URL, e)
	}
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// TestErrorBehaviour: the questions the scheduler asks an error, instead of reading statuses.
func TestErrorBehaviour(t *testing.T) {
	for _, tt := range []struct {
		err                  *Error
		serverBusy, overload bool
	}{
		{&Error{Class: ClassHTTP, Status: 429}, true, true},
		{&Error{Class: ClassHTTP, Status: 503}, true, true},
		{&Error{Class: ClassHTTP, Status: 500}, false, false},
		{&Error{Class: ClassHTTP, Status: 404}, false, false},
		{&Error{Class: ClassTimeout}, false, true},
		{&Error{Class: ClassStall}, false, true},
		{&Error{Class: ClassNetwork}, false, true},
		{&Error{Class: ClassTLS}, false, false},
		{&Error{Class: ClassLocal, Status: 503}, false, false},
	} {
		if got := tt.err.ServerBusy(); got != tt.serverBusy {
			t.Errorf("%v: ServerBusy %v, want %v", tt.err, got, tt.serverBusy)
		}
		if got := tt.err.Overloaded(); got != tt.overload {
			t.Errorf("%v: Overloaded %v, want %v", tt.err, got, tt.overload)
		}
	}
}
