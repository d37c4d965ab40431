package store

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"time"
)

// recordVersion is the first byte of every encoded record. A change to the layout bumps it, so an
// old binary meeting a newer file fails with ErrCorrupt instead of misreading it.
const recordVersion = 1

// Bits of the flags byte.
const (
	flagNextAttempt = 1 << iota // NextAttempt is set (a zero time is not encoded)
	flagUpdated                 // Updated is set
	flagSHARaw                  // SHA256 is 64 lowercase hex digits, stored as 32 raw bytes
	flagTransient               // Transient is set
	flagRequisite               // Requisite is set
	flagAuth                    // Auth is set
)

var errBadRecord = errors.New("malformed record")

// encodeRecord is the compact value stored under the record's URL (the key, so the URL itself is
// not repeated). Layout: version, state, flags, then uvarint queue sequence, Host and Path as
// deltas against the URL (delta.go), other strings as uvarint length + bytes, ints as zigzag
// varints, times as varint unix nanoseconds when their flag is set. A fresh pending record whose
// host and path come from its URL costs about 12 bytes.
//
// seq is the record's sequence in its host's queue: with NextAttempt it forms the queue key, so a
// Pending record can be found in (and removed from) its queue without a scan.
func encodeRecord(r *Record, seq uint64) []byte {
	var flags byte
	if !r.NextAttempt.IsZero() {
		flags |= flagNextAttempt
	}
	if !r.Updated.IsZero() {
		flags |= flagUpdated
	}
	if r.Transient {
		flags |= flagTransient
	}
	if r.Requisite {
		flags |= flagRequisite
	}
	if r.Auth {
		flags |= flagAuth
	}
	var sha []byte
	if isLowerHexSHA256(r.SHA256) {
		flags |= flagSHARaw
		sha, _ = hex.DecodeString(r.SHA256)
	}
	b := make([]byte, 0, 40+len(r.Host)+len(r.Path)+len(r.SHA256)+len(r.ETag)+len(r.LastModified)+
		len(r.ContentType)+len(r.LastError)+len(r.ErrorClass))
	b = append(b, recordVersion, byte(r.State), flags)
	b = binary.AppendUvarint(b, seq)
	base := afterScheme(r.URL)
	b = appendDelta(b, base, r.Host)
	b = appendDelta(b, base, r.Path)
	b = binary.AppendVarint(b, int64(r.Attempts))
	if flags&flagNextAttempt != 0 {
		b = binary.AppendVarint(b, unixNano(r.NextAttempt))
	}
	b = binary.AppendVarint(b, int64(r.Status))
	b = binary.AppendVarint(b, r.Bytes)
	if flags&flagSHARaw != 0 {
		b = append(b, sha...)
	} else {
		b = appendString(b, r.SHA256)
	}
	b = appendString(b, r.ETag)
	b = appendString(b, r.LastModified)
	b = appendString(b, r.ContentType)
	b = appendString(b, r.LastError)
	b = appendString(b, r.ErrorClass)
	b = binary.AppendVarint(b, int64(r.Depth))
	if flags&flagUpdated != 0 {
		b = binary.AppendVarint(b, unixNano(r.Updated))
	}
	return b
}

// decodeRecord parses a value written by encodeRecord. Every string is copied (string(b)), so the
// result is safe to use after the bbolt transaction that produced v has ended. It returns an error,
// never panics, on any malformed input.
func decodeRecord(url string, v []byte) (Record, uint64, error) {
	d := decoder{b: v}
	if d.byte() != recordVersion {
		return Record{}, 0, errBadRecord
	}
	r := Record{URL: url}
	r.State = State(d.byte())
	if r.State < Pending || r.State > Skipped {
		return Record{}, 0, errBadRecord
	}
	flags := d.byte()
	if flags&^(flagNextAttempt|flagUpdated|flagSHARaw|flagTransient|flagRequisite|flagAuth) != 0 {
		return Record{}, 0, errBadRecord
	}
	r.Transient = flags&flagTransient != 0
	r.Requisite = flags&flagRequisite != 0
	r.Auth = flags&flagAuth != 0
	seq := d.uvarint()
	base := afterScheme(url)
	r.Host = d.delta(base)
	r.Path = d.delta(base)
	r.Attempts = d.int()
	if flags&flagNextAttempt != 0 {
		r.NextAttempt = fromUnixNano(d.varint())
	}
	r.Status = d.int()
	r.Bytes = d.varint()
	if flags&flagSHARaw != 0 {
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
	if flags&flagUpdated != 0 {
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
