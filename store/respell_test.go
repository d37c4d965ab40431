package store

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// testRespell stands for the caller's normalizer: %7E is ~, "/./" is "/", a trailing "?" and the
// port 0080 go, and a URL with "bad" in it is refused.
func testRespell(u string) (string, string, error) {
	if strings.Contains(u, "bad") {
		return "", "", errors.New("refused")
	}
	c := strings.NewReplacer("%7E", "~", "%7e", "~", "/./", "/", ":0080", "").Replace(u)
	c = strings.TrimSuffix(c, "?")
	host := c[strings.Index(c, "://")+3:]
	return c, host[:strings.IndexByte(host, '/')], nil
}

// respelled reports whether s's file is marked respelled.
func respelled(t *testing.T, s *Store) (ok bool) {
	t.Helper()
	if err := s.db.View(func(tx *bolt.Tx) error {
		ok = tx.Bucket(bucketMeta).Get(keyRespelled) != nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ok
}

// oldSpellings writes a state file the way an older trawl left it, keyed by spellings testRespell
// changes, and returns its path. Host a's queue, in order: plain1, ~user/pending (as
// %7euser/pending?), plain2, x, bad%7E; host c's holds a lease of a process that died.
func oldSpellings(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if respelled(t, s) {
		t.Fatal("a file opened without a Respeller is marked respelled")
	}
	nu := func(url, host, path string) NewURL { return NewURL{URL: url, Host: host, Path: path} }
	mustEnqueue(t, s, []NewURL{
		nu("http://a/%7Euser/done", "a", "a/%7Euser/done"),
		nu("http://a/x?", "a", "a/x"),   // done; "http://a/x" is pending: two records of one URL
		nu("http://a/y", "a", "a/y"),    // done; "http://a/./y" too
		nu("http://a/./y", "a", "a/y2"), // ...
	})
	var done []Update
	for _, r := range mustLease(t, s, "a", 4, t0) {
		r.State, r.Bytes, r.Status, r.SHA256 = Done, 100, 200, strings.Repeat("ab", 32)
		done = append(done, Update{Record: r})
	}
	mustCommit(t, s, done...)
	mustEnqueue(t, s, []NewURL{
		nu("http://a/plain1", "a", "a/plain1"),
		nu("http://a/%7euser/pending?", "a", "a/~user/pending"),
		nu("http://a/plain2", "a", "a/plain2"),
		nu("http://a/x", "a", "a/x~2"),
		nu("http://a:0080/p", "a:0080", "a_0080/p"),
		nu("http://a/bad%7E", "a", "a/bad"),
		{URL: "http://b/skipped?", Host: "b", Skip: "off-scope"},
		nu("http://c/leased?", "c", "c/leased"),
	})
	mustLease(t, s, "c", 1, t0)
	return path
}

// TestRespellAtOpen: the first Open given a Respeller finds each record under its canonical
// spelling, with its state, file, place in its host's queue and path reservation, and old
// spellings are gone; of two records of one URL, the one further along stays. Later opens leave
// the file alone.
func TestRespellAtOpen(t *testing.T) {
	path := oldSpellings(t)
	before := func() map[string]Record {
		s, err := Open(path, &Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		out := map[string]Record{}
		s.ForEach(func(r Record) error { out[r.URL] = r; return nil })
		return out
	}()

	s, err := Open(path, &Options{NoSync: true, Respell: testRespell})
	if err != nil {
		t.Fatal(err)
	}
	if !respelled(t, s) {
		t.Error("file not marked respelled")
	}
	if err := s.checkInvariants(); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"http://a/%7Euser/done", "http://a/x?", "http://a/./y",
		"http://a/%7euser/pending?", "http://a:0080/p", "http://b/skipped?", "http://c/leased?"} {
		if r, ok, err := s.Get(gone); ok || err != nil {
			t.Errorf("old spelling %s still found: %+v, %v", gone, r, err)
		}
	}
	tests := []struct {
		url, was string
		state    State
		host     string
	}{
		{"http://a/~user/done", "http://a/%7Euser/done", Done, "a"},
		{"http://a/x", "http://a/x?", Done, "a"}, // the done one, not the pending "http://a/x"
		{"http://a/y", "http://a/y", Done, "a"},  // both done: the canonical one stays
		{"http://a/~user/pending", "http://a/%7euser/pending?", Pending, "a"},
		{"http://a/p", "http://a:0080/p", Pending, "a"},
		{"http://b/skipped", "http://b/skipped?", Skipped, "b"},
		{"http://c/leased", "http://c/leased?", Pending, "c"},
		{"http://a/bad%7E", "http://a/bad%7E", Pending, "a"}, // refused: left as it was
	}
	for _, tt := range tests {
		r, ok, err := s.Get(tt.url)
		if !ok || err != nil {
			t.Errorf("%s: not found (%v)", tt.url, err)
			continue
		}
		want := before[tt.was]
		want.URL, want.Host, want.State = tt.url, tt.host, tt.state
		r.Updated, want.Updated = t0, t0
		if !reflect.DeepEqual(r, want) {
			t.Errorf("%s = %+v\nwant %+v", tt.url, r, want)
		}
	}
	c := mustCounts(t, s)
	if want := (Counts{Pending: 6, Done: 3, Skipped: 1, Bytes: 300}); c != want {
		t.Errorf("counts %+v, want %+v", c, want)
	}
	hc, err := s.HostCounts()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := hc["a:0080"]; ok {
		t.Errorf("host counts still hold the old host: %v", hc)
	}
	// The respelled record keeps its place between the two it was queued between; the one whose
	// host changed comes last in its new host's queue.
	got := urlsOf(mustLease(t, s, "a", 10, t0))
	want := []string{"http://a/plain1", "http://a/~user/pending", "http://a/plain2", "http://a/bad%7E", "http://a/p"}
	if !slices.Equal(got, want) {
		t.Errorf("leased %q\nwant %q", got, want)
	}
	if n := mustEnqueue(t, s, []NewURL{{URL: "http://a/~user/done", Host: "a", Path: "a/~user/done"}}); n != 0 {
		t.Errorf("the canonical spelling of a done URL was added again")
	}
	if err := s.checkInvariants(); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Marked: the next open does not walk the records.
	s, err = Open(path, &Options{NoSync: true, Respell: func(u string) (string, string, error) {
		t.Errorf("Respell(%q) called on a file marked respelled", u)
		return u, "", nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// TestRespellNewFile: a file created by an Open given a Respeller needs no walk; one created
// without is walked by the first Open given one.
func TestRespellNewFile(t *testing.T) {
	calls := 0
	count := func(u string) (string, string, error) { calls++; return testRespell(u) }
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, &Options{NoSync: true, Respell: count})
	if err != nil {
		t.Fatal(err)
	}
	if !respelled(t, s) {
		t.Error("new file not marked respelled")
	}
	mustEnqueue(t, s, []NewURL{{URL: "http://a/%7E", Host: "a"}})
	s.Close()
	if s, err = Open(path, &Options{NoSync: true, Respell: count}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if calls != 0 {
		t.Errorf("Respell called %d times on a file created with it", calls)
	}
}

// TestRespellResumes: respelling goes batch by batch; a file left between batches (unmarked, some
// records rekeyed) is finished by the next Open, each record moved once.
func TestRespellResumes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var old []NewURL
	for _, u := range urls("a", 0, 25) {
		u.URL += "?" // canonical: the same without it, and so sorted before it
		old = append(old, u)
	}
	mustEnqueue(t, s, old)
	// One batch of 4, as a process killed after its first respelling commit left it.
	if err := s.update(func(w *wtx) error {
		moves, rest := w.respellings(testRespell, nil, 4)
		if len(moves) != 4 || rest == nil {
			t.Fatalf("first batch: %d moves, rest %q", len(moves), rest)
		}
		for _, m := range moves {
			if err := w.rekey(m); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	moved := map[string]int{}
	count := func(u string) (string, string, error) {
		c, h, err := testRespell(u)
		if c != u {
			moved[u]++
		}
		return c, h, err
	}
	if s, err = Open(path, &Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.respell(count, 4); err != nil {
		t.Fatal(err)
	}
	if len(moved) != 21 {
		t.Errorf("%d records respelled after the first batch, want the 21 left", len(moved))
	}
	for u, n := range moved {
		if n != 1 {
			t.Errorf("%s respelled %d times", u, n)
		}
	}
	if !respelled(t, s) {
		t.Error("file not marked respelled")
	}
	var want []string
	for _, u := range urls("a", 0, 25) {
		want = append(want, u.URL)
	}
	if got := urlsOf(mustLease(t, s, "a", 100, t0)); !slices.Equal(got, want) {
		t.Errorf("leased %q\nwant the 25 canonical URLs in their order", got)
	}
	if err := s.checkInvariants(); err != nil {
		t.Fatal(err)
	}
}

// TestRespellLeavesUnstableSpellings: a Respeller that would spell its own result differently
// again moves nothing (and the walk ends), rather than chasing a spelling through the file.
func TestRespellLeavesUnstableSpellings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, s, urls("a", 0, 3))
	s.Close()
	grow := func(u string) (string, string, error) { return u + "/", "a", nil }
	if s, err = Open(path, &Options{NoSync: true, Respell: grow}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, u := range urls("a", 0, 3) {
		if _, ok, err := s.Get(u.URL); !ok || err != nil {
			t.Errorf("%s moved (%v)", u.URL, err)
		}
	}
	if !respelled(t, s) {
		t.Error("file not marked respelled")
	}
}
