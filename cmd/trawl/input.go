package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/scheduler"
)

// A get's input — its URL arguments and its -i list — is checked before the state is touched: a
// command with no usable URL is a mistake to fix (exit 2), not a run that succeeds at nothing.
// Bad lines beside good ones are skipped, and remembered, so that every run reports them until the
// list changes.

// badInput is a list line or URL argument that was skipped.
type badInput struct {
	Source string `json:"source"` // the list as given with -i ("-": standard input), or "argument"
	Line   int    `json:"line"`   // line number in the list, or the argument's position
	Error  string `json:"error"`
}

func (b badInput) String() string {
	if b.Source == argumentSource {
		return fmt.Sprintf("argument %d: %s", b.Line, b.Error)
	}
	return fmt.Sprintf("%s:%d: %s", b.Source, b.Line, b.Error)
}

const argumentSource = "argument"

// maxBadListed bounds the bad input a run keeps to report and to remember (the count is exact).
const maxBadListed = 1000

// maxBadErrorBytes bounds one remembered error message: a bad line's message may quote the line.
const maxBadErrorBytes = 300

// badInputs collects the bad input of a run; the list is read in another goroutine.
type badInputs struct {
	mu     sync.Mutex
	n      int64
	listed []badInput
}

func (b *badInputs) add(x badInput) {
	if len(x.Error) > maxBadErrorBytes {
		x.Error = strings.ToValidUTF8(x.Error[:maxBadErrorBytes], "") + "..."
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n++
	if len(b.listed) < maxBadListed {
		b.listed = append(b.listed, x)
	}
}

// addUnlisted counts n bad inputs whose details are not known.
func (b *badInputs) addUnlisted(n int64) {
	b.mu.Lock()
	b.n += n
	b.mu.Unlock()
}

func (b *badInputs) count() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

func (b *badInputs) snapshot() (int64, []badInput) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n, append([]badInput{}, b.listed...)
}

// listInput is the -i list, opened and checked.
type listInput struct {
	name string    // as given; "-" is standard input
	r    io.Reader // the list from its first byte
	// key and sig identify the list file's content for the unchanged-list shortcut (listFeed);
	// empty for standard input and pipes, which are read every run.
	key, sig string
	close    func() error
}

// withChecksums makes the list's signature cover the sums file too: a list queued whole is read
// again when its sums change, since the sums are applied as it is read. Sums from a pipe make it
// read every run, like a list from one.
func (in *listInput) withChecksums(c *checksumsInput) {
	switch {
	case c == nil || in.sig == "":
	case c.sig == "":
		in.sig = ""
	default:
		in.sig += "|checksums:" + c.sig
	}
}

// maxProbeBytes bounds what the check of a list holds in memory while it looks for the first
// usable line. A list that has none in its first 4 MiB is read by the run as any other, and the
// run ends in the same usage error if it has none at all.
const maxProbeBytes = 4 << 20

var errProbeLimit = errors.New("probe limit")

// openList opens the -i list and reads it up to its first usable line, before any state is
// opened: a list that cannot be read (a directory, no permission) or that has no usable URL is
// a usage error. haveArgs says whether a URL argument is usable, which makes a list without one
// bad input rather than a command that has nothing to do.
func openList(ctx context.Context, name string, stdin io.Reader, layout fetcher.Layout, haveArgs bool) (*listInput, error) {
	in := &listInput{name: name, r: stdin, close: func() error { return nil }}
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, usageErr("input list: %v", err)
		}
		in.r, in.close = f, f.Close
		in.key, in.sig = listSignature(name, f)
	}
	rec := &recorder{r: in.r, max: maxProbeBytes}
	type probe struct {
		usable bool
		bad    []badInput
		nbad   int
		err    error
	}
	found := errors.New("found")
	done := make(chan probe, 1)
	go func() {
		var p probe
		_, err := scheduler.ReadList(rec, func(e scheduler.ListEntry) error {
			if _, err := e.NewURL(layout, 0); err != nil {
				p.nbad++
				if len(p.bad) < maxShownBad {
					p.bad = append(p.bad, badInput{Source: name, Line: e.Line, Error: err.Error()})
				}
				return nil
			}
			return found
		}, func(b scheduler.BadLine) {
			p.nbad++
			if len(p.bad) < maxShownBad {
				p.bad = append(p.bad, badInput{Source: name, Line: b.Line, Error: b.Err.Error()})
			}
		})
		p.usable = err == found
		if err != found && err != errProbeLimit {
			p.err = err
		}
		done <- p
	}()
	var p probe
	select {
	case p = <-done:
	case <-ctx.Done():
		// Standard input may never say anything; the probe's goroutine ends with the process.
		in.close()
		return nil, &exitError{exitInterrupted, errors.New("interrupted before the list was read")}
	}
	var err error
	switch {
	case errors.Is(p.err, syscall.EISDIR):
		err = usageErr("input list %s is a directory, not a file of URLs", name)
	case p.err != nil:
		err = usageErr("reading input list %s: %v", name, p.err)
	case !p.usable && rec.limited:
		// Too far in to hold: the run reads on and decides.
	case !p.usable && !haveArgs && p.nbad == 0:
		err = usageErr("nothing to download: input list %s has no URL", listName(name))
	case !p.usable && !haveArgs:
		err = usageErr("nothing to download: input list %s has no usable URL, only %s:\n%s",
			listName(name), plural(int64(p.nbad), "bad line"), showBad(p.bad, int64(p.nbad)))
	}
	if err != nil {
		in.close()
		return nil, err
	}
	// The run reads the list from its start: what the probe read first, then the rest.
	in.r = io.MultiReader(bytes.NewReader(rec.buf.Bytes()), in.r)
	return in, nil
}

// recorder keeps what is read through it, up to max bytes; past that it fails with
// errProbeLimit.
type recorder struct {
	r       io.Reader
	buf     bytes.Buffer
	max     int
	limited bool
}

func (r *recorder) Read(p []byte) (int, error) {
	room := r.max - r.buf.Len()
	if room <= 0 {
		r.limited = true
		return 0, errProbeLimit
	}
	n, err := r.r.Read(p[:min(len(p), room)])
	r.buf.Write(p[:n])
	return n, err
}

// checkArgs parses the URL arguments of a get: how many are usable, and the bad ones.
func checkArgs(args []string, layout fetcher.Layout) (usable int, bad []badInput) {
	for i, a := range args {
		e, err := scheduler.NormalizeURL(a)
		if err == nil {
			_, err = e.NewURL(layout, 0)
		}
		if err != nil {
			bad = append(bad, badInput{Source: argumentSource, Line: i + 1, Error: fmt.Sprintf("%q: %v", redact(a), err)})
			continue
		}
		usable++
	}
	return usable, bad
}

// maxShownBad is how many bad inputs a usage error shows.
const maxShownBad = 10

// showBad lists bad inputs one per line, indented, and says how many more there are.
func showBad(bad []badInput, total int64) string {
	var b strings.Builder
	for i, x := range bad {
		if i == maxShownBad {
			break
		}
		fmt.Fprintf(&b, "  %s\n", x)
	}
	if more := total - int64(min(len(bad), maxShownBad)); more > 0 {
		fmt.Fprintf(&b, "  (and %d more)\n", more)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func listName(name string) string {
	if name == "-" {
		return "(standard input)"
	}
	return name
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatInt(n, 10) + " " + noun + "s"
}

// listSignature identifies a list file's content cheaply: path, size and modification time. An
// empty signature (a pipe, a device) means the list must be read.
func listSignature(name string, f *os.File) (key, sig string) {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return "", ""
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return "", ""
	}
	return "input:" + abs, fmt.Sprintf("%d:%d", fi.Size(), fi.ModTime().UnixNano())
}

// listMemory is what the state remembers of a list queued whole: its signature, and its bad lines
// (their count, and up to maxBadListed of them), which every later run reports again.
type listMemory struct {
	bad    int64
	listed []badInput
}

// encodeListMemory is the meta value for a list with signature sig: "sig count json".
func encodeListMemory(sig string, m listMemory) string {
	listed, _ := json.Marshal(m.listed)
	return sig + " " + strconv.FormatInt(m.bad, 10) + " " + string(listed)
}

// decodeListMemory reads a meta value written for the list with signature sig; ok is false when
// it is for another version of the list, or from a trawl that did not remember the bad lines
// themselves (the list is then read again, once).
func decodeListMemory(v, sig string) (m listMemory, ok bool) {
	rest, ok := strings.CutPrefix(v, sig+" ")
	if !ok {
		return m, false
	}
	count, listed, hasList := strings.Cut(rest, " ")
	n, err := strconv.ParseInt(count, 10, 64)
	if err != nil {
		return m, false
	}
	m.bad = n
	if n == 0 {
		return m, true
	}
	if !hasList || json.Unmarshal([]byte(listed), &m.listed) != nil {
		return m, false
	}
	return m, true
}
