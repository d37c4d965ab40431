package extract

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// readAll reads a sitemap and returns its entries as "URL" or "URL lastmod" lines.
func readAll(t testing.TB, r io.Reader, lim SitemapLimits) (SitemapKind, []string, error) {
	t.Helper()
	var got []string
	kind, err := ReadSitemap(r, lim, func(e SitemapEntry) error {
		s := e.URL
		if e.Index {
			s = "index " + s
		}
		if !e.Lastmod.IsZero() {
			s += " " + e.Lastmod.Format(time.RFC3339)
		}
		got = append(got, s)
		return nil
	})
	return kind, got, err
}

const urlset = `<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url>
    <loc>https://Example.org/a.html</loc>
    <lastmod>2024-05-01T10:00:00+02:00</lastmod>
    <changefreq>daily</changefreq>
    <image:image><image:loc>https://example.org/img.jpg</image:loc></image:image>
  </url>
  <url><loc> https://example.org/b.html?x=1&amp;y=2 </loc></url>
  <url><lastmod>2024-01-01</lastmod></url>
  <url><loc>/relative.html</loc></url>
  <url><loc><![CDATA[https://example.org/c.html]]></loc></url>
</urlset>`

const index = `<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>https://example.org/s1.xml.gz</loc><lastmod>2024-02-03</lastmod></sitemap>
  <sitemap><loc>https://example.org/s2.xml</loc></sitemap>
  <url><loc>https://example.org/not-an-entry-of-an-index</loc></url>
</sitemapindex>`

func TestReadSitemap(t *testing.T) {
	tests := []struct {
		name string
		doc  []byte
		lim  SitemapLimits
		kind SitemapKind
		want []string
		err  error // errors.Is; errAny: any error
	}{
		{"urlset", []byte(urlset), SitemapLimits{}, SitemapURLSet, []string{
			"https://example.org/a.html 2024-05-01T08:00:01Z",
			"https://example.org/b.html?x=1&y=2",
			"https://example.org/c.html",
		}, nil},
		{"index", []byte(index), SitemapLimits{}, SitemapIndex, []string{
			"index https://example.org/s1.xml.gz 2024-02-04T12:00:00Z",
			"index https://example.org/s2.xml",
		}, nil},
		{"gzip", gz(t, []byte(urlset)), SitemapLimits{}, SitemapURLSet, []string{
			"https://example.org/a.html 2024-05-01T08:00:01Z",
			"https://example.org/b.html?x=1&y=2",
			"https://example.org/c.html",
		}, nil},
		{"gzip twice (a .xml.gz sent with Content-Encoding: gzip)", gz(t, gz(t, []byte(index))), SitemapLimits{}, SitemapIndex, []string{
			"index https://example.org/s1.xml.gz 2024-02-04T12:00:00Z",
			"index https://example.org/s2.xml",
		}, nil},
		{"no namespace", []byte(`<urlset><url><loc>http://h.test/x</loc></url></urlset>`), SitemapLimits{}, SitemapURLSet,
			[]string{"http://h.test/x"}, nil},
		{"other namespace prefix", []byte(`<sm:urlset xmlns:sm="http://www.sitemaps.org/schemas/sitemap/0.9"><sm:url><sm:loc>http://h.test/x</sm:loc></sm:url></sm:urlset>`),
			SitemapLimits{}, SitemapURLSet, []string{"http://h.test/x"}, nil},
		{"BOM and blank lines first", []byte("\ufeff\n\n  " + `<urlset><url><loc>http://h.test/x</loc></url></urlset>`), SitemapLimits{}, SitemapURLSet,
			[]string{"http://h.test/x"}, nil},
		{"raw ampersand tolerated", []byte(`<urlset><url><loc>http://h.test/x?a=1&b=2</loc></url></urlset>`), SitemapLimits{}, SitemapURLSet,
			[]string{"http://h.test/x?a=1&b=2"}, nil},
		{"declared latin-1", []byte(`<?xml version="1.0" encoding="ISO-8859-1"?><urlset><url><loc>http://h.test/x</loc></url></urlset>`), SitemapLimits{}, SitemapURLSet,
			[]string{"http://h.test/x"}, nil},
		{"text", []byte("https://h.test/a\r\n\n  http://h.test/b  \nnot a url\nftp://h.test/c\n"), SitemapLimits{}, SitemapText,
			[]string{"https://h.test/a", "http://h.test/b"}, nil},
		{"gzip text", gz(t, []byte("https://h.test/a\n")), SitemapLimits{}, SitemapText, []string{"https://h.test/a"}, nil},
		{"empty", nil, SitemapLimits{}, SitemapNone, nil, nil},
		{"html page", []byte(`<!DOCTYPE html><html><body><a href="x">x</a></body></html>`), SitemapLimits{}, SitemapNone, nil, ErrNotSitemap},
		{"rss", []byte(`<rss><channel><item><link>http://h.test/x</link></item></channel></rss>`), SitemapLimits{}, SitemapNone, nil, ErrNotSitemap},
		{"entries cap: the ones before are kept", []byte(`<urlset><url><loc>http://h.test/1</loc></url><url><loc>http://h.test/2</loc></url><url><loc>http://h.test/3</loc></url></urlset>`),
			SitemapLimits{MaxEntries: 2}, SitemapURLSet, []string{"http://h.test/1", "http://h.test/2"}, ErrSitemapTooMany},
		{"text entries cap", []byte("http://h.test/1\nhttp://h.test/2\nhttp://h.test/3\n"), SitemapLimits{MaxEntries: 2}, SitemapText,
			[]string{"http://h.test/1", "http://h.test/2"}, ErrSitemapTooMany},
		{"byte cap", []byte(`<urlset><url><loc>http://h.test/1</loc></url>` + strings.Repeat("<!-- padding -->", 100) + `</urlset>`),
			SitemapLimits{MaxBytes: 200}, SitemapURLSet, []string{"http://h.test/1"}, ErrSitemapTooBig},
		{"gzip bomb: refused at the cap, not read to its end", gz(t, append([]byte(`<urlset><url><loc>http://h.test/1</loc></url>`), bytes.Repeat([]byte("<x/>      "), 1<<20)...)),
			SitemapLimits{MaxBytes: 1 << 16}, SitemapURLSet, []string{"http://h.test/1"}, ErrSitemapTooBig},
		{"gzip bomb of zeros: refused within its first line", gz(t, make([]byte, 8<<20)), SitemapLimits{}, SitemapText, nil, errAny},
		{"gzip bomb of blank lines", gz(t, bytes.Repeat([]byte("\n"), 8<<20)), SitemapLimits{MaxBytes: 1 << 16}, SitemapNone, nil, ErrSitemapTooBig},
		{"one long text refused, not gathered", []byte(`<urlset><url><loc>http://h.test/1</loc></url><url><loc>` + strings.Repeat("a", 200<<10) + `</loc></url></urlset>`),
			SitemapLimits{}, SitemapURLSet, []string{"http://h.test/1"}, errSitemapRun},
		{"long loc dropped", []byte(`<urlset><url><loc>http://h.test/` + strings.Repeat("a", maxSitemapText) + `</loc></url><url><loc>http://h.test/2</loc></url></urlset>`),
			SitemapLimits{}, SitemapURLSet, []string{"http://h.test/2"}, nil},
		{"broken gzip", gz(t, []byte(urlset))[:40], SitemapLimits{}, SitemapNone, nil, errAny},
		{"syntax error keeps what came before", []byte(`<urlset><url><loc>http://h.test/1</loc></url><url><loc>http://h.test/2</loc></url`), SitemapLimits{}, SitemapURLSet,
			[]string{"http://h.test/1"}, errAny},
		{"text line too long", []byte("http://h.test/1\n" + strings.Repeat("a", maxTextLine+1) + "\n"), SitemapLimits{}, SitemapText,
			[]string{"http://h.test/1"}, errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, got, err := readAll(t, bytes.NewReader(tt.doc), tt.lim)
			switch {
			case tt.err == nil && err != nil:
				t.Fatalf("error %v", err)
			case tt.err == errAny && err == nil, tt.err != nil && tt.err != errAny && !errors.Is(err, tt.err):
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if kind != tt.kind {
				t.Errorf("kind %v, want %v", kind, tt.kind)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

var errAny = errors.New("any error")

// TestReadSitemapStops: an error from fn ends the reading and is returned.
func TestReadSitemapStops(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	_, err := ReadSitemap(strings.NewReader(urlset), SitemapLimits{}, func(SitemapEntry) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("err %v after %d entries, want stop after 1", err, n)
	}
}

func TestParseLastmod(t *testing.T) {
	tests := []struct{ in, want string }{
		{"2024-05-01T10:00:00+02:00", "2024-05-01T08:00:01Z"},
		{"2024-05-01T10:00:00.5Z", "2024-05-01T10:00:01.5Z"},
		{"2024-05-01T10:00Z", "2024-05-01T10:01:00Z"},
		{"2024-05-01T10:00:00", "2024-05-01T22:00:01Z"}, // no zone: the last one's
		{"2024-05-01 10:00:00", "2024-05-01T22:00:01Z"},
		{"2024-05-01", "2024-05-02T12:00:00Z"},
		{"2024-05", "2024-06-01T12:00:00Z"},
		{"2024", "2025-01-01T12:00:00Z"},
		{"", ""},
		{"yesterday", ""},
		{"2024-13-01", ""},
		{"Wed, 01 May 2024 10:00:00 GMT", ""},
	}
	for _, tt := range tests {
		got := ParseLastmod(tt.in)
		s := ""
		if !got.IsZero() {
			s = got.Format(time.RFC3339Nano)
		}
		if s != tt.want {
			t.Errorf("ParseLastmod(%q) = %q, want %q", tt.in, s, tt.want)
		}
	}
}

func TestRobotsSitemaps(t *testing.T) {
	r := ParseRobots(200, []byte("Sitemap: https://a.test/s1.xml\nUser-agent: other\nDisallow: /\nsitemap: https://b.test/s2.xml.gz\n"), "trawl")
	if got := strings.Join(r.Sitemaps(), " "); got != "https://a.test/s1.xml https://b.test/s2.xml.gz" {
		t.Errorf("Sitemaps = %q", got)
	}
	if got := ParseRobots(404, nil, "trawl").Sitemaps(); len(got) != 0 {
		t.Errorf("404 Sitemaps = %q", got)
	}
}

func FuzzSitemap(f *testing.F) {
	for _, s := range [][]byte{[]byte(urlset), []byte(index), gz(f, []byte(urlset)), []byte("https://h.test/a\nhttp://h.test/b\n"),
		[]byte(`<urlset><url><loc>http://h.test/<![CDATA[x]]>&amp;</loc><lastmod>2024</lastmod></url></urlset>`),
		[]byte(`<sitemapindex><sitemap><loc>http://h.test/s.xml</loc></sitemap><sitemap><loc>`),
		[]byte("<urlset><url><loc>http://[::1]:99/%zz</loc></url>"), gz(f, gz(f, []byte("x"))),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		lim := SitemapLimits{MaxBytes: 1 << 16, MaxEntries: 50}
		n := 0
		kind, err := ReadSitemap(bytes.NewReader(doc), lim, func(e SitemapEntry) error {
			n++
			if u, err := Normalize(e.URL); err != nil || u != e.URL {
				t.Fatalf("entry not normalized: %q → %q, %v", e.URL, u, err)
			}
			if !e.Lastmod.IsZero() && e.Lastmod.Location() != time.UTC {
				t.Fatalf("lastmod not in UTC: %v", e.Lastmod)
			}
			return nil
		})
		if n > lim.MaxEntries {
			t.Fatalf("%d entries passed, limit %d", n, lim.MaxEntries)
		}
		if kind > SitemapText {
			t.Fatalf("kind %d", kind)
		}
		if n > 0 && kind == SitemapNone {
			t.Fatalf("%d entries of no kind (err %v)", n, err)
		}
	})
}
