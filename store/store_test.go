package store

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var t0 = time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)

func TestEnqueueDedup(t *testing.T) {
	tests := []struct {
		name    string
		batches [][]NewURL
		added   []int
		total   int
	}{
		{"new", [][]NewURL{urls("a", 0, 3)}, []int{3}, 3},
		{"within batch", [][]NewURL{append(urls("a", 0, 2), urls("a", 0, 2)...)}, []int{2}, 2},
		{"across batches", [][]NewURL{urls("a", 0, 3), urls("a", 1, 3)}, []int{3, 1}, 4},
		{"empty batch", [][]NewURL{nil}, []int{0}, 0},
		{"many hosts", [][]NewURL{urls("a", 0, 2), urls("b", 0, 2), urls("a", 0, 2)}, []int{2, 2, 0}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpen(t)
			for i, b := range tt.batches {
				if got := mustEnqueue(t, s.Store, b); got != tt.added[i] {
					t.Errorf("batch %d: added %d, want %d", i, got, tt.added[i])
				}
			}
			if c := mustCounts(t, s.Store); c.Pending != tt.total || c.Total() != tt.total {
				t.Errorf("counts %+v, want %d pending", c, tt.total)
			}
		})
	}
}

func TestEnqueueLeavesKnownURLs(t *testing.T) {
	s := mustOpen(t)
	mustEnqueue(t, s.Store, urls("a", 0, 1))
	r := mustLease(t, s.Store, "a", 1, t0)[0]
	r.State, r.Bytes = Done, 10
	mustCommit(t, s.Store, Update{Record: r})
	if n := mustEnqueue(t, s.Store, []NewURL{{URL: r.URL, Host: "a", Path: "other"}}); n != 0 {
		t.Fatalf("added %d, want 0", n)
	}
	got, ok, err := s.Get(r.URL)
	if err != nil || !ok || got.State != Done || got.Path != r.Path {
		t.Fatalf("Get = %+v, %v, %v; want the done record untouched", got, ok, err)
	}
}

func TestEnqueueInvalid(t *testing.T) {
	s := mustOpen(t)
	for _, u := range []NewURL{{URL: "", Host: "a"}, {URL: "x", Host: ""}} {
		if _, err := s.Enqueue([]NewURL{u}); err == nil {
			t.Errorf("Enqueue(%+v) succeeded", u)
		}
	}
}

func TestLeaseOrder(t *testing.T) {
	s := mustOpen(t)
	mustEnqueue(t, s.Store, urls("a", 0, 6)) // 0..5, due now
	mustEnqueue(t, s.Store, urls("b", 0, 2))
	// Give 0 and 1 retry times in the future (1 earlier than 0); 2..5 stay due at zero time.
	leased := mustLease(t, s.Store, "a", 2, t0)
	if got, want := urlsOf(leased), urlsOf(recsOf(urls("a", 0, 2))); !slices.Equal(got, want) {
		t.Fatalf("first lease %v, want %v", got, want)
	}
	leased[0].State, leased[0].NextAttempt, leased[0].Attempts = Pending, t0.Add(2*time.Minute), 1
	leased[1].State, leased[1].NextAttempt, leased[1].Attempts = Pending, t0.Add(time.Minute), 1
	mustCommit(t, s.Store, Update{Record: leased[0]}, Update{Record: leased[1]})

	tests := []struct {
		name string
		n    int
		now  time.Time
		want []int // indexes into urls("a", ...)
	}{
		{"due now, FIFO", 3, t0, []int{2, 3, 4}},
		{"n limits", 1, t0, []int{5}},
		{"retry not yet due", 5, t0.Add(59 * time.Second), nil},
		{"earliest retry first", 5, t0.Add(time.Hour), []int{1, 0}},
		{"empty", 5, t0.Add(time.Hour), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustLease(t, s.Store, "a", tt.n, tt.now)
			var want []string
			for _, i := range tt.want {
				want = append(want, fmt.Sprintf("https://a/img/%06d.jpg", i))
			}
			if !slices.Equal(urlsOf(got), want) {
				t.Fatalf("leased %v, want %v", urlsOf(got), want)
			}
			for _, r := range got {
				if r.State != Leased || r.Host != "a" {
					t.Errorf("leased record %+v", r)
				}
			}
		})
	}
	if c := mustCounts(t, s.Store); c != (Counts{Pending: 2, Leased: 6}) {
		t.Errorf("counts %+v", c)
	}
	if got := mustLease(t, s.Store, "nohost", 5, t0); len(got) != 0 {
		t.Errorf("unknown host leased %v", got)
	}
}

// TestLeaseEach: leasing several hosts in one transaction gives each what Lease would, in the
// order of the hosts asked for; unknown, empty and repeated hosts get what is left.
func TestLeaseEach(t *testing.T) {
	s := mustOpen(t)
	mustEnqueue(t, s.Store, urls("a", 0, 3))
	mustEnqueue(t, s.Store, urls("b", 0, 1))
	mustEnqueue(t, s.Store, urls("c", 0, 5))
	got, err := s.LeaseEach([]string{"c", "nohost", "a", "b", "c", "a"}, 2, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]NewURL{urls("c", 0, 2), nil, urls("a", 0, 2), urls("b", 0, 1), urls("c", 2, 2), urls("a", 2, 1)}
	if len(got) != len(want) {
		t.Fatalf("%d results for %d hosts", len(got), len(want))
	}
	for i := range want {
		if !slices.Equal(urlsOf(got[i]), urlsOf(recsOf(want[i]))) {
			t.Errorf("host %d leased %v, want %v", i, urlsOf(got[i]), urlsOf(recsOf(want[i])))
		}
	}
	if c := mustCounts(t, s.Store); c != (Counts{Pending: 1, Leased: 8}) {
		t.Errorf("counts %+v", c)
	}
	if got, err := s.LeaseEach([]string{"c"}, 0, t0); err != nil || len(got) != 1 || got[0] != nil {
		t.Errorf("n = 0: %v, %v", got, err)
	}
	s.check()
}

func recsOf(u []NewURL) []Record {
	out := make([]Record, len(u))
	for i := range u {
		out[i] = Record{URL: u[i].URL}
	}
	return out
}

func TestCommit(t *testing.T) {
	s := mustOpen(t)
	mustEnqueue(t, s.Store, urls("a", 0, 4))
	l := mustLease(t, s.Store, "a", 4, t0)
	done, failed, retry, back := l[0], l[1], l[2], l[3]
	done.State, done.Bytes, done.Status, done.SHA256 = Done, 1234, 200, fmt.Sprintf("%064x", 7)
	done.Path, done.Updated = "a/img/renamed.jpg", t0
	failed.State, failed.Status, failed.LastError, failed.ErrorClass, failed.Attempts = Failed, 404, "not found", "http", 1
	retry.State, retry.NextAttempt, retry.Attempts, retry.LastError = Pending, t0.Add(time.Minute), 1, "503"
	back.State = Pending // lease given back unchanged
	batch := []Update{{Record: done}, {Record: failed}, {Record: retry}, {Record: back}}
	for i := 0; i < 2; i++ { // the same batch twice must equal once
		mustCommit(t, s.Store, batch...)
		if c := mustCounts(t, s.Store); c != (Counts{Pending: 2, Done: 1, Failed: 1, Bytes: 1234}) {
			t.Fatalf("application %d: counts %+v", i+1, c)
		}
		s.check()
	}
	for _, want := range []Record{done, failed, retry, back} {
		got, ok, err := s.Get(want.URL)
		if err != nil || !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("Get(%q) = %+v, %v, %v\nwant %+v", want.URL, got, ok, err, want)
		}
	}
	// The given-back lease is due now; the retry is not.
	if got := urlsOf(mustLease(t, s.Store, "a", 5, t0)); !slices.Equal(got, []string{back.URL}) {
		t.Errorf("leased %v, want %v", got, back.URL)
	}
	for _, u := range []Update{{Record: Record{URL: "x", Host: "a", State: Leased}}, {Record: Record{State: Done}}} {
		if err := s.Commit([]Update{u}); err == nil {
			t.Errorf("Commit(%+v) succeeded", u.Record)
		}
	}
}

func TestCommitGivenBackKeepsPlace(t *testing.T) {
	s := mustOpen(t)
	mustEnqueue(t, s.Store, urls("a", 0, 3))
	l := mustLease(t, s.Store, "a", 1, t0)
	l[0].State = Pending
	mustCommit(t, s.Store, Update{Record: l[0]})
	if got, want := urlsOf(mustLease(t, s.Store, "a", 3, t0)), urlsOf(recsOf(urls("a", 0, 3))); !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

func TestCommitLinks(t *testing.T) {
	s := mustOpen(t)
	mustEnqueue(t, s.Store, []NewURL{{URL: "https://a/", Host: "a", Path: "a/index.html"}})
	page := mustLease(t, s.Store, "a", 1, t0)[0]
	page.State = Done
	links := []NewURL{
		{URL: "https://a/", Host: "a", Path: "a/index.html"}, // itself: known
		{URL: "https://a/x", Host: "a", Path: "a/x", Depth: 1},
		{URL: "https://b/x", Host: "b", Path: "b/x", Depth: 1},
		{URL: "https://a/x?2", Host: "a", Path: "a/x", Depth: 1}, // same path: gets a/x~2
	}
	for i := 0; i < 2; i++ {
		mustCommit(t, s.Store, Update{Record: page, Links: links})
	}
	if c := mustCounts(t, s.Store); c != (Counts{Pending: 3, Done: 1}) {
		t.Fatalf("counts %+v", c)
	}
	r, ok, _ := s.Get("https://a/x?2")
	if !ok || r.Path != "a/x~2" || r.Depth != 1 || r.State != Pending {
		t.Errorf("link record %+v", r)
	}
}

func TestLeaseRecoveryAfterCrash(t *testing.T) {
	s := mustOpen(t)
	mustEnqueue(t, s.Store, urls("a", 0, 5))
	mustLease(t, s.Store, "a", 3, t0)
	if c := mustCounts(t, s.Store); c.Leased != 3 {
		t.Fatalf("counts %+v", c)
	}
	s.check()
	s.reopen() // the process died holding three leases
	if c := mustCounts(t, s.Store); c != (Counts{Pending: 5}) {
		t.Fatalf("after reopen: counts %+v", c)
	}
	if got, want := urlsOf(mustLease(t, s.Store, "a", 10, t0)), urlsOf(recsOf(urls("a", 0, 5))); !slices.Equal(got, want) {
		t.Errorf("after reopen leased %v, want %v (original order)", got, want)
	}
}

func TestPendingHosts(t *testing.T) {
	s := mustOpen(t)
	if hq, err := s.PendingHosts(); err != nil || len(hq) != 0 {
		t.Fatalf("empty store: %v, %v", hq, err)
	}
	mustEnqueue(t, s.Store, urls("a", 0, 3))
	mustEnqueue(t, s.Store, urls("b", 0, 2))
	mustEnqueue(t, s.Store, urls("c", 0, 1))
	l := mustLease(t, s.Store, "b", 2, t0)
	l[0].State, l[0].NextAttempt = Pending, t0.Add(time.Hour)
	l[1].State = Done
	mustCommit(t, s.Store, Update{Record: l[0]}, Update{Record: l[1]})
	mustLease(t, s.Store, "c", 1, t0)
	want := []HostQueue{{Host: "a", Pending: 3}, {Host: "b", Pending: 1, Next: t0.Add(time.Hour)}}
	got, err := s.PendingHosts()
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("PendingHosts = %+v, %v; want %+v", got, err, want)
	}
}

func TestRequeue(t *testing.T) {
	s := mustOpen(t)
	mustEnqueue(t, s.Store, urls("a", 0, 2000)) // more than one Requeue chunk
	l := mustLease(t, s.Store, "a", 2000, t0)
	var batch []Update
	for i, r := range l {
		r.State, r.Attempts, r.NextAttempt, r.Status = Failed, 3, t0, 500+i%2
		if i == 0 {
			r.State = Done
		}
		batch = append(batch, Update{Record: r})
	}
	mustCommit(t, s.Store, batch...)
	n, err := s.Requeue(func(r Record) bool { return r.Status == 501 })
	if err != nil || n != 1000 {
		t.Fatalf("Requeue(501) = %d, %v; want 1000", n, err)
	}
	n, err = s.Requeue(nil)
	if err != nil || n != 999 {
		t.Fatalf("Requeue(nil) = %d, %v; want 999", n, err)
	}
	if c := mustCounts(t, s.Store); c != (Counts{Pending: 1999, Done: 1}) {
		t.Errorf("counts %+v", c)
	}
	r, _, _ := s.Get(l[1].URL)
	if r.State != Pending || r.Attempts != 0 || !r.NextAttempt.IsZero() {
		t.Errorf("requeued record %+v", r)
	}
	if got := mustLease(t, s.Store, "a", 5000, time.Time{}); len(got) != 1999 {
		t.Errorf("leased %d due at zero time, want 1999", len(got))
	}
}

func TestRevalidateAndHostCounts(t *testing.T) {
	s := mustOpen(t)
	mustEnqueue(t, s.Store, urls("a", 0, 10))
	mustEnqueue(t, s.Store, urls("b", 0, 4))
	var batch []Update
	for i, r := range mustLease(t, s.Store, "a", 10, t0) {
		r.State, r.Attempts, r.Bytes, r.ETag = Done, 1, 100, `"e"`
		if i >= 8 {
			r.State, r.Bytes, r.ETag, r.Transient = Failed, 0, "", true
		}
		batch = append(batch, Update{Record: r})
	}
	mustCommit(t, s.Store, batch...)
	hc, err := s.HostCounts()
	if err != nil {
		t.Fatal(err)
	}
	for h, c := range hc {
		c.Pages = 0
		hc[h] = c
	}
	want := map[string]Counts{"a": {Done: 8, Failed: 2, Bytes: 800}, "b": {Pending: 4}}
	if !reflect.DeepEqual(hc, want) {
		t.Fatalf("HostCounts = %+v, want %+v", hc, want)
	}
	if r, _, _ := s.Get(batch[9].Record.URL); !r.Transient {
		t.Errorf("Transient flag lost: %+v", r)
	}
	n, err := s.Revalidate(nil)
	if err != nil || n != 8 {
		t.Fatalf("Revalidate = %d, %v; want 8", n, err)
	}
	r, _, _ := s.Get(batch[0].Record.URL)
	if r.State != Pending || r.Attempts != 0 || r.ETag != `"e"` || r.Bytes != 100 {
		t.Errorf("revalidated record lost its validators: %+v", r)
	}
	if c := mustCounts(t, s.Store); c != (Counts{Pending: 12, Failed: 2}) {
		t.Errorf("counts %+v", c)
	}
	if n, _ := s.Requeue(nil); n != 2 {
		t.Errorf("Requeue = %d, want 2", n)
	}
	if r, _, _ := s.Get(batch[9].Record.URL); r.Transient || r.State != Pending {
		t.Errorf("requeued record %+v", r)
	}
}

func TestForEach(t *testing.T) {
	s := mustOpen(t)
	mustEnqueue(t, s.Store, urls("a", 0, 1100)) // several chunks
	seen := map[string]bool{}
	if err := s.ForEach(func(r Record) error {
		if seen[r.URL] || r.State != Pending {
			t.Errorf("record %+v (seen %v)", r, seen[r.URL])
		}
		seen[r.URL] = true
		return nil
	}); err != nil || len(seen) != 1100 {
		t.Fatalf("ForEach saw %d, %v", len(seen), err)
	}
	stop := errors.New("stop")
	n := 0
	if err := s.ForEach(func(Record) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("ForEach = %v after %d calls, want stop after 1", err, n)
	}
}

func TestMeta(t *testing.T) {
	s := mustOpen(t)
	if v, err := s.Meta("run.start"); err != nil || v != "" {
		t.Fatalf("unset meta = %q, %v", v, err)
	}
	if err := s.SetMeta("run.start", "2026-11-22T01:02:03Z"); err != nil {
		t.Fatal(err)
	}
	s.reopen()
	if v, err := s.Meta("run.start"); err != nil || v != "2026-11-22T01:02:03Z" {
		t.Errorf("meta = %q, %v", v, err)
	}
	if s.Path() != s.path {
		t.Errorf("Path() = %q, want %q", s.Path(), s.path)
	}
}

func TestOpenReadOnly(t *testing.T) {
	path := t.TempDir() + "/state.db"
	if _, err := Open(path, &Options{ReadOnly: true}); err == nil {
		t.Fatal("read-only open of a missing file succeeded")
	}
	s, err := Open(path, &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, s, urls("a", 0, 3))
	if _, err := Open(path, &Options{ReadOnly: true, Timeout: 50 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Fatalf("read-only open of a held file: %v, want ErrLocked", err)
	}
	s.Close()
	r1, err := Open(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Open(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("second reader: %v", err)
	}
	if c, err := r2.Counts(); err != nil || c.Pending != 3 {
		t.Fatalf("Counts = %+v, %v", c, err)
	}
	r1.Close()
	r2.Close()
}

func TestSkippedAndPageLimit(t *testing.T) {
	s := mustOpen(t)
	s.SetPageLimit(3)
	in := []NewURL{
		{URL: "https://a/1", Host: "a", Path: "a/1"},
		{URL: "https://a/off", Host: "a", Path: "a/off", Skip: "off-scope"},
		{URL: "https://a/img.jpg", Host: "a", Path: "a/img.jpg", Requisite: true},
		{URL: "https://a/2", Host: "a", Path: "a/2"},
		{URL: "https://a/3", Host: "a", Path: "a/3"},
		{URL: "https://a/4", Host: "a", Path: "a/4"},
		{URL: "https://a/img2.jpg", Host: "a", Path: "a/img2.jpg", Requisite: true},
	}
	mustEnqueue(t, s.Store, in)
	c, err := s.Counts()
	if err != nil {
		t.Fatal(err)
	}
	if c.Pending != 5 || c.Skipped != 2 || c.Pages != 3 {
		t.Fatalf("counts %+v, want 5 pending (3 pages + 2 requisites), 2 skipped", c)
	}
	for url, reason := range map[string]string{"https://a/off": "off-scope", "https://a/4": "max-pages"} {
		r, _, _ := s.Get(url)
		if r.State != Skipped || r.LastError != reason || r.Path != "" {
			t.Errorf("%s: %+v, want skipped for %q without a path", url, r, reason)
		}
	}
	if r, _, _ := s.Get("https://a/img.jpg"); !r.Requisite || r.State != Pending {
		t.Errorf("requisite record %+v", r)
	}
	// Skipped URLs are known: offering them again changes nothing.
	if n, _ := s.Enqueue(in[:2]); n != 0 {
		t.Errorf("re-enqueue added %d", n)
	}
}

func TestSkippedPageUpgradedToRequisite(t *testing.T) {
	s := mustOpen(t)
	mustEnqueue(t, s.Store, []NewURL{
		{URL: "https://a/full/x.jpg", Host: "a", Skip: "off-scope"},
		{URL: "https://a/full/x.jpg", Host: "a", Path: "a/full/x.jpg", Requisite: true},
		{URL: "https://a/robots/y.jpg", Host: "a", Path: "a/robots/y.jpg", Requisite: true, Skip: "excluded"},
		{URL: "https://a/robots/y.jpg", Host: "a", Path: "a/robots/y.jpg", Requisite: true},
	})
	r, _, _ := s.Get("https://a/full/x.jpg")
	if r.State != Pending || !r.Requisite || r.Path != "a/full/x.jpg" {
		t.Fatalf("page-skipped URL offered as a requisite: %+v, want a pending requisite", r)
	}
	r, _, _ = s.Get("https://a/robots/y.jpg")
	if r.State != Skipped {
		t.Fatalf("requisite skipped for its own sake came back: %+v", r)
	}
	// Offering the page link again does not undo it.
	mustEnqueue(t, s.Store, []NewURL{{URL: "https://a/full/x.jpg", Host: "a", Skip: "off-scope"}})
	if r, _, _ := s.Get("https://a/full/x.jpg"); r.State != Pending {
		t.Fatalf("page link re-offered: %+v", r)
	}
}

func TestSuffixedStaysWithinNameLimit(t *testing.T) {
	long := strings.Repeat("é", 125) + "x.jpg" // 255 bytes, multi-byte runes
	tests := []struct{ name string }{{long}, {strings.Repeat("a", 255)}, {"a." + strings.Repeat("e", 253)}, {"a.jpg"}}
	for _, tt := range tests {
		for _, n := range []uint64{2, 10, 12345} {
			got := suffixed(tt.name, n)
			if len(got) > maxNameBytes || !utf8.ValidString(got) || !strings.Contains(got, "~"+strconv.FormatUint(n, 10)) {
				t.Errorf("suffixed(%d bytes, %d) = %q (%d bytes)", len(tt.name), n, got, len(got))
			}
		}
	}
	if got := suffixed("a.jpg", 2); got != "a~2.jpg" {
		t.Errorf("suffixed(a.jpg) = %q", got)
	}
}
