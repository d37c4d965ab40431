package scheduler

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// unkeptDirs are the directories of the files a crawl fetched, parsed and removed (--save). At the
// end of the run those left empty are removed, and their parents left empty in turn, so that a
// crawl keeping only images leaves no tree of empty page directories. Not sooner: the fetcher
// remembers the directories it made, and may be about to write a file in one.
type unkeptDirs struct {
	mu   sync.Mutex
	dirs map[string]struct{}
}

// add notes the directory of file, a slash-separated path under the output root.
func (u *unkeptDirs) add(file string) {
	dir := path.Dir(file)
	if dir == "." {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.dirs == nil {
		u.dirs = map[string]struct{}{}
	}
	u.dirs[dir] = struct{}{}
}

// prune removes the noted directories that are empty, deepest first, and each parent that is left
// empty. A directory that holds anything (a kept file, a .part) stays, and so do its parents.
func (u *unkeptDirs) prune(root *os.Root) {
	u.mu.Lock()
	dirs := make([]string, 0, len(u.dirs))
	for d := range u.dirs {
		dirs = append(dirs, d)
	}
	u.dirs = nil
	u.mu.Unlock()
	depth := func(d string) int { return strings.Count(d, "/") }
	slices.SortFunc(dirs, func(a, b string) int { return depth(b) - depth(a) })
	for _, d := range dirs {
		for ; d != "." && d != "/"; d = path.Dir(d) {
			if err := root.Remove(filepath.FromSlash(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				break // not empty, or not ours to remove
			}
		}
	}
}
