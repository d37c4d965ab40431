package store

import (
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestSitemapWord: a NewURL's Lastmod and Listed (a sitemap's word) are kept on the record, new or
// known, held (breadth-first) or not; a known record gets the newest word in place (a pending one
// keeps its place in the queue, a done one stays done) but for a leased one, whose outcome is
// about to be committed over it, and a skipped one. Nothing else about the record changes.
func TestSitemapWord(t *testing.T) {
	t1, t2 := time.Unix(1_700_000_000, 0).UTC(), time.Unix(1_700_100_000, 0).UTC()
	seen1, seen2 := time.Unix(1_750_000_000, 0).UTC(), time.Unix(1_750_100_000, 0).UTC()
	page := func(name string, lastmod, listed time.Time) NewURL {
		return NewURL{URL: "https://a/" + name, Host: "a", Path: "a/" + name, Depth: 1, Lastmod: lastmod, Listed: listed}
	}
	for _, breadth := range []bool{false, true} {
		name := "plain"
		if breadth {
			name = "breadth-first"
		}
		t.Run(name, func(t *testing.T) {
			s := mustOpen(t)
			if breadth {
				mustBreadthFirst(t, s.Store)
			}
			// A seed, then the sitemap's pages: in a breadth-first job they are held at depth 1
			// until the seed is settled.
			mustEnqueue(t, s.Store, []NewURL{{URL: "https://a/", Host: "a", Path: "a/index.html"}})
			mustEnqueue(t, s.Store, []NewURL{page("p", t1, seen1), page("q", t1, seen1), page("r", t1, seen1), page("d", t1, seen1),
				{URL: "https://a/off", Host: "a", Skip: "off-scope", Lastmod: t1, Listed: seen1}})
			now := time.Unix(1_760_000_000, 0)
			seed := mustLease(t, s.Store, "a", 1, now)
			seed[0].State = Done
			mustCommit(t, s.Store, Update{Record: seed[0]})
			for _, n := range []string{"p", "q", "r", "d"} {
				if r, _, _ := s.Get("https://a/" + n); r.State != Pending || !r.Lastmod.Equal(t1) || !r.Listed.Equal(seen1) {
					t.Fatalf("%s: %+v; want pending with the sitemap's word", n, r)
				}
			}
			if r, _, _ := s.Get("https://a/off"); r.State != Skipped || !r.Lastmod.IsZero() {
				t.Errorf("skipped: %+v; want no sitemap word on it", r)
			}

			// q is leased, d is done, r is still pending, p is pending too; then the sitemap is
			// read again with newer words.
			leased := mustLease(t, s.Store, "a", 4, now)
			byURL := map[string]Record{}
			for _, r := range leased {
				byURL[r.URL] = r
			}
			d := byURL["https://a/d"]
			d.State, d.Updated, d.SHA256 = Done, now, "x"
			p, r := byURL["https://a/p"], byURL["https://a/r"]
			p.State, r.State = Pending, Pending
			mustCommit(t, s.Store, Update{Record: d}, Update{Record: p}, Update{Record: r}) // p and r released
			before := mustCounts(t, s.Store)
			mustEnqueue(t, s.Store, []NewURL{page("p", t2, seen2), page("q", t2, seen2), page("d", t2, seen2), page("r", time.Time{}, seen2)})
			for _, tc := range []struct {
				name      string
				state     State
				lastmod   time.Time
				listed    time.Time
				updatedAt time.Time
			}{
				{"p", Pending, t2, seen2, time.Time{}},
				{"q", Leased, t1, seen1, time.Time{}},
				{"d", Done, t2, seen2, now},
				{"r", Pending, t1, seen1, time.Time{}}, // no lastmod: no word
			} {
				got, _, _ := s.Get("https://a/" + tc.name)
				if got.State != tc.state || !got.Lastmod.Equal(tc.lastmod) || !got.Listed.Equal(tc.listed) || !got.Updated.Equal(tc.updatedAt) && !tc.updatedAt.IsZero() {
					t.Errorf("%s: %+v; want %v, lastmod %v, listed %v", tc.name, got, tc.state, tc.lastmod, tc.listed)
				}
			}
			if after := mustCounts(t, s.Store); after != before {
				t.Errorf("counts %+v after the sitemap's word, want %+v unchanged", after, before)
			}
			// The pending ones kept their places: p before r, as leased before.
			again := mustLease(t, s.Store, "a", 2, now)
			if len(again) != 2 || again[0].URL != p.URL || again[1].URL != r.URL {
				t.Errorf("leased %v after the word, want p then r", again)
			}
			s.reopen() // recovers the leases; the records stay as they are
		})
	}
}

// TestOpenFormat6: a format "6" file (records without a sitemap's word) is read as it is, and
// marked with the current format (7 or later) when opened for writing, so that an older trawl
// refuses it rather than misread a record with a Lastmod.
func TestOpenFormat6(t *testing.T) {
	s := mustOpen(t)
	mustEnqueue(t, s.Store, []NewURL{{URL: "https://a/x", Host: "a", Path: "a/x"}})
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyVersion, []byte(formatVersion6))
	}); err != nil {
		t.Fatal(err)
	}
	s.close()
	ro, err := Open(s.path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open of a format %q file: %v", formatVersion6, err)
	}
	if r, ok, err := ro.Get("https://a/x"); err != nil || !ok || r.State != Pending {
		t.Errorf("format 6 record: %+v, %v, %v", r, ok, err)
	}
	ro.Close()
	s.reopen()
	if v := formatOf(t, s.Store); v != formatVersion || formatVersion < "7" {
		t.Errorf("version %q after a writable open, want %q", v, formatVersion)
	}
}
