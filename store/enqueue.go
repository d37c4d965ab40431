package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Enqueue adds the URLs the store does not know yet (dedup by exact URL string) as Pending, due
// now (zero NextAttempt), all in one transaction, and returns how many were new. Known URLs are
// left untouched, whatever their state. A non-empty Path is reserved for the URL, adjusted if
// needed so that no two URLs write the same file (see reservePath). Call it with batches (say
// 1,000 URLs): one transaction per URL would cost an fsync each.
func (s *Store) Enqueue(urls []NewURL) (added int, err error) {
	if err := validateNew(urls); err != nil {
		return 0, err
	}
	err = s.update(func(w *wtx) error {
		added, err = w.enqueue(urls)
		return err
	})
	if err != nil {
		return 0, err
	}
	return added, nil
}

func (w *wtx) enqueue(urls []NewURL) (added int, err error) {
	for _, u := range urls {
		if w.records.Get([]byte(u.URL)) != nil {
			if ok, err := w.upgrade(u); err != nil || !ok {
				if err != nil {
					return 0, err
				}
				continue
			}
			added++
			continue
		}
		r := Record{URL: u.URL, Host: u.Host, Path: u.Path, State: Pending, Depth: u.Depth,
			Requisite: u.Requisite, Auth: u.Auth}
		switch {
		case u.Skip != "":
			r.State, r.LastError, r.Path = Skipped, u.Skip, ""
		case !u.Requisite && w.pageLimit > 0 && w.counts.Pages >= w.pageLimit:
			// Deciding here, in the transaction that counts pages, makes the limit exact and
			// the same however often the crawl was interrupted.
			r.State, r.LastError, r.Path = Skipped, "max-pages", ""
		}
		if r.Path != "" {
			if r.Path, err = w.reservePath(u.Path, u.URL); err != nil {
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

// upgrade queues a known URL that was skipped as a page when it comes back as a page requisite
// the crawl wants: a link to an off-scope image must not stop the image from being fetched for a
// page that shows it, whichever of the two the crawl met first.
func (w *wtx) upgrade(u NewURL) (bool, error) {
	if !u.Requisite || u.Skip != "" {
		return false, nil
	}
	old, seq, ok, err := w.get(u.URL)
	if err != nil || !ok || old.State != Skipped || old.Requisite {
		return false, err
	}
	if err := w.detach(&old, seq); err != nil {
		return false, err
	}
	r := Record{URL: u.URL, Host: u.Host, State: Pending, Depth: u.Depth, Requisite: true}
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
		}
	}
	return nil
}
