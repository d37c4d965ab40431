package store

import (
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
	// A typical fresh record must stay small: the URL is the key, not repeated here.
	r := Record{URL: "https://images.example.org/gallery/photo-000123.jpg", Host: "images.example.org", Path: "images.example.org/gallery/photo-000123.jpg", State: Pending}
	if n := len(encodeRecord(&r, 123456)); n > 24 {
		t.Errorf("fresh record encodes to %d bytes", n)
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	good := encodeRecord(&Record{Host: "h", State: Pending}, 1)
	tests := map[string][]byte{
		"empty":          nil,
		"bad version":    append([]byte{9}, good[1:]...),
		"bad state":      append([]byte{good[0], 9}, good[2:]...),
		"unknown flag":   append([]byte{good[0], good[1], 0x80}, good[3:]...),
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(append([]byte(nil), good...), 0),
		"huge string":    {recordVersion, byte(Pending), 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if r, _, err := decodeRecord("u", b); err == nil {
				t.Errorf("decoded %+v", r)
			}
		})
	}
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
	f.Add(uint8(1), "h", "p", 0, int64(0), 200, int64(10), strings.Repeat("0f", 32), "e", "lm", "ct", "err", "cls", 0, int64(0), uint64(1))
	f.Fuzz(func(t *testing.T, state uint8, host, path string, attempts int, next int64, status int, size int64,
		sha, etag, lm, ct, lastErr, class string, depth int, updated int64, seq uint64) {
		r := Record{URL: "u", Host: host, Path: path, State: State(state%4 + 1), Attempts: attempts, Status: status,
			Bytes: size, SHA256: sha, ETag: etag, LastModified: lm, ContentType: ct, LastError: lastErr,
			ErrorClass: class, Depth: depth}
		if next != 0 {
			r.NextAttempt = time.Unix(0, next).UTC()
		}
		if updated != 0 {
			r.Updated = time.Unix(0, updated).UTC()
		}
		got, gotSeq, err := decodeRecord(r.URL, encodeRecord(&r, seq))
		if err != nil || gotSeq != seq || !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip: %+v, %d, %v\nwant %+v, %d", got, gotSeq, err, r, seq)
		}
	})
}
