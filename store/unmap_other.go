//go:build !linux

package store

// dropMapped is a no-op here: see unmap_linux.go.
func (s *Store) dropMapped() {}
