package fetcher

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestPreallocateKeepsPartSize: a big download has its disk reserved while it runs, but its .part
// still measures the bytes received, so a cut transfer resumes from the right place; and a .part
// kept for a resume holds only those bytes, not the reservation.
func TestPreallocateKeepsPartSize(t *testing.T) {
	const size, sent = 4 << 20, 100_000
	srv := testserver.New(t, testserver.Size(size))
	f := newFetcher(t, srv, func(o *Options) { o.IdleTimeout = stallTimeout })
	root, dir := newRoot(t)
	srv.Handle("/big", testserver.StallAfter(sent))
	part := filepath.Join(dir, "big.part")

	arrived := make(chan struct{})
	var got int
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := f.Fetch(ctx, root, Request{URL: srv.URL("/big"), Path: "big", OnBytes: func(n int) {
			if got += n; got == sent {
				close(arrived)
			}
		}})
		done <- err
	}()
	select {
	case <-arrived:
	case err := <-done:
		t.Fatalf("fetch ended before the stall: %v", err)
	}
	// Stalled with sent bytes in: the .part has its disk, but the size of what arrived.
	if fitsHere(t, dir, size) {
		if used := diskUsed(t, part); used < size {
			t.Errorf("mid-transfer .part has %d bytes of disk, want %d reserved", used, size)
		}
	}
	if n := f.reserved.Load(); n != size {
		t.Errorf("%d bytes reserved in flight, want %d", n, size)
	}
	wantError(t, <-done, ClassStall, true)
	if n := f.reserved.Load(); n != 0 {
		t.Errorf("%d bytes still reserved after the transfer", n)
	}

	kept := fileSize(t, dir, "big.part")
	if kept == 0 || kept > sent {
		t.Fatalf(".part has %d bytes, want the ≤%d received", kept, sent)
	}
	if used := diskUsed(t, part); used > kept+64<<10 {
		t.Errorf("kept .part of %d bytes holds %d bytes of disk: the reservation outlived the transfer", kept, used)
	}

	srv.Handle("/big", testserver.StallAfter(-1))
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

// TestReserveBudget: reservations in flight together stay within an eighth of the free space.
func TestReserveBudget(t *testing.T) {
	f := newFetcher(t, nil)
	dir := t.TempDir()
	file, err := openatCreateIn(t, dir, "a.part")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	avail, ok := freeSpace(file)
	if !ok || !fitsHere(t, dir, 1<<20) {
		t.Skip("this filesystem cannot preallocate")
	}
	f.reserved.Store(avail/8 - 1<<19) // others hold nearly the whole budget
	if _, ok := f.reserve(file, 1<<20); ok {
		t.Error("reserved past the budget")
	}
	if n := f.reserved.Load(); n != avail/8-1<<19 {
		t.Errorf("a refused reservation left the budget at %d", n)
	}
	f.reserved.Store(0)
	release, ok := f.reserve(file, 1<<20)
	if !ok || f.reserved.Load() != 1<<20 {
		t.Fatalf("reserve within the budget: %v, %d held", ok, f.reserved.Load())
	}
	release()
	if n := f.reserved.Load(); n != 0 {
		t.Errorf("%d bytes held after release", n)
	}
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

// fitsHere reports whether dir's filesystem can preallocate size bytes within the budget.
func fitsHere(t *testing.T, dir string, size int64) bool {
	p, err := os.CreateTemp(dir, "probe")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(p.Name())
	defer p.Close()
	var fs unix.Statfs_t
	if unix.Statfs(dir, &fs) != nil || !preallocFits(size, int64(fs.Bavail)*int64(fs.Bsize)) {
		return false
	}
	return unix.Fallocate(int(p.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, 1<<20) == nil
}

func diskUsed(t *testing.T, name string) int64 {
	var st syscall.Stat_t
	if err := syscall.Stat(name, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

func openatCreateIn(t *testing.T, dir, name string) (partFile, error) {
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	return openatCreate(int(d.Fd()), name)
}
