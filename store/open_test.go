package store

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// validFile writes a closed state file with some records and returns its bytes.
func validFile(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "valid.db")
	s, err := Open(path, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		mustEnqueue(t, s, urls("a", i*1000, 1000))
	}
	mustLease(t, s, "a", 10, t0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenCorrupt(t *testing.T) {
	valid := validFile(t)
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	pageSize := os.Getpagesize()
	garbagePages := append([]byte(nil), valid...)
	for i := 2 * pageSize; i < len(garbagePages); i++ {
		garbagePages[i] = byte(rng.Uint32())
	}

	tests := []struct {
		name string
		file func(t *testing.T, path string) // writes the bad file
	}{
		{"truncated to 100 bytes", writeBytes(valid[:100])},
		{"truncated to one page", writeBytes(valid[:pageSize])},
		{"truncated to two pages", writeBytes(valid[:2*pageSize])},
		{"truncated to half", writeBytes(valid[:len(valid)/2])},

		{"zero-filled", writeBytes(make([]byte, 64<<10))},
		{"zero-filled, one byte", writeBytes([]byte{0})},
		{"random garbage", writeBytes(garbage)},
		{"text", writeBytes([]byte("https://example.org/a.jpg\nhttps://example.org/b.jpg\n"))},
		{"garbage pages after valid meta", writeBytes(garbagePages)},
		{"bbolt file without our buckets", func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bolt.Tx) error {
				_, err := tx.CreateBucket([]byte("someone-else"))
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}},
		{"newer format version", func(t *testing.T, path string) {
			s, err := Open(path, &Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put(keyVersion, []byte("99"))
			}); err != nil {
				t.Fatal(err)
			}
			s.Close()
		}},
		{"malformed record", func(t *testing.T, path string) {
			s, err := Open(path, &Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			mustEnqueue(t, s, urls("a", 0, 1))
			mustLease(t, s, "a", 1, t0) // recovery at open reads the record
			if err := s.db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket(bucketRecords).Put([]byte(urls("a", 0, 1)[0].URL), []byte{1, 2, 0, 0xff})
			}); err != nil {
				t.Fatal(err)
			}
			s.Close()
		}},
	}
	oneLine := regexp.MustCompile(`^state file \S+ is corrupt or not a trawl state file: [^\n]+$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			tt.file(t, path)
			s, err := Open(path, &Options{NoSync: true})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrCorrupt) || !oneLine.MatchString(err.Error()) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open error %q, want one-line ErrCorrupt naming the file", err)
			}
			t.Log(err)
			// The failed open must not keep the file locked.
			if s, err := Open(path, &Options{Timeout: 100 * time.Millisecond}); errors.Is(err, ErrLocked) {
				t.Fatalf("second open: %v", err)
			} else if err == nil {
				s.Close()
			}
		})
	}
}

func writeBytes(b []byte) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenEmptyFileIsNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, &Options{NoSync: true})
	if err != nil {
		t.Fatalf("Open empty file: %v", err)
	}
	defer s.Close()
	if n := mustEnqueue(t, s, urls("a", 0, 2)); n != 2 {
		t.Errorf("added %d", n)
	}
}

func TestOpenCreatesParent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x", "y", ".trawl", "state.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("parent dir: %v, %v", fi, err)
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".trawl", "state.db")
	first, err := Open(path, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to the open file description, so a second open in this process
	// conflicts exactly as another process would.
	const timeout = 200 * time.Millisecond
	start := time.Now()
	_, err = Open(path, &Options{Timeout: timeout})
	elapsed := time.Since(start)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if elapsed > timeout+time.Second {
		t.Errorf("second Open took %v with timeout %v", elapsed, timeout)
	}
	want := regexp.MustCompile(`^state file ` + regexp.QuoteMeta(path) +
		` is in use by another trawl \(pid ` + itoa(os.Getpid()) + `, since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)$`)
	if !want.MatchString(err.Error()) {
		t.Errorf("error %q, want match %v", err, want)
	}

	// Without the holder note the message still names the file.
	if err := os.Remove(path + ".lock"); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, &Options{Timeout: 50 * time.Millisecond})
	if got := err.Error(); got != "state file "+path+" is in use by another trawl" {
		t.Errorf("error without note: %q", got)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".lock"); !os.IsNotExist(err) {
		t.Errorf("lock note after Close: %v", err)
	}
	second, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	first.Close() // a second Close must not remove the new holder's note
	if readLockInfo(path) == "" {
		t.Error("second Close of the first store removed the new holder's note")
	}
	second.Close()
}

func itoa(n int) string { return strconv.Itoa(n) }

// formatOf is the format version s's file is marked with.
func formatOf(t *testing.T, s *Store) (v string) {
	t.Helper()
	if err := s.db.View(func(tx *bolt.Tx) error {
		v = string(tx.Bucket(bucketMeta).Get(keyVersion))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestOpenFormat3: a file of the previous format (version 1 records, every reservation a delta)
// opens, reads back as written, is marked with the current version once opened for writing, and
// goes on working.
func TestOpenFormat3(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, s, urls("a", 0, 5))
	mustEnqueue(t, s, []NewURL{{URL: "https://b/x?y=1", Host: "b", Path: "b/x_y=1"}})
	want := map[string]Record{}
	for _, u := range append(urls("a", 0, 5), NewURL{URL: "https://b/x?y=1"}) {
		r, ok, err := s.Get(u.URL)
		if !ok || err != nil {
			t.Fatalf("Get %s: %v %v", u.URL, ok, err)
		}
		want[u.URL] = r
	}
	// Rewrite it as a trawl of format "3" wrote it.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		recs := tx.Bucket(bucketRecords)
		if err := recs.ForEach(func(k, v []byte) error {
			r, seq, err := decodeRecord(string(k), v)
			if err != nil {
				return err
			}
			return recs.Put(k, encodeRecordV1(&r, seq))
		}); err != nil {
			return err
		}
		paths := tx.Bucket(bucketPaths)
		if err := paths.ForEach(func(k, v []byte) error {
			url, err := decodeReservation(string(k), v)
			if err != nil {
				return err
			}
			return paths.Put(k, appendDelta(nil, string(k), url))
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyVersion, []byte(formatVersion3))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	ro, err := Open(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open of a format %q file: %v", formatVersion3, err)
	}
	if r, ok, err := ro.Get(urls("a", 0, 1)[0].URL); !ok || err != nil || !reflect.DeepEqual(r, want[r.URL]) {
		t.Errorf("read-only Get = %+v, %v, %v", r, ok, err)
	}
	ro.Close()
	s, err = Open(path, &Options{NoSync: true})
	if err != nil {
		t.Fatalf("Open of a format %q file: %v", formatVersion3, err)
	}
	defer s.Close()
	for url, w := range want {
		if r, ok, err := s.Get(url); !ok || err != nil || !reflect.DeepEqual(r, w) {
			t.Errorf("Get %s = %+v, %v, %v; want %+v", url, r, ok, err, w)
		}
	}
	if v := formatOf(t, s); v != formatVersion {
		t.Errorf("version %q after a writable open, want %q", v, formatVersion)
	}
	// Old reservations still hold their paths; new URLs and leases work on top.
	if n := mustEnqueue(t, s, append(urls("a", 3, 4), NewURL{URL: "https://a/other", Host: "a", Path: "a/img/000000.jpg"})); n != 3 {
		t.Errorf("added %d, want 3 (2 of the 4 are known)", n)
	}
	if r, _, _ := s.Get("https://a/other"); r.Path == "a/img/000000.jpg" {
		t.Errorf("path %q given twice", r.Path)
	}
	mustLease(t, s, "a", 2, t0)
	if err := s.checkInvariants(); err != nil {
		t.Fatal(err)
	}
}

// TestOpenFormat4: a file of format "4" (Last-Modified and Content-Type always as strings) reads
// as it was written, read-only and writable; a writable open marks it "5", and what is written
// after takes the compact forms.
func TestOpenFormat4(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, s, urls("a", 0, 3))
	done := func(recs []Record) []Update {
		var ups []Update
		for _, r := range recs {
			r.State, r.Status, r.Bytes, r.Attempts = Done, 200, 10, 1
			r.LastModified, r.ContentType = "Sun, 06 Nov 1994 08:49:37 GMT", "image/jpeg"
			ups = append(ups, Update{Record: r})
		}
		return ups
	}
	compactValues = false // as a trawl of format "4" wrote them
	mustCommit(t, s, done(mustLease(t, s, "a", 2, t0))...)
	compactValues = true
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyVersion, []byte(formatVersion4))
	}); err != nil {
		t.Fatal(err)
	}
	value := func(s *Store, url string) (v []byte) {
		s.db.View(func(tx *bolt.Tx) error {
			v = slices.Clone(tx.Bucket(bucketRecords).Get([]byte(url)))
			return nil
		})
		return v
	}
	old := urls("a", 0, 1)[0].URL
	want, _, _ := s.Get(old)
	oldValue := value(s, old)
	s.Close()

	for _, o := range []*Options{{ReadOnly: true}, {NoSync: true}} {
		s, err := Open(path, o)
		if err != nil {
			t.Fatalf("Open(%+v) of a format %q file: %v", o, formatVersion4, err)
		}
		if r, ok, err := s.Get(old); !ok || err != nil || !reflect.DeepEqual(r, want) {
			t.Errorf("Get = %+v, %v, %v; want %+v", r, ok, err, want)
		}
		if !o.ReadOnly {
			if v := formatOf(t, s); v != formatVersion {
				t.Errorf("version %q after a writable open, want %q", v, formatVersion)
			}
			mustCommit(t, s, done(mustLease(t, s, "a", 1, t0))...)
			third := urls("a", 2, 1)[0].URL
			if r, _, _ := s.Get(third); r.LastModified != want.LastModified || r.ContentType != want.ContentType {
				t.Errorf("new record %+v", r)
			}
			if n, m := len(value(s, third)), len(oldValue); n > m-30 {
				t.Errorf("a record written now takes %d bytes, one of format 4 %d: want 30 fewer", n, m)
			}
			if err := s.checkInvariants(); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
	}
}
