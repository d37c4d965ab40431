//go:build unix && !linux

package fetcher

import (
	"os"

	"golang.org/x/sys/unix"
)

// Flush makes everything written under root durable. Without syncfs(2) the closest
// batch-wide call is sync(2): it flushes every file system, which is more than needed but
// still one call per batch.
func Flush(root *os.Root) error {
	unix.Sync()
	return nil
}
