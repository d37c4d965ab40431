package fetcher

import (
	"errors"
	"io"
	"io/fs"
	"os"
)

// createPart creates (or truncates) the transfer's .part. Where the directory's descriptor is at
// hand, one openat does it (see fileops_linux.go); os.Root's OpenFile also makes the descriptor
// non-blocking and back, four fcntl calls and an epoll_ctl a file.
func (t *transfer) createPart() (partFile, error) {
	t.f.dirs.notePart(t.dir, t.part, true) // before: a failed create may still leave one
	if t.dir.fd >= 0 {
		f, err := openatCreate(t.dir.fd, t.part)
		if !errors.Is(err, errSlowPath) {
			return f, err
		}
	}
	return t.dir.r.OpenFile(t.part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
}

// publish renames the complete .part to the file's name, within its directory.
func (t *transfer) publish() error {
	if t.dir.fd >= 0 {
		err := renameat(t.dir.fd, t.part, t.name)
		if !errors.Is(err, errSlowPath) {
			return err
		}
	}
	return t.dir.r.Rename(t.part, t.name)
}

// partFile is an open .part being written: an *os.File, or where it is cheaper a bare descriptor.
type partFile interface {
	io.Writer
	Close() error
	Fd() uintptr
}

// errSlowPath: the fast path does not apply here; use os.Root.
var errSlowPath = errors.New("use os.Root")

// lstatIn is root.Lstat(name) for a single name of the directory root, with one fstatat where
// the directory's descriptor is at hand (os.Root's Lstat costs about four times as much).
func lstatIn(root *os.Root, dirfd int, name string) (fs.FileInfo, error) {
	if dirfd >= 0 {
		fi, err := fstatat(dirfd, name)
		if !errors.Is(err, errSlowPath) {
			return fi, err
		}
	}
	return root.Lstat(name)
}
