package fetcher

import (
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Naming lets the answer to a file's fresh download name the file (Request.Naming): a
// Content-Disposition filename (wget --content-disposition, curl -J), or a redirect that only adds
// a trailing slash. The name is decided at the response headers, before the .part is created, and
// only for a download that starts from byte 0: a .part being resumed, or a file being revalidated,
// keeps the path it has. Whatever the server sends, it never chooses a directory: a
// Content-Disposition name replaces the path's last element only, and a slash redirect leads to
// the mirror path of a URL one "/" longer than the request's.
type Naming struct {
	// ContentDisposition: the answer's Content-Disposition filename (DispositionName), when it
	// has a usable one, replaces the leaf of the path.
	ContentDisposition bool
	// SlashRedirect: when the request was redirected to its own URL with a "/" added to the path
	// (IsSlashRedirect), the file takes the target's mirror path (MapPath): a link to a directory
	// without its slash is saved as the directory's index.html, not as a file that would stand
	// where the directory's other files go. For the mirror layout.
	SlashRedirect bool
	// Rename is called, at most once per Fetch and only with a path that differs from the
	// request's, to reserve and record the proposed path for the URL. It returns the path to
	// write to: the proposal, or another that avoids a collision. The file and its .part are
	// then made there. An error fails the fetch as Fatal: the job's state cannot be kept.
	Rename func(proposed string) (string, error)
}

// Propose is the path an answer names for a file that was to be stored at rel (a path Request
// accepts): rel itself when neither rule applies. reqURL is the URL asked for, finalURL the one
// that answered after redirects, h the answer's headers. It is pure: the same answer always
// proposes the same path, which is a clean relative path (CleanPath accepts it).
func (n *Naming) Propose(rel, reqURL, finalURL string, h http.Header) string {
	p := rel
	if n.SlashRedirect && finalURL != reqURL && IsSlashRedirect(reqURL, finalURL) {
		if m, err := MapPath(finalURL, Mirror); err == nil {
			p = m
		}
	}
	if n.ContentDisposition {
		if name := DispositionName(h.Get("Content-Disposition")); name != "" {
			p = withLeaf(p, name)
		}
	}
	return p
}

// withLeaf replaces the last element of the path p by name, keeping the path within MapPath's
// length limits.
func withLeaf(p, name string) string {
	dir := path.Dir(p)
	if dir == "." {
		return name
	}
	return limitPath(append(strings.Split(dir, "/"), name))
}

// DispositionName is the file name a Content-Disposition header value offers (RFC 6266), made a
// single harmless file name, or "" when it offers none that can be used.
//
// The value is parsed by mime.ParseMediaType, which decodes RFC 2231's filename*
// (charset'language'percent-encoded name) and lets it win over filename=, as RFC 6266 asks; a
// filename* that does not decode (an unknown charset, bad percent-encoding) is ignored and
// filename= used. A filename* that decodes to bytes
// that are not UTF-8 is dropped the same way. A value that does not parse gives "".
//
// The name is then reduced to what MapPath allows of a URL's leaf: only what follows the last "/"
// or "\" (a name, never a directory), white space trimmed at both ends; nothing if that is empty
// or only dots (".", ".."); not if it is not UTF-8; then as MapPath makes a segment safe: control
// characters become "_", a leading "." becomes "_" (no hidden files, no ".trawl"), a name ending
// in ".part" or ".part.meta" gets "_" appended, and one over 255 bytes is shortened with a hash.
func DispositionName(header string) string {
	if header == "" {
		return ""
	}
	_, params, err := mime.ParseMediaType(header)
	if err != nil {
		return ""
	}
	name := params["filename"]
	if !utf8.ValidString(name) && hasExtendedFilename(header) {
		// The filename* decoded to bytes that are not UTF-8: fall back on filename=.
		if _, params, err = mime.ParseMediaType(withoutExtendedFilename(header)); err != nil {
			return ""
		}
		name = params["filename"]
	}
	return safeName(name)
}

// safeName makes a server's file name a single safe name, or "" (see DispositionName).
func safeName(s string) string {
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimFunc(s, unicode.IsSpace)
	if strings.Trim(s, ". ") == "" || !utf8.ValidString(s) {
		return ""
	}
	return shortSegment(avoidOwnSuffix(safeSegment(s)))
}

// mediaParams splits a header value at the semicolons that separate its parameters, keeping
// quoted strings (and their backslash escapes) whole.
func mediaParams(v string) []string {
	var parts []string
	start, quoted, escaped := 0, false, false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == ';' && !quoted:
			parts = append(parts, v[start:i])
			start = i + 1
		}
	}
	return append(parts, v[start:])
}

// isExtendedFilename reports whether a parameter is filename* or one of its RFC 2231 pieces
// (filename*0, filename*0*...).
func isExtendedFilename(param string) bool {
	key, _, _ := strings.Cut(param, "=")
	key = strings.ToLower(strings.TrimSpace(key))
	return strings.HasPrefix(key, "filename*")
}

func hasExtendedFilename(header string) bool {
	for _, p := range mediaParams(header)[1:] {
		if isExtendedFilename(p) {
			return true
		}
	}
	return false
}

// withoutExtendedFilename is header without its filename* parameters.
func withoutExtendedFilename(header string) string {
	parts := mediaParams(header)
	kept := parts[:1]
	for _, p := range parts[1:] {
		if !isExtendedFilename(p) {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, ";")
}

// IsSlashRedirect reports whether to is from with a "/" added at the end of its path: the same
// scheme, host, port and query, and a path that did not end in "/" before. Such a redirect says
// that from names a directory; any other redirect leaves the file its request's path.
func IsSlashRedirect(from, to string) bool {
	f, err := url.Parse(from)
	if err != nil {
		return false
	}
	t, err := url.Parse(to)
	if err != nil {
		return false
	}
	fp := f.EscapedPath()
	return strings.ToLower(f.Scheme) == strings.ToLower(t.Scheme) && strings.ToLower(f.Hostname()) == strings.ToLower(t.Hostname()) &&
		portOf(f) == portOf(t) && f.RawQuery == t.RawQuery &&
		!strings.HasSuffix(fp, "/") && t.EscapedPath() == fp+"/"
}
