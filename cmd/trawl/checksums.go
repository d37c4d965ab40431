package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/trawl-dev/trawl/scheduler"
)

// checksumsInput is the --checksums file, read whole before the state is touched: a bad line in
// it is a usage error, not a run that verifies half its files.
type checksumsInput struct {
	name string
	sums *scheduler.Checksums
	// sig identifies the file's content like a list's (listSignature), so that a list unchanged
	// since it was queued is read again when its sums change; "" for standard input and pipes.
	sig string
}

// openChecksums reads the --checksums file ("-": standard input).
func openChecksums(name string, stdin io.Reader) (*checksumsInput, error) {
	in := &checksumsInput{name: name}
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, usageErr("--checksums: %v", err)
		}
		defer f.Close()
		r = f
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			if abs, err := filepath.Abs(name); err == nil {
				in.sig = fmt.Sprintf("%s:%d:%d", abs, fi.Size(), fi.ModTime().UnixNano())
			}
		}
	}
	sums, err := scheduler.ReadChecksums(r)
	var bad scheduler.BadLine
	switch {
	case errors.As(err, &bad):
		return nil, usageErr("--checksums %s:%d: %v", listName(name), bad.Line, bad.Err)
	case errors.Is(err, syscall.EISDIR):
		return nil, usageErr("--checksums %s is a directory, not a file of sha256 sums", name)
	case err != nil:
		return nil, usageErr("reading --checksums %s: %v", listName(name), err)
	case sums.Len() == 0:
		return nil, usageErr("--checksums %s has no sha256 sum", listName(name))
	}
	in.sums = sums
	return in, nil
}

// warnUnused says, once the arguments and the list were read, how many sums matched no URL: a sums
// file whose names are not the output paths (see README) would otherwise verify nothing, silently.
func (c *checksumsInput) warnUnused(log *slog.Logger) {
	if c == nil {
		return
	}
	n, names := c.sums.Unused(3)
	if n == 0 {
		return
	}
	log.Warn("sums matched no URL (names are matched against output paths under --out, or URLs)",
		"file", listName(c.name), "unmatched", n, "total", c.sums.Len(), "examples", strings.Join(names, ", "))
}
