package fetcher

import (
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// openatCreate opens name, a single path component, in the directory dirfd. The directory was
// opened through the output's os.Root, so it is inside it; O_NOFOLLOW keeps a symlink at name from
// leading elsewhere (os.Root handles that case: it may follow links that stay inside the root).
func openatCreate(dirfd int, name string) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	switch err {
	case nil:
		return os.NewFile(uintptr(fd), name), nil
	case unix.ELOOP, unix.EINTR:
		return nil, errSlowPath
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: err}
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
