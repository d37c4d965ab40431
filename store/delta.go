package store

import (
	"encoding/binary"
	"strings"
)

// A record's Host and Path, and a path reservation's URL, are nearly always pieces of a string
// the reader already has (the URL key, the path key). Storing them as a delta against it — the
// length of the shared prefix, the length of the shared suffix, and the differing middle — cuts
// a record's Host and Path from ~90 bytes to 6 and a reservation from ~60 to ~10. The commonest
// cases take less still: see encodeRecord and encodeReservation.

// appendDelta appends s encoded against base.
func appendDelta(b []byte, base, s string) []byte {
	cp := 0
	for cp < len(base) && cp < len(s) && base[cp] == s[cp] {
		cp++
	}
	cs := 0
	for cs < len(base)-cp && cs < len(s)-cp && base[len(base)-1-cs] == s[len(s)-1-cs] {
		cs++
	}
	b = binary.AppendUvarint(b, uint64(cp))
	b = binary.AppendUvarint(b, uint64(cs))
	return appendString(b, s[cp:len(s)-cs])
}

// delta reads a string written by appendDelta against base.
func (d *decoder) delta(base string) string {
	cp, cs := d.uvarint(), d.uvarint()
	mid := d.bytes(d.uvarint())
	if cp > uint64(len(base)) || cs > uint64(len(base))-cp {
		d.fail()
		return ""
	}
	return base[:cp] + string(mid) + base[uint64(len(base))-cs:]
}

// afterScheme is url without its "scheme://", the base Host and Path are encoded against.
func afterScheme(url string) string {
	if i := strings.Index(url, "://"); i >= 0 {
		return url[i+3:]
	}
	return url
}

// encodeReservation is the value of a paths entry: the URL holding path. The mirror layout's
// usual case, url = "https://" + path, is the single byte mirrorURL (formatVersion "4"; a "3"
// file has none, since a delta takes at least three bytes). The value is never empty: the
// store tells a reserved path by a non-nil Get.
func encodeReservation(path, url string) []byte {
	if len(url) == len(mirrorScheme)+len(path) && strings.HasPrefix(url, mirrorScheme) && strings.HasSuffix(url, path) {
		return []byte{mirrorURL}
	}
	return appendDelta(nil, path, url)
}

const (
	mirrorScheme = "https://"
	mirrorURL    = 0
)

// decodeReservation is the inverse of encodeReservation.
func decodeReservation(path string, v []byte) (string, error) {
	if len(v) == 1 && v[0] == mirrorURL {
		return mirrorScheme + path, nil
	}
	d := decoder{b: v}
	url := d.delta(path)
	if d.err != nil || len(d.b) != 0 {
		return "", errBadRecord
	}
	return url, nil
}

// A queue entry's value is its URL, encoded against the queue's host: "https://host/" is what
// almost every URL of the queue starts with.
func queueBase(host string) string { return "https://" + host + "/" }

func encodeQueued(host, url string) []byte { return appendDelta(nil, queueBase(host), url) }

func decodeQueued(host string, v []byte) (string, error) {
	d := decoder{b: v}
	url := d.delta(queueBase(host))
	if d.err != nil || len(d.b) != 0 {
		return "", errBadRecord
	}
	return url, nil
}
