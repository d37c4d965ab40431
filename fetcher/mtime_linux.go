package fetcher

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// setMtime sets the modification time through the open descriptor with futimens — utimensat with
// a NULL path, as the C library does it. x/sys/unix's Futimes goes through /proc/self/fd/N
// instead: a path walk in procfs per file.
func setMtime(f partFile, t time.Time) error {
	ts := [2]unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(t.UnixNano())}
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, f.Fd(), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
