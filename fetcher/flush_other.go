//go:build !unix

package fetcher

import "os"

// Flush is a no-op where neither syncfs(2) nor sync(2) exists (Windows). Durability of
// batches is promised on Linux only; elsewhere an OS crash right after a commit may lose
// files already recorded done.
func Flush(root *os.Root) error { return nil }
