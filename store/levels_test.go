package store

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func page(host, name string, depth int) NewURL {
	return NewURL{URL: "https://" + host + "/" + name, Host: host, Path: host + "/" + name, Depth: depth}
}

func mustBreadthFirst(t testing.TB, s *Store) {
	t.Helper()
	if err := s.BreadthFirst(); err != nil {
		t.Fatalf("BreadthFirst: %v", err)
	}
}

// done is the update that settles leased r as fetched, with links.
func done(r Record, links ...NewURL) Update {
	r.State, r.Status, r.Bytes, r.Attempts = Done, 200, 1, r.Attempts+1
	return Update{Record: r, Links: links}
}

// leaseAll leases every due record of host, in queue order.
func leaseAll(t testing.TB, s *Store, host string, now time.Time) []Record {
	t.Helper()
	return mustLease(t, s, host, 1000, now)
}

// TestBreadthFirstLevels: in a breadth-first job the links of the open level's pages wait, neither
// records nor queued, until its last page is settled; then they are queued in discovery order (the
// order of the page each was first found in, then its place there) at their depth, whatever order
// the pages were settled in, a retry included. With a page limit, the same pages are taken.
func TestBreadthFirstLevels(t *testing.T) {
	// Two seeds; s1 links x, y; s2 links y (first), z and an image; x links the deep w.
	links := map[string][]NewURL{
		"s1": {page("a", "x", 1), page("a", "y", 1)},
		"s2": {page("a", "y", 1), page("b", "z", 1),
			{URL: "https://b/img", Host: "b", Path: "b/img", Requisite: true, Depth: RequisiteDepth(1)}},
	}
	for _, tc := range []struct {
		name  string
		order []string // the order the seeds are settled in; "s1 retry" fails once first
		limit int
		want  []string // the level-1 pages queued, in lease order over hosts a then b
	}{
		{"s1 first", []string{"s1", "s2"}, 0, []string{"x", "y", "z"}},
		{"s2 first", []string{"s2", "s1"}, 0, []string{"x", "y", "z"}},
		{"s1 retried after s2", []string{"s1 retry", "s2", "s1"}, 0, []string{"x", "y", "z"}},
		{"limit, s1 first", []string{"s1", "s2"}, 4, []string{"x", "y"}},
		{"limit, s2 first", []string{"s2", "s1"}, 4, []string{"x", "y"}},
		{"limit, s1 retried after s2", []string{"s1 retry", "s2", "s1"}, 4, []string{"x", "y"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustOpen(t)
			s.SetPageLimit(tc.limit)
			mustBreadthFirst(t, s.Store)
			mustEnqueue(t, s.Store, []NewURL{page("a", "s1", 0), page("a", "s2", 0)})
			leased := map[string]Record{}
			for _, r := range leaseAll(t, s.Store, "a", t0) {
				leased[r.URL[len("https://a/"):]] = r
			}
			now := t0
			for i, step := range tc.order {
				if step == "s1 retry" {
					r := leased["s1"]
					r.State, r.Attempts, r.NextAttempt = Pending, 1, t0.Add(time.Minute)
					mustCommit(t, s.Store, Update{Record: r})
					now = t0.Add(2 * time.Minute)
					leased["s1"] = leaseAll(t, s.Store, "a", now)[0]
					continue
				}
				mustCommit(t, s.Store, done(leased[step], links[step]...))
				if i < len(tc.order)-1 {
					for _, name := range []string{"https://a/x", "https://a/y", "https://b/z"} {
						if _, ok, _ := s.Get(name); ok {
							t.Errorf("after %s: %s is a record before its level opened", step, name)
						}
					}
				}
			}
			if r, ok, _ := s.Get("https://b/img"); !ok || r.State != Pending {
				t.Errorf("requisite %+v, %v; want pending at once", r, ok)
			}
			var got []string
			for _, host := range []string{"a", "b"} {
				for _, r := range leaseAll(t, s.Store, host, now) {
					if !r.Requisite {
						got = append(got, r.URL[len("https://"+host+"/"):])
						if r.Depth != 1 {
							t.Errorf("%s at depth %d, want 1", r.URL, r.Depth)
						}
					}
				}
			}
			// Lease order within a host is queue order; across hosts, a's first.
			if !slices.Equal(got, tc.want) {
				t.Errorf("level 1 queued %v, want %v", got, tc.want)
			}
			if tc.limit > 0 {
				if r, _, _ := s.Get("https://b/z"); r.State != Skipped || r.LastError != ReasonMaxPages {
					t.Errorf("z: %v %q, want skipped for max-pages", r.State, r.LastError)
				}
			}
		})
	}
}

// TestBreadthFirstRanksAcrossHosts: a level's pages take queue positions in discovery order over
// all hosts, so that the next level's ties go by it: the links of a page on host b found before a
// page on host a rank first.
func TestBreadthFirstRanksAcrossHosts(t *testing.T) {
	s := mustOpen(t)
	s.SetPageLimit(4)
	mustBreadthFirst(t, s.Store)
	mustEnqueue(t, s.Store, []NewURL{page("a", "seed", 0)})
	seed := leaseAll(t, s.Store, "a", t0)[0]
	mustCommit(t, s.Store, done(seed, page("b", "first", 1), page("a", "second", 1)))
	second := leaseAll(t, s.Store, "a", t0)[0]
	first := leaseAll(t, s.Store, "b", t0)[0]
	// The later page settles first; its link would win a first-come race.
	mustCommit(t, s.Store, done(second, page("a", "from-second", 2)))
	mustCommit(t, s.Store, done(first, page("b", "from-first", 2)))
	if r, _, _ := s.Get("https://b/from-first"); r.State != Pending || r.Depth != 2 {
		t.Errorf("from-first: %+v, want pending at depth 2", r)
	}
	if r, _, _ := s.Get("https://a/from-second"); r.State != Skipped || r.LastError != ReasonMaxPages {
		t.Errorf("from-second: %+v, want skipped for max-pages", r)
	}
}

// TestBreadthFirstLinkMetAgain: a link held deep and then met at a level already open is queued at
// once, and held no more; a page met again deeper is left alone.
func TestBreadthFirstLinkMetAgain(t *testing.T) {
	s := mustOpen(t)
	mustBreadthFirst(t, s.Store)
	mustEnqueue(t, s.Store, []NewURL{page("a", "s1", 0), page("a", "s2", 0)})
	recs := leaseAll(t, s.Store, "a", t0)
	mustCommit(t, s.Store, done(recs[0], page("a", "x", 1), page("a", "s2", 1)))
	mustEnqueue(t, s.Store, []NewURL{page("a", "x", 0)}) // a seed given in a later run, say
	if r, _, _ := s.Get("https://a/x"); r.State != Pending || r.Depth != 0 {
		t.Errorf("x: %+v, want pending at depth 0", r)
	}
	if r, _, _ := s.Get("https://a/s2"); r.Depth != 0 {
		t.Errorf("s2 at depth %d after a link at depth 1, want 0", r.Depth)
	}
	mustCommit(t, s.Store, done(recs[1]))
}

// TestBreadthFirstLater: a job made breadth-first after it began opens every level it has, and its
// queue positions go on past every host's, so no two records of a host share one.
func TestBreadthFirstLater(t *testing.T) {
	s := mustOpen(t)
	mustEnqueue(t, s.Store, urls("a", 0, 5))
	mustEnqueue(t, s.Store, []NewURL{page("a", "deep", 3), page("b", "other", 1)})
	mustBreadthFirst(t, s.Store)
	mustEnqueue(t, s.Store, []NewURL{page("a", "at-3", 3), page("a", "at-4", 4)})
	if _, ok, _ := s.Get("https://a/at-3"); !ok {
		t.Error("a page at the deepest level the job had is not queued")
	}
	if _, ok, _ := s.Get("https://a/at-4"); ok {
		t.Error("a page deeper than the job had is queued at once")
	}
	if got := len(leaseAll(t, s.Store, "a", t0)); got != 7 {
		t.Errorf("leased %d of host a, want 7", got)
	}
	s.reopen()
	mustBreadthFirst(t, s.Store) // again: nothing changes
}

// TestConformanceBreadthFirst: a breadth-first store still passes the queue backends' suite.
func TestConformanceBreadthFirst(t *testing.T) {
	runConformance(t, func(s *Store) {
		if err := s.BreadthFirst(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSkipReasonsAndOpenPages: the skips by reason and the open pages follow every change, and a
// file of format "5", which has neither, gets them when it is opened for writing (read-only, none
// are told).
func TestSkipReasonsAndOpenPages(t *testing.T) {
	s := mustOpen(t)
	mustEnqueue(t, s.Store, []NewURL{
		{URL: "https://a/off", Host: "a", Skip: "off-scope"},
		{URL: "https://a/deep", Host: "a", Skip: "depth"},
		{URL: "https://a/deep2", Host: "a", Skip: "depth"},
		{URL: "https://a/long", Host: "a", Skip: fmt.Sprintf("%060d", 0)},
		page("a", "p", 0),
	})
	r := leaseAll(t, s.Store, "a", t0)[0]
	r.State, r.LastError = Skipped, "robots.txt"
	mustCommit(t, s.Store, Update{Record: r})
	want := map[string]int{"off-scope": 1, "depth": 2, "robots.txt": 1, skipOther: 1}
	if got, err := s.SkipReasons(); err != nil || !maps.Equal(got, want) {
		t.Errorf("SkipReasons = %v, %v; want %v", got, err, want)
	}

	// Made a format "5" file, as an older trawl left it.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		for _, k := range [][]byte{keyOpenPages, keySkips} {
			if err := meta.Delete(k); err != nil {
				return err
			}
		}
		return meta.Put(keyVersion, []byte(formatVersion5))
	}); err != nil {
		t.Fatal(err)
	}
	s.close()
	ro, err := Open(s.path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open of a format %q file: %v", formatVersion5, err)
	}
	if got, err := ro.SkipReasons(); got != nil || err != nil {
		t.Errorf("read-only SkipReasons of a format 5 file = %v, %v; want none", got, err)
	}
	ro.Close()
	s.reopen()
	if v := formatOf(t, s.Store); v != formatVersion {
		t.Errorf("version %q after a writable open, want %q", v, formatVersion)
	}
	if got, err := s.SkipReasons(); err != nil || !maps.Equal(got, want) {
		t.Errorf("SkipReasons after the upgrade = %v, %v; want %v", got, err, want)
	}
	s.check()
}

// TestRefetch: a done record is queued again as never fetched, so the next fetch is whole.
func TestRefetch(t *testing.T) {
	s := mustOpen(t)
	mustEnqueue(t, s.Store, urls("a", 0, 2))
	for _, r := range leaseAll(t, s.Store, "a", t0) {
		u := done(r)
		u.Record.SHA256, u.Record.ETag, u.Record.LastModified, u.Record.ContentType = "abc", `"e"`, "Sun, 06 Nov 1994 08:49:37 GMT", "text/html"
		mustCommit(t, s.Store, u)
	}
	first := urls("a", 0, 1)[0].URL
	n, err := s.Refetch(func(r Record) bool { return r.URL == first })
	if n != 1 || err != nil {
		t.Fatalf("Refetch = %d, %v", n, err)
	}
	r, _, _ := s.Get(first)
	if r.State != Pending || r.SHA256 != "" || r.ETag != "" || r.LastModified != "" || r.Bytes != 0 || r.Attempts != 0 {
		t.Errorf("refetched record %+v; want pending, nothing of its last fetch", r)
	}
}
