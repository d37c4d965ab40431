package fetcher

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestPreallocateKeepsPartSize: a big download has its disk reserved up front, but its .part
// still measures the bytes received, so a cut transfer resumes from the right place.
func TestPreallocateKeepsPartSize(t *testing.T) {
	const size = 4 << 20
	srv := testserver.New(t, testserver.Size(size))
	f := newFetcher(t, srv)
	root, dir := newRoot(t)
	srv.Handle("/big", testserver.TruncateAfter(100_000))
	_, err := fetch(t, f, root, srv.URL("/big"), "big")
	wantError(t, err, ClassShortBody, true)

	kept := fileSize(t, dir, "big.part")
	if kept == 0 || kept > 100_000 {
		t.Fatalf(".part has %d bytes, want the ≤100,000 received", kept)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "big.part"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 < size {
		var fs unix.Statfs_t
		if fallocateWorks(t, dir) && unix.Statfs(dir, &fs) == nil && preallocFits(size, int64(fs.Bavail)*int64(fs.Bsize)) {
			t.Errorf(".part has %d bytes of disk, want %d reserved", st.Blocks*512, size)
		} else {
			t.Logf("this filesystem cannot preallocate %d bytes: %d bytes of disk", size, st.Blocks*512)
		}
	}

	srv.Handle("/big", testserver.TruncateAfter(-1))
	resp, err := fetch(t, f, root, srv.URL("/big"), "big")
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Resumed || resp.Offset != kept {
		t.Errorf("resumed %v from %d, want from %d", resp.Resumed, resp.Offset, kept)
	}
	if got := readFile(t, dir, "big"); !bytes.Equal(got, srv.Body("/big")) || resp.SHA256 != srv.SHA256("/big") {
		t.Fatal("content or sha256 mismatch after the resume")
	}
}

func fallocateWorks(t *testing.T, dir string) bool {
	p, err := os.CreateTemp(dir, "probe")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	return unix.Fallocate(int(p.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, 1<<20) == nil
}

func TestPreallocFits(t *testing.T) {
	for _, tc := range []struct {
		size, avail int64
		want        bool
	}{
		{1 << 20, 1 << 30, true},
		{1 << 27, 1 << 30, true}, // an eighth
		{1<<27 + 1, 1 << 30, false},
		{1 << 40, 1 << 30, false}, // a declared terabyte
		{1 << 20, 0, false},
		{-1, 1 << 30, false},
	} {
		if got := preallocFits(tc.size, tc.avail); got != tc.want {
			t.Errorf("preallocFits(%d, %d) = %v", tc.size, tc.avail, got)
		}
	}
}
