package scheduler

import (
	"net/url"
	"sync"
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
