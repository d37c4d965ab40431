package fetcher

import (
	"path"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMapPath(t *testing.T) {
	q := func(raw string) string { return hash8(raw) }
	long := strings.Repeat("a", 300)
	for _, tc := range []struct {
		url, mirror, flat string
	}{
		{"https://Example.COM/a/b.jpg", "example.com/a/b.jpg", "b.jpg"},
		{"https://example.com", "example.com/index.html", "index.html"},
		{"https://example.com/", "example.com/index.html", "index.html"},
		{"https://example.com/dir/", "example.com/dir/index.html", "index.html"},
		{"https://example.com:443/x", "example.com/x", "x"},
		{"http://example.com:80/x", "example.com/x", "x"},
		{"https://example.com:8443/x", "example.com:8443/x", "x"},
		{"http://[::1]:8080/x", "[::1]:8080/x", "x"},
		{"https://user:pw@example.com/x", "example.com/x", "x"},
		{"https://xn--bcher-kva.example/x", "xn--bcher-kva.example/x", "x"},
		{"https://example.com/a.jpg?w=100", "example.com/a~" + q("w=100") + ".jpg", "a~" + q("w=100") + ".jpg"},
		{"https://example.com/?p=2", "example.com/index~" + q("p=2") + ".html", "index~" + q("p=2") + ".html"},
		{"https://example.com/a?", "example.com/a", "a"},
		{"https://example.com/a%2Fb", "example.com/a_b", "a_b"},
		{"https://example.com/a%5Cb", "example.com/a_b", "a_b"},
		{"https://example.com/a%00b%0A", "example.com/a_b_", "a_b_"},
		{"https://example.com/%2e%2e/x", "example.com/_./x", "x"},
		{"https://example.com/../../etc/passwd", "example.com/_./_./etc/passwd", "passwd"},
		{"https://example.com/a/./b", "example.com/a/b", "b"},
		{"https://example.com/a/.", "example.com/a/index.html", "index.html"},
		{"https://example.com/a//b", "example.com/a/b", "b"},
		{"https://example.com/.trawl/state", "example.com/_trawl/state", "state"},
		{"https://example.com/.htaccess", "example.com/_htaccess", "_htaccess"},
		{"https://example.com/f.part", "example.com/f.part_", "f.part_"},
		{"https://example.com/f.part.meta", "example.com/f.part.meta_", "f.part.meta_"},
		{"https://example.com/caf%C3%A9", "example.com/café", "café"},
		{"https://example.com/bad%FFutf8", "example.com/bad_utf8", "bad_utf8"},
		{"https://example.com/" + long + ".jpg", "example.com/" + strings.Repeat("a", 255-13) + "~" + hash8(long+".jpg") + ".jpg", strings.Repeat("a", 255-13) + "~" + hash8(long+".jpg") + ".jpg"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			for _, l := range []struct {
				layout Layout
				want   string
			}{{Mirror, tc.mirror}, {Flat, tc.flat}} {
				got, err := MapPath(tc.url, l.layout)
				if err != nil || got != l.want {
					t.Errorf("MapPath(%q, %s) = %q, %v; want %q", tc.url, l.layout, got, err, l.want)
				}
			}
		})
	}
	for _, bad := range []string{"ftp://example.com/x", "file:///etc/passwd", "https:///x", "javascript:alert(1)", "https://example.com/%zz", "/relative"} {
		if p, err := MapPath(bad, Mirror); err == nil {
			t.Errorf("MapPath(%q) = %q, want error", bad, p)
		}
	}
	if _, err := MapPath("https://example.com/", "tree"); err == nil {
		t.Error("unknown layout accepted")
	}
}

func TestMapPathLimits(t *testing.T) {
	seg := strings.Repeat("d", 200)
	u := "https://example.com/" + strings.Repeat(seg+"/", 40) + "leaf.bin"
	p, err := MapPath(u, Mirror)
	if err != nil {
		t.Fatal(err)
	}
	checkMapped(t, u, p)
	if len(p) > maxPath || !strings.HasSuffix(p, ".bin") {
		t.Fatalf("len %d, %q", len(p), p[len(p)-40:])
	}
	p2, _ := MapPath(u+"x", Mirror)
	if p2 == p {
		t.Fatal("long paths differing in the tail collide")
	}
}

func TestParseLayout(t *testing.T) {
	for in, want := range map[string]Layout{"mirror": Mirror, "Flat": Flat, " flat ": Flat} {
		if got, err := ParseLayout(in); err != nil || got != want {
			t.Errorf("ParseLayout(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseLayout("tree"); err == nil {
		t.Error("ParseLayout(tree) succeeded")
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"a/b.jpg":      "a/b.jpg",
		"a//b/./c":     "a/b/c",
		"a/../b":       "b",
		"dir/":         "dir",
		"_trawl/x":     "_trawl/x",
		"x/.trawl/y":   "x/.trawl/y",
		"café/ü.png":   "café/ü.png",
		".hidden":      ".hidden",
		"a.partial":    "a.partial",
		"my file.txt":  "my file.txt",
		"C:/x":         "C:/x", // a plain name on Unix
		"a/b.part/c":   "a/b.part/c",
		"a/b.meta":     "a/b.meta",
		"a/b.part.bak": "a/b.part.bak",
	} {
		if got, err := CleanPath(in); err != nil || got != want {
			t.Errorf("CleanPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ".", "..", "../x", "a/../../x", "/etc/passwd", `a\b`, `..\x`, "a\x00b", "a\nb", "a\x7fb", "\xff", ".trawl/state.db", ".TRAWL", "x.part", "x.part.meta", strings.Repeat("a", 256), strings.Repeat("a/", 2049)} {
		if got, err := CleanPath(bad); err == nil {
			t.Errorf("CleanPath(%q) = %q, want error", bad, got)
		}
	}
}

// checkMapped asserts every property MapPath promises.
func checkMapped(t *testing.T, in, p string) {
	t.Helper()
	if p == "" || len(p) > maxPath || !utf8.ValidString(p) || path.IsAbs(p) || path.Clean(p) != p || !filepath.IsLocal(p) {
		t.Fatalf("MapPath(%q) = %q: not a clean local path", in, p)
	}
	for _, s := range strings.Split(p, "/") {
		if s == "" || s == "." || s == ".." || len(s) > maxSegment || strings.HasPrefix(s, ".") || strings.ContainsAny(s, "\\\x00") ||
			strings.HasSuffix(s, partSuffix) || strings.HasSuffix(s, metaSuffix) {
			t.Fatalf("MapPath(%q) = %q: bad segment %q", in, p, s)
		}
	}
	if c, err := CleanPath(p); err != nil || c != p {
		t.Fatalf("MapPath(%q) = %q, which CleanPath rejects: %v", in, p, err)
	}
}

func FuzzMapPath(f *testing.F) {
	for _, s := range []string{
		"https://example.com/a/b.jpg", "http://h/", "https://h/a%2f..%2f..%2fetc", "https://h/%2e%2e/%2e/x",
		"https://h/.trawl", "https://h/a.part?x=1", "https://[::1]:80/x", "https://u:p@h/x?y#z",
		"https://h/" + strings.Repeat("%e2%82%ac", 200), "https://h/a\\b", "http://H:0/%00", "https://h/a/.",
		"https://h/" + strings.Repeat("x/", 3000),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		for _, l := range []Layout{Mirror, Flat} {
			p, err := MapPath(u, l)
			if err != nil {
				continue
			}
			checkMapped(t, u, p)
			if again, _ := MapPath(u, l); again != p {
				t.Fatalf("MapPath(%q) not deterministic: %q then %q", u, p, again)
			}
			if l == Flat && strings.Contains(p, "/") {
				t.Fatalf("flat MapPath(%q) = %q has a directory", u, p)
			}
		}
	})
}

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "a/../../b", "/abs", `a\b`, "a\x00", ".trawl/x", "x.part", "./a/./b/", "é/ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c, err := CleanPath(p)
		if err != nil {
			return
		}
		if c == "" || !filepath.IsLocal(c) || path.Clean(c) != c || strings.ContainsAny(c, "\\\x00") || len(c) > maxPath {
			t.Fatalf("CleanPath(%q) = %q", p, c)
		}
		if again, err := CleanPath(c); err != nil || again != c {
			t.Fatalf("CleanPath not idempotent on %q: %q, %v", c, again, err)
		}
	})
}
