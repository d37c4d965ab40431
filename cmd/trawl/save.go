package main

import (
	"cmp"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/scheduler"
	"github.com/trawl-dev/trawl/store"
)

// metaCrawlSave keeps the --save patterns of the job's last crawl run, so that the records are
// looked through only when a run keeps other types than the last one.
const metaCrawlSave = "crawl.save"

// widenSave queues again, as never fetched, the files earlier runs of the crawl fetched without
// keeping them (--save) that this run keeps: a URL done without its file is not done for a run
// that wants the file. It reads every record, so only when the patterns changed since the last
// run (or the job has none recorded: an older trawl's).
func widenSave(st *store.Store, root *os.Root, cfg *Config) error {
	patterns := "save:" + strings.Join(cfg.Save, "\n") // "save:" tells no patterns from no record
	if last, err := st.Meta(metaCrawlSave); err != nil || last == patterns {
		return err
	}
	keep := cfg.saveFilter()
	if _, err := st.Refetch(func(r queue.Record) bool { return scheduler.Unkept(root, keep, r) }); err != nil {
		return err
	}
	return st.SetMeta(metaCrawlSave, patterns)
}

// saveWatch tells a crawl's --save patterns which media types the run fetched, so that a
// pattern that matched none of them (a typo such as images/*, or a site without such files) is
// pointed out at the end rather than leaving an empty directory unexplained.
type saveWatch struct {
	patterns []string
	mu       sync.Mutex
	seen     map[string]int64 // media type: files fetched
}

func newSaveWatch(patterns []string) *saveWatch {
	return &saveWatch{patterns: patterns, seen: map[string]int64{}}
}

// filter wraps the --save test: it notes each file's media type, then asks keep.
func (w *saveWatch) filter(keep func(string) bool) func(string) bool {
	return func(mt string) bool {
		w.mu.Lock()
		w.seen[mt]++
		w.mu.Unlock()
		return keep(mt)
	}
}

// unmatched lists each pattern that matched no fetched type as a sentence; none when nothing was
// fetched.
func (w *saveWatch) unmatched() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.seen) == 0 {
		return nil
	}
	var files int64
	types := make([]string, 0, len(w.seen))
	for mt, n := range w.seen {
		files += n
		types = append(types, mt)
	}
	slices.SortFunc(types, func(a, b string) int { return cmp.Or(cmp.Compare(w.seen[b], w.seen[a]), cmp.Compare(a, b)) })
	var shown []string
	for i, mt := range types {
		if i == 5 {
			shown = append(shown, fmt.Sprintf("%d more", len(types)-i))
			break
		}
		if mt == "" {
			mt = "(no type)"
		}
		shown = append(shown, fmt.Sprintf("%d %s", w.seen[types[i]], mt))
	}
	var out []string
	for _, p := range w.patterns {
		if !slices.ContainsFunc(types, func(mt string) bool { return mediaMatch(p, mt) }) {
			out = append(out, fmt.Sprintf("--save %s matched none of the %s fetched (%s): nothing of that type was kept",
				p, plural(files, "file"), strings.Join(shown, ", ")))
		}
	}
	return out
}

// warn logs the patterns that matched nothing.
func (w *saveWatch) warn(log *slog.Logger) {
	for _, msg := range w.unmatched() {
		log.Warn(msg)
	}
}
