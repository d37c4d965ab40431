package extract

import (
	"net/url"
	"strings"
	"sync"
)

// resolved remembers, across the pages of a crawl, what references resolve to against a
// directory: the pages of a directory link the same stylesheets, scripts, icons and sibling
// pages, and resolving a reference (parse, merge, normalize) costs more than finding it, so most
// of a page's references were resolved already for an earlier page of its directory.
//
// A reference with a path (relative or absolute), an authority or a scheme resolves the same
// against every URL with the same scheme, user, host and path up to its last '/'; one that is
// only a query ("?page=2") also depends on the base's last segment and is not remembered.
var resolved = resolveCache{dirs: make(map[string]map[string]resolution)}

// maxResolved bounds the entries kept; past it the cache starts afresh. 32k entries of a few
// dozen bytes each: about 2 MiB at most.
const maxResolved = 1 << 15

type resolveCache struct {
	mu   sync.Mutex
	dirs map[string]map[string]resolution // dirKey(base) → reference → result
	n    int
}

type resolution struct {
	url string
	ok  bool
}

// dirKey is what a cacheable reference's resolution depends on in base.
func dirKey(base *url.URL) string {
	p := base.EscapedPath()
	p = p[:strings.LastIndexByte(p, '/')+1]
	var b strings.Builder
	b.Grow(len(base.Scheme) + len(base.Host) + len(p) + 8)
	b.WriteString(base.Scheme)
	b.WriteString("://")
	if base.User != nil {
		b.WriteString(base.User.String())
		b.WriteByte('@')
	}
	b.WriteString(base.Host)
	b.WriteByte(0)
	b.WriteString(p)
	return b.String()
}

// cacheable reports whether ref resolves independently of base's last segment and query:
// whether, after the spaces and control characters Resolve trims, it does not start with '?'.
func cacheable(ref string) bool {
	for i := 0; i < len(ref); i++ {
		if ref[i] > ' ' {
			return ref[i] != '?'
		}
	}
	return true // nothing but spaces: never a link, whatever the base
}

// resolveAll resolves refs against base, setting urls[i] and ok[i], through the cache.
func (c *resolveCache) resolveAll(base *url.URL, refs []string, urls []string, ok []bool) {
	key := dirKey(base)
	var miss []int
	c.mu.Lock()
	dir := c.dirs[key]
	for i, r := range refs {
		if res, hit := dir[r]; hit {
			urls[i], ok[i] = res.url, res.ok
			continue
		}
		miss = append(miss, i)
	}
	c.mu.Unlock()
	if len(miss) == 0 {
		return
	}
	for _, i := range miss {
		urls[i], ok[i] = Resolve(base, refs[i])
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n+len(miss) > maxResolved {
		clear(c.dirs)
		c.n = 0
	}
	dir = c.dirs[key]
	if dir == nil {
		dir = make(map[string]resolution)
		c.dirs[key] = dir
	}
	for _, i := range miss {
		if r := refs[i]; c.n < maxResolved && cacheable(r) {
			if _, had := dir[r]; !had {
				dir[r] = resolution{urls[i], ok[i]}
				c.n++
			}
		}
	}
}

// reset empties the cache (for benchmarks that parse one page again and again).
func (c *resolveCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.dirs)
	c.n = 0
}
