package store

import (
	"encoding/binary"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleRecord() Record {
	return Record{
		URL: "https://images.example.org/gallery/2026/11/22/photo-000123.jpg", Host: "images.example.org",
		Path: "images.example.org/gallery/2026/11/22/photo-000123.jpg", State: Done, Attempts: 2,
		NextAttempt: time.Unix(1_790_000_000, 123).UTC(), Status: 200, Bytes: 1 << 20,
		SHA256: strings.Repeat("ab", 32), ETag: `"abc"`, LastModified: "Sun, 22 Nov 2026 01:02:03 GMT",
		ContentType: "image/jpeg", LastError: "", ErrorClass: "", Depth: 3, Updated: time.Unix(1_790_000_100, 0).UTC(),
	}
}

func TestRecordRoundTrip(t *testing.T) {
	pending := Record{URL: "https://a/x", Host: "a", Path: "a/x", State: Pending}
	upper := sampleRecord()
	upper.SHA256 = strings.ToUpper(upper.SHA256) // not the raw form: kept as a string
	neg := Record{URL: "u", Host: "h", State: Failed, Attempts: -1, Status: -2, Bytes: -3, Depth: -4,
		NextAttempt: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)} // before 1678: clamped
	named := Record{URL: "https://a/dl.php?id=1", Host: "a", Path: "a/naïve file.txt", Named: true, State: Leased}
	tests := []struct {
		name string
		r    Record
		seq  uint64
		want Record
	}{
		{"fresh pending", pending, 1, pending},
		{"done", sampleRecord(), 0, sampleRecord()},
		{"uppercase sha", upper, 1 << 60, upper},
		{"out of range", neg, 7, func() Record { r := neg; r.NextAttempt = minTime.UTC(); return r }()},
		{"a sitemap's word", func() Record {
			r := sampleRecord()
			r.Lastmod, r.Listed = time.Unix(1_700_000_000, 5).UTC(), time.Unix(1_790_000_200, 0).UTC()
			return r
		}(), 0, func() Record {
			r := sampleRecord()
			r.Lastmod, r.Listed = time.Unix(1_700_000_000, 5).UTC(), time.Unix(1_790_000_200, 0).UTC()
			return r
		}()},
		{"a pending record listed", Record{URL: "https://a/x", Host: "a", Path: "a/x", State: Pending, Depth: 1,
			Lastmod: time.Unix(1, 0).UTC(), Listed: time.Unix(2, 0).UTC()}, 3, Record{URL: "https://a/x", Host: "a", Path: "a/x",
			State: Pending, Depth: 1, Lastmod: time.Unix(1, 0).UTC(), Listed: time.Unix(2, 0).UTC()}},
		{"named", named, 3, named},
	}
	// Last-Modified and Content-Type are stored compactly only when they decode to the same
	// string; every other value is kept as it came.
	for _, v := range []struct{ lm, ct string }{
		{"Sun, 06 Nov 1994 08:49:37 GMT", "text/html; charset=utf-8"},
		{"Mon, 22 Nov 2026 01:02:03 GMT", "image/x-foo"}, // wrong weekday
		{"Sunday, 06-Nov-94 08:49:37 GMT", "Image/JPEG"}, // RFC 850
		{"Sun Nov  6 08:49:37 1994", "image/jpeg "},      // asctime
		{"Sun, 6 Nov 1994 08:49:37 GMT", ""},
		{"Sun, 06 Nov 1994 08:49:37 UTC", "image/avif"},
		{"Thu, 01 Jan 1970 00:00:00 GMT", "audio/mpeg"},
		{"Fri, 31 Dec 9999 23:59:59 GMT", "x"},
	} {
		r := sampleRecord()
		r.LastModified, r.ContentType = v.lm, v.ct
		tests = append(tests, struct {
			name string
			r    Record
			seq  uint64
			want Record
		}{"validators " + v.lm + " " + v.ct, r, 0, r})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encodeRecord(&tt.r, tt.seq)
			got, seq, err := decodeRecord(tt.r.URL, b)
			if err != nil || seq != tt.seq || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decode = %+v, %d, %v\nwant %+v, %d", got, seq, err, tt.want, tt.seq)
			}
		})
	}
	// An IMF-fixdate Last-Modified and a common Content-Type cost a few bytes, not 40.
	done := sampleRecord()
	without := done
	without.LastModified, without.ContentType = "", ""
	if n := len(encodeRecord(&done, 0)) - len(encodeRecord(&without, 0)); n > 7 {
		t.Errorf("Last-Modified %q and Content-Type %q cost %d bytes", done.LastModified, done.ContentType, n)
	}
	// A typical fresh record must stay small: the URL is the key, not repeated here.
	r := Record{URL: "https://images.example.org/gallery/photo-000123.jpg", Host: "images.example.org", Path: "images.example.org/gallery/photo-000123.jpg", State: Pending}
	if n := len(encodeRecord(&r, 123456)); n > 8 {
		t.Errorf("fresh record encodes to %d bytes", n)
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	good := encodeRecord(&Record{Host: "h", State: Pending}, 1) // flags: HostPrefix only
	withFlags := func(flags uint64, rest ...byte) []byte {
		return append(binary.AppendUvarint([]byte{recordVersion, byte(Pending)}, flags), rest...)
	}
	tests := map[string][]byte{
		"empty":              nil,
		"bad version":        append([]byte{9}, good[1:]...),
		"bad state":          append([]byte{good[0], 9}, good[2:]...),
		"unknown flag":       withFlags(flagHostPrefix|flagPathIsURL|(flagsKnown+1), 1, 0),
		"raw and string sha": withFlags(flagHostPrefix|flagPathIsURL|flagSHARaw|flagSHA, append(append([]byte{1, 0}, make([]byte, 32)...), 0)...),
		"host past the URL":  withFlags(flagHostPrefix|flagPathIsURL, 1, 99),
		"truncated":          good[:len(good)-1],
		"trailing bytes":     append(append([]byte(nil), good...), 0),
		"huge string":        withFlags(flagHostPrefix|flagPathIsURL|flagETag, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f),
		"two Last-Modifieds": withFlags(flagHostPrefix|flagPathIsURL|flagLastModified|flagLastModifiedTime, 1, 0, 1, 'x', 2),
		"two Content-Types":  withFlags(flagHostPrefix|flagPathIsURL|flagContentType|flagContentTypeCode, 1, 0, 1, 'x', 0),
		"no such type code":  withFlags(flagHostPrefix|flagPathIsURL|flagContentTypeCode, 1, 0, byte(len(contentTypes))),
		"missing type code":  withFlags(flagHostPrefix|flagPathIsURL|flagContentTypeCode, 1, 0),
		"v1 truncated":       {recordVersionV1, byte(Pending), 0, 1},
		"v1 unknown flag":    {recordVersionV1, byte(Pending), 0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if r, _, err := decodeRecord("u", b); err == nil {
				t.Errorf("decoded %+v", r)
			}
		})
	}
}

// TestRecordV1StillRead: records written by the version 1 layout (formatVersion "3" files) decode
// to what was written.
func TestRecordV1StillRead(t *testing.T) {
	upper := sampleRecord()
	upper.SHA256 = strings.ToUpper(upper.SHA256)
	for _, r := range []Record{
		{URL: "https://a/x", Host: "a", Path: "a/x", State: Pending},
		{URL: "https://a/x?q", Host: "a", Path: "other/name", State: Pending, Requisite: true, Auth: true, Depth: 2},
		sampleRecord(),
		upper,
		{URL: "https://a/y", Host: "a", Path: "a/y", State: Failed, Attempts: 3, Transient: true, LastError: "reset", ErrorClass: "network"},
	} {
		got, seq, err := decodeRecord(r.URL, encodeRecordV1(&r, 42))
		if err != nil || seq != 42 || !reflect.DeepEqual(got, r) {
			t.Errorf("v1 %s: %+v, %d, %v", r.URL, got, seq, err)
		}
	}
}

// encodeRecordV1 is the version 1 encoder, kept to make the records an older trawl wrote.
func encodeRecordV1(r *Record, seq uint64) []byte {
	var flags byte
	if !r.NextAttempt.IsZero() {
		flags |= v1NextAttempt
	}
	if !r.Updated.IsZero() {
		flags |= v1Updated
	}
	if r.Transient {
		flags |= v1Transient
	}
	if r.Requisite {
		flags |= v1Requisite
	}
	if r.Auth {
		flags |= v1Auth
	}
	var sha []byte
	if isLowerHexSHA256(r.SHA256) {
		flags |= v1SHARaw
		sha, _ = hex.DecodeString(r.SHA256)
	}
	b := make([]byte, 0, 40+len(r.Host)+len(r.Path)+len(r.SHA256)+len(r.ETag)+len(r.LastModified)+
		len(r.ContentType)+len(r.LastError)+len(r.ErrorClass))
	b = append(b, recordVersionV1, byte(r.State), flags)
	b = binary.AppendUvarint(b, seq)
	base := afterScheme(r.URL)
	b = appendDelta(b, base, r.Host)
	b = appendDelta(b, base, r.Path)
	b = binary.AppendVarint(b, int64(r.Attempts))
	if flags&v1NextAttempt != 0 {
		b = binary.AppendVarint(b, unixNano(r.NextAttempt))
	}
	b = binary.AppendVarint(b, int64(r.Status))
	b = binary.AppendVarint(b, r.Bytes)
	if flags&v1SHARaw != 0 {
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
	if flags&v1Updated != 0 {
		b = binary.AppendVarint(b, unixNano(r.Updated))
	}
	return b
}

func TestQueueKeyOrder(t *testing.T) {
	times := []time.Time{{}, time.Unix(-5, 0), time.Unix(0, 0), time.Unix(0, 1), t0, t0.Add(time.Nanosecond),
		time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i := 1; i < len(times); i++ {
		a, b := string(queueKey(times[i-1], 9)), string(queueKey(times[i], 1))
		if a >= b {
			t.Errorf("key(%v) >= key(%v)", times[i-1], times[i])
		}
	}
	if got := dueTime(dueKey(t0)); !got.Equal(t0) {
		t.Errorf("dueTime(dueKey(%v)) = %v", t0, got)
	}
}

// FuzzDecodeRecord: the decoder never panics on arbitrary bytes, and whatever it accepts
// re-encodes to bytes that decode to the same record.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte{})
	f.Add(encodeRecord(&Record{Host: "h", Path: "p", State: Pending}, 1))
	s := sampleRecord()
	f.Add(encodeRecord(&s, 0))
	f.Add(encodeRecordV1(&s, 0))
	f.Add(encodeRecord(&Record{URL: "https://x/", Host: "y", Path: "z", State: Failed, LastError: "e"}, 3))
	f.Add(encodeRecord(&Record{URL: "https://x/", Host: "x", Path: "x/", State: Pending, WantSHA256: strings.Repeat("9f", 32)}, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, seq, err := decodeRecord("https://x/", b)
		if err != nil {
			return
		}
		r2, seq2, err := decodeRecord(r.URL, encodeRecord(&r, seq))
		if err != nil || seq2 != seq || !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip: %+v, %d, %v\nwant %+v, %d", r2, seq2, err, r, seq)
		}
	})
}

// FuzzRecordRoundTrip: encode → decode gives back every field (times in UTC, clamped to the
// range of UnixNano).
func FuzzRecordRoundTrip(f *testing.F) {
	f.Add("u", uint8(1), "h", "p", 0, int64(0), 200, int64(10), strings.Repeat("0f", 32), "e", "lm", "ct", "err", "cls", 0, int64(0), uint64(1), int64(0), int64(0), "")
	f.Add("https://a.example/x/y.jpg", uint8(1), "a.example", "a.example/x/y.jpg", 0, int64(0), 0, int64(0), "", "", "", "", "", "", 0, int64(0), uint64(7), int64(0), int64(0), strings.Repeat("1e", 32))
	f.Add("https://a.example/x.jpg", uint8(2), "a.example", "a.example/x.jpg", 1, int64(0), 200, int64(10), strings.Repeat("0f", 32), "", "Sun, 06 Nov 1994 08:49:37 GMT", "image/jpeg", "", "", 0, int64(9), uint64(0), int64(0), int64(0), strings.Repeat("0f", 32))
	f.Add("https://a.example/x?q", uint8(2), "a.example", "a.example/x_q", 1, int64(5), 200, int64(10), strings.Repeat("0F", 32), "e", "lm", "ct", "", "", 2, int64(9), uint64(7), int64(3), int64(4), "")
	f.Fuzz(func(t *testing.T, url string, state uint8, host, path string, attempts int, next int64, status int, size int64,
		sha, etag, lm, ct, lastErr, class string, depth int, updated int64, seq uint64, lastmod, listed int64, want string) {
		if !validWant(want) {
			want = "" // refused by Enqueue and Commit: never stored
		}
		r := Record{URL: url, Host: host, Path: path, State: State(state%4 + 1), Attempts: attempts, Status: status,
			Bytes: size, SHA256: sha, ETag: etag, LastModified: lm, ContentType: ct, LastError: lastErr,
			ErrorClass: class, Depth: depth, WantSHA256: want}
		if next != 0 {
			r.NextAttempt = time.Unix(0, next).UTC()
		}
		if updated != 0 {
			r.Updated = time.Unix(0, updated).UTC()
		}
		if lastmod != 0 {
			r.Lastmod = time.Unix(0, lastmod).UTC()
		}
		if listed != 0 {
			r.Listed = time.Unix(0, listed).UTC()
		}
		got, gotSeq, err := decodeRecord(r.URL, encodeRecord(&r, seq))
		if err != nil || gotSeq != seq || !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip: %+v, %d, %v\nwant %+v, %d", got, gotSeq, err, r, seq)
		}
	})
}

func TestReservationEncoding(t *testing.T) {
	for _, tc := range []struct {
		path, url string
		size      int // encoded bytes, 0 = don't care
	}{
		{"a.example/img/1.jpg", "https://a.example/img/1.jpg", 1}, // the mirror layout
		{"a.example/img/1.jpg", "http://a.example/img/1.jpg", 0},
		{"a.example/x_q=1", "https://a.example/x?q=1", 0},
		{"1.jpg", "https://a.example/img/1.jpg", 0}, // flat layout
		{"", "https://", 1},
		{"x", "https://y", 0},
		{"a/b", "https://a/b/", 0},
	} {
		v := encodeReservation(tc.path, tc.url)
		if len(v) == 0 || tc.size != 0 && len(v) != tc.size {
			t.Errorf("%q → %q: %d bytes, want %d (and never 0)", tc.path, tc.url, len(v), tc.size)
		}
		if url, err := decodeReservation(tc.path, v); err != nil || url != tc.url {
			t.Errorf("%q → %q: decoded %q, %v", tc.path, tc.url, url, err)
		}
	}
	for _, bad := range [][]byte{nil, {1}, {0, 0}, {5, 0, 0}, {0, 0, 9}} {
		if url, err := decodeReservation("p", bad); err == nil {
			t.Errorf("%v decoded to %q", bad, url)
		}
	}
}

// FuzzDecodeReservation: the decoder never panics, and what it accepts re-encodes to a value
// that decodes to the same URL.
func FuzzDecodeReservation(f *testing.F) {
	f.Add("a/b", []byte{mirrorURL})
	f.Add("a/b", appendDelta(nil, "a/b", "http://a/b?c"))
	f.Fuzz(func(t *testing.T, path string, v []byte) {
		url, err := decodeReservation(path, v)
		if err != nil {
			return
		}
		if again, err := decodeReservation(path, encodeReservation(path, url)); err != nil || again != url {
			t.Fatalf("%q: re-encoded decodes to %q, %v", url, again, err)
		}
	})
}
