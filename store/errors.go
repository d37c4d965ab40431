package store

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

var (
	// ErrLocked means another process holds the state file open. Two trawl runs on one state
	// file would hand the same URLs to two fetchers and race on every output file, so the second
	// run must stop (cron: the nightly run must not overlap the previous one).
	ErrLocked = errors.New("state file is in use by another trawl")

	// ErrCorrupt means the state file is not a readable trawl state file: truncated, zero-filled,
	// garbage, another program's bbolt file, or a format version this build does not know.
	ErrCorrupt = errors.New("state file is corrupt")
)

// lockedError is ErrLocked with the file and, when the sidecar names it, the holder.
type lockedError struct {
	path   string
	holder string // "pid 1234, since 2026-11-22T01:02:03Z", or "" when unknown
}

func (e *lockedError) Error() string {
	if e.holder == "" {
		return fmt.Sprintf("state file %s is in use by another trawl", e.path)
	}
	return fmt.Sprintf("state file %s is in use by another trawl (%s)", e.path, e.holder)
}

func (e *lockedError) Unwrap() error { return ErrLocked }

// corruptError is ErrCorrupt with the file and what was wrong with it.
type corruptError struct {
	path   string
	detail string
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("state file %s is corrupt or not a trawl state file: %s", e.path, oneLine(e.detail))
}

func (e *corruptError) Unwrap() error { return ErrCorrupt }

func corrupt(path, format string, args ...any) error {
	return &corruptError{path: path, detail: fmt.Sprintf(format, args...)}
}

// oneLine keeps an error message to one line: a panic value from bbolt may span several, and the
// CLI prints our errors as single log lines.
func oneLine(s string) string {
	// Panic values can quote raw page bytes: keep printable text only.
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	const max = 200
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}
