package store

import (
	"fmt"
	"testing"
)

// requisite is a NewURL for a requisite at requisite-chain level level.
func requisite(url string, level int) NewURL {
	return NewURL{URL: "https://a/" + url, Host: "a", Path: "a/" + url, Requisite: true, Depth: RequisiteDepth(level)}
}

// TestRequisiteBudget: with a page limit, requisites beyond RequisitesPerPage per page of it are
// recorded skipped for the budget, exactly, across batches and runs, and a URL skipped as a page
// is not turned into a requisite past it; without a page limit there is no budget.
func TestRequisiteBudget(t *testing.T) {
	for _, tc := range []struct {
		name        string
		limit, want int // page limit, requisites queued
	}{
		{"one page", 1, RequisitesPerPage},
		{"two pages", 2, 2 * RequisitesPerPage},
		{"no limit", 0, 3 * RequisitesPerPage},
		{"huge limit", int(^uint(0) >> 1), 3 * RequisitesPerPage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustOpen(t)
			s.SetPageLimit(tc.limit)
			mustEnqueue(t, s.Store, []NewURL{{URL: "https://a/", Host: "a", Path: "a/index.html"}})
			const offered = 3 * RequisitesPerPage
			for i := range offered {
				if i == offered/2 {
					s.reopen() // a later run: the budget is the job's
					s.SetPageLimit(tc.limit)
				}
				mustEnqueue(t, s.Store, []NewURL{requisite(fmt.Sprintf("%d.png", i), 1)})
			}
			c := mustCounts(t, s.Store)
			if c.Pending != 1+tc.want || c.Skipped != offered-tc.want {
				t.Fatalf("counts %+v; want %d pending (the page and %d requisites), %d skipped", c, 1+tc.want, tc.want, offered-tc.want)
			}
			r, _, _ := s.Get(fmt.Sprintf("https://a/%d.png", offered-1))
			if tc.want < offered && (r.State != Skipped || r.LastError != ReasonRequisiteBudget || r.Path != "") {
				t.Errorf("requisite over the budget: %+v; want skipped for %q without a path", r, ReasonRequisiteBudget)
			}

			// A URL skipped as a page comes back as a requisite: queued only within the budget.
			mustEnqueue(t, s.Store, []NewURL{{URL: "https://a/off.png", Host: "a", Skip: "off-scope"}, requisite("off.png", 1)})
			r, _, _ = s.Get("https://a/off.png")
			if full := tc.want < offered; (r.State == Skipped) != full {
				t.Errorf("page-skipped URL offered as a requisite, budget spent %v: %+v", full, r)
			}
		})
	}
}

// TestRequisiteRequeuedAtShallowerLevel: a requisite skipped beyond the chain limit is queued when
// it comes back higher up a chain (a page's own stylesheet), at that level; met as deep or deeper,
// or refused for its own sake, it stays skipped.
func TestRequisiteRequeuedAtShallowerLevel(t *testing.T) {
	s := mustOpen(t)
	deep := requisite("font.woff2", 6)
	deep.Skip = "requisite-depth"
	mustEnqueue(t, s.Store, []NewURL{deep, requisite("font.woff2", 6), requisite("font.woff2", 7)})
	if r, _, _ := s.Get("https://a/font.woff2"); r.State != Skipped || r.RequisiteLevel() != 6 {
		t.Fatalf("met again as deep: %+v; want still skipped at level 6", r)
	}
	mustEnqueue(t, s.Store, []NewURL{requisite("font.woff2", 2)})
	r, _, _ := s.Get("https://a/font.woff2")
	if r.State != Pending || !r.Requisite || r.RequisiteLevel() != 2 || r.Path != "a/font.woff2" {
		t.Fatalf("met at level 2: %+v; want a pending requisite at level 2 with its path", r)
	}
	// Queued: known, and left alone however it is met.
	if n := mustEnqueue(t, s.Store, []NewURL{requisite("font.woff2", 1)}); n != 0 {
		t.Errorf("pending requisite offered again: %d added", n)
	}

	excluded := requisite("x.zip", 6)
	excluded.Skip = "excluded"
	again := requisite("x.zip", 1)
	again.Skip = "excluded"
	mustEnqueue(t, s.Store, []NewURL{excluded, again})
	if r, _, _ := s.Get("https://a/x.zip"); r.State != Skipped || r.RequisiteLevel() != 6 {
		t.Errorf("requisite refused for its own sake: %+v; want skipped as first met", r)
	}
}

// TestRequisiteLevel: a requisite's level is its Depth negated; a page has none; a requisite
// recorded before levels existed (Depth its page's depth + 1) counts as level 1, so its chain goes
// on a few levels and stops.
func TestRequisiteLevel(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Record
		want int
	}{
		{"page", Record{Depth: 3}, 0},
		{"seed", Record{}, 0},
		{"level 1", Record{Requisite: true, Depth: RequisiteDepth(1)}, 1},
		{"level 6", Record{Requisite: true, Depth: RequisiteDepth(6)}, 6},
		{"older trawl, seed's requisite", Record{Requisite: true, Depth: 1}, 1},
		{"older trawl, deep chain", Record{Requisite: true, Depth: 3001}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.RequisiteLevel(); got != tc.want {
				t.Errorf("RequisiteLevel() of %+v = %d, want %d", tc.r, got, tc.want)
			}
			// The level survives the record's encoding.
			tc.r.URL, tc.r.Host, tc.r.State = "https://a/x", "a", Pending
			d, _, err := decodeRecord(tc.r.URL, encodeRecord(&tc.r, 1))
			if err != nil || d.RequisiteLevel() != tc.want {
				t.Errorf("decoded: %+v, %v; want level %d", d, err, tc.want)
			}
		})
	}
}
