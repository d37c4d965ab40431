//go:build linux

package fetcher

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Flush makes everything written under root durable with one syncfs(2) on root's file
// system: one syscall per batch instead of an fsync per file and per directory.
func Flush(root *os.Root) error {
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	rc, err := d.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Syncfs(int(fd)) }); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("syncfs %s: %w", root.Name(), serr)
	}
	return nil
}
