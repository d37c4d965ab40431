package store

import (
	"encoding/binary"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestRecordWant: an expected sha256 is stored as 32 raw bytes, read back as lowercase hex, and
// seen by hasWant without a decode; a record without one has no flag for it.
func TestRecordWant(t *testing.T) {
	r := sampleRecord()
	without := r
	r.WantSHA256 = strings.Repeat("0a", 32)
	b := encodeRecord(&r, 5)
	got, seq, err := decodeRecord(r.URL, b)
	if err != nil || seq != 5 || !reflect.DeepEqual(got, r) {
		t.Fatalf("decode = %+v, %d, %v; want %+v", got, seq, err, r)
	}
	if n := len(b) - len(encodeRecord(&without, 5)); n > 34 {
		t.Errorf("an expected sha256 costs %d bytes, want 32 and its flag", n)
	}
	if !hasWant(b) || hasWant(encodeRecord(&without, 5)) || hasWant(encodeRecordV1(&without, 5)) || hasWant(nil) {
		t.Error("hasWant is wrong")
	}
	truncated := append(binary.AppendUvarint([]byte{recordVersion, byte(Pending)}, flagHostPrefix|flagPathIsURL|flagWant), 1, 0, 1, 2)
	if r, _, err := decodeRecord("u", truncated); err == nil {
		t.Errorf("decoded %+v from a record whose expected sha256 is cut short", r)
	}
}

// TestEnqueueWantRefused: an expected sha256 that is not 64 lowercase hex digits is refused, by
// Enqueue and by Commit, rather than stored in another form or lost.
func TestEnqueueWantRefused(t *testing.T) {
	s := mustOpen(t)
	for _, want := range []string{strings.Repeat("AB", 32), strings.Repeat("a", 63), "sha256:" + strings.Repeat("a", 64), strings.Repeat("g", 64)} {
		u := urls("a", 0, 1)[0]
		u.WantSHA256 = want
		if _, err := s.Enqueue([]NewURL{u}); err == nil {
			t.Errorf("Enqueue with expected sha256 %q succeeded", want)
		}
		if err := s.Commit([]Update{{Record: Record{URL: u.URL, Host: "a", State: Done, WantSHA256: want}}}); err == nil {
			t.Errorf("Commit with expected sha256 %q succeeded", want)
		}
	}
}

// TestEnqueueWantInOrder: a batch with page requisites (enqueued one by one, not sorted) gives a
// known URL a new expected sha256 like any other batch: a done file of another sum is queued again.
func TestEnqueueWantInOrder(t *testing.T) {
	s := mustOpen(t)
	u := urls("a", 0, 1)[0]
	u.WantSHA256, u.SetWant = strings.Repeat("1", 64), true
	mustEnqueue(t, s.Store, []NewURL{u})
	r := mustLease(t, s.Store, "a", 1, t0)[0]
	r.State, r.SHA256, r.Bytes = Done, u.WantSHA256, 1
	mustCommit(t, s.Store, Update{Record: r})
	u.WantSHA256 = strings.Repeat("2", 64)
	req := urls("a", 1, 1)[0]
	req.Requisite = true
	if n := mustEnqueue(t, s.Store, []NewURL{req, u}); n != 1 {
		t.Fatalf("added %d, want the requisite only", n)
	}
	got, _, _ := s.Get(u.URL)
	if got.State != Pending || got.WantSHA256 != u.WantSHA256 || got.SHA256 != r.SHA256 {
		t.Fatalf("record %+v: want it pending with the new sum, its old file's sha256 kept", got)
	}
}

// TestOpenFormat7: a file of format "7" (no expected sha256 in records) reads as written; a
// writable open marks it "8", which a trawl of format 7 refuses with its one-line message.
func TestOpenFormat7(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, s, urls("a", 0, 2))
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyVersion, []byte(formatVersion7))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, o := range []*Options{{ReadOnly: true}, {NoSync: true}} {
		s, err := Open(path, o)
		if err != nil {
			t.Fatalf("Open(%+v) of a format %q file: %v", o, formatVersion7, err)
		}
		if c, err := s.Counts(); err != nil || c.Pending != 2 {
			t.Errorf("Counts = %+v, %v", c, err)
		}
		want := map[bool]string{true: formatVersion7, false: formatVersion}[o.ReadOnly]
		if v := formatOf(t, s); v != want {
			t.Errorf("Open(%+v): version %q, want %q", o, v, want)
		}
		s.Close()
	}
}
