package fetcher

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"time"
)

// partMeta is the sidecar <path>.part.meta: which response the bytes in <path>.part came
// from. A .part is resumed only with a validator that proves the server still has the
// same representation (If-Range); without one, appending could splice two versions.
//
// Without Segments, the .part holds the body from byte 0, and its size is where a resume starts.
// With them, it was written in place at offsets (segment.go), its size is the body's, and only the
// ranges Segments says are written hold the body's bytes.
type partMeta struct {
	URL          string `json:"url"` // redacted; a .part left by another URL is not resumed
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// Size is the full length of the body the .part is a prefix of, when the server declared it
	// (0: unknown, or a sidecar of an older trawl). A resume whose Content-Range names another
	// total is of another body, whatever its validator says.
	Size int64 `json:"size,omitempty"`
	// Segments are the ranges of a .part written in segments, in order, covering [0, Size): each
	// [start, next, end) has its bytes [start, next) written from an answer that was checked to be
	// of this body; [next, end) is still to fetch. Absent: the .part is a prefix of the body.
	Segments [][3]int64 `json:"segments,omitempty"`
}

// ifRange is the validator to send in If-Range: a strong ETag, else a strong Last-Modified.
func (m partMeta) ifRange() string {
	if m.ETag != "" {
		return m.ETag
	}
	return m.LastModified
}

// metaFromResponse keeps only strong validators. A weak ETag (W/"…") must not be used in
// If-Range; a Last-Modified is strong only when the response's Date is at least a second
// later (RFC 9110 §8.8.2.2): otherwise the file may have changed again within that second.
func metaFromResponse(rawURL string, h http.Header, size int64) partMeta {
	m := partMeta{URL: redact(rawURL), Size: max(size, 0)}
	if et := h.Get("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
		m.ETag = et
	}
	if lm := h.Get("Last-Modified"); lm != "" {
		lt, err1 := http.ParseTime(lm)
		dt, err2 := http.ParseTime(h.Get("Date"))
		if err1 == nil && err2 == nil && dt.Sub(lt) >= time.Second {
			m.LastModified = lm
		}
	}
	return m
}

// eagerMetaSize: bodies at least this large (or of unknown length) get their sidecar
// before the first byte, so even a kill -9 mid-transfer can resume. Smaller ones get it
// only when a transfer fails: creating a second file per download would double the
// per-file cost of the many-small-files case for little gain.
const eagerMetaSize = 1 << 20

// preallocateSize is the declared length from which a new .part gets its disk reserved up front
// (see reserve): two syscalls more (three if it ends short), worth it for a big file only.
const preallocateSize = 1 << 20

// preallocFits reports whether reservations totalling size may be held with avail bytes free: an
// eighth of them at most.
func preallocFits(size, avail int64) bool { return size >= 0 && avail >= 0 && size <= avail/8 }

// reserve preallocates size bytes for a new .part if the reservations of all transfers in flight
// still fit in an eighth of the free space: a server declaring huge bodies must not take the disk
// from everything else before it has sent them. A transfer that ends short trims its .part back to
// what it received (trimPart), so a reservation never outlives its transfer. release gives the
// budget back.
func (f *Fetcher) reserve(file partFile, size int64) (release func(), ok bool) {
	avail, ok := freeSpace(file)
	if !ok {
		return nil, false
	}
	if total := f.reserved.Add(size); !preallocFits(total, avail) || !preallocate(file, size) {
		f.reserved.Add(-size)
		return nil, false
	}
	return func() { f.reserved.Add(-size) }, true
}

// resumePoint reports how many bytes of <part> can be kept and the validator that must
// guard the append (0: start from zero — no .part, no usable sidecar, or another URL's),
// and whether a sidecar exists that a fresh start must replace or remove. For a .part written
// in segments, the sidecar alone (m.Segments) says what is kept, and offset is 0: its size is not
// a point to append at.
//
// Invariant that makes this safe: a sidecar never outlives the bytes it describes. It is
// written only after its .part was truncated, and removed before its .part is discarded
// or published; a segmented download records a range's progress only after writing it.
func resumePoint(root *os.Root, dirfd int, part, meta, rawURL string) (offset int64, m partMeta, metaFound bool) {
	fi, err := lstatIn(root, dirfd, part)
	if err != nil || !fi.Mode().IsRegular() {
		return 0, partMeta{}, false
	}
	b, err := root.ReadFile(meta)
	if err != nil {
		return 0, partMeta{}, false
	}
	if fi.Size() == 0 || json.Unmarshal(b, &m) != nil || m.URL != redact(rawURL) || m.ifRange() == "" {
		return 0, partMeta{}, true
	}
	if m.Segments != nil {
		if !m.segmentsFit(fi.Size()) {
			return 0, partMeta{}, true
		}
		return 0, m, true
	}
	return fi.Size(), m, true
}

// segmentsFit reports whether m.Segments describe a .part of partSize bytes sanely: ranges in
// order, each start ≤ next ≤ end, covering [0, Size) without gaps, and no written byte past the
// .part's end. Anything else is restarted from zero.
func (m partMeta) segmentsFit(partSize int64) bool {
	if m.Size <= 0 || partSize > m.Size || len(m.Segments) == 0 {
		return false
	}
	at := int64(0)
	for _, r := range m.Segments {
		start, next, end := r[0], r[1], r[2]
		if start != at || next < start || end < next || end == start || next > start && next > partSize {
			return false
		}
		at = end
	}
	return at == m.Size
}

// writeMeta records the validators of a .part. It is called only after the .part was
// truncated, so a crash in between leaves an empty .part (not resumed), never old bytes
// under a new validator. It is not fsynced: a torn sidecar fails to parse and merely
// costs a restart.
func writeMeta(root *os.Root, name string, m partMeta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return root.WriteFile(name, b, 0o644)
}

// discardPart removes a .part that cannot be resumed, sidecar first (see resumePoint).
func discardPart(root *os.Root, part, meta string) {
	_ = removeIfExists(root, meta)
	_ = removeIfExists(root, part)
}

func removeIfExists(root *os.Root, name string) error {
	if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
