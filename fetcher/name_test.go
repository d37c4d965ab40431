package fetcher

import (
	"net/http"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestDispositionName(t *testing.T) {
	long := strings.Repeat("n", 300) + ".pdf"
	for _, tc := range []struct{ header, want string }{
		{`attachment; filename="report.pdf"`, "report.pdf"},
		{`attachment; filename=report.pdf`, "report.pdf"},
		{`inline; filename="page.html"`, "page.html"},
		{`ATTACHMENT; FILENAME="Upper.TXT"`, "Upper.TXT"},
		{`attachment; filename="a\"b.txt"`, `a"b.txt`},
		{`attachment; filename="two words.txt"`, "two words.txt"},
		{`attachment; filename="  padded.txt  "`, "padded.txt"},
		{`attachment; filename="report.pdf";`, "report.pdf"},
		// filename* (RFC 2231/5987) wins over filename, whichever comes first.
		{`attachment; filename*=UTF-8''na%C3%AFve%20file.txt`, "naïve file.txt"},
		{`attachment; filename="fallback.txt"; filename*=UTF-8''na%C3%AFve.txt`, "naïve.txt"},
		{`attachment; filename*=utf-8'en'%E2%82%AC%20rates.csv; filename="EUR rates.csv"`, "€ rates.csv"},
		{`attachment; filename*=us-ascii''plain.txt`, "plain.txt"},
		// A filename* that does not decode is ignored: filename is used, or nothing.
		{`attachment; filename="fallback.txt"; filename*=UTF-8''bad%ZZ.txt`, "fallback.txt"},
		{`attachment; filename*=UTF-8''bad%ZZ.txt`, ""},
		{`attachment; filename="fallback.txt"; filename*=ISO-8859-1''caf%E9.txt`, "fallback.txt"},
		{`attachment; filename="fallback.txt"; filename*=UTF-8''caf%E9.txt`, "fallback.txt"},
		{`attachment; filename*=UTF-8''caf%E9.txt`, ""},
		{`attachment; filename*=UTF-8''caf%E9.txt; filename="x;y.txt"`, "x;y.txt"},
		{`attachment; filename*=noquotes`, ""},
		// Traversal and absolute names: only the last element is kept.
		{`attachment; filename="../../etc/x"`, "x"},
		{`attachment; filename="/abs/path"`, "path"},
		{`attachment; filename="..\\..\\win"`, "win"},
		{`attachment; filename="C:\\Users\\me\\evil.exe"`, "evil.exe"},
		{`attachment; filename*=UTF-8''..%2F..%2Fescape`, "escape"},
		{`attachment; filename*=UTF-8''..%5C..%5Cescape`, "escape"},
		{`attachment; filename="sub/dir/"`, ""},
		// Hidden names, dots only, empty.
		{`attachment; filename=".hidden"`, "_hidden"},
		{`inline; filename=".trawl"`, "_trawl"},
		{`attachment; filename=".."`, ""},
		{`attachment; filename="."`, ""},
		{`attachment; filename="...."`, ""},
		{`attachment; filename=". . ."`, ""},
		{`attachment; filename="a/.."`, ""},
		{`attachment; filename=""`, ""},
		{`attachment; filename="   "`, ""},
		{`attachment`, ""},
		{`attachment; name="field"`, ""},
		{``, ""},
		// Control characters, trawl's own suffixes, overlong names.
		{"attachment; filename*=UTF-8''a%00b%0D%0Ac%1B.txt", "a_b__c_.txt"},
		{"attachment; filename*=UTF-8''%E2%80%AEgpj.exe", "\u202egpj.exe"},
		{`attachment; filename="f.part"`, "f.part_"},
		{`attachment; filename="f.part.meta"`, "f.part.meta_"},
		{`attachment; filename="` + long + `"`, strings.Repeat("n", 255-13) + "~" + hash8(long) + ".pdf"},
		// Values mime.ParseMediaType refuses give no name rather than a guess.
		{`attachment; filename=two words.txt`, ""},
		{`attachment; filename="a.txt"; filename="b.txt"`, ""},
		{`; filename="x.txt"`, ""},
		{`attachment; filename="unterminated`, ""},
	} {
		t.Run(tc.header, func(t *testing.T) {
			got := DispositionName(tc.header)
			if got != tc.want {
				t.Errorf("DispositionName(%q) = %q, want %q", tc.header, got, tc.want)
			}
			checkName(t, tc.header, got)
		})
	}
}

// checkName fails unless name is "" or a single safe file name.
func checkName(t *testing.T, in, name string) {
	t.Helper()
	if name == "" {
		return
	}
	bad := name == "." || name == ".." || strings.HasPrefix(name, ".") || strings.ContainsAny(name, "/\\") ||
		!utf8.ValidString(name) || len(name) > maxSegment || strings.TrimSpace(name) != name ||
		strings.HasSuffix(name, partSuffix) || strings.HasSuffix(name, metaSuffix) ||
		strings.IndexFunc(name, unicode.IsControl) >= 0
	if bad {
		t.Fatalf("DispositionName(%q) = %q: not a single safe name", in, name)
	}
	if c, err := CleanPath(name); err != nil || c != name {
		t.Fatalf("DispositionName(%q) = %q, which CleanPath rejects: %v", in, name, err)
	}
}

func FuzzDispositionName(f *testing.F) {
	for _, s := range []string{
		`attachment; filename="report.pdf"`, `attachment; filename*=UTF-8''na%C3%AFve%20file.txt`,
		`attachment; filename="../../etc/x"`, `attachment; filename="..\\..\\win"`, `inline; filename=".trawl"`,
		`attachment; filename="a"; filename*=UTF-8''%FF%FE`, `attachment; filename*0="a"; filename*1="b"`,
		`attachment; filename*0*=UTF-8''%2E%2E; filename*1="/x"`, "attachment; filename=\"a\x00b\"",
		`attachment; filename="` + strings.Repeat("é", 200) + `"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		name := DispositionName(h)
		checkName(t, h, name)
		if again := DispositionName(h); again != name {
			t.Fatalf("DispositionName(%q) not deterministic: %q then %q", h, name, again)
		}
	})
}

func TestIsSlashRedirect(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		want     bool
	}{
		{"https://h/listing", "https://h/listing/", true},
		{"https://h/a/listing", "https://h/a/listing/", true},
		{"https://h/listing?x=1", "https://h/listing/?x=1", true},
		{"https://H:443/listing", "https://h/listing/", true},
		{"https://user:pw@h/listing", "https://user:pw@h/listing/", true},
		{"https://h/list%20ing", "https://h/list%20ing/", true},
		{"https://h/listing", "https://h/listing/#top", true},
		{"https://h/listing/", "https://h/listing//", false},
		{"https://h/listing", "https://h/listing", false},
		{"https://h/listing", "https://h/other/", false},
		{"https://h/listing", "https://h/listing/index.html", false},
		{"https://h/listing", "https://h/listing/?x=1", false},
		{"https://h/listing?x=1", "https://h/listing/", false},
		{"https://h/listing", "http://h/listing/", false},
		{"https://h/listing", "https://h:8443/listing/", false},
		{"https://h/listing", "https://other/listing/", false},
		{"https://h/a%2Fb", "https://h/a/b/", false},
		{"https://h/listing", "https://h/LISTING/", false},
		{"https://h/listing", "::", false},
		{"%zz", "https://h/listing/", false},
	} {
		if got := IsSlashRedirect(tc.from, tc.to); got != tc.want {
			t.Errorf("IsSlashRedirect(%q, %q) = %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
}

func TestNamingPropose(t *testing.T) {
	cd := func(v string) http.Header { return http.Header{"Content-Disposition": {v}} }
	deep := strings.Repeat(strings.Repeat("d", 250)+"/", 16) // a directory path near MapPath's limit
	for _, tc := range []struct {
		name      string
		n         Naming
		rel, from string
		to        string // the URL that answered; "" = from
		h         http.Header
		want      string
	}{
		{"flat: the leaf is the server's name", Naming{ContentDisposition: true}, "dl.php~1a2b3c4d", "https://h/dl.php?id=1", "",
			cd(`attachment; filename="report.pdf"`), "report.pdf"},
		{"mirror: the leaf of the mapped path", Naming{ContentDisposition: true}, "h/files/dl.php", "https://h/files/dl.php", "",
			cd(`attachment; filename*=UTF-8''na%C3%AFve%20file.txt`), "h/files/naïve file.txt"},
		{"mirror: traversal stays in the directory", Naming{ContentDisposition: true}, "h/files/dl", "https://h/files/dl", "",
			cd(`attachment; filename="../../../etc/passwd"`), "h/files/passwd"},
		{"no usable name", Naming{ContentDisposition: true}, "h/files/dl", "https://h/files/dl", "",
			cd(`attachment; filename=".."`), "h/files/dl"},
		{"no header", Naming{ContentDisposition: true}, "h/files/dl", "https://h/files/dl", "", http.Header{}, "h/files/dl"},
		{"Content-Disposition not asked for", Naming{SlashRedirect: true}, "h/files/dl", "https://h/files/dl", "",
			cd(`attachment; filename="report.pdf"`), "h/files/dl"},
		{"slash redirect: the directory's index", Naming{SlashRedirect: true}, "h/listing", "https://h/listing", "https://h/listing/",
			http.Header{}, "h/listing/index.html"},
		{"slash redirect with a query", Naming{SlashRedirect: true}, "h/listing~" + hash8("s=1"), "https://h/listing?s=1", "https://h/listing/?s=1",
			http.Header{}, "h/listing/index~" + hash8("s=1") + ".html"},
		{"slash redirect and a name", Naming{SlashRedirect: true, ContentDisposition: true}, "h/listing", "https://h/listing", "https://h/listing/",
			cd(`inline; filename="dir.html"`), "h/listing/dir.html"},
		{"slash redirect not asked for", Naming{ContentDisposition: true}, "h/listing", "https://h/listing", "https://h/listing/",
			http.Header{}, "h/listing"},
		{"another redirect keeps the path", Naming{SlashRedirect: true}, "h/listing", "https://h/listing", "https://h/elsewhere/",
			http.Header{}, "h/listing"},
		{"a redirect to another host keeps the path", Naming{SlashRedirect: true}, "h/listing", "https://h/listing", "https://evil/listing/",
			http.Header{}, "h/listing"},
		{"a name at the length limit", Naming{ContentDisposition: true}, "h/" + deep + "x", "https://h/x", "",
			cd(`attachment; filename="` + strings.Repeat("n", 255) + `"`), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			to := tc.to
			if to == "" {
				to = tc.from
			}
			got := tc.n.Propose(tc.rel, tc.from, to, tc.h)
			if c, err := CleanPath(got); err != nil || c != got || len(got) > maxPath {
				t.Fatalf("Propose = %q, which CleanPath rejects: %v", got, err)
			}
			if tc.want != "" && got != tc.want {
				t.Errorf("Propose = %q, want %q", got, tc.want)
			}
			if tc.want == "" && !strings.HasPrefix(got, "h/") {
				t.Errorf("Propose = %q: left the host's directory", got)
			}
		})
	}
}

// FuzzNamingPropose: whatever the URL, the redirect and the header, the proposal is a clean path
// MapPath could have made, in the directory of the request's mapped path (or, for a slash redirect,
// the directory that path names).
func FuzzNamingPropose(f *testing.F) {
	f.Add("https://h/dl.php?id=1", "https://h/dl.php?id=1", `attachment; filename="../../x"`)
	f.Add("https://h/listing", "https://h/listing/", `inline; filename*=UTF-8''%2E%2E%2Fx`)
	f.Add("https://h/a/b", "https://h/a/b/", "")
	f.Fuzz(func(t *testing.T, from, to, header string) {
		h := http.Header{"Content-Disposition": {header}}
		n := Naming{ContentDisposition: true, SlashRedirect: true}
		for _, l := range []Layout{Mirror, Flat} {
			rel, err := MapPath(from, l)
			if err != nil {
				return
			}
			got := n.Propose(rel, from, to, h)
			checkMapped(t, from, got)
			if l == Flat && strings.Contains(got, "/") && !IsSlashRedirect(from, to) {
				t.Fatalf("flat %q proposed %q, a directory", rel, got)
			}
			if l == Mirror {
				host, _, _ := strings.Cut(rel, "/")
				if h2, _, _ := strings.Cut(got, "/"); h2 != host {
					t.Fatalf("%q proposed %q, outside its host's directory %q", rel, got, host)
				}
			}
		}
	})
}
