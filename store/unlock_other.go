//go:build !unix

package store

import "os"

// unlockFile is a no-op where bbolt's lock is released by closing the file.
func unlockFile(*os.File) {}
