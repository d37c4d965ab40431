package testserver

import (
	"hash/fnv"
	"math/rand/v2"
)

// Content returns n deterministic pseudo-random bytes for seed: the same everywhere, so a
// test can compute the expected sha256 without asking the server.
func Content(seed uint64, n int64) []byte {
	b := make([]byte, n)
	r := rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)
	for i := int64(0); i < n; i += 8 {
		v := r.Uint64()
		for j := int64(0); j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// seedOf derives a default seed from a path, so every path serves different bytes.
func seedOf(path string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(path))
	return h.Sum64()
}
