package scheduler

import (
	"hash/maphash"
	"sync"
)

// knownSlots is the size of knownLinks' table: about 1.5 MiB of string headers and URLs when full.
const knownSlots = 1 << 15

// knownLinks remembers links this run has already passed to the store. Enqueue leaves a URL it
// knows as it is, unless the new link is a page requisite (which can upgrade a URL skipped as a
// page), so a page link met again changes nothing: expand drops it before normalizing, scoping and
// mapping it, and the store never looks it up. In a crawl most links lead to pages already queued.
//
// A dropped link's URL is in the store once the outcome that brought it first is committed. If
// that commit is lost (a crash, a failed commit), so is that outcome: its page is fetched again and
// brings the link again.
//
// The table is direct-mapped and fixed in size, so memory does not grow with the crawl: a URL
// that lost its slot to another is only passed to the store again.
type knownLinks struct {
	mu    sync.Mutex
	seed  maphash.Seed
	slots []string
}

func newKnownLinks() *knownLinks {
	return &knownLinks{seed: maphash.MakeSeed(), slots: make([]string, knownSlots)}
}

// seen reports whether url was added before, and adds it.
func (k *knownLinks) seen(url string) bool {
	i := maphash.String(k.seed, url) & (knownSlots - 1)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.slots[i] == url {
		return true
	}
	k.slots[i] = url
	return false
}
