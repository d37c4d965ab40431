package store

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"time"
)

// recordVersion is the first byte of every encoded record. A change to the layout bumps it, so an
// old binary meeting a newer file fails with ErrCorrupt instead of misreading it. Records of
// version 1 (formatVersion "3" files) are still read; every write is version 2.
const (
	recordVersion   = 2
	recordVersionV1 = 1
)

// Bits of a version 2 record's flags (a uvarint). The ones a fresh pending record may have come
// first, so its flags take one byte; a field whose bit is clear is its zero value, not stored.
const (
	flagHostPrefix   = 1 << iota // Host is the start of the URL after "scheme://": stored as its length
	flagPathIsURL                // Path is the URL after "scheme://" (the mirror layout): not stored
	flagRequisite                // Requisite is set
	flagDepth                    // Depth is stored
	flagNextAttempt              // NextAttempt is set (a zero time is not encoded)
	flagAuth                     // Auth is set
	flagTransient                // Transient is set
	flagUpdated                  // Updated is set
	flagSHARaw                   // SHA256 is 64 lowercase hex digits, stored as 32 raw bytes
	flagSHA                      // SHA256 is stored as a string
	flagAttempts                 // Attempts is stored
	flagStatus                   // Status is stored
	flagBytes                    // Bytes is stored
	flagETag                     // ETag is stored
	flagLastModified             // LastModified is stored
	flagContentType              // ContentType is stored
	flagLastError                // LastError is stored
	flagErrorClass               // ErrorClass is stored
	// formatVersion "5":
	flagLastModifiedTime // LastModified is an IMF-fixdate, stored as varint unix seconds
	flagContentTypeCode  // ContentType is contentTypes[code], stored as that byte
	// formatVersion "7":
	flagLastmod // Lastmod (a sitemap's word) is stored
	flagListed  // Listed is stored
	// formatVersion "8":
	flagWant   // WantSHA256 (64 lowercase hex digits) is stored as 32 raw bytes
	flagNamed  // Named is set
	flagsKnown = 1<<iota - 1
)

// httpDate is the IMF-fixdate layout of HTTP dates (net/http's TimeFormat). A Last-Modified in
// exactly this form, as nearly every server sends it, is stored as seconds: 5 bytes, not 30.
const httpDate = "Mon, 02 Jan 2006 15:04:05 GMT"

// contentTypes are the Content-Types stored as one byte. Append only: the index is the format.
var contentTypes = [...]string{
	"text/html", "text/html; charset=utf-8", "text/html; charset=UTF-8", "text/css",
	"text/plain", "text/plain; charset=utf-8", "application/javascript", "text/javascript",
	"application/json", "application/xml", "text/xml", "application/octet-stream",
	"application/pdf", "application/zip", "application/gzip", "image/jpeg", "image/png",
	"image/gif", "image/webp", "image/svg+xml", "image/avif", "image/x-icon",
	"image/vnd.microsoft.icon", "font/woff2", "font/woff", "video/mp4", "audio/mpeg",
}

// compactValues is off only in tests, to write records as formatVersion "4" did.
var compactValues = true

// lastModifiedTime returns s as unix seconds if it is an IMF-fixdate that formats back to s.
func lastModifiedTime(s string) (int64, bool) {
	if len(s) != len(httpDate) || !compactValues {
		return 0, false
	}
	t, err := time.Parse(httpDate, s)
	if err != nil || t.Format(httpDate) != s {
		return 0, false
	}
	return t.Unix(), true
}

// contentTypeCode returns s's index in contentTypes.
func contentTypeCode(s string) (byte, bool) {
	if !compactValues {
		return 0, false
	}
	for i, ct := range contentTypes {
		if ct == s {
			return byte(i), true
		}
	}
	return 0, false
}

var errBadRecord = errors.New("malformed record")

// encodeRecord is the compact value stored under the record's URL (the key, so the URL itself is
// not repeated). Layout: version, state, uvarint flags, uvarint queue sequence, then Host (its
// length when it starts the URL, else a delta against the URL: delta.go), Path (nothing when it
// is the URL after its scheme, else a delta), then only the fields whose flag is set: strings as
// uvarint length + bytes, ints as zigzag varints, times as varint unix nanoseconds; then a
// Last-Modified that is an IMF-fixdate as varint unix seconds, a common Content-Type as its index
// in contentTypes, and last a sitemap's Lastmod and Listed. A fresh pending record of a mirror job
// costs 6 or 7 bytes; a done one with its sha256, Last-Modified and Content-Type about 60.
//
// It is long because it writes the fields one after another in the format's order, which
// decodeRecord reads back in the same order: kept whole, the two read side by side.
//
// seq is the record's sequence in its host's queue: with NextAttempt it forms the queue key, so a
// Pending record can be found in (and removed from) its queue without a scan.
func encodeRecord(r *Record, seq uint64) []byte {
	base := afterScheme(r.URL)
	var flags uint64
	set := func(bit uint64, on bool) {
		if on {
			flags |= bit
		}
	}
	set(flagHostPrefix, strings.HasPrefix(base, r.Host))
	set(flagPathIsURL, r.Path == base)
	set(flagRequisite, r.Requisite)
	set(flagDepth, r.Depth != 0)
	set(flagNextAttempt, !r.NextAttempt.IsZero())
	set(flagAuth, r.Auth)
	set(flagNamed, r.Named)
	set(flagTransient, r.Transient)
	set(flagUpdated, !r.Updated.IsZero())
	set(flagSHARaw, isLowerHexSHA256(r.SHA256))
	set(flagSHA, r.SHA256 != "" && flags&flagSHARaw == 0)
	set(flagAttempts, r.Attempts != 0)
	set(flagStatus, r.Status != 0)
	set(flagBytes, r.Bytes != 0)
	set(flagETag, r.ETag != "")
	lmTime, lmCompact := lastModifiedTime(r.LastModified)
	set(flagLastModifiedTime, lmCompact)
	set(flagLastModified, r.LastModified != "" && !lmCompact)
	ctCode, ctCompact := contentTypeCode(r.ContentType)
	set(flagContentTypeCode, ctCompact)
	set(flagContentType, r.ContentType != "" && !ctCompact)
	set(flagLastError, r.LastError != "")
	set(flagErrorClass, r.ErrorClass != "")
	set(flagLastmod, !r.Lastmod.IsZero())
	set(flagListed, !r.Listed.IsZero())
	set(flagWant, isLowerHexSHA256(r.WantSHA256)) // validNew and Commit refuse any other

	b := make([]byte, 0, 48+len(r.ETag)+len(r.LastModified)+len(r.ContentType)+len(r.LastError)+len(r.ErrorClass))
	b = append(b, recordVersion, byte(r.State))
	b = binary.AppendUvarint(b, flags)
	b = binary.AppendUvarint(b, seq)
	if flags&flagHostPrefix != 0 {
		b = binary.AppendUvarint(b, uint64(len(r.Host)))
	} else {
		b = appendDelta(b, base, r.Host)
	}
	if flags&flagPathIsURL == 0 {
		b = appendDelta(b, base, r.Path)
	}
	if flags&flagDepth != 0 {
		b = binary.AppendVarint(b, int64(r.Depth))
	}
	if flags&flagNextAttempt != 0 {
		b = binary.AppendVarint(b, unixNano(r.NextAttempt))
	}
	if flags&flagUpdated != 0 {
		b = binary.AppendVarint(b, unixNano(r.Updated))
	}
	if flags&flagSHARaw != 0 {
		sha, _ := hex.DecodeString(r.SHA256)
		b = append(b, sha...)
	}
	if flags&flagSHA != 0 {
		b = appendString(b, r.SHA256)
	}
	for _, f := range []struct {
		bit uint64
		v   int64
	}{{flagAttempts, int64(r.Attempts)}, {flagStatus, int64(r.Status)}, {flagBytes, r.Bytes}} {
		if flags&f.bit != 0 {
			b = binary.AppendVarint(b, f.v)
		}
	}
	for _, f := range []struct {
		bit uint64
		v   string
	}{{flagETag, r.ETag}, {flagLastModified, r.LastModified}, {flagContentType, r.ContentType},
		{flagLastError, r.LastError}, {flagErrorClass, r.ErrorClass}} {
		if flags&f.bit != 0 {
			b = appendString(b, f.v)
		}
	}
	if lmCompact {
		b = binary.AppendVarint(b, lmTime)
	}
	if ctCompact {
		b = append(b, ctCode)
	}
	if flags&flagLastmod != 0 {
		b = binary.AppendVarint(b, unixNano(r.Lastmod))
	}
	if flags&flagListed != 0 {
		b = binary.AppendVarint(b, unixNano(r.Listed))
	}
	if flags&flagWant != 0 {
		want, _ := hex.DecodeString(r.WantSHA256)
		b = append(b, want...)
	}
	return b
}

// hasWant reports whether the encoded record v has a WantSHA256, without decoding it: an enqueue
// of a list read again looks at every known URL's.
func hasWant(v []byte) bool {
	if len(v) < 3 || v[0] != recordVersion {
		return false // version 1 records have none
	}
	flags, n := binary.Uvarint(v[2:])
	return n > 0 && flags&flagWant != 0
}

// decodeRecord parses a value written by encodeRecord (or by a version 1 writer). Strings read
// from v are copied (string(b)); Host and Path may be substrings of url, so url must be a string
// the caller owns (string(k) of a bbolt key is a copy), never one that points into the mapping.
// Then the result is safe to use after the transaction that produced v has ended. It returns an
// error, never panics, on any malformed input. Its length is encodeRecord's, field for field.
func decodeRecord(url string, v []byte) (Record, uint64, error) {
	d := decoder{b: v}
	switch d.byte() {
	case recordVersion:
	case recordVersionV1:
		return decodeRecordV1(url, v)
	default:
		return Record{}, 0, errBadRecord
	}
	r := Record{URL: url}
	r.State = State(d.byte())
	if r.State < Pending || r.State > Skipped {
		return Record{}, 0, errBadRecord
	}
	flags := d.uvarint()
	if flags&^flagsKnown != 0 || flags&flagSHARaw != 0 && flags&flagSHA != 0 ||
		flags&flagLastModified != 0 && flags&flagLastModifiedTime != 0 ||
		flags&flagContentType != 0 && flags&flagContentTypeCode != 0 {
		return Record{}, 0, errBadRecord
	}
	r.Requisite = flags&flagRequisite != 0
	r.Auth = flags&flagAuth != 0
	r.Named = flags&flagNamed != 0
	r.Transient = flags&flagTransient != 0
	seq := d.uvarint()
	base := afterScheme(url)
	if flags&flagHostPrefix != 0 {
		n := d.uvarint()
		if n > uint64(len(base)) {
			return Record{}, 0, errBadRecord
		}
		r.Host = base[:n]
	} else {
		r.Host = d.delta(base)
	}
	if flags&flagPathIsURL != 0 {
		r.Path = base
	} else {
		r.Path = d.delta(base)
	}
	if flags&flagDepth != 0 {
		r.Depth = d.int()
	}
	if flags&flagNextAttempt != 0 {
		r.NextAttempt = fromUnixNano(d.varint())
	}
	if flags&flagUpdated != 0 {
		r.Updated = fromUnixNano(d.varint())
	}
	if flags&flagSHARaw != 0 {
		r.SHA256 = hex.EncodeToString(d.bytes(32))
	}
	if flags&flagSHA != 0 {
		r.SHA256 = d.string()
	}
	if flags&flagAttempts != 0 {
		r.Attempts = d.int()
	}
	if flags&flagStatus != 0 {
		r.Status = d.int()
	}
	if flags&flagBytes != 0 {
		r.Bytes = d.varint()
	}
	for _, f := range []struct {
		bit uint64
		v   *string
	}{{flagETag, &r.ETag}, {flagLastModified, &r.LastModified}, {flagContentType, &r.ContentType},
		{flagLastError, &r.LastError}, {flagErrorClass, &r.ErrorClass}} {
		if flags&f.bit != 0 {
			*f.v = d.string()
		}
	}
	if flags&flagLastModifiedTime != 0 {
		r.LastModified = time.Unix(d.varint(), 0).UTC().Format(httpDate)
	}
	if flags&flagContentTypeCode != 0 {
		if code := int(d.byte()); code < len(contentTypes) {
			r.ContentType = contentTypes[code]
		} else {
			d.fail()
		}
	}
	if flags&flagLastmod != 0 {
		r.Lastmod = fromUnixNano(d.varint())
	}
	if flags&flagListed != 0 {
		r.Listed = fromUnixNano(d.varint())
	}
	if flags&flagWant != 0 {
		r.WantSHA256 = hex.EncodeToString(d.bytes(32))
	}
	if d.err != nil || len(d.b) != 0 {
		return Record{}, 0, errBadRecord
	}
	return r, seq, nil
}

// Bits of a version 1 record's flags byte.
const (
	v1NextAttempt = 1 << iota
	v1Updated
	v1SHARaw
	v1Transient
	v1Requisite
	v1Auth
)

// decodeRecordV1 reads the version 1 layout: version, state, flags byte, uvarint sequence, Host
// and Path as deltas, then every field in turn.
func decodeRecordV1(url string, v []byte) (Record, uint64, error) {
	d := decoder{b: v[1:]}
	r := Record{URL: url}
	r.State = State(d.byte())
	if r.State < Pending || r.State > Skipped {
		return Record{}, 0, errBadRecord
	}
	flags := d.byte()
	if flags&^(v1NextAttempt|v1Updated|v1SHARaw|v1Transient|v1Requisite|v1Auth) != 0 {
		return Record{}, 0, errBadRecord
	}
	r.Transient = flags&v1Transient != 0
	r.Requisite = flags&v1Requisite != 0
	r.Auth = flags&v1Auth != 0
	seq := d.uvarint()
	base := afterScheme(url)
	r.Host = d.delta(base)
	r.Path = d.delta(base)
	r.Attempts = d.int()
	if flags&v1NextAttempt != 0 {
		r.NextAttempt = fromUnixNano(d.varint())
	}
	r.Status = d.int()
	r.Bytes = d.varint()
	if flags&v1SHARaw != 0 {
		r.SHA256 = hex.EncodeToString(d.bytes(32))
	} else {
		r.SHA256 = d.string()
	}
	r.ETag = d.string()
	r.LastModified = d.string()
	r.ContentType = d.string()
	r.LastError = d.string()
	r.ErrorClass = d.string()
	r.Depth = d.int()
	if flags&v1Updated != 0 {
		r.Updated = fromUnixNano(d.varint())
	}
	if d.err != nil || len(d.b) != 0 {
		return Record{}, 0, errBadRecord
	}
	return r, seq, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func isLowerHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// decoder reads an encoded record; the first error sticks and later reads return zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err, d.b = errBadRecord, nil }

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int {
	v := d.varint()
	if v < math.MinInt || v > math.MaxInt {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *decoder) bytes(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) string() string { return string(d.bytes(d.uvarint())) }

// unixNano is t.UnixNano clamped to the representable range (UnixNano is undefined outside
// 1678..2262), so an absurd retry time sorts last instead of wrapping around to first.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// fromUnixNano is the inverse of unixNano; times come back in UTC.
func fromUnixNano(n int64) time.Time { return time.Unix(0, n).UTC() }

// queueKey is a record's key in its host's queue bucket: 8 bytes of due time then 8 bytes of
// sequence, both big-endian, so bbolt's byte order is due order, FIFO among equal times.
func queueKey(t time.Time, seq uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, dueKey(t))
	binary.BigEndian.PutUint64(k[8:], seq)
	return k
}

// dueKey maps a time to an unsigned key that sorts like the time: zero time (due immediately) is
// 0, otherwise unix nanoseconds with the sign bit flipped.
func dueKey(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(unixNano(t)) ^ 1<<63
}

// dueTime is the inverse of dueKey.
func dueTime(k uint64) time.Time {
	if k == 0 {
		return time.Time{}
	}
	return fromUnixNano(int64(k ^ 1<<63))
}
