//go:build unix && !linux

package fetcher

import (
	"time"

	"golang.org/x/sys/unix"
)

// setMtime sets the modification time through the open descriptor: one syscall, where a
// Chtimes by name through os.Root costs a path walk, a readlink and the utimensat.
func setMtime(f partFile, t time.Time) error {
	tv := unix.NsecToTimeval(t.UnixNano())
	return unix.Futimes(int(f.Fd()), []unix.Timeval{tv, tv})
}
