package fetcher

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"sync"
)

// maxCachedDirs bounds the open directory handles a Fetcher keeps.
const maxCachedDirs = 256

// dirCache keeps directories of the output open as *os.Root, so that each file operation of a
// transfer is one syscall on a single name instead of a walk (openat per path component) from the
// output root: at thousands of small files per second that walk was most of trawl's system time.
// A directory handle opened through the output root is confined by it just the same.
type dirCache struct {
	mu sync.Mutex
	m  map[dirKey]*dirEntry
}

type dirKey struct {
	root *os.Root
	dir  string
}

type dirEntry struct {
	r    *os.Root
	f    *os.File // the directory itself; may be nil
	fd   int      // f's descriptor, for the *at syscalls of fileops_linux.go, or -1
	refs int
	// made: this Fetcher created the directory, so the only .parts in it are those it created,
	// listed in parts until they are published (guarded by dirCache.mu). A first attempt at a
	// file there need not look for a .part to resume: one stat less per file of a fresh download.
	made  bool
	parts map[string]bool
}

// open returns the directory dir of root (dir "." is root itself, not cached) and a release
// func. With create, missing directories are made first; without, a missing directory gives
// fs.ErrNotExist.
func (c *dirCache) open(root *os.Root, dir string, create bool) (*dirEntry, func(), error) {
	if dir == "." || dir == "" {
		return &dirEntry{r: root, fd: -1}, func() {}, nil
	}
	k := dirKey{root, dir}
	c.mu.Lock()
	if e := c.m[k]; e != nil {
		e.refs++
		c.mu.Unlock()
		return e, c.releaser(k, e), nil
	}
	c.mu.Unlock()

	r, err := root.OpenRoot(dir)
	made := false
	if err != nil && create && errors.Is(err, fs.ErrNotExist) {
		if err = root.MkdirAll(path.Dir(dir), 0o755); err == nil {
			// Made only if this call created it: another transfer may have just done so, and
			// left a .part in it since.
			err = root.Mkdir(dir, 0o755)
			made = err == nil
			if errors.Is(err, fs.ErrExist) {
				err = nil
			}
		}
		if err == nil {
			r, err = root.OpenRoot(dir)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	// Opened through r, so confined like it; without it the slower os.Root calls are used.
	f, _ := r.Open(".")

	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[k]; e != nil { // another transfer opened it meanwhile
		r.Close()
		if f != nil {
			f.Close()
		}
		e.refs++
		return e, c.releaser(k, e), nil
	}
	if c.m == nil {
		c.m = make(map[dirKey]*dirEntry)
	}
	if len(c.m) >= maxCachedDirs {
		for key, e := range c.m {
			if e.refs == 0 {
				e.close()
				delete(c.m, key)
			}
		}
	}
	e := &dirEntry{r: r, f: f, fd: fdOf(f), refs: 1, made: made}
	c.m[k] = e
	return e, c.releaser(k, e), nil
}

// mayHavePart reports whether a .part named part may be in e's directory.
func (c *dirCache) mayHavePart(e *dirEntry, part string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !e.made || e.parts[part]
}

// notePart records that part was created in e's directory (exists true), or published.
func (c *dirCache) notePart(e *dirEntry, part string, exists bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !e.made:
	case exists:
		if e.parts == nil {
			e.parts = make(map[string]bool)
		}
		e.parts[part] = true
	default:
		delete(e.parts, part)
	}
}

func (e *dirEntry) close() {
	e.r.Close()
	if e.f != nil {
		e.f.Close()
	}
}

// fdOf is f's descriptor, or -1 without f.
func fdOf(f *os.File) int {
	if f == nil {
		return -1
	}
	return int(f.Fd())
}

func (c *dirCache) releaser(k dirKey, e *dirEntry) func() {
	return func() {
		c.mu.Lock()
		e.refs--
		c.mu.Unlock()
	}
}

// close closes every cached directory.
func (c *dirCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		e.close()
		delete(c.m, k)
	}
}
