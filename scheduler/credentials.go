package scheduler

import (
	"net/url"
	"sync"
	"time"

	"github.com/trawl-dev/trawl/queue"
)

// Credentials hold the userinfo of listed URLs (https://user:pass@host/...) for the run, in
// memory only: the queue, the output paths, logs and reports see the URL without it. Running the
// same command again (the same list) provides them again.
//
// Most lists use one login per host, so a host's first userinfo is kept per host, and only URLs
// that differ from it are kept one by one. A nil *Credentials holds nothing.
type Credentials struct {
	mu     sync.RWMutex
	byHost map[string]*url.Userinfo
	byURL  map[string]*url.Userinfo
}

// NewCredentials returns an empty set.
func NewCredentials() *Credentials {
	return &Credentials{byHost: map[string]*url.Userinfo{}, byURL: map[string]*url.Userinfo{}}
}

// Add records e's userinfo, if it has one.
func (c *Credentials) Add(e ListEntry) {
	if c == nil || e.User == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch hu := c.byHost[e.Host]; {
	case hu == nil:
		c.byHost[e.Host] = e.User
	case hu.String() != e.User.String():
		c.byURL[e.URL] = e.User
	}
}

// Empty reports whether no credentials were added.
func (c *Credentials) Empty() bool {
	if c == nil {
		return true
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.byHost) == 0
}

// apply returns rawURL with its userinfo put back, for the request only.
func (c *Credentials) apply(rawURL, host string) string {
	if c == nil {
		return rawURL
	}
	c.mu.RLock()
	u := c.byURL[rawURL]
	if u == nil {
		u = c.byHost[host]
	}
	c.mu.RUnlock()
	if u == nil {
		return rawURL
	}
	p, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	p.User = u
	return p.String()
}

// has reports whether credentials for rawURL are known.
func (c *Credentials) has(rawURL, host string) bool {
	if c == nil {
		return false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.byURL[rawURL] != nil || c.byHost[host] != nil
}

// credentialsWait is how long a URL given with userinfo waits in the queue for the feed to reach
// its line again (a rerun reads the list from the start; the URL is queued from the last run).
const credentialsWait = 500 * time.Millisecond

// holdUncredentialed keeps the buffered jobs whose userinfo the run does not hold yet from being
// fetched without it: while the feed runs they go back to the queue for a moment; once it is done,
// they fail with a message that says why.
func (d *dispatcher) holdUncredentialed(h *hostState, now time.Time) {
	kept := h.buf[:0]
	for _, rec := range h.buf {
		if !rec.Auth || d.s.opts.Credentials.has(rec.URL, rec.Host) {
			kept = append(kept, rec)
			continue
		}
		kind := KindReleased
		if d.feeding {
			rec.State, rec.NextAttempt = queue.Pending, now.Add(credentialsWait)
		} else {
			kind = KindFailed
			rec.State, rec.ErrorClass, rec.Updated = queue.Failed, "credentials", now
			rec.LastError = "the URL was listed with user:password, which this run was not given (run with the same list)"
		}
		d.cm.add(kind, queue.Update{Record: rec})
		d.sent++
	}
	clear(h.buf[len(kept):])
	d.setBuf(h, kept)
}
