//go:build unix

package fetcher

import "syscall"

// fatalErrnos: the output cannot take any more files — disk or quota full, read-only
// file system, no permission to write.
var fatalErrnos = []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EACCES, syscall.EPERM}
