package store

import (
	"encoding/binary"
	"hash/fnv"
	"io"
	"os"
)

// bbolt's meta page layout (internal/common/meta.go): a 16-byte page header, then magic, version,
// page size, flags (uint32 each), root bucket (pgid, sequence), freelist pgid, high-water pgid,
// txid and an FNV-64a checksum of the fields before it, in the machine's byte order.
const (
	boltMagic    = 0xED0CDAED
	boltVersion  = 2
	metaOff      = 16
	metaSumLen   = 56 // bytes of meta covered by the checksum
	metaPageSize = metaOff + metaSumLen + 8
)

// checkTruncated reports a file whose newest valid meta page says the database extends past the
// end of the file. bbolt would memory-map it and fault on the missing pages — in its own goroutine
// when it rebuilds the freelist, where no recover can catch it — so we look before bbolt does.
// Files bbolt cannot identify at all are left to bbolt, which reports them as invalid.
func checkTruncated(path string) error {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size == 0 {
		return nil
	}
	type meta struct {
		ok                  bool
		pageSize, pgid, txd uint64
	}
	read := func(off int64) meta {
		buf := make([]byte, metaPageSize)
		if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
			return meta{}
		}
		m := buf[metaOff:]
		h := fnv.New64a()
		h.Write(m[:metaSumLen])
		if binary.NativeEndian.Uint32(m) != boltMagic || binary.NativeEndian.Uint32(m[4:]) != boltVersion ||
			binary.NativeEndian.Uint64(m[metaSumLen:]) != h.Sum64() {
			return meta{}
		}
		return meta{ok: true, pageSize: uint64(binary.NativeEndian.Uint32(m[8:])),
			pgid: binary.NativeEndian.Uint64(m[40:]), txd: binary.NativeEndian.Uint64(m[48:])}
	}
	m0 := read(0)
	second := int64(os.Getpagesize())
	if m0.ok {
		second = int64(m0.pageSize)
	}
	m1 := read(second)
	m := m0
	if m1.ok && (!m0.ok || m1.txd > m0.txd) {
		m = m1
	}
	if !m.ok || m.pageSize == 0 {
		return nil
	}
	if need := m.pgid * m.pageSize; need > uint64(size) || need/m.pageSize != m.pgid {
		return corrupt(path, "truncated: %d bytes, the database needs %d", size, need)
	}
	return nil
}
