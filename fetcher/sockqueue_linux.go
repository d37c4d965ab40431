package fetcher

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// socketQueue is the count of received bytes waiting in the socket rc to be read (SIOCINQ).
func socketQueue(rc syscall.RawConn) (n int, ok bool) {
	err := rc.Control(func(fd uintptr) {
		var err error
		n, err = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		ok = err == nil
	})
	return n, ok && err == nil
}
