package extract

import (
	"bytes"
	"net/url"
	"slices"
	"strings"
)

// collector resolves, normalizes and dedups the links of a stylesheet as they are found.
type collector struct {
	base  *url.URL
	seen  map[Link]struct{}
	links []Link
}

func newCollector(base *url.URL) *collector {
	return &collector{base: base, seen: make(map[Link]struct{})}
}

func (c *collector) add(ref string, k Kind) {
	s, ok := Resolve(c.base, ref)
	if !ok {
		return
	}
	l := Link{URL: s, Kind: k}
	if _, dup := c.seen[l]; dup {
		return
	}
	c.seen[l] = struct{}{}
	c.links = append(c.links, l)
}

// css adds the references of a stylesheet, <style> element or style attribute. In HTML they
// resolve against the document's base, not against any stylesheet.
func (c *collector) css(text string) {
	for _, ref := range cssRefs(text) {
		c.add(ref, Requisite)
	}
}

// refSet gathers the references of a page as written, in document order, and resolves them
// once the page's base is known (a <base href> may come after the links it governs). Each
// distinct reference is stored and resolved once however often it is used: a table of
// contents links the same few hundred pages thousands of times, with fragments that never
// reach the server.
type refSet struct {
	index map[string]int32 // reference, cut after any '#' → position in refs
	refs  []string
	uses  []refUse // every use, in document order
}

type refUse struct {
	ref  int32
	kind Kind
}

func newRefSet() *refSet {
	return &refSet{index: make(map[string]int32)}
}

// fragmentCut returns ref up to and including its first '#'. Resolve gives the same result for
// both: it trims ref and drops the fragment, and a '#' is no space to trim.
func fragmentCut(ref []byte) []byte {
	if i := bytes.IndexByte(ref, '#'); i >= 0 {
		return ref[:i+1]
	}
	return ref
}

// add records a use of ref, which is copied if it is new.
func (s *refSet) add(ref []byte, k Kind) {
	ref = fragmentCut(ref)
	i, ok := s.index[string(ref)]
	if !ok {
		r := string(ref)
		i = int32(len(s.refs))
		s.refs = append(s.refs, r)
		s.index[r] = i
	}
	s.uses = append(s.uses, refUse{i, k})
}

// addString is add for a reference that is a string already.
func (s *refSet) addString(ref string, k Kind) {
	if i := strings.IndexByte(ref, '#'); i >= 0 {
		ref = ref[:i+1]
	}
	i, ok := s.index[ref]
	if !ok {
		i = int32(len(s.refs))
		s.refs = append(s.refs, ref)
		s.index[ref] = i
	}
	s.uses = append(s.uses, refUse{i, k})
}

// addSrcset records the URLs of a srcset.
func (s *refSet) addSrcset(val []byte, k Kind) {
	for _, u := range parseSrcset(string(val)) {
		s.addString(u, k)
	}
}

// css records the references of a style attribute.
func (s *refSet) css(text []byte) {
	for _, ref := range cssRefs(string(text)) {
		s.addString(ref, Requisite)
	}
}

// cssAt records the references of a <style> element's text as used at position at of the uses:
// where the element began, before its attributes and anything inside it, as a tree walk meets
// them. It returns how many uses it inserted.
func (s *refSet) cssAt(at int, text string) int {
	refs := cssRefs(text)
	if len(refs) == 0 {
		return 0
	}
	n := len(s.uses)
	for _, ref := range refs {
		s.addString(ref, Requisite)
	}
	added := slices.Clone(s.uses[n:])
	s.uses = slices.Insert(s.uses[:n], at, added...)
	return len(added)
}

// links resolves the references against base and returns the links: normalized, without
// the ones that name nothing to fetch, each (URL, Kind) once, in the order of first use.
func (s *refSet) links(base *url.URL) []Link {
	urls := make([]string, len(s.refs))
	ok := make([]bool, len(s.refs))
	resolved.resolveAll(base, s.refs, urls, ok)
	used := make([]uint8, len(s.refs)) // bit 1<<Kind: used as that Kind already
	seen := make(map[Link]struct{}, len(s.refs))
	var out []Link
	for _, u := range s.uses {
		if !ok[u.ref] || used[u.ref]&(1<<u.kind) != 0 {
			continue
		}
		used[u.ref] |= 1 << u.kind
		l := Link{URL: urls[u.ref], Kind: u.kind}
		if _, dup := seen[l]; dup {
			continue
		}
		seen[l] = struct{}{}
		out = append(out, l)
	}
	return out
}
