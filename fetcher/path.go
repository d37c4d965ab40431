package fetcher

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Layout chooses how MapPath turns URLs into output paths.
type Layout string

const (
	// Mirror keeps the site structure: host[:port]/path/to/name.
	Mirror Layout = "mirror"
	// Flat keeps only the file name; collisions are resolved by the store at enqueue time.
	Flat Layout = "flat"
)

// ParseLayout parses a --layout value.
func ParseLayout(s string) (Layout, error) {
	switch l := Layout(strings.ToLower(strings.TrimSpace(s))); l {
	case Mirror, Flat:
		return l, nil
	}
	return "", fmt.Errorf("unknown layout %q (want %q or %q)", s, Mirror, Flat)
}

// Limits of common file systems (ext4, xfs, btrfs, APFS): NAME_MAX and PATH_MAX.
const (
	maxSegment = 255
	maxPath    = 4096
)

// Suffixes trawl uses for its own files next to a download; no mapped name may end in one.
const (
	partSuffix = ".part"
	metaSuffix = ".part.meta"
)

// MapPath maps a URL to a relative, slash-separated output path. It is pure and
// deterministic, and its result is never empty, never absolute, never contains "." or
// ".." segments, each segment is at most 255 bytes and the whole at most 4096 bytes, so
// it can never name anything outside the output directory.
//
// Mirror: host[:port]/decoded/path (port only when not the scheme's default). A
// directory URL (empty path or trailing "/") gets the leaf "index.html". A query string
// becomes "~<8 hex of sha256(raw query)>" before the leaf's extension, so ?page=1 and
// ?page=2 are different files. Each decoded segment is made safe: "/" and "\" (from %2F,
// %5C), NUL and control characters become "_", invalid UTF-8 becomes "_", a leading "."
// becomes "_" (no hidden files, and no collision with the .trawl state dir), names ending
// in ".part" or ".part.meta" get "_" appended, and overlong names are shortened with a hash.
// Flat: the safe leaf only.
func MapPath(rawURL string, layout Layout) (string, error) {
	if layout != Mirror && layout != Flat {
		return "", fmt.Errorf("unknown layout %q", layout)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", fmt.Errorf("unsupported URL scheme %q (only http and https)", u.Scheme)
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", errors.New("URL has no host")
	}

	// Split the escaped path, then decode each segment: %2F stays inside its segment
	// instead of becoming a directory separator.
	var segs []string
	raw := u.EscapedPath()
	dir := raw == "" || strings.HasSuffix(raw, "/")
	for _, s := range strings.Split(raw, "/") {
		if d, err := url.PathUnescape(s); err == nil {
			s = d
		}
		if s == "" || s == "." {
			continue
		}
		segs = append(segs, safeSegment(s))
	}
	if len(segs) == 0 || dir || lastRawSegmentIsDot(raw) {
		segs = append(segs, "index.html")
	}
	leaf := segs[len(segs)-1]
	if u.RawQuery != "" {
		leaf = withQuerySuffix(leaf, u.RawQuery)
	}
	leaf = shortSegment(avoidOwnSuffix(leaf))

	if layout == Flat {
		return leaf, nil
	}
	if port := u.Port(); port != "" && port != defaultPort(scheme) {
		if strings.Contains(host, ":") {
			host = "[" + host + "]" // IPv6: keep the port separable
		}
		host += ":" + port
	}
	out := []string{shortSegment(avoidOwnSuffix(safeSegment(host)))}
	for _, s := range segs[:len(segs)-1] {
		out = append(out, shortSegment(avoidOwnSuffix(s)))
	}
	out = append(out, leaf)
	return limitPath(out), nil
}

// lastRawSegmentIsDot: "/a/." and "/a/%2e" name the directory a/, not a file.
func lastRawSegmentIsDot(raw string) bool {
	i := strings.LastIndexByte(raw, '/')
	last, err := url.PathUnescape(raw[i+1:])
	return err == nil && last == "."
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// safeSegment makes one decoded path segment a harmless file name.
func safeSegment(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			// Invalid UTF-8 (or a literal U+FFFD, which is indistinguishable here).
			b.WriteByte('_')
		case r == '/' || r == '\\' || unicode.IsControl(r):
			b.WriteByte('_')
		case i == 0 && r == '.':
			// No hidden files; also makes "." and ".." impossible.
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// avoidOwnSuffix keeps mapped names from looking like trawl's .part / .part.meta files.
func avoidOwnSuffix(s string) string {
	if strings.HasSuffix(s, partSuffix) || strings.HasSuffix(s, metaSuffix) {
		return s + "_"
	}
	return s
}

// tempNames are the names of the .part and its sidecar for a file named base. They must fit
// NAME_MAX as well: a leaf within len(".part.meta") bytes of 255 (MapPath allows 255, and the
// store's collision suffix "~N" can add more) would otherwise fail with ENAMETOOLONG on the
// first write. Such a leaf gets temporary names from a shortened base and a hash of the whole,
// deterministic so that a later run finds the .part to resume. They still end in ".part" and
// ".part.meta", which no mapped or user-given name may (see avoidOwnSuffix, CleanPath).
func tempNames(base string) (part, meta string) {
	if len(base)+len(metaSuffix) <= maxSegment {
		return base + partSuffix, base + metaSuffix
	}
	short := utf8Prefix(base, maxSegment-len(metaSuffix)-9) + "~" + hash8(base)
	return short + partSuffix, short + metaSuffix
}

// withQuerySuffix inserts ~<hash of the raw query> before the extension.
func withQuerySuffix(leaf, rawQuery string) string {
	ext := shortExt(leaf)
	return leaf[:len(leaf)-len(ext)] + "~" + hash8(rawQuery) + ext
}

// shortExt is leaf's extension when it is short enough to be a real one worth keeping.
func shortExt(leaf string) string {
	ext := path.Ext(leaf)
	if len(ext) > 16 || len(ext) == len(leaf) {
		return ""
	}
	return ext
}

func hash8(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// shortSegment shortens a segment over 255 bytes to a UTF-8-clean prefix, "~", 8 hex of
// the whole name's hash, and the extension, so two long names sharing a prefix differ.
func shortSegment(s string) string {
	if len(s) <= maxSegment {
		return s
	}
	ext := shortExt(s)
	tail := "~" + hash8(s) + ext
	return utf8Prefix(s, maxSegment-len(tail)) + tail
}

// utf8Prefix is the longest prefix of s of at most n bytes that ends on a rune boundary.
func utf8Prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// limitPath joins segments, and when the result would exceed 4096 bytes keeps the
// leading directories that fit and replaces the rest with one hashed leaf.
func limitPath(segs []string) string {
	p := strings.Join(segs, "/")
	if len(p) <= maxPath {
		return p
	}
	leaf := segs[len(segs)-1]
	sum := sha256.Sum256([]byte(p))
	tail := "~" + hex.EncodeToString(sum[:8]) + shortExt(leaf)
	budget := maxPath - len(tail) - 1
	var b strings.Builder
	for _, s := range segs[:len(segs)-1] {
		if b.Len()+len(s)+1 > budget {
			break
		}
		b.WriteString(s)
		b.WriteByte('/')
	}
	b.WriteString(tail)
	return b.String()
}

// CleanPath validates a user-supplied relative output path (the second field of a list
// line) and returns it cleaned ("a//b/./c" → "a/b/c"). It rejects empty and absolute
// paths, paths that climb out with "..", NUL and control characters, invalid UTF-8,
// backslashes (rejected rather than guessed at: on Windows they are separators, on Unix
// literal characters, and a list line meaning either is a mistake worth reporting), names
// ending in ".part" or ".part.meta" (trawl's own temporary files), a first segment
// ".trawl" (the state directory), and segments over 255 or paths over 4096 bytes.
func CleanPath(p string) (string, error) {
	switch {
	case p == "":
		return "", errors.New("empty path")
	case !utf8.ValidString(p):
		return "", errors.New("path is not valid UTF-8")
	case strings.ContainsRune(p, '\\'):
		return "", errors.New(`path contains a backslash; use "/" as the separator`)
	case strings.HasPrefix(p, "/"):
		return "", errors.New("path is absolute; it must be relative to the output directory")
	}
	for _, r := range p {
		if unicode.IsControl(r) {
			return "", fmt.Errorf("path contains control character %U", r)
		}
	}
	c := path.Clean(p)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", errors.New("path escapes the output directory")
	}
	if len(c) > maxPath {
		return "", fmt.Errorf("path is longer than %d bytes", maxPath)
	}
	for i, s := range strings.Split(c, "/") {
		if len(s) > maxSegment {
			return "", fmt.Errorf("path segment longer than %d bytes", maxSegment)
		}
		if i == 0 && strings.EqualFold(s, ".trawl") {
			return "", errors.New("path is inside trawl's state directory .trawl")
		}
	}
	if strings.HasSuffix(c, partSuffix) || strings.HasSuffix(c, metaSuffix) {
		return "", errors.New("path ends in .part or .part.meta, which trawl uses for partial downloads")
	}
	return c, nil
}
