// Package queuetest is the conformance suite every queue backend passes: the contract of
// queue.Backend as the scheduler and the CLI rely on it. A backend's test calls Run with a Harness
// that opens a fresh job and reopens one after a simulated crash.
package queuetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/queue"
)

// Harness opens a backend's jobs for the suite.
type Harness struct {
	// Open returns a new, empty job; the harness closes it at the test's end.
	Open func(t *testing.T) queue.Backend
	// Crash ends b as a killed process would — no lease settled, nothing closed cleanly that a
	// kill would not close — and returns the same job opened again, as the next run finds it.
	Crash func(t *testing.T, b queue.Backend) queue.Backend
}

// t0 is the suite's clock: due times are relative to it, nothing sleeps.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Run runs every conformance test against the backend h opens.
func Run(t *testing.T, h Harness) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"EnqueueDedup", testEnqueueDedup},
		{"LeaseInQueueOrder", testLeaseInQueueOrder},
		{"LeaseManyHosts", testLeaseManyHosts},
		{"DueOrder", testDueOrder},
		{"SettleDone", testSettleDone},
		{"SettleTwice", testSettleTwice},
		{"Release", testRelease},
		{"FailedAndRequeue", testFailedAndRequeue},
		{"Revalidate", testRevalidate},
		{"LinksWithPage", testLinksWithPage},
		{"Skipped", testSkipped},
		{"PageLimit", testPageLimit},
		{"CrashReturnsLeases", testCrashReturnsLeases},
		{"Meta", testMeta},
		{"SitemapWord", testSitemapWord},
		{"Want", testWant},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

// url is the i-th URL of host.
func url(host string, i int) string { return fmt.Sprintf("https://%s/f%03d", host, i) }

// urls returns n new URLs of host, in order.
func urls(host string, n int) []queue.NewURL {
	out := make([]queue.NewURL, n)
	for i := range out {
		out[i] = queue.NewURL{URL: url(host, i), Host: host, Path: fmt.Sprintf("%s/f%03d", host, i)}
	}
	return out
}

func enqueue(t *testing.T, b queue.Backend, urls []queue.NewURL) int {
	t.Helper()
	n, err := b.Enqueue(urls)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	return n
}

func lease(t *testing.T, b queue.Backend, host string, n int, now time.Time) []queue.Record {
	t.Helper()
	got, err := b.LeaseEach([]string{host}, n, now)
	if err != nil {
		t.Fatalf("LeaseEach: %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("LeaseEach of one host returned %d lists", len(got))
	}
	return got[0]
}

func commit(t *testing.T, b queue.Backend, updates ...queue.Update) {
	t.Helper()
	if err := b.Commit(updates); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func counts(t *testing.T, b queue.Backend) queue.Counts {
	t.Helper()
	c, err := b.Counts()
	if err != nil {
		t.Fatalf("Counts: %v", err)
	}
	return c
}

func wantCounts(t *testing.T, b queue.Backend, want queue.Counts) {
	t.Helper()
	if got := counts(t, b); got != want {
		t.Fatalf("Counts %+v, want %+v", got, want)
	}
}

func get(t *testing.T, b queue.Backend, u string) queue.Record {
	t.Helper()
	r, ok, err := b.Get(u)
	if err != nil || !ok {
		t.Fatalf("Get(%s): %v, found %v", u, err, ok)
	}
	return r
}

func urlsOf(recs []queue.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.URL
	}
	return out
}

// done settles r as a complete file of n bytes.
func done(r queue.Record, n int64) queue.Update {
	r.State, r.Bytes, r.SHA256, r.Attempts = queue.Done, n, fmt.Sprintf("%064x", n), r.Attempts+1
	return queue.Update{Record: r}
}

func testEnqueueDedup(t *testing.T, h Harness) {
	b := h.Open(t)
	in := append(urls("a.test", 3), urls("b.test", 2)...)
	if n := enqueue(t, b, append(in, in[0], in[3])); n != 5 {
		t.Fatalf("Enqueue of 5 URLs and 2 repeats added %d", n)
	}
	if n := enqueue(t, b, in); n != 0 {
		t.Fatalf("Enqueue of known URLs added %d", n)
	}
	wantCounts(t, b, queue.Counts{Pending: 5, Pages: 5})
	hq, err := b.PendingHosts()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(hq, func(x, y queue.HostQueue) int { return cmpString(x.Host, y.Host) })
	if len(hq) != 2 || hq[0].Host != "a.test" || hq[0].Pending != 3 || hq[1].Host != "b.test" || hq[1].Pending != 2 {
		t.Fatalf("PendingHosts %+v, want a.test with 3, b.test with 2", hq)
	}
	if r := get(t, b, url("a.test", 1)); r.State != queue.Pending || r.Host != "a.test" || r.Path != "a.test/f001" {
		t.Fatalf("Get: %+v", r)
	}
	if _, ok, err := b.Get("https://c.test/none"); ok || err != nil {
		t.Fatalf("Get of an unknown URL: found %v, %v", ok, err)
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func testLeaseInQueueOrder(t *testing.T, h Harness) {
	b := h.Open(t)
	enqueue(t, b, urls("a.test", 5))
	first := lease(t, b, "a.test", 3, t0)
	if want := []string{url("a.test", 0), url("a.test", 1), url("a.test", 2)}; !slices.Equal(urlsOf(first), want) {
		t.Fatalf("first lease %v, want %v", urlsOf(first), want)
	}
	for _, r := range first {
		if r.State != queue.Leased {
			t.Fatalf("leased record in state %v", r.State)
		}
	}
	wantCounts(t, b, queue.Counts{Pending: 2, Leased: 3, Pages: 5})
	rest := lease(t, b, "a.test", 10, t0)
	if want := []string{url("a.test", 3), url("a.test", 4)}; !slices.Equal(urlsOf(rest), want) {
		t.Fatalf("second lease %v, want %v: a leased record must not be leased again", urlsOf(rest), want)
	}
	if more := lease(t, b, "a.test", 10, t0); len(more) != 0 {
		t.Fatalf("third lease %v, want none", urlsOf(more))
	}
}

func testLeaseManyHosts(t *testing.T, h Harness) {
	b := h.Open(t)
	enqueue(t, b, append(urls("a.test", 2), urls("b.test", 3)...))
	got, err := b.LeaseEach([]string{"b.test", "none.test", "a.test"}, 2, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || len(got[0]) != 2 || len(got[1]) != 0 || len(got[2]) != 2 || got[0][0].Host != "b.test" || got[2][0].Host != "a.test" {
		t.Fatalf("LeaseEach(b, none, a): %v", got)
	}
	wantCounts(t, b, queue.Counts{Pending: 1, Leased: 4, Pages: 5})
}

func testDueOrder(t *testing.T, h Harness) {
	b := h.Open(t)
	enqueue(t, b, urls("a.test", 2))
	recs := lease(t, b, "a.test", 2, t0)
	// The first fails and is due again in an hour; the second comes back due in a minute.
	later, soon := recs[0], recs[1]
	later.State, later.NextAttempt, later.Attempts, later.LastError = queue.Pending, t0.Add(time.Hour), 1, "HTTP 503"
	soon.State, soon.NextAttempt, soon.Attempts = queue.Pending, t0.Add(time.Minute), 1
	commit(t, b, queue.Update{Record: later}, queue.Update{Record: soon})
	if got := lease(t, b, "a.test", 10, t0); len(got) != 0 {
		t.Fatalf("leased %v before they were due", urlsOf(got))
	}
	hq, err := b.PendingHosts()
	if err != nil || len(hq) != 1 || !hq[0].Next.Equal(soon.NextAttempt) {
		t.Fatalf("PendingHosts %+v (%v), want a.test due at %v", hq, err, soon.NextAttempt)
	}
	if got := lease(t, b, "a.test", 10, t0.Add(2*time.Minute)); !slices.Equal(urlsOf(got), []string{soon.URL}) {
		t.Fatalf("leased %v at t0+2m, want only %s", urlsOf(got), soon.URL)
	}
	got := lease(t, b, "a.test", 10, t0.Add(2*time.Hour))
	if len(got) != 1 || got[0].URL != later.URL || got[0].Attempts != 1 || got[0].LastError != "HTTP 503" {
		t.Fatalf("leased %+v at t0+2h, want %s with its attempt and error", got, later.URL)
	}
}

func testSettleDone(t *testing.T, h Harness) {
	b := h.Open(t)
	enqueue(t, b, urls("a.test", 2))
	recs := lease(t, b, "a.test", 2, t0)
	u := done(recs[0], 100)
	u.Record.ETag, u.Record.LastModified, u.Record.ContentType = `"e1"`, "Fri, 02 Jan 2026 03:04:05 GMT", "image/jpeg"
	commit(t, b, u)
	wantCounts(t, b, queue.Counts{Leased: 1, Done: 1, Pages: 2, Bytes: 100})
	r := get(t, b, recs[0].URL)
	if r.State != queue.Done || r.Bytes != 100 || r.SHA256 != u.Record.SHA256 || r.ETag != `"e1"` ||
		r.LastModified != u.Record.LastModified || r.ContentType != "image/jpeg" || r.Attempts != 1 {
		t.Fatalf("done record %+v", r)
	}
	hc, err := b.HostCounts()
	if err != nil || hc["a.test"].Done != 1 || hc["a.test"].Leased != 1 {
		t.Fatalf("HostCounts %+v (%v)", hc, err)
	}
}

func testSettleTwice(t *testing.T, h Harness) {
	b := h.Open(t)
	enqueue(t, b, urls("a.test", 3))
	recs := lease(t, b, "a.test", 3, t0)
	retry := recs[1]
	retry.State, retry.NextAttempt, retry.Attempts = queue.Pending, t0.Add(time.Minute), 1
	batch := []queue.Update{done(recs[0], 10), {Record: retry}}
	commit(t, b, batch...)
	commit(t, b, batch...)
	wantCounts(t, b, queue.Counts{Pending: 1, Leased: 1, Done: 1, Pages: 3, Bytes: 10})
	if got := lease(t, b, "a.test", 10, t0.Add(time.Hour)); !slices.Equal(urlsOf(got), []string{retry.URL}) {
		t.Fatalf("after settling twice, leased %v, want the retry once", urlsOf(got))
	}
}

func testRelease(t *testing.T, h Harness) {
	b := h.Open(t)
	enqueue(t, b, urls("a.test", 3))
	recs := lease(t, b, "a.test", 3, t0)
	// Given back unchanged (a shutdown): due as before, and first in the queue again.
	var back []queue.Update
	for _, r := range recs[1:] {
		r.State = queue.Pending
		back = append(back, queue.Update{Record: r})
	}
	commit(t, b, back...)
	commit(t, b, done(recs[0], 1))
	wantCounts(t, b, queue.Counts{Pending: 2, Done: 1, Pages: 3, Bytes: 1})
	if got := lease(t, b, "a.test", 10, t0); !slices.Equal(urlsOf(got), urlsOf(recs[1:])) {
		t.Fatalf("released records leased as %v, want %v in their order", urlsOf(got), urlsOf(recs[1:]))
	}
}

func testFailedAndRequeue(t *testing.T, h Harness) {
	b := h.Open(t)
	enqueue(t, b, urls("a.test", 2))
	recs := lease(t, b, "a.test", 2, t0)
	for i := range recs {
		recs[i].State, recs[i].Attempts, recs[i].Status, recs[i].LastError = queue.Failed, 6, 404+i, "HTTP 404"
	}
	commit(t, b, queue.Update{Record: recs[0]}, queue.Update{Record: recs[1]})
	wantCounts(t, b, queue.Counts{Failed: 2, Pages: 2})
	n, err := b.Requeue(func(r queue.Record) bool { return r.Status == 404 })
	if err != nil || n != 1 {
		t.Fatalf("Requeue of the 404s: %d, %v; want 1", n, err)
	}
	wantCounts(t, b, queue.Counts{Pending: 1, Failed: 1, Pages: 2})
	got := lease(t, b, "a.test", 10, t0)
	if len(got) != 1 || got[0].URL != recs[0].URL || got[0].Attempts != 0 {
		t.Fatalf("requeued %+v, want %s with a fresh retry budget", got, recs[0].URL)
	}
	if n, err := b.Requeue(nil); err != nil || n != 1 {
		t.Fatalf("Requeue(nil): %d, %v; want the other failure", n, err)
	}
}

func testRevalidate(t *testing.T, h Harness) {
	b := h.Open(t)
	enqueue(t, b, urls("a.test", 1))
	u := done(lease(t, b, "a.test", 1, t0)[0], 42)
	u.Record.ETag = `"v1"`
	commit(t, b, u)
	if n, err := b.Revalidate(nil); err != nil || n != 1 {
		t.Fatalf("Revalidate: %d, %v", n, err)
	}
	got := lease(t, b, "a.test", 1, t0)
	if len(got) != 1 || got[0].SHA256 != u.Record.SHA256 || got[0].ETag != `"v1"` || got[0].Bytes != 42 {
		t.Fatalf("revalidation lease %+v: it must keep the validators, size and sha256", got)
	}
}

func testLinksWithPage(t *testing.T, h Harness) {
	b := h.Open(t)
	enqueue(t, b, urls("a.test", 1))
	page := lease(t, b, "a.test", 1, t0)[0]
	links := append(urls("a.test", 3)[1:], queue.NewURL{URL: "https://cdn.test/i.jpg", Host: "cdn.test", Path: "cdn.test/i.jpg", Depth: queue.RequisiteDepth(1), Requisite: true})
	links = append(links, queue.NewURL{URL: page.URL, Host: "a.test", Path: page.Path, Depth: 1}) // a link back to the page
	u := done(page, 5)
	u.Links = links
	commit(t, b, u)
	wantCounts(t, b, queue.Counts{Pending: 3, Done: 1, Pages: 3, Bytes: 5})
	if r := get(t, b, "https://cdn.test/i.jpg"); !r.Requisite || r.RequisiteLevel() != 1 || r.State != queue.Pending {
		t.Fatalf("requisite link %+v", r)
	}
	if r := get(t, b, url("a.test", 1)); r.Depth != 0 || r.State != queue.Pending {
		t.Fatalf("page link %+v", r)
	}
	if r := get(t, b, page.URL); r.State != queue.Done {
		t.Fatalf("the page, linked from itself: %v, want still done", r.State)
	}
}

func testSkipped(t *testing.T, h Harness) {
	b := h.Open(t)
	in := urls("a.test", 2)
	in[1].Skip = "off-scope"
	enqueue(t, b, in)
	wantCounts(t, b, queue.Counts{Pending: 1, Skipped: 1, Pages: 1})
	if r := get(t, b, in[1].URL); r.State != queue.Skipped || r.LastError != "off-scope" {
		t.Fatalf("skipped record %+v", r)
	}
	if got := lease(t, b, "a.test", 10, t0); len(got) != 1 {
		t.Fatalf("leased %v, want only the one not skipped", urlsOf(got))
	}
}

func testPageLimit(t *testing.T, h Harness) {
	b := h.Open(t)
	b.SetPageLimit(2)
	enqueue(t, b, urls("a.test", 3))
	c := counts(t, b)
	if c.Pending != 2 || c.Skipped != 1 || c.Pages != 2 {
		t.Fatalf("Counts %+v with a page limit of 2 for 3 pages", c)
	}
}

func testCrashReturnsLeases(t *testing.T, h Harness) {
	b := h.Open(t)
	enqueue(t, b, urls("a.test", 3))
	recs := lease(t, b, "a.test", 3, t0)
	commit(t, b, done(recs[0], 7))
	b = h.Crash(t, b)
	wantCounts(t, b, queue.Counts{Pending: 2, Done: 1, Pages: 3, Bytes: 7})
	if got := lease(t, b, "a.test", 10, t0); !slices.Equal(urlsOf(got), urlsOf(recs[1:])) {
		t.Fatalf("after the crash leased %v, want the unsettled %v", urlsOf(got), urlsOf(recs[1:]))
	}
	if r := get(t, b, recs[0].URL); r.State != queue.Done || r.Bytes != 7 {
		t.Fatalf("settled before the crash: %+v", r)
	}
}

func testMeta(t *testing.T, h Harness) {
	b := h.Open(t)
	if v, err := b.Meta("none"); err != nil || v != "" {
		t.Fatalf("Meta of an unset key: %q, %v", v, err)
	}
	if err := b.SetMeta("k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := b.SetMetas(map[string]string{"a": "1", "k": "w"}); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"k": "w", "a": "1"} {
		if v, err := b.Meta(k); err != nil || v != want {
			t.Fatalf("Meta(%q) = %q, %v; want %q", k, v, err, want)
		}
	}
	enqueue(t, b, urls("a.test", 4))
	var seen []string
	if err := b.ForEach(func(r queue.Record) error { seen = append(seen, r.URL); return nil }); err != nil || len(seen) != 4 {
		t.Fatalf("ForEach saw %v (%v), want 4 records", seen, err)
	}
}

// testSitemapWord: a NewURL's Lastmod and Listed are kept on its record, new or known (a done one
// stays done, its outcome as it was), never on a skipped one, and change no count.
func testSitemapWord(t *testing.T, h Harness) {
	b := h.Open(t)
	lm1, lm2 := t0.Add(-48*time.Hour), t0.Add(-24*time.Hour)
	word := func(u queue.NewURL, lastmod, listed time.Time) queue.NewURL {
		u.Lastmod, u.Listed = lastmod, listed
		return u
	}
	us := urls("a.test", 2)
	off := queue.NewURL{URL: url("a.test", 9), Host: "a.test", Skip: "off-scope"}
	enqueue(t, b, []queue.NewURL{word(us[0], lm1, t0), word(off, lm1, t0)})
	if r := get(t, b, us[0].URL); !r.Lastmod.Equal(lm1) || !r.Listed.Equal(t0) {
		t.Fatalf("new record %+v, want lastmod %v listed %v", r, lm1, t0)
	}
	if r := get(t, b, off.URL); r.State != queue.Skipped || !r.Lastmod.IsZero() {
		t.Fatalf("skipped record %+v, want no sitemap word", r)
	}
	got := lease(t, b, "a.test", 1, t0)
	done := got[0]
	done.State, done.Updated, done.SHA256, done.Bytes = queue.Done, t0, "ab", 2
	commit(t, b, queue.Update{Record: done})
	before := counts(t, b)
	if n := enqueue(t, b, []queue.NewURL{word(us[0], lm2, t0.Add(time.Hour)), word(off, lm2, t0), us[1]}); n != 1 {
		t.Fatalf("Enqueue added %d, want 1 (the new URL alone)", n)
	}
	r := get(t, b, us[0].URL)
	if r.State != queue.Done || !r.Lastmod.Equal(lm2) || !r.Listed.Equal(t0.Add(time.Hour)) || r.SHA256 != "ab" || !r.Updated.Equal(t0) {
		t.Fatalf("known record %+v, want done as it was, with lastmod %v listed %v", r, lm2, t0.Add(time.Hour))
	}
	if r := get(t, b, off.URL); !r.Lastmod.IsZero() {
		t.Fatalf("skipped record %+v, want no sitemap word", r)
	}
	want := before
	want.Pending++
	want.Pages++
	wantCounts(t, b, want)
}

// testWant: a URL is leased with the expected sha256 it was enqueued with. Enqueue with SetWant
// gives a known URL a new one (queue.Record.ApplyWant): a Done record whose file has another
// sha256, and a Failed one, are queued again with a fresh retry budget; a Done one whose file has
// it, and a Pending one, keep their state; none counts as added. Without SetWant (a crawl's link)
// nothing changes. Commit keeps the stored sum: an outcome judged against the old one, as a lease
// taken before the change brings it, is queued again unless it fits the new one.
func testWant(t *testing.T, h Harness) {
	b := h.Open(t)
	sum := func(n int64) string { return fmt.Sprintf("%064x", n) } // done(r, n)'s sha256
	in := urls("a.test", 7)
	for i := range in {
		in[i].WantSHA256, in[i].SetWant = sum(1), true
	}
	in[1].WantSHA256 = "" // f001: no sum at first
	enqueue(t, b, in)
	recs := lease(t, b, "a.test", 6, t0) // f006 stays queued
	for _, r := range recs {
		if r.WantSHA256 != in[urlIndex(t, in, r.URL)].WantSHA256 {
			t.Fatalf("leased %s with expected sha256 %q, enqueued with %q", r.URL, r.WantSHA256, in[urlIndex(t, in, r.URL)].WantSHA256)
		}
	}
	failed := recs[2]
	failed.State, failed.Attempts, failed.ErrorClass, failed.LastError = queue.Failed, 1, "checksum", "sha256 mismatch"
	commit(t, b, done(recs[0], 1), done(recs[1], 2), queue.Update{Record: failed}, done(recs[5], 1))

	// A crawl's link to f005 says nothing of its sum.
	if n := enqueue(t, b, []queue.NewURL{{URL: in[5].URL, Host: "a.test"}}); n != 0 {
		t.Fatalf("a known URL as a link added %d", n)
	}
	if r := get(t, b, in[5].URL); r.WantSHA256 != sum(1) || r.State != queue.Done {
		t.Fatalf("after a link without SetWant: %+v", r)
	}
	// The list again: sum 2 for all but f005, which loses its sum. f003 and f004 are leased.
	again := slices.Clone(in)
	for i := range again {
		again[i].WantSHA256 = sum(2)
	}
	again[5].WantSHA256 = ""
	if n := enqueue(t, b, again); n != 0 {
		t.Fatalf("the list again added %d", n)
	}
	// The leases taken under sum 1 settle: f003 with a file of sum 1, f004 with one of sum 2.
	commit(t, b, done(recs[3], 1), done(recs[4], 2))

	for i, want := range []struct {
		state    queue.State
		sum      string
		attempts int
	}{
		{queue.Pending, sum(2), 0}, // done with sum 1: fetched again
		{queue.Done, sum(2), 1},    // done with sum 2 already
		{queue.Pending, sum(2), 0}, // failed: another chance with the new sum
		{queue.Pending, sum(2), 0}, // judged against sum 1 while leased
		{queue.Done, sum(2), 1},    // leased, and its file has sum 2
		{queue.Done, "", 1},        // its sum dropped: still done
		{queue.Pending, sum(2), 0}, // queued: leased with the new sum
	} {
		r := get(t, b, in[i].URL)
		if r.State != want.state || r.WantSHA256 != want.sum || r.Attempts != want.attempts {
			t.Errorf("%s: %v, expected sha256 %q, %d attempts; want %v, %q, %d", r.URL, r.State, r.WantSHA256, r.Attempts,
				want.state, want.sum, want.attempts)
		}
	}
	wantCounts(t, b, queue.Counts{Pending: 4, Done: 3, Pages: 7, Bytes: 5})
	if _, err := b.PendingHosts(); err != nil { // a run's scan, which finds the work queued again
		t.Fatal(err)
	}
	got := lease(t, b, "a.test", 10, t0)
	if len(got) != 4 {
		t.Fatalf("leased %v, want the 4 queued again", urlsOf(got))
	}
	for _, r := range got {
		if r.WantSHA256 != sum(2) {
			t.Errorf("%s leased with expected sha256 %q, want the new one", r.URL, r.WantSHA256)
		}
	}
}

func urlIndex(t *testing.T, in []queue.NewURL, u string) int {
	t.Helper()
	for i, n := range in {
		if n.URL == u {
			return i
		}
	}
	t.Fatalf("leased %s, never enqueued", u)
	return -1
}
