//go:build !linux

package fetcher

import "syscall"

// socketQueue cannot tell here: every connection is taken to be limited by the network.
func socketQueue(syscall.RawConn) (int, bool) { return 0, false }
