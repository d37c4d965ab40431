package store

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestReservePath(t *testing.T) {
	tests := []struct {
		name     string
		reserved []string // enqueued first, in order
		path     string
		want     string
	}{
		{"free", nil, "h/a.jpg", "h/a.jpg"},
		{"exact file", []string{"h/a.jpg"}, "h/a.jpg", "h/a~2.jpg"},
		{"exact, no extension", []string{"h/a"}, "h/a", "h/a~2"},
		{"smallest free suffix", []string{"h/a.jpg", "h/a.jpg", "h/a.jpg"}, "h/a.jpg", "h/a~4.jpg"},
		{"suffix already taken", []string{"h/a.jpg", "h/a~2.jpg"}, "h/a.jpg", "h/a~3.jpg"},
		{"final extension only", []string{"h/a.tar.gz"}, "h/a.tar.gz", "h/a.tar~2.gz"},
		{"dotfile", []string{"h/.profile"}, "h/.profile", "h/.profile~2"},
		{"ancestor is a file", []string{"h/a"}, "h/a/b", "h/a~2/b"},
		{"ancestor and its ~2 are files", []string{"h/a", "h/a"}, "h/a/b", "h/a~3/b"},
		{"ancestor file with extension", []string{"h/a.d"}, "h/a.d/b.jpg", "h/a.d~2/b.jpg"},
		{"deep ancestor is a file", []string{"h"}, "h/a/b/c", "h~2/a/b/c"},
		{"path is a directory", []string{"h/a/b"}, "h/a", "h/a~2"},
		{"path is a deep directory", []string{"h/a/b/c.jpg"}, "h/a", "h/a~2"},
		{"sibling prefix is not a directory", []string{"h/ab"}, "h/a", "h/a"},
		{"sibling with dash sorts before slash", []string{"h/a-b/c", "h/a.b"}, "h/a", "h/a"},
		{"sibling with dash, then directory", []string{"h/a-b", "h/a/c"}, "h/a", "h/a~2"},
		{"many siblings below slash, then directory", []string{"h/a-1", "h/a-2", "h/a-3", "h/a-4", "h/a-5", "h/a/b"}, "h/a", "h/a~2"},
		{"many siblings below slash, no directory", []string{"h/a-1", "h/a-2", "h/a-3", "h/a-4", "h/a-5", "h/a0/b"}, "h/a", "h/a"},
		{"sibling above slash", []string{"h/a0"}, "h/a", "h/a"},
		{"directory shared", []string{"h/a/b"}, "h/a/c", "h/a/c"},
		{"resolved dir then collision", []string{"h/a", "h/a/b"}, "h/a/b", "h/a~2/b~2"},
		{"suffixed name is a directory", []string{"h/a", "h/a~2/x"}, "h/a", "h/a~3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpen(t)
			for i, p := range tt.reserved {
				mustEnqueue(t, s.Store, []NewURL{{URL: fmt.Sprintf("https://h/%d", i), Host: "h", Path: p}})
			}
			u := NewURL{URL: "https://h/new", Host: "h", Path: tt.path}
			mustEnqueue(t, s.Store, []NewURL{u})
			r, ok, err := s.Get(u.URL)
			if err != nil || !ok || r.Path != tt.want {
				t.Errorf("path %q, %v, %v; want %q", r.Path, ok, err, tt.want)
			}
		})
	}
}

// TestReservePathDeterministic: the same URLs in the same order get the same paths in a fresh
// store, and many URLs proposing one name get consecutive suffixes (via the hint).
func TestReservePathDeterministic(t *testing.T) {
	var in []NewURL
	for i := 0; i < 300; i++ {
		in = append(in, NewURL{URL: fmt.Sprintf("https://h/p?id=%d", i), Host: "h", Path: "h/p.html"})
	}
	var paths [2][]string
	for run := range paths {
		s := mustOpen(t)
		for i := 0; i < len(in); i += 100 { // several transactions, so the hint is persisted
			mustEnqueue(t, s.Store, in[i:i+100])
		}
		for _, u := range in {
			r, _, _ := s.Get(u.URL)
			paths[run] = append(paths[run], r.Path)
		}
	}
	for i := range in {
		want := "h/p.html"
		if i > 0 {
			want = fmt.Sprintf("h/p~%d.html", i+1)
		}
		if paths[0][i] != want || paths[1][i] != want {
			t.Fatalf("url %d: paths %q, %q; want %q", i, paths[0][i], paths[1][i], want)
		}
	}
}

// TestEnqueueBatchingInvariant: however a list is cut into batches, every URL ends up with the
// same path, queue position and state as when the URLs are enqueued one at a time — the batch
// sorts its lookups and writes, but collisions still go to whoever was listed first. The lists
// are drawn from a small universe of paths so that they collide, nest files under files, and
// propose names that suffixing also produces.
func TestEnqueueBatchingInvariant(t *testing.T) {
	segs := []string{"a", "b", "a~2", "a.jpg", "a~2.jpg", "a.jpg~2"}
	rng := rand.New(rand.NewPCG(1, 2))
	randPath := func() string {
		n := 1 + rng.IntN(3)
		p := "h"
		for range n {
			p += "/" + segs[rng.IntN(len(segs))]
		}
		return p
	}
	for round := range 60 {
		n := 5 + rng.IntN(40)
		list := make([]NewURL, n)
		for i := range list {
			id := rng.IntN(n + n/4) // some URLs repeat
			list[i] = NewURL{URL: fmt.Sprintf("https://h/%03d", id), Host: "h", Path: randPath()}
			if rng.IntN(8) == 0 {
				list[i].Host, list[i].URL = "g", fmt.Sprintf("https://g/%03d", id)
			}
			// A crawl's links: skipped ones, and (in half the rounds: the others are lists,
			// which take the sorted path) requisites that upgrade a skipped URL.
			switch rng.IntN(6 + 100*(round%2)) {
			case 0:
				list[i].Skip = "off-scope"
			case 1:
				list[i].Requisite = true
			}
		}
		limit := 0
		if round%3 == 2 {
			limit = n / 2 // a crawl's --max-pages: which URLs are skipped depends on order
		}
		dump := func(s *testStore) string {
			s.check()
			var out []string
			s.ForEach(func(r Record) error {
				out = append(out, fmt.Sprintf("%s %v %q %v %q", r.URL, r.State, r.Path, r.Requisite, r.LastError))
				return nil
			})
			out = append(out, fmt.Sprintf("%+v", mustCounts(t, s.Store)))
			for _, host := range []string{"h", "g"} {
				for _, r := range mustLease(t, s.Store, host, n, time.Now()) {
					out = append(out, r.URL+" "+r.Path) // in queue order
				}
			}
			return strings.Join(out, "\n")
		}
		state := func(batches [][]NewURL) string {
			s := mustOpen(t)
			defer s.close()
			s.SetPageLimit(limit)
			for _, b := range batches {
				mustEnqueue(t, s.Store, b)
			}
			return dump(s)
		}
		// The reference: the whole list one URL after another, as enqueueInOrder does it.
		ref := mustOpen(t)
		ref.SetPageLimit(limit)
		if err := ref.update(func(w *wtx) error { _, err := w.enqueueInOrder(list); return err }); err != nil {
			t.Fatal(err)
		}
		want := dump(ref)
		ref.close()
		var one [][]NewURL
		for _, u := range list {
			one = append(one, []NewURL{u})
		}
		if got := state(one); got != want {
			t.Fatalf("round %d, batches of one: differ from enqueueInOrder\ngot:\n%s\nwant:\n%s", round, got, want)
		}
		for cut := range 3 {
			var batches [][]NewURL
			for rest := list; len(rest) > 0; {
				k := 1 + rng.IntN(len(rest))
				if cut == 0 {
					k = len(rest)
				}
				batches, rest = append(batches, rest[:k]), rest[k:]
			}
			if got := state(batches); got != want {
				t.Fatalf("round %d, %d batches: paths or queue order differ from one at a time\ngot:\n%s\nwant:\n%s", round, len(batches), got, want)
			}
		}
	}
}

// TestRename: a leased URL's path becomes the proposed one, reserved like an enqueued path (with a
// collision suffix when taken), and its old path is free for the next URL that proposes it. The
// record is marked Named, kept through its commit, a reopen and a later Rename, which changes
// nothing; an unleased or unknown URL is refused.
func TestRename(t *testing.T) {
	now := time.Now()
	s := mustOpen(t)
	mustEnqueue(t, s.Store, []NewURL{
		{URL: "https://h/taken", Host: "h", Path: "h/report.pdf"},
		{URL: "https://h/dl?id=1", Host: "h", Path: "h/dl~1"},
		{URL: "https://h/dl?id=2", Host: "h", Path: "h/dl~2"},
		{URL: "https://h/listing", Host: "h", Path: "h/listing"},
		{URL: "https://h/pending", Host: "h", Path: "h/pending"},
	})
	leased := mustLease(t, s.Store, "h", 4, now)
	if len(leased) != 4 {
		t.Fatalf("leased %d", len(leased))
	}
	for _, tc := range []struct{ url, proposed, want string }{
		{"https://h/dl?id=1", "h/report.pdf", "h/report~2.pdf"},
		{"https://h/dl?id=2", "h/report.pdf", "h/report~3.pdf"},
		// The directory case: the URL's own file must not push its directory aside.
		{"https://h/listing", "h/listing/index.html", "h/listing/index.html"},
		// Named already: kept.
		{"https://h/dl?id=1", "h/other.pdf", "h/report~2.pdf"},
	} {
		got, err := s.Rename(tc.url, tc.proposed)
		if err != nil || got != tc.want {
			t.Errorf("Rename(%q, %q) = %q, %v; want %q", tc.url, tc.proposed, got, err, tc.want)
		}
		if r, _, _ := s.Get(tc.url); r.Path != tc.want || !r.Named || r.State != Leased {
			t.Errorf("%s after Rename: path %q named %v state %v", tc.url, r.Path, r.Named, r.State)
		}
	}
	for _, bad := range []string{"https://h/pending", "https://h/unknown"} {
		if got, err := s.Rename(bad, "h/x"); err == nil {
			t.Errorf("Rename(%q) = %q, want an error: not leased", bad, got)
		}
	}
	// The old paths are free: a new URL proposing one gets it as it is.
	mustEnqueue(t, s.Store, []NewURL{{URL: "https://h/again", Host: "h", Path: "h/dl~1"}, {URL: "https://h/listing/a.html", Host: "h", Path: "h/listing/a.html"}})
	for url, want := range map[string]string{"https://h/again": "h/dl~1", "https://h/listing/a.html": "h/listing/a.html"} {
		if r, _, _ := s.Get(url); r.Path != want {
			t.Errorf("%s got %q, want %q", url, r.Path, want)
		}
	}
	// The commit of the outcome keeps the name (the scheduler sends the record it renamed), and so
	// does a reopen.
	r, _, _ := s.Get("https://h/dl?id=1")
	r.State, r.SHA256 = Pending, ""
	r.NextAttempt = now.Add(time.Minute)
	mustCommit(t, s.Store, Update{Record: r})
	s.reopen()
	if r, _, _ := s.Get("https://h/dl?id=1"); r.Path != "h/report~2.pdf" || !r.Named {
		t.Errorf("after commit and reopen: path %q named %v", r.Path, r.Named)
	}
	if r, _, _ := s.Get("https://h/taken"); r.Named {
		t.Errorf("a URL never renamed is Named")
	}
}

// TestNamedByList: a path given with the URL (a list line's second field) is recorded Named; a
// skipped URL, which has no path, is not.
func TestNamedByList(t *testing.T) {
	s := mustOpen(t)
	mustEnqueue(t, s.Store, []NewURL{
		{URL: "https://h/a", Host: "h", Path: "mine/a.bin", Named: true},
		{URL: "https://h/b", Host: "h", Path: "h/b"},
		{URL: "https://h/c", Host: "h", Path: "mine/c.bin", Named: true, Skip: "off-scope"},
	})
	for url, want := range map[string]bool{"https://h/a": true, "https://h/b": false, "https://h/c": false} {
		if r, _, _ := s.Get(url); r.Named != want {
			t.Errorf("%s: Named %v, want %v", url, r.Named, want)
		}
	}
}
