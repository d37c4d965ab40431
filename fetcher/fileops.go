package fetcher

import (
	"errors"
	"os"
)

// createPart creates (or truncates) the transfer's .part. Where the directory's descriptor is at
// hand, one openat does it (see fileops_linux.go); os.Root's OpenFile also makes the descriptor
// non-blocking and back, four fcntl calls and an epoll_ctl a file.
func (t *transfer) createPart() (*os.File, error) {
	if t.dirfd >= 0 {
		f, err := openatCreate(t.dirfd, t.part)
		if !errors.Is(err, errSlowPath) {
			return f, err
		}
	}
	return t.root.OpenFile(t.part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
}

// publish renames the complete .part to the file's name, within its directory.
func (t *transfer) publish() error {
	if t.dirfd >= 0 {
		err := renameat(t.dirfd, t.part, t.name)
		if !errors.Is(err, errSlowPath) {
			return err
		}
	}
	return t.root.Rename(t.part, t.name)
}

// errSlowPath: the fast path does not apply here; use os.Root.
var errSlowPath = errors.New("use os.Root")
