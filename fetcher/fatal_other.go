//go:build !unix

package fetcher

import (
	"io/fs"
	"syscall"
)

// fatalErrnos: the output cannot take any more files. Outside Unix only the portable
// conditions are known.
var fatalErrnos = []error{syscall.ENOSPC, fs.ErrPermission}
