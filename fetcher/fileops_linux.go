package fetcher

import (
	"io"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// openatCreate opens name, a single path component, in the directory dirfd. The directory was
// opened through the output's os.Root, so it is inside it; O_NOFOLLOW keeps a symlink at name from
// leading elsewhere (os.Root handles that case: it may follow links that stay inside the root).
//
// The result is a bare descriptor, not an *os.File: os.NewFile costs an fcntl and a cleanup
// registration per file, and nothing here needs the poller.
func openatCreate(dirfd int, name string) (partFile, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	switch err {
	case nil:
		return &rawFile{fd: fd, name: name}, nil
	case unix.ELOOP, unix.EINTR:
		return nil, errSlowPath
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: err}
}

// rawFile is a file open for writing, as a bare descriptor.
type rawFile struct {
	fd   int
	name string
}

// Write writes all of p, like os.File.Write: a short write is continued, EINTR retried.
func (f *rawFile) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Write(f.fd, p[n:])
		if m > 0 {
			n += m
		}
		switch {
		case err == unix.EINTR:
		case err != nil:
			return n, &fs.PathError{Op: "write", Path: f.name, Err: err}
		case m == 0:
			return n, &fs.PathError{Op: "write", Path: f.name, Err: io.ErrShortWrite}
		}
	}
	return n, nil
}

func (f *rawFile) Fd() uintptr { return uintptr(f.fd) }

// Close closes the descriptor once; its error (say, a delayed write failure) is returned.
func (f *rawFile) Close() error {
	if f.fd < 0 {
		return fs.ErrClosed
	}
	err := unix.Close(f.fd)
	f.fd = -1
	if err != nil {
		return &fs.PathError{Op: "close", Path: f.name, Err: err}
	}
	return nil
}

// renameat renames from to to, both single components of the directory dirfd. Unlike
// os.Root.Rename it does not look at the destination first: renaming a file over a directory
// fails with EISDIR all the same.
func renameat(dirfd int, from, to string) error {
	if err := unix.Renameat(dirfd, from, dirfd, to); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// fstatat is Lstat of name in the directory dirfd.
func fstatat(dirfd int, name string) (fs.FileInfo, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	return statInfo{name: name, st: st}, nil
}

// statInfo is the fs.FileInfo of a unix.Stat_t.
type statInfo struct {
	name string
	st   unix.Stat_t
}

func (s statInfo) Name() string       { return s.name }
func (s statInfo) Size() int64        { return s.st.Size }
func (s statInfo) ModTime() time.Time { return time.Unix(s.st.Mtim.Unix()) }
func (s statInfo) IsDir() bool        { return s.Mode().IsDir() }
func (s statInfo) Sys() any           { return &s.st }
func (s statInfo) Mode() fs.FileMode {
	m := fs.FileMode(s.st.Mode & 0o777)
	switch s.st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFREG:
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	default:
		m |= fs.ModeIrregular
	}
	return m
}

// preallocate reserves size bytes of disk for f without changing its size (FALLOC_FL_KEEP_SIZE):
// the size of a .part must stay the count of bytes received, which is where a resume starts. The
// filesystem then lays the file out in one piece and does not allocate as it grows (4 x 256 MiB to
// tmpfs, five A/B sets of 7-9 interleaved rounds: wall 4-8% shorter, CPU 1-8% less). It reports
// false where the filesystem cannot.
func preallocate(f partFile, size int64) bool {
	return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, size) == nil
}

// freeSpace is the space left to an unprivileged writer on f's filesystem.
func freeSpace(f partFile) (int64, bool) {
	var fs unix.Statfs_t
	if unix.Fstatfs(int(f.Fd()), &fs) != nil {
		return 0, false
	}
	return int64(fs.Bavail) * int64(fs.Bsize), true
}

// trimPart gives back what f has reserved past size, its end.
func trimPart(f partFile, size int64) { _ = unix.Ftruncate(int(f.Fd()), size) }

// punchHole gives back the disk under [off, off+n) of f, keeping its size: the ranges of a kept
// segmented .part that were reserved (see reserve) but never written.
func punchHole(f partFile, off, n int64) {
	if n > 0 {
		_ = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	}
}
