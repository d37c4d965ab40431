package scheduler

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/queue"
)

// ParseChecksum reads a list line's checksum field, "sha256:HEX" (either case), and returns the
// digest as lowercase hex.
func ParseChecksum(s string) (string, error) {
	algo, digest, ok := strings.Cut(s, ":")
	switch {
	case !ok:
		return "", fmt.Errorf("checksum %.80q: want sha256:HEX (64 hex digits)", s)
	case !strings.EqualFold(algo, "sha256"):
		return "", fmt.Errorf("checksum algorithm %.20q is not supported (only sha256)", algo)
	}
	return parseSHA256(digest)
}

// parseSHA256 checks a sha256 digest in hex (either case) and returns it in lowercase.
func parseSHA256(digest string) (string, error) {
	if len(digest) != 2*32 {
		return "", fmt.Errorf("sha256 checksum has %d characters, want 64 hex digits", len(digest))
	}
	if _, err := hex.DecodeString(digest); err != nil {
		return "", fmt.Errorf("sha256 checksum %.80q is not hex", digest)
	}
	return strings.ToLower(digest), nil
}

// Checksums are the entries of a sums file (--checksums): the output of sha256sum, "HEX  name" or
// "HEX *name" (binary mode), or of sha256sum --tag and BSD tools, "SHA256 (name) = HEX". A name
// containing "://" is a URL, and matches that URL (normalized as list URLs are, so that any
// spelling of it does). Any other name is a relative path (a leading "./" is dropped), and matches
// a file whose output path, relative to the output directory, is that path or ends with "/" and
// that path: "b.iso" matches "host/pub/b.iso", "pub/b.iso" matches it too and is preferred, being
// longer. A URL entry is preferred to a name. It is safe for concurrent use.
type Checksums struct {
	index   map[string]int // URL or cleaned path → entry
	entries []sumEntry
}

type sumEntry struct {
	sum  [32]byte
	line int
	used atomic.Bool // matched a URL of this run
}

// ReadChecksums reads a sums file whole: its lines are looked up by every URL of a list. Blank
// lines and lines starting with '#' are skipped; a UTF-8 BOM and CRLF line ends are tolerated. A
// line that is none of the forms above, a sum that is not sha256, a name that cannot be an output
// path, and a name given twice with different sums are errors (a BadLine with the line number):
// the file is refused whole rather than half used.
func ReadChecksums(r io.Reader) (*Checksums, error) {
	c := &Checksums{index: map[string]int{}}
	br := bufio.NewReaderSize(r, 64<<10)
	for lineNo := 1; ; lineNo++ {
		line, tooLong, err := readLine(br)
		if err != nil && err != io.EOF {
			return nil, err
		}
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\ufeff"))
		}
		if tooLong {
			return nil, BadLine{Line: lineNo, Err: fmt.Errorf("line longer than %d bytes", maxLineBytes)}
		}
		if perr := c.addLine(string(line), lineNo); perr != nil {
			return nil, BadLine{Line: lineNo, Err: perr}
		}
		if err == io.EOF {
			return c, nil
		}
	}
}

// addLine adds the entry of one line of a sums file, if it has one.
func (c *Checksums) addLine(line string, lineNo int) error {
	line = strings.TrimRight(line, "\r")
	if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
		return nil
	}
	name, digest, err := parseSumLine(line)
	if err != nil {
		return err
	}
	key, err := sumKey(name)
	if err != nil {
		return err
	}
	var sum [32]byte
	hex.Decode(sum[:], []byte(digest)) // checked by parseSumLine
	if i, dup := c.index[key]; dup {
		if c.entries[i].sum != sum {
			return fmt.Errorf("%.200q is listed again with another sha256 (first on line %d)", name, c.entries[i].line)
		}
		return nil
	}
	c.index[key] = len(c.entries)
	c.entries = append(c.entries, sumEntry{sum: sum, line: lineNo})
	return nil
}

// digestNames names the sums tools whose digests have other lengths, by hex digits: a sums file
// of one of them is a mistake worth naming.
var digestNames = map[int]string{32: "md5", 40: "sha1", 56: "sha224", 96: "sha384", 128: "sha512"}

// parseSumLine splits a line of a sums file (not blank, not a comment) into its name and its sha256
// in lowercase hex. A line starting with a backslash has its name escaped as GNU tools escape
// names holding a newline or a backslash.
func parseSumLine(line string) (name, digest string, err error) {
	escaped := strings.HasPrefix(line, `\`)
	if escaped {
		line = line[1:]
	}
	if algo, rest, ok := strings.Cut(line, " ("); ok && !strings.Contains(algo, " ") && !isHex(algo) {
		// BSD style: "SHA256 (name) = HEX".
		i := strings.LastIndex(rest, ") = ")
		switch {
		case i < 0:
			return "", "", errors.New(`not a checksum line: want "HEX  name", "HEX *name" or "SHA256 (name) = HEX"`)
		case !strings.EqualFold(algo, "SHA256"):
			return "", "", fmt.Errorf("checksum algorithm %.20q is not supported (only SHA256)", algo)
		}
		name, digest = rest[:i], rest[i+len(") = "):]
	} else {
		// GNU style: "HEX  name" (text mode) or "HEX *name" (binary mode).
		hexPart, rest, ok := strings.Cut(line, " ")
		switch {
		case !ok || !isHex(hexPart) || rest == "" || rest[0] != ' ' && rest[0] != '*':
			return "", "", errors.New(`not a checksum line: want "HEX  name", "HEX *name" or "SHA256 (name) = HEX"`)
		case len(hexPart) != 64 && digestNames[len(hexPart)] != "":
			return "", "", fmt.Errorf("a %d-digit checksum (%s?): only sha256 sums (64 hex digits) are supported", len(hexPart), digestNames[len(hexPart)])
		}
		name, digest = rest[1:], hexPart
	}
	if digest, err = parseSHA256(digest); err != nil {
		return "", "", err
	}
	if escaped {
		if name, err = unescapeSumName(name); err != nil {
			return "", "", err
		}
	}
	if name == "" {
		return "", "", errors.New("checksum line without a file name")
	}
	return name, digest, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return s != ""
}

// unescapeSumName undoes the escapes of a GNU sums line that starts with a backslash: "\\", "\n"
// and "\r".
func unescapeSumName(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		i++
		if i == len(s) {
			return "", errors.New(`file name ends in a lone "\"`)
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			return "", fmt.Errorf(`unknown escape "\%c" in the file name`, s[i])
		}
	}
	return b.String(), nil
}

// sumKey is what an entry's name is looked up by: a normalized URL, or a cleaned relative path.
func sumKey(name string) (string, error) {
	if strings.Contains(name, "://") {
		e, err := NormalizeURL(name)
		if err != nil {
			return "", fmt.Errorf("URL %.200q: %w", name, err)
		}
		return e.URL, nil
	}
	p, err := fetcher.CleanPath(name)
	if err != nil {
		return "", fmt.Errorf("file name %.200q: %w (names are matched against paths under the output directory)", name, err)
	}
	return p, nil
}

// Len is the number of entries.
func (c *Checksums) Len() int {
	if c == nil {
		return 0
	}
	return len(c.entries)
}

// Lookup returns the sha256 (lowercase hex) of the entry that matches a file fetched from url (a
// normalized URL, without userinfo) to path (relative to the output directory), or "" if none
// does. The entry is marked used.
func (c *Checksums) Lookup(url, path string) string {
	if c == nil || len(c.entries) == 0 {
		return ""
	}
	i, ok := c.index[url]
	for p := path; !ok && p != ""; {
		if i, ok = c.index[p]; ok {
			break
		}
		j := strings.IndexByte(p, '/')
		if j < 0 {
			break
		}
		p = p[j+1:]
	}
	if !ok {
		return ""
	}
	e := &c.entries[i]
	e.used.Store(true)
	return hex.EncodeToString(e.sum[:])
}

// Apply gives nu the sha256 the sums have for it, unless its list line gave one.
func (c *Checksums) Apply(nu *queue.NewURL) {
	if nu.WantSHA256 == "" {
		nu.WantSHA256 = c.Lookup(nu.URL, nu.Path)
	}
}

// Unused returns how many entries matched no URL looked up, and up to max of their names (URLs
// and cleaned paths), in order.
func (c *Checksums) Unused(max int) (n int, names []string) {
	if c == nil {
		return 0, nil
	}
	for name, i := range c.index {
		if !c.entries[i].used.Load() {
			n++
			names = append(names, name)
		}
	}
	slices.Sort(names)
	if len(names) > max {
		names = names[:max]
	}
	return n, names
}
