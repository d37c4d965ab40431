package scheduler

import (
	"errors"
	"strings"
	"testing"
)

func TestParseListLine(t *testing.T) {
	tests := []struct {
		line    string
		ok      bool
		wantErr bool
		url     string
		host    string
		path    string
	}{
		{"", false, false, "", "", ""},
		{"   ", false, false, "", "", ""},
		{"# comment", false, false, "", "", ""},
		{"  # indented comment", false, false, "", "", ""},
		{"https://Example.ORG/a.jpg", true, false, "https://example.org/a.jpg", "example.org", ""},
		{"https://example.org:443/a.jpg\r", true, false, "https://example.org/a.jpg", "example.org", ""},
		{"http://example.org:80/", true, false, "http://example.org/", "example.org", ""},
		{"https://example.org:8443/x#frag", true, false, "https://example.org:8443/x", "example.org:8443", ""},
		{"HTTPS://example.org", true, false, "https://example.org/", "example.org", ""},
		{"https://example.org/a.jpg\tsub/b.jpg", true, false, "https://example.org/a.jpg", "example.org", "sub/b.jpg"},
		{"https://[::1]:8443/x", true, false, "https://[::1]:8443/x", "[::1]:8443", ""},
		{"ftp://example.org/a", false, true, "", "", ""},
		{"file:///etc/passwd", false, true, "", "", ""},
		{"javascript:alert(1)", false, true, "", "", ""},
		{"data:text/plain,hi", false, true, "", "", ""},
		{"example.org/a.jpg", false, true, "", "", ""},
		{"https://", false, true, "", "", ""},
		{"https://exa mple.org/", false, true, "", "", ""},
		{"https://example.org/a\tb/../../../etc/passwd", false, true, "", "", ""},
		{"https://example.org/a\t/etc/passwd", false, true, "", "", ""},
		{"https://example.org/\xff", false, true, "", "", ""},
		// A sum in the path's field: refused, not a file named "sha256:...".
		{"https://example.org/a.iso\tsha256:" + strings.Repeat("ab", 32), false, true, "", "", ""},
		{"https://example.org/a.iso\tSHA256:" + strings.Repeat("ab", 32) + "\r", false, true, "", "", ""},
		{"https://example.org/a.iso\tsha256-notes.txt", true, false, "https://example.org/a.iso", "example.org", "sha256-notes.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			e, ok, err := ParseListLine(tt.line)
			if (err != nil) != tt.wantErr || ok != tt.ok {
				t.Fatalf("ParseListLine(%q) = %+v, %v, %v", tt.line, e, ok, err)
			}
			if e.URL != tt.url || e.Host != tt.host || e.Path != tt.path {
				t.Fatalf("ParseListLine(%q) = %+v, want %q %q %q", tt.line, e, tt.url, tt.host, tt.path)
			}
		})
	}
}

func TestUserinfoKeptOutOfTheQueue(t *testing.T) {
	e, ok, err := ParseListLine("https://alice:s3cret@Example.org/private/a.jpg")
	if err != nil || !ok {
		t.Fatal(err)
	}
	if strings.Contains(e.URL, "alice") || strings.Contains(e.URL, "s3cret") || e.User == nil {
		t.Fatalf("entry %+v: userinfo must leave the URL and stay in User", e)
	}
	nu, err := e.NewURL("mirror", 0)
	if err != nil || strings.Contains(nu.Path, "alice") || strings.Contains(nu.Path, "s3cret") {
		t.Fatalf("NewURL = %+v, %v", nu, err)
	}
	creds := NewCredentials()
	creds.Add(e)
	other, _, _ := ParseListLine("https://bob:pw@example.org/b.jpg")
	creds.Add(other)
	tests := []struct{ url, host, want string }{
		{e.URL, e.Host, "https://alice:s3cret@example.org/private/a.jpg"},
		{"https://example.org/c.jpg", "example.org", "https://alice:s3cret@example.org/c.jpg"},
		{other.URL, other.Host, "https://bob:pw@example.org/b.jpg"},
		{"https://elsewhere.org/x", "elsewhere.org", "https://elsewhere.org/x"},
	}
	for _, tt := range tests {
		if got := creds.apply(tt.url, tt.host); got != tt.want {
			t.Errorf("apply(%s) = %s, want %s", tt.url, got, tt.want)
		}
	}
	var none *Credentials
	if got := none.apply(e.URL, e.Host); got != e.URL {
		t.Errorf("nil Credentials changed the URL: %s", got)
	}
}

func TestReadList(t *testing.T) {
	input := "\ufeffhttps://a.test/1\r\n\r\n# c\nnot a url\nhttps://a.test/2\n" +
		strings.Repeat("x", maxLineBytes+10) + "\nftp://a.test/3\nhttps://a.test/4"
	var got []ListEntry
	var bad []BadLine
	n, err := ReadList(strings.NewReader(input), func(e ListEntry) error { got = append(got, e); return nil },
		func(b BadLine) { bad = append(bad, b) })
	if err != nil || n != 3 {
		t.Fatalf("ReadList = %d, %v", n, err)
	}
	wantLines := []int{1, 5, 8}
	for i, e := range got {
		if e.Line != wantLines[i] {
			t.Errorf("entry %d (%s) on line %d, want %d", i, e.URL, e.Line, wantLines[i])
		}
	}
	var badLines []int
	for _, b := range bad {
		badLines = append(badLines, b.Line)
	}
	if len(badLines) != 3 || badLines[0] != 4 || badLines[1] != 6 || badLines[2] != 7 {
		t.Fatalf("bad lines %v, want [4 6 7]", badLines)
	}
	if !strings.Contains(bad[0].Error(), "line 4") {
		t.Errorf("bad line message %q does not name its line", bad[0].Error())
	}
}

func TestReadListStopsOnEmitError(t *testing.T) {
	stop := errors.New("stop")
	_, err := ReadList(strings.NewReader("https://a.test/1\nhttps://a.test/2\n"),
		func(ListEntry) error { return stop }, func(BadLine) {})
	if !errors.Is(err, stop) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParseListLine(f *testing.F) {
	for _, s := range []string{"https://example.org/a.jpg", "https://example.org/a\tb/c.jpg", "# x", "",
		"http://[::1]:80/", "https://a/%2e%2e/%2f", "https://a/b\t../../x", "\ufeffhttps://a/", "https://a:99999/",
		"https://a/b\t\tsha256:" + strings.Repeat("Ab", 32), "https://a/b\tc\tsha256:00\t", "https://a/b\t\tmd5:00", "https://a/b\tsha256:" + strings.Repeat("0", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		e, ok, err := ParseListLine(line)
		if err != nil || !ok {
			return
		}
		if !strings.HasPrefix(e.URL, "http://") && !strings.HasPrefix(e.URL, "https://") {
			t.Fatalf("accepted non-http URL %q", e.URL)
		}
		if e.Host == "" {
			t.Fatalf("accepted URL %q without host", e.URL)
		}
		if strings.HasPrefix(strings.ToLower(e.Path), "sha256:") {
			t.Fatalf("accepted a checksum as the output path %q", e.Path)
		}
		if e.WantSHA256 != "" && (len(e.WantSHA256) != 64 || strings.Trim(e.WantSHA256, "0123456789abcdef") != "") {
			t.Fatalf("accepted sha256 %q: not 64 lowercase hex digits", e.WantSHA256)
		}
		again, ok2, err2 := ParseListLine(e.URL)
		if err2 != nil || !ok2 || again.URL != e.URL {
			t.Fatalf("normalization not idempotent: %q -> %q (%v)", e.URL, again.URL, err2)
		}
	})
}
