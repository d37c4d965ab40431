package store

import (
	"golang.org/x/sys/unix"

	bolt "go.etcd.io/bbolt"
)

// dropMapped gives back this process's mapping of the state file's pages (MADV_DONTNEED). They
// stay in the page cache, so the next access is a minor fault, not a read; but pages left alone
// stop counting as trawl's resident memory (see maybeDrop). The read transaction holds off bbolt's
// remapping, so the range is the live mapping of the file and nothing else. The mapping is shared
// and read-only: a page dropped under another reader is faulted back with the same bytes.
func (s *Store) dropMapped() {
	s.readers.RLock()
	defer s.readers.RUnlock()
	_ = s.db.View(func(tx *bolt.Tx) error {
		info := s.db.Info()
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, info.Data, uintptr(tx.Size()), unix.MADV_DONTNEED); errno == 0 {
			s.drops.Add(1)
		}
		return nil
	})
}
