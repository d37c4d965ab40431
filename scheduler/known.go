package scheduler

import "sync"

// Sizes of knownLinks' table: with URLs up to knownMaxURL bytes, at most about 4.5 MiB.
const (
	knownSlots  = 1 << 14
	knownMaxURL = 256
)

// knownLinks remembers page links this run has already passed to the queue. Enqueue leaves a URL
// it knows as it is, unless the new link is a page requisite (which can upgrade a URL skipped as
// a page), so a page link met again adds nothing to the queue: expand drops it before normalizing,
// scoping and mapping it, and the store never looks it up. In a crawl most links lead to pages
// already queued.
//
// The store still gets every URL: a dropped link's URL is there once the outcome that brought it
// first is committed, and if that commit is lost (a crash, a failed commit) so is that outcome, and
// its page, fetched again, brings the link again. What can change is which page's link a URL is
// recorded from (its depth, its place in the queue): the first parsed, not the first committed.
// Workers racing each other made either possible before. In a breadth-first job (store's
// levels.go) the links a level meets are all one level deeper, so only the place can change,
// which matters to a page limit alone: with one (Crawl.MaxPages) a run has no knownLinks.
//
// The table is direct-mapped and fixed in size, so memory does not grow with the crawl: a URL
// that lost its slot to another, or is longer than knownMaxURL, is only passed to the store again.
type knownLinks struct {
	mu    sync.Mutex
	slots []string
}

func newKnownLinks() *knownLinks { return &knownLinks{slots: make([]string, knownSlots)} }

// seen reports whether url was added before, and adds it.
func (k *knownLinks) seen(url string) bool {
	if len(url) > knownMaxURL {
		return false
	}
	i := fnv1a(url) & (knownSlots - 1)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.slots[i] == url {
		return true
	}
	k.slots[i] = url
	return false
}

// fnv1a is the 64-bit FNV-1a hash of s, written out because hash/fnv takes bytes: a copy of every
// link. A fixed hash keeps runs (and tests) repeatable; a page that makes its links collide only
// sends them to the queue.
func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
