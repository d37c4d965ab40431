package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// reservePath reserves an output path for url, derived from the proposed path p, and returns it.
// Two URLs must never write the same file, and a file and a directory cannot share a name, so:
//
//  1. if p itself is reserved, its leaf gets the smallest free suffix: a.jpg → a~2.jpg, a → a~2;
//  2. if a directory of p is reserved as a file (h/a reserved, p = h/a/b), that segment becomes
//     the smallest a~N not reserved as a file (h/a~2/b);
//  3. if p is a directory of reserved paths (h/a/b reserved, p = h/a), the leaf gets a suffix.
//
// A reservation is released only when its URL is given another path (Rename), so the result
// depends only on the order of enqueues and renames, and a resumed or repeated run maps every URL
// to the same file. Cost: a lookup per directory level plus a Seek;
// the smallest free suffix is found from a per-path hint, so a thousand URLs that propose the same
// name do not cost a thousand lookups each.
func (w *wtx) reservePath(p, url string) (string, error) {
	segs := strings.Split(p, "/")
	dir := ""
	for _, seg := range segs[:len(segs)-1] {
		cand := joinPath(dir, seg)
		// Rule 2. Directory names get the suffix at the end: they have no extension to keep.
		for n := 2; has(w.pathsCur, []byte(cand)); n++ {
			cand = joinPath(dir, seg+"~"+strconv.Itoa(n))
		}
		dir = cand
	}
	leaf := segs[len(segs)-1]
	cand := joinPath(dir, leaf)
	if !w.pathFree(cand) { // rules 1 and 3
		base := []byte(cand)
		n := uint64(2)
		if v := w.pathNext.Get(base); v != nil {
			if last, k := binary.Uvarint(v); k > 0 {
				n = last + 1
			}
		}
		for ; ; n++ {
			cand = joinPath(dir, suffixed(leaf, n))
			if w.pathFree(cand) {
				break
			}
		}
		if err := w.pathNext.Put(base, binary.AppendUvarint(nil, n)); err != nil {
			return "", err
		}
	}
	return cand, w.paths.Put([]byte(cand), encodeReservation(cand, url))
}

// Rename gives the leased record of url the output path proposed, reserved as Enqueue reserves a
// path (reservePath: it may come back with a collision suffix), marks it Named, and releases the
// path it had; it returns the record's path. It is the queue.Renamer of the server's names for a
// URL's first download, decided at the response's headers: committed before the body is written,
// so a run that dies mid-body finds the record, and its .part, at the new path. A record already
// Named keeps its path.
func (s *Store) Rename(url, proposed string) (string, error) {
	if proposed == "" || len(proposed)+20 > bolt.MaxKeySize {
		return "", fmt.Errorf("store: rename %.100q: path empty or longer than %d bytes", url, bolt.MaxKeySize-20)
	}
	var path string
	err := s.update(func(w *wtx) error {
		r, seq, ok, err := w.get(url)
		switch {
		case err != nil:
			return err
		case !ok:
			return fmt.Errorf("store: rename %.100q: unknown URL", url)
		case r.State != Leased:
			return fmt.Errorf("store: rename %.100q: the record is %v, not leased", url, r.State)
		case r.Named:
			path = r.Path
			return nil
		}
		if err := w.release(r.Path, url); err != nil {
			return err
		}
		if path, err = w.reservePath(proposed, url); err != nil {
			return err
		}
		r.Path, r.Named = path, true
		return w.put(&r, seq)
	})
	if err != nil {
		return "", err
	}
	return path, nil
}

// holds reports whether url holds path's reservation ("" holds none).
func (w *wtx) holds(path, url string) (bool, error) {
	if path == "" {
		return false, nil
	}
	v := w.paths.Get([]byte(path))
	if v == nil {
		return false, nil
	}
	holder, err := decodeReservation(path, v)
	if err != nil {
		return false, corrupt(w.path, "reservation of %q: %v", path, err)
	}
	return holder == url, nil
}

// release frees path's reservation if url holds it.
func (w *wtx) release(path, url string) error {
	if ok, err := w.holds(path, url); !ok {
		return err
	}
	return w.paths.Delete([]byte(path))
}

// pathFree reports whether p is neither reserved as a file nor a directory of reserved files:
// whether no key is p or starts with p + "/". One Seek finds the first key from p on; keys that
// extend p with a byte below '/' (p + "-1", p + ".bak") sort between p and p + "/", so a few are
// stepped over before seeking p + "/" itself.
func (w *wtx) pathFree(p string) bool {
	c, pb := w.pathsCur, []byte(p)
	k, _ := c.Seek(pb)
	for range 4 {
		switch {
		case k == nil || !bytes.HasPrefix(k, pb):
			return true
		case len(k) == len(p) || k[len(p)] == '/':
			return false
		case k[len(p)] > '/':
			return true // every later key that starts with p goes on with a byte above '/'
		}
		k, _ = c.Next()
	}
	prefix := append(pb, '/')
	k, _ = c.Seek(prefix)
	return k == nil || !bytes.HasPrefix(k, prefix)
}

func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// suffixed puts ~n before the final extension: a.jpg → a~2.jpg, a.tar.gz → a.tar~2.gz, a → a~2,
// .profile → .profile~2 (a leading dot starts a name, not an extension).
// The result never exceeds maxNameBytes: the stem is shortened (on a UTF-8 boundary) to make room,
// so a name at the file system's limit still gets a distinct sibling.
func suffixed(name string, n uint64) string {
	suffix := "~" + strconv.FormatUint(n, 10)
	stem, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		stem, ext = name[:i], name[i:]
	}
	if over := len(stem) + len(suffix) + len(ext) - maxNameBytes; over > 0 {
		if over > len(stem) { // an extension too long to keep: shorten the whole name
			stem, ext = name, ""
			over = len(stem) + len(suffix) - maxNameBytes
		}
		cut := len(stem) - over
		for cut > 0 && !utf8.RuneStart(stem[cut]) {
			cut--
		}
		stem = stem[:cut]
	}
	return stem + suffix + ext
}

// maxNameBytes is the longest file name most file systems allow (and MapPath produces).
const maxNameBytes = 255
