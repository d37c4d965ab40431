package fetcher

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Netrc holds the logins of a .netrc file, as curl and wget read it: "machine NAME" starts a
// host's entry, "default" an entry for every other host; "login" and "password" give its
// credentials ("account" is read and ignored); "macdef NAME" starts an FTP macro, skipped up to
// the next blank line. Tokens are separated by spaces, tabs or newlines, so an entry may span
// lines; a token may be double-quoted, with \" \\ \n \r \t escapes, to hold spaces. A line whose
// first non-blank character is # is a comment.
type Netrc struct {
	machines []netrcEntry
	fallback *netrcEntry // the default entry
}

type netrcEntry struct {
	machine         string // lower case; "" for default
	login, password string
	hasLogin        bool
}

// maxNetrcSize bounds a .netrc: a file of logins is a few KiB.
const maxNetrcSize = 1 << 20

// Login returns the login and password for host (a host name or IP address, without port),
// from its machine entry, else from the default entry. ok is false when neither gives a login.
func (n *Netrc) Login(host string) (login, password string, ok bool) {
	if n == nil {
		return "", "", false
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, e := range n.machines {
		if e.machine == host {
			return e.login, e.password, e.hasLogin
		}
	}
	if e := n.fallback; e != nil {
		return e.login, e.password, e.hasLogin
	}
	return "", "", false
}

// ParseNetrc reads a .netrc; name is for messages. An error names the line, never a token's
// text, which may be a password.
func ParseNetrc(r io.Reader, name string) (*Netrc, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxNetrcSize+1))
	if err != nil {
		return nil, fmt.Errorf("netrc file %s: %w", name, err)
	}
	if len(b) > maxNetrcSize {
		return nil, fmt.Errorf("netrc file %s is larger than %d KiB: not a .netrc", name, maxNetrcSize>>10)
	}
	n, line, err := parseNetrc(string(b))
	if err != nil {
		return nil, fmt.Errorf("netrc file %s line %d: %w", name, line, err)
	}
	return n, nil
}

func parseNetrc(s string) (*Netrc, int, error) {
	t := netrcTokens{s: s, line: 1, lineStart: true}
	n := &Netrc{}
	var cur *netrcEntry // the entry being read; nil before the first machine or default
	finish := func() {
		switch {
		case cur == nil:
		case cur.machine == "" && n.fallback == nil:
			n.fallback = cur
		case cur.machine != "":
			n.machines = append(n.machines, *cur)
		}
	}
	for {
		tok, line, err := t.next()
		if err != nil {
			return nil, line, err
		}
		if tok == nil {
			break
		}
		value := func() (string, error) {
			v, _, err := t.next()
			switch {
			case err != nil:
				return "", err
			case v == nil:
				return "", fmt.Errorf("%s needs a value", *tok)
			}
			return *v, nil
		}
		switch *tok {
		case "machine":
			finish()
			m, err := value()
			if err != nil {
				return nil, line, err
			}
			cur = &netrcEntry{machine: strings.ToLower(strings.TrimSuffix(m, "."))}
			if cur.machine == "" {
				return nil, line, errors.New("machine needs a host name")
			}
		case "default":
			finish()
			cur = &netrcEntry{}
		case "login", "password", "account":
			v, err := value()
			if err != nil {
				return nil, line, err
			}
			if cur == nil {
				return nil, line, fmt.Errorf("%s before any machine or default", *tok)
			}
			switch *tok {
			case "login":
				cur.login, cur.hasLogin = v, true
			case "password":
				cur.password = v
			}
		case "macdef":
			if _, err := value(); err != nil {
				return nil, line, err
			}
			t.skipMacro()
		default:
			if strings.HasPrefix(*tok, "#") {
				// A comment only starts a line here; say so (the word itself, which may be part of
				// a password, is never shown).
				return nil, line, errors.New("unexpected # inside a line: a # comment must start its line (quote a value that has # or spaces)")
			}
			return nil, line, errors.New("unexpected word: want machine, default, login, password, account or macdef (quote a value that has spaces)")
		}
	}
	finish()
	return n, t.line, nil
}

// netrcTokens splits a .netrc into tokens, counting lines.
type netrcTokens struct {
	s         string
	i         int
	line      int
	lineStart bool // nothing but blanks since the last newline
}

// next returns the next token and the line it is on; nil at the end of the file.
func (t *netrcTokens) next() (*string, int, error) {
	for t.i < len(t.s) {
		switch c := t.s[t.i]; {
		case c == '\n':
			t.line++
			t.lineStart = true
			t.i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			t.i++
		case c == '#' && t.lineStart:
			for t.i < len(t.s) && t.s[t.i] != '\n' {
				t.i++
			}
		case c == '"':
			t.lineStart = false
			return t.quoted()
		default:
			t.lineStart = false
			start := t.i
			for t.i < len(t.s) && !strings.ContainsRune(" \t\r\n\f\v", rune(t.s[t.i])) {
				t.i++
			}
			tok := t.s[start:t.i]
			return &tok, t.line, nil
		}
	}
	return nil, t.line, nil
}

// quoted reads a double-quoted token; t.i is at its opening quote.
func (t *netrcTokens) quoted() (*string, int, error) {
	line := t.line
	var b strings.Builder
	for t.i++; t.i < len(t.s); t.i++ {
		c := t.s[t.i]
		switch {
		case c == '"':
			t.i++
			tok := b.String()
			return &tok, line, nil
		case c == '\\' && t.i+1 < len(t.s):
			t.i++
			switch e := t.s[t.i]; e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			default:
				b.WriteByte(e)
			}
		case c == '\n':
			return nil, line, errors.New("a quoted value does not end on its line")
		default:
			b.WriteByte(c)
		}
	}
	return nil, line, errors.New("a quoted value does not end")
}

// skipMacro skips a macdef's body: the lines after the macdef line, up to and including the
// first blank one.
func (t *netrcTokens) skipMacro() {
	nl := strings.IndexByte(t.s[t.i:], '\n')
	if nl < 0 {
		t.i = len(t.s)
		return
	}
	t.i += nl + 1
	t.line++
	for t.i < len(t.s) {
		end := strings.IndexByte(t.s[t.i:], '\n')
		var l string
		if end < 0 {
			l, t.i = t.s[t.i:], len(t.s)
		} else {
			l = t.s[t.i : t.i+end]
			t.i += end + 1
			t.line++
		}
		if strings.TrimSpace(l) == "" {
			break
		}
	}
	t.lineStart = true
}

// LoadNetrc reads the .netrc file at path. A file that others than its owner may read or write
// is refused, as it holds passwords.
func LoadNetrc(path string) (*Netrc, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("netrc file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("netrc file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("netrc file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o066 != 0 {
		return nil, fmt.Errorf("netrc file %s may be read or changed by other users (mode %04o); it holds passwords: chmod 600 %s", path, perm, path)
	}
	return ParseNetrc(f, path)
}
