package fetcher

import (
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestMapPathHostile: traversal in every encoding, control characters, CR/LF, absolute paths,
// IDN hosts, case-only differences and file-versus-directory URLs all map to clean paths under
// the host's directory. Exact results for the common cases are in TestMapPath; here every
// result must satisfy the MapPath properties and stay below the host directory.
func TestMapPathHostile(t *testing.T) {
	for _, u := range []string{
		"https://h/../../../../etc/passwd",
		"https://h/%2e%2e/%2e%2e/etc/passwd",
		"https://h/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
		"https://h/..%2f..%2fetc%2fpasswd",
		"https://h/..%5c..%5cwindows%5cwin.ini",
		"https://h/%252e%252e/%252e%252e/x", // double-encoded: a literal "%2e%2e" name
		"https://h/.%2e/.%2e/x",
		"https://h/%2e./%2e./x",
		"https://h/a/%2e%2e",
		"https://h/a/%2e%2e/",
		"https://h//etc/passwd",
		"https://h///etc//passwd",
		"https://h/%2fetc%2fpasswd",
		"https://h/C:%5cWindows%5cx",
		"https://h/a%00.jpg%00.txt",
		"https://h/a%0d%0aSet-Cookie:%20x",
		"https://h/%1b[31mred%7f",
		"https://h/tab%09name",
		"https://h/" + strings.Repeat("%e2%80%ae", 10) + "gpj.exe", // right-to-left overrides
		"https://h/" + strings.Repeat("x", 300),
		"https://h/" + strings.Repeat("%ff", 300),
		"https://h/" + strings.Repeat("seg/", 1500) + "leaf",
		"https://h/" + strings.Repeat(strings.Repeat("s", 255)+"/", 30) + "leaf.jpg",
		"https://bücher.example/x",
		"https://BÜCHER.example/x",
		"https://xn--bcher-kva.example/x",
		"https://h/x?../../etc/passwd",
		"https://h/x?%00%2f..",
		"https://user:p%40ss@h/secret",
		"https://h/.trawl/state.db",
		"https://h/%2etrawl/state.db",
	} {
		for _, l := range []Layout{Mirror, Flat} {
			p, err := MapPath(u, l)
			if err != nil {
				continue // refusing is always safe
			}
			checkMapped(t, u, p)
			if l == Mirror && strings.HasPrefix(p, "_trawl") || strings.HasPrefix(strings.ToLower(p), ".trawl") {
				t.Errorf("MapPath(%q) = %q: inside the state directory", u, p)
			}
			if strings.Contains(p, "user") || strings.Contains(p, "p@ss") {
				t.Errorf("MapPath(%q) = %q: userinfo in the path", u, p)
			}
		}
	}
	for _, bad := range []string{"file:///etc/passwd", "ftp://h/x", "data:text/plain,x", "javascript:alert(1)", "//h/x", "https://"} {
		if p, err := MapPath(bad, Mirror); err == nil {
			t.Errorf("MapPath(%q) = %q, want an error", bad, p)
		}
	}
}

// TestMapPathDistinct: URLs that must not share a file do not, before the store's collision
// rules even apply: names differing only in case, query strings, encoded and literal
// separators. (A file and a directory URL of the same path, h/x and h/x/index.html, are
// resolved by the store at enqueue time; see integration_test.)
func TestMapPathDistinct(t *testing.T) {
	for _, pair := range [][2]string{
		{"https://h/A.jpg", "https://h/a.jpg"},
		{"https://h/x?a=1", "https://h/x?a=2"},
		{"https://h/x?a=1", "https://h/x"},
		{"https://h/a%2fb", "https://h/a/b"},
		{"https://h/x", "https://h/x/"},
		{"https://h/" + strings.Repeat("a", 300) + "1", "https://h/" + strings.Repeat("a", 300) + "2"},
	} {
		a, err1 := MapPath(pair[0], Mirror)
		b, err2 := MapPath(pair[1], Mirror)
		if err1 != nil || err2 != nil || a == b {
			t.Errorf("MapPath(%q) = %q, MapPath(%q) = %q (%v, %v): want distinct paths", pair[0], a, pair[1], b, err1, err2)
		}
	}
}

// TestCleanPathHostile: the second field of a list line, in every hostile form, is refused or
// cleaned to a path inside the output directory.
func TestCleanPathHostile(t *testing.T) {
	for _, bad := range []string{
		"../../etc/passwd", "a/../../b", "/etc/passwd", "//etc/passwd", `..\..\x`, `C:\x`, "a\x00b", "a\r\nb", "a\tb\x1b",
		"\xc0\xaf", ".trawl", ".trawl/x", "./.trawl/x", "a/x.part", strings.Repeat("x", 256), strings.Repeat("ab/", 1400),
	} {
		if c, err := CleanPath(bad); err == nil {
			t.Errorf("CleanPath(%q) = %q, want an error", bad, c)
		}
	}
	// Encoded forms are not decoded in a list's path field: they are literal names.
	for in, want := range map[string]string{"%2e%2e/x": "%2e%2e/x", "a/%2f/b": "a/%2f/b", "a/./b/../c": "a/c"} {
		if c, err := CleanPath(in); err != nil || c != want {
			t.Errorf("CleanPath(%q) = %q, %v; want %q", in, c, err, want)
		}
	}
}

// TestFetchLongLeaf: a leaf of up to 255 bytes (what MapPath allows, and what the store's
// collision suffix may push beyond it) must not fail because "<leaf>.part.meta" is over
// NAME_MAX; the shortened temporary names are stable, so a .part still resumes.
func TestFetchLongLeaf(t *testing.T) {
	srv := testserver.New(t, testserver.HTTP1Only(), testserver.Size(100_000))
	f := newFetcher(t, srv)
	root, dir := newRoot(t)
	for _, n := range []int{245, 246, 250, 255} {
		leaf := strings.Repeat("é", (n-4)/2) + strings.Repeat("x", (n-4)%2) + ".bin"
		if len(leaf) != n {
			t.Fatalf("leaf of %d bytes, want %d", len(leaf), n)
		}
		p := "/long" + itoa(int64(n))
		srv.Handle(p, testserver.TruncateAfter(30_000))
		if _, err := fetch(t, f, root, srv.URL(p), "d/"+leaf); err == nil {
			t.Fatal("truncated fetch succeeded")
		}
		part, _ := tempNames(leaf)
		if got := fileSize(t, dir, "d/"+part); got != 30_000 || len(part) > maxSegment {
			t.Fatalf("%d-byte leaf: .part %q has %d bytes", n, part, got)
		}
		srv.Handle(p, testserver.TruncateAfter(-1))
		resp, err := fetch(t, f, root, srv.URL(p), "d/"+leaf)
		if err != nil || !resp.Resumed || resp.SHA256 != srv.SHA256(p) {
			t.Fatalf("%d-byte leaf: %+v, %v", n, resp, err)
		}
		if exists(dir, "d/"+leaf+".part") {
			t.Fatalf("%d-byte leaf: .part left", n)
		}
	}
	for _, e := range treeOf(t, dir) {
		if strings.HasSuffix(e, partSuffix) || strings.HasSuffix(e, metaSuffix) {
			t.Fatalf("temporary file %s left", e)
		}
	}
}
