package fetcher

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseCookies(t *testing.T) {
	file := strings.Join([]string{
		"\uFEFF# Netscape HTTP Cookie File",
		"# https://curl.se/docs/http-cookies.html",
		"",
		".example.com\tTRUE\t/\tFALSE\t1999999999\tsid\tabc123",
		"#HttpOnly_www.example.org\tFALSE\t/app\tTRUE\t0\ttoken\t\"quoted value\"\r",
		"   ",
		"127.0.0.1\tFALSE\t/\tFALSE\t1700000000.5\tn\t",
		"[::1]\tfalse\t/x/y\ttrue\t0\tempty", // six fields: curl's way of writing an empty value
		"#comment\twith\ttabs\tis\tstill\ta\tcomment",
	}, "\n")
	got, err := ParseCookies(strings.NewReader(file), "cookies.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := []Cookie{
		{Domain: "example.com", Subdomains: true, Path: "/", Expires: time.Unix(1999999999, 0).UTC(), Name: "sid", Value: "abc123"},
		{Domain: "www.example.org", Path: "/app", Secure: true, HTTPOnly: true, Name: "token", Value: `"quoted value"`},
		{Domain: "127.0.0.1", Path: "/", Expires: time.Unix(1700000000, 0).UTC(), Name: "n"},
		{Domain: "::1", Path: "/x/y", Secure: true, Name: "empty"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseCookiesErrors(t *testing.T) {
	good := "example.com\tFALSE\t/\tFALSE\t0\tn\tv"
	for _, tc := range []struct {
		line, want string
	}{
		{"example.com FALSE / FALSE 0 n v", "want 7 tab-separated fields"},
		{"example.com\tFALSE\t/\tFALSE\t0\tn\tv\textra", "got 8"},
		{"exa mple.com\tFALSE\t/\tFALSE\t0\tn\tv", `domain "exa mple.com"`},
		{"\tFALSE\t/\tFALSE\t0\tn\tv", `domain ""`},
		{"bücher.de\tFALSE\t/\tFALSE\t0\tn\tv", "xn--"},
		{"example.com\tyes\t/\tFALSE\t0\tn\tv", `include-subdomains "yes": want TRUE or FALSE`},
		{"example.com\tFALSE\trelative\tFALSE\t0\tn\tv", `path "relative"`},
		{"example.com\tFALSE\t/\t1\t0\tn\tv", `secure "1"`},
		{"example.com\tFALSE\t/\tFALSE\tsoon\tn\tv", `expiry "soon"`},
		{"example.com\tFALSE\t/\tFALSE\t+5\tn\tv", `expiry "+5"`},
		{"example.com\tFALSE\t/\tFALSE\t0\tna me\tv", `cookie name "na me"`},
		{"example.com\tFALSE\t/\tFALSE\t0\t\tv", `cookie name ""`},
		{"example.com\tFALSE\t/\tFALSE\t0\tn\ta;b", "the value of cookie n"},
		{"example.com\tFALSE\t/\tFALSE\t0\tn\tcaf\u00e9", "the value of cookie n"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := ParseCookies(strings.NewReader("# header\n"+good+"\n"+tc.line+"\n"), "jar.txt")
			if err == nil {
				t.Fatalf("no error for %q", tc.line)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "cookie file jar.txt line 3: ") || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q, want line 3 and %q on one line", msg, tc.want)
			}
		})
	}
	t.Run("long line", func(t *testing.T) {
		_, err := ParseCookies(strings.NewReader(strings.Repeat("x", maxCookieLine+1)), "jar.txt")
		if err == nil || !strings.Contains(err.Error(), "longer than") {
			t.Fatalf("error %v", err)
		}
	})
}

// TestWriteCookies: what WriteCookies writes, ParseCookies reads back as it was, in the layout
// curl writes (a domain cookie's leading dot, #HttpOnly_, 0 for a session cookie).
func TestWriteCookies(t *testing.T) {
	cs := []Cookie{
		{Domain: "www.example.org", Path: "/app", Secure: true, HTTPOnly: true, Name: "token", Value: `"q v"`},
		{Domain: "example.com", Subdomains: true, Path: "/", Expires: time.Unix(1999999999, 0).UTC(), Name: "sid", Value: "abc"},
	}
	var buf bytes.Buffer
	if err := WriteCookies(&buf, cs); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, line := range []string{
		".example.com\tTRUE\t/\tFALSE\t1999999999\tsid\tabc\n",
		"#HttpOnly_www.example.org\tFALSE\t/app\tTRUE\t0\ttoken\t\"q v\"\n",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("written:\n%s\nwant the line %q", out, line)
		}
	}
	back, err := ParseCookies(&buf, "back")
	if err != nil {
		t.Fatal(err)
	}
	if want := []Cookie{cs[1], cs[0]}; !reflect.DeepEqual(back, want) {
		t.Fatalf("read back\n%+v\nwant (sorted)\n%+v", back, want)
	}
}

// TestSaveCookieFile: the file is replaced whole, private, with no temporary file left behind;
// a save that cannot happen leaves the old file as it was.
func TestSaveCookieFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cookies.txt")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	cs := []Cookie{{Domain: "example.com", Path: "/", Name: "a", Value: "1"}}
	if err := SaveCookieFile(path, cs); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	got, err := LoadCookieFile(path)
	if err != nil || !reflect.DeepEqual(got, cs) {
		t.Fatalf("read back %+v, %v", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want the cookie file alone", len(entries))
	}
	if err := SaveCookieFile(filepath.Join(dir, "missing", "cookies.txt"), cs); err == nil {
		t.Error("saving into a missing directory succeeded")
	}
	if err := SaveCookieFile(dir, cs); err == nil { // a directory is in the way
		t.Error("saving over a directory succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("a failed save left %d entries", len(entries))
	}
}

func FuzzParseCookies(f *testing.F) {
	for _, s := range []string{
		"# Netscape HTTP Cookie File\n.example.com\tTRUE\t/\tFALSE\t1999999999\tsid\tabc\n",
		"#HttpOnly_h\tFALSE\t/\tTRUE\t0\tn\t\"v\"\r\n",
		"[::1]\tFALSE\t/\tFALSE\t0\tn\n",
		"h\tFALSE\t/\tFALSE\t1.5\tn\tv w,x\n\n#c\n",
		"h\tFALSE\t/\tFALSE\t-1\tn\tv\n",
		"h\tFALSE\t/\tFALSE\t99999999999999999999\tn\tv\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := ParseCookies(strings.NewReader(s), "fuzz")
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("a multi-line error: %q", err)
			}
			return
		}
		// Whatever is read is written and read back the same.
		var buf bytes.Buffer
		if err := WriteCookies(&buf, cs); err != nil {
			t.Fatal(err)
		}
		back, err := ParseCookies(&buf, "written")
		if err != nil {
			t.Fatalf("reading what was written: %v\n%s", err, buf.String())
		}
		if len(back) != len(cs) {
			t.Fatalf("%d cookies read back, wrote %d", len(back), len(cs))
		}
		// And the jar takes each without a panic.
		newCookieJar(true).load(cs)
	})
}
