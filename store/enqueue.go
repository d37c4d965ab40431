package store

import (
	"fmt"
	"math"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Enqueue adds the URLs the store does not know yet (dedup by exact URL string) as Pending, due
// now (zero NextAttempt), all in one transaction, and returns how many were new. Known URLs are
// left as they are, whatever their state, but for the sitemap's word a NewURL may carry (relist),
// the upgrades of requisites (upgrade) and a new WantSHA256 given with SetWant, which the record
// takes by Record.ApplyWant (rewant). A non-empty Path is reserved for the URL, adjusted if
// needed so that no two URLs write the same file (see reservePath). Call it with batches (thousands
// of URLs): one transaction per URL would cost an fsync each. In a breadth-first job, a page
// deeper than the open level is held instead, and not counted as added (see levels.go).
func (s *Store) Enqueue(urls []NewURL) (added int, err error) {
	if err := validateNew(urls); err != nil {
		return 0, err
	}
	err = s.updateDrop(func(w *wtx) error {
		if added, err = w.enqueue(urls, 0); err != nil {
			return err
		}
		return w.promote()
	}, len(urls) >= dropBatch)
	if err != nil {
		return 0, err
	}
	return added, nil
}

// enqueue adds urls in their order; parent is the queue position of the page they were found in
// (0 for a list), which ranks the links a breadth-first job holds (hold). Batches without page
// requisites (every list, and most of a crawl's links) take the sorted path, enqueueSorted; the
// others, where a URL may upgrade one met earlier, go one by one.
func (w *wtx) enqueue(urls []NewURL, parent uint64) (added int, err error) {
	if err := w.relist(urls); err != nil {
		return 0, err
	}
	if w.level != nil {
		if urls, err = w.hold(urls, parent); err != nil {
			return 0, err
		}
	}
	if slices.ContainsFunc(urls, func(u NewURL) bool { return u.Requisite }) {
		return w.enqueueInOrder(urls)
	}
	return w.enqueueSorted(urls)
}

// enqueueInOrder adds urls one at a time.
func (w *wtx) enqueueInOrder(urls []NewURL) (added int, err error) {
	for _, u := range urls {
		if v, known := lookup(w.recordsCur, []byte(u.URL)); known {
			if mayRewant(u, v) {
				if err := w.rewant(u); err != nil {
					return 0, err
				}
			}
			if ok, err := w.upgrade(u); err != nil || !ok {
				if err != nil {
					return 0, err
				}
				continue
			}
			added++
			continue
		}
		r := w.newRecord(u)
		if r.Path != "" {
			if r.Path, err = w.reservePath(r.Path, u.URL); err != nil {
				return 0, err
			}
		}
		if err := w.insert(&r, 0); err != nil {
			return 0, err
		}
		added++
	}
	return added, nil
}

// Reasons the store records a new URL Skipped for by itself, when a limit is reached.
const (
	ReasonMaxPages        = "max-pages"        // a page beyond the page limit (SetPageLimit)
	ReasonRequisiteBudget = "requisite-budget" // a requisite beyond the requisite budget
)

// RequisitesPerPage sets the requisite budget of a crawl with a page limit: at most this many
// requisites per page of the limit. The limit alone would not bound a crawl, since requisites
// (which it does not count) may come from any host and be generated without end; a generous
// multiple leaves every real page its images, stylesheets, fonts and scripts, since pages share
// most of them.
const RequisitesPerPage = 100

// newRecord is the record of a URL new to the store, as the transaction's counts decide it.
func (w *wtx) newRecord(u NewURL) Record {
	r := Record{URL: u.URL, Host: u.Host, Path: u.Path, Named: u.Named && u.Path != "", State: Pending,
		Depth: u.Depth, Requisite: u.Requisite, Auth: u.Auth, WantSHA256: u.WantSHA256}
	switch {
	case u.Skip != "":
		r.State, r.LastError, r.Path, r.Named = Skipped, u.Skip, "", false
	case !u.Requisite && w.pageLimit > 0 && w.counts.Pages >= w.pageLimit:
		// Deciding here, in the transaction that counts pages, makes the limit exact and
		// the same however often the crawl was interrupted.
		r.State, r.LastError, r.Path, r.Named = Skipped, ReasonMaxPages, "", false
	case u.Requisite && w.requisitesFull():
		r.State, r.LastError, r.Path, r.Named = Skipped, ReasonRequisiteBudget, "", false
	}
	if r.State != Skipped {
		r.Lastmod, r.Listed = u.Lastmod, u.Listed
	}
	return r
}

// relist writes the sitemap's word (NewURL.Lastmod and Listed) on the records of urls that the
// store knows already, but for a Leased record (its outcome, about to be committed over it, is
// newer news) and a Skipped one (nothing to revalidate). What a refresh run does with it is the
// caller's to decide: the store only keeps it.
func (w *wtx) relist(urls []NewURL) error {
	for _, u := range urls {
		if u.Lastmod.IsZero() || u.Skip != "" || !has(w.recordsCur, []byte(u.URL)) {
			continue
		}
		r, seq, _, err := w.get(u.URL)
		if err != nil {
			return err
		}
		if r.State == Leased || r.State == Skipped || r.Lastmod.Equal(u.Lastmod) && r.Listed.Equal(u.Listed) {
			continue
		}
		if err := w.detach(&r, seq); err != nil {
			return err
		}
		r.Lastmod, r.Listed = u.Lastmod, u.Listed
		if err := w.insert(&r, seq); err != nil { // a Pending record keeps its place
			return err
		}
	}
	return nil
}

// requisitesFull reports whether the requisite budget is spent: the page limit is set and the
// requisites to fetch (those not skipped: all records but the skipped ones and the pages) have
// reached RequisitesPerPage per page of it. Like the page limit, it is decided in the transaction
// that counts them, and holds for the whole job, not per run.
func (w *wtx) requisitesFull() bool {
	if w.pageLimit <= 0 {
		return false
	}
	budget := math.MaxInt
	if w.pageLimit <= math.MaxInt/RequisitesPerPage {
		budget = w.pageLimit * RequisitesPerPage
	}
	return w.counts.Total()-w.counts.Pages >= budget
}

// enqueueSorted is enqueueInOrder for a batch without requisites (so a known URL is left as it
// is), with the same result, faster. Lookups and writes go in key order: a batch from a big list
// then touches each tree in one sweep instead of at random. What depends on order stays in the order given: dedup (the first of two equal URLs
// wins), page limits, queue positions (a host's URLs are fetched as listed), and path collisions
// (the URL listed first gets the plain name) — so the result never depends on where a batch was
// cut. TestEnqueueBatchingInvariant holds it to that.
func (w *wtx) enqueueSorted(urls []NewURL) (added int, err error) {
	// Pass 1, in URL order: the URLs new to the store, first occurrences only (the sort is
	// stable), and the known ones whose expected sha256 may change.
	order := sortedBy(len(urls), func(i int) string { return urls[i].URL })
	isNew := make([]bool, len(urls))
	var rewants []int
	for k, i := range order {
		if k > 0 && urls[order[k-1]].URL == urls[i].URL {
			continue
		}
		v, known := lookup(w.recordsCur, []byte(urls[i].URL))
		isNew[i] = !known
		if known && mayRewant(urls[i], v) {
			rewants = append(rewants, i)
		}
	}

	// Pass 2, in the order given: decide each record, count it, take its queue position.
	recs := make([]Record, len(urls))
	seqs := make([]uint64, len(urls))
	for i, u := range urls {
		if !isNew[i] {
			continue
		}
		recs[i] = w.newRecord(u)
		if recs[i].State == Pending {
			if seqs[i], err = w.nextSeq(u.Host); err != nil {
				return 0, err
			}
		}
		w.count(&recs[i], 1)
		added++
	}

	// Pass 3: paths. Those whose reservation cannot depend on order are reserved in path order;
	// the rest one by one in the order given.
	isPlain := make([]bool, len(urls))
	for _, i := range w.plainPaths(isNew, recs) { // in path order
		r := &recs[i]
		if err := w.paths.Put([]byte(r.Path), encodeReservation(r.Path, r.URL)); err != nil {
			return 0, err
		}
		isPlain[i] = true
	}
	for i := range recs {
		if isNew[i] && recs[i].Path != "" && !isPlain[i] {
			if recs[i].Path, err = w.reservePath(recs[i].Path, recs[i].URL); err != nil {
				return 0, err
			}
		}
	}

	// Pass 4, in URL order: write the records and their queue entries.
	for _, i := range order {
		if isNew[i] {
			if err := w.put(&recs[i], seqs[i]); err != nil {
				return 0, err
			}
		}
	}
	// Last, in URL order: the known records' new expected sha256.
	for _, i := range rewants {
		if err := w.rewant(urls[i]); err != nil {
			return 0, err
		}
	}
	return added, nil
}

// mayRewant reports whether u, a URL known to the store with the encoded record v, may change the
// record's expected sha256: a list's word (SetWant) that is a sum, or none where the record has
// one. Most known URLs of a list read again are told apart from the record's flags alone.
func mayRewant(u NewURL, v []byte) bool {
	return u.SetWant && (u.WantSHA256 != "" || hasWant(v))
}

// rewant gives the known record of u.URL the expected sha256 u.WantSHA256, if that is new to it
// (Record.ApplyWant): a record judged against the old one is queued again, due now; any other
// keeps its state and its place.
func (w *wtx) rewant(u NewURL) error {
	old, seq, ok, err := w.get(u.URL)
	if err != nil || !ok || old.WantSHA256 == u.WantSHA256 {
		return err
	}
	r := old
	if r.ApplyWant(u.WantSHA256) {
		if err := w.detach(&old, seq); err != nil {
			return err
		}
		return w.insert(&r, 0)
	}
	if r.State != Pending && r.State != Leased {
		seq = 0 // as put: only queued and leased records keep their queue position
	}
	return w.records.Put([]byte(r.URL), encodeRecord(&r, seq))
}

// sortedBy returns 0..n-1 ordered by key, equal keys in index order.
func sortedBy(n int, key func(int) string) []int {
	type item struct {
		key string
		i   int
	}
	items := make([]item, n)
	for i := range items {
		items[i] = item{key(i), i}
	}
	slices.SortFunc(items, func(a, b item) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return a.i - b.i
	})
	order := make([]int, n)
	for k, it := range items {
		order[k] = it.i
	}
	return order
}

// plainPaths returns the new records (indexes into recs) whose proposed path reservePath would
// grant as it is, whatever the order of the batch: free in the store, under no reserved file, not
// a directory of reserved files, without "~" (so no suffixed name given to another URL can equal
// it or contain it), and not equal to, above or below a path another record of the batch proposes.
// Its lookups go in path order, one sweep of the paths tree, and so does the result.
func (w *wtx) plainPaths(isNew []bool, recs []Record) []int {
	var cand []int
	for i := range recs {
		if isNew[i] && recs[i].Path != "" {
			cand = append(cand, i)
		}
	}
	order := sortedBy(len(cand), func(k int) string { return recs[cand[k]].Path })
	paths := make([]string, len(order)) // the proposed paths, sorted
	for k, c := range order {
		paths[k] = recs[cand[c]].Path
	}
	// A path below another proposed one, or above one (found from the lower path's side). The
	// paths of a directory are neighbours in path order: its directories are looked up once.
	blocked := make([]bool, len(paths))
	lastDir, lastBelow := "", false
	for k, p := range paths {
		j := strings.LastIndexByte(p, '/')
		if j < 0 {
			continue
		}
		if dir := p[:j]; dir != lastDir || k == 0 {
			lastDir, lastBelow = dir, false
			for j := strings.IndexByte(p, '/'); j >= 0; j = nextSlash(p, j) { // p's directories
				at, found := slices.BinarySearch(paths, p[:j])
				for ; found && at < len(paths) && paths[at] == p[:j]; at++ {
					blocked[at], lastBelow = true, true
				}
			}
		}
		blocked[k] = blocked[k] || lastBelow
	}
	plain := make([]int, 0, len(cand))
	underFile := map[string]bool{} // directory → whether one of its directories is a reserved file
	for k, p := range paths {
		dup := k > 0 && paths[k-1] == p || k+1 < len(paths) && paths[k+1] == p
		if dup || blocked[k] || strings.Contains(p, "~") || !w.pathFree(p) {
			continue
		}
		if j := strings.LastIndexByte(p, '/'); j >= 0 {
			dir := p[:j]
			under, ok := underFile[dir]
			if !ok {
				under = w.underFile(p)
				underFile[dir] = under
			}
			if under {
				continue
			}
		}
		plain = append(plain, cand[order[k]])
	}
	return plain
}

func nextSlash(s string, j int) int {
	if k := strings.IndexByte(s[j+1:], '/'); k >= 0 {
		return j + 1 + k
	}
	return -1
}

// underFile reports whether a directory of p is reserved as a file.
func (w *wtx) underFile(p string) bool {
	for j := strings.IndexByte(p, '/'); j >= 0; j = nextSlash(p, j) {
		if has(w.pathsCur, []byte(p[:j])) {
			return true
		}
	}
	return false
}

// upgrade queues a known URL that was skipped as a page when it comes back as a page requisite
// the crawl wants: a link to an off-scope image must not stop the image from being fetched for a
// page that shows it, whichever of the two the crawl met first. Likewise a requisite skipped
// further down a chain of requisites than it comes back at (a font a deeply nested stylesheet
// uses, met again in a page's own stylesheet): the chain limit is meant for the chain, not for the
// file. Any other skip of a requisite does not depend on where it was met, and comes back the same
// (robots.txt, decided when it is dispatched, skips it again then). Either way the requisite
// budget applies, as to a new requisite.
func (w *wtx) upgrade(u NewURL) (bool, error) {
	if !u.Requisite || u.Skip != "" {
		return false, nil
	}
	old, seq, ok, err := w.get(u.URL)
	if err != nil || !ok || old.State != Skipped {
		return false, err
	}
	if old.Requisite && requisiteLevel(true, u.Depth) >= old.RequisiteLevel() {
		return false, nil
	}
	if w.requisitesFull() {
		return false, nil
	}
	if err := w.detach(&old, seq); err != nil {
		return false, err
	}
	r := Record{URL: u.URL, Host: u.Host, State: Pending, Depth: u.Depth, Requisite: true, Named: u.Named && u.Path != ""}
	if u.Path != "" {
		if r.Path, err = w.reservePath(u.Path, u.URL); err != nil {
			return false, err
		}
	}
	return true, w.insert(&r, 0)
}

// validateNew rejects what bbolt cannot key, before a transaction is started, so a bad URL is
// reported by itself instead of as a failed commit.
func validateNew(urls []NewURL) error {
	for _, u := range urls {
		switch {
		case u.URL == "":
			return fmt.Errorf("store: enqueue: empty URL")
		case u.Host == "":
			return fmt.Errorf("store: enqueue %.100q: empty host", u.URL)
		case len(u.URL) > bolt.MaxKeySize, len(u.Host) > bolt.MaxKeySize, len(u.Path)+20 > bolt.MaxKeySize:
			return fmt.Errorf("store: enqueue %.100q: URL, host or path longer than %d bytes", u.URL, bolt.MaxKeySize)
		case !validWant(u.WantSHA256):
			return fmt.Errorf("store: enqueue %.100q: expected sha256 %.100q is not 64 lowercase hex digits", u.URL, u.WantSHA256)
		}
	}
	return nil
}

// validWant reports whether want can be a record's WantSHA256: none, or 64 lowercase hex digits
// (the form encodeRecord stores in 32 bytes).
func validWant(want string) bool { return want == "" || isLowerHexSHA256(want) }
