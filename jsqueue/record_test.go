package jsqueue

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/queue"
)

// TestRecordEncoding: a record leaves out its zero fields in the bucket, and reads back the same
// from that form and from the full one earlier trawls wrote; a reader of the full form (an earlier
// trawl) reads the same record from the short one.
func TestRecordEncoding(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	for _, tc := range []struct {
		name string
		r    queue.Record
		max  int // longest the stored form may be
	}{
		{"new", queue.Record{URL: "https://a.test/f", Host: "a.test", Path: "a.test/f", State: queue.Pending}, 80},
		{"every field", queue.Record{URL: "https://a.test/f", Host: "a.test", Path: "a.test/f", Named: true, State: queue.Failed,
			Attempts: 3, NextAttempt: at, Status: 503, Bytes: 12, SHA256: "ab", WantSHA256: "cd", ETag: `"e"`,
			LastModified: "Tue, 03 Mar 2026 00:00:00 GMT", ContentType: "text/html", LastError: "boom", ErrorClass: "http",
			Transient: true, Requisite: true, Auth: true, Depth: -2, Updated: at, Lastmod: at, Listed: at.Add(time.Hour)}, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if reflect.ValueOf(tc.r).NumField() != reflect.TypeOf(storedRecord{}).NumField() {
				t.Fatal("storedRecord and queue.Record differ")
			}
			short, err := encodeRecord(tc.r)
			if err != nil {
				t.Fatal(err)
			}
			if len(short) > tc.max {
				t.Errorf("stored as %d bytes, want at most %d: %s", len(short), tc.max, short)
			}
			full, err := json.Marshal(tc.r) // as earlier trawls wrote it
			if err != nil {
				t.Fatal(err)
			}
			for name, b := range map[string][]byte{"short": short, "full": full} {
				got := queue.Record{URL: "left over", Attempts: 9}
				if err := decodeRecord(b, &got); err != nil || !reflect.DeepEqual(got, tc.r) {
					t.Errorf("%s form read back as %+v, %v; want %+v", name, got, err, tc.r)
				}
			}
			var old queue.Record // an earlier trawl's reader
			if err := json.Unmarshal(short, &old); err != nil || !reflect.DeepEqual(old, tc.r) {
				t.Errorf("the full form's reader read %+v, %v; want %+v", old, err, tc.r)
			}
		})
	}
}

// FuzzDecodeRecord: whatever a bucket holds, reading it never panics, and a record read writes
// and reads back as itself.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"URL":"https://a.test/","Host":"a.test","State":1}`))
	f.Add([]byte(`{"URL":"u","NextAttempt":"0001-01-01T00:00:00Z","Lastmod":"2026-01-02T03:04:05Z"}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r queue.Record
		if decodeRecord(b, &r) != nil {
			return
		}
		again, err := encodeRecord(r)
		if err != nil {
			return // a time json cannot write (a year past 9999): never one trawl stores
		}
		var r2 queue.Record
		if err := decodeRecord(again, &r2); err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("%q read as %+v, written as %s, read back as %+v, %v", b, r, again, r2, err)
		}
	})
}
