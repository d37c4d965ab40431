package extract

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// The limits of one sitemap file, from sitemaps.org: at most 50,000 URLs and 50 MB (52,428,800
// bytes) once uncompressed. A sitemap index has the same limits.
const (
	MaxSitemapBytes   = 50 << 20
	MaxSitemapEntries = 50_000
)

// maxSitemapRun is the most bytes a sitemap may hold between two '<': a <loc> is at most 2,048
// characters by the protocol, and whitespace between elements is short. encoding/xml gathers a
// whole text, comment or tag before it returns it, so without this bound one text of 50 MB, or a
// gzip bomb of spaces, would be held in memory whole.
const maxSitemapRun = 64 << 10

// maxSitemapText is the most bytes of one <loc> or <lastmod> kept; longer ones are dropped.
const maxSitemapText = 3 * MaxURLLength

// maxGzipLayers is how many gzip layers are taken off: a .xml.gz file sent with Content-Encoding:
// gzip has two.
const maxGzipLayers = 2

// SitemapKind is what a sitemap file lists.
type SitemapKind uint8

const (
	// SitemapNone: not a sitemap (another XML root, or nothing read).
	SitemapNone SitemapKind = iota
	// SitemapURLSet is a <urlset>: the pages of a site.
	SitemapURLSet
	// SitemapIndex is a <sitemapindex>: other sitemap files.
	SitemapIndex
	// SitemapText is a text sitemap: one page URL per line.
	SitemapText
)

// String names the kind as logs and reports do.
func (k SitemapKind) String() string {
	switch k {
	case SitemapURLSet:
		return "urlset"
	case SitemapIndex:
		return "index"
	case SitemapText:
		return "text"
	}
	return "none"
}

// SitemapEntry is one <url> of a urlset, one <sitemap> of an index, or one line of a text sitemap.
type SitemapEntry struct {
	// URL is the entry's <loc>, normalized (Normalize).
	URL string
	// Lastmod is the latest instant the entry's <lastmod> can mean: a date alone is the end of
	// that day in the last time zone to see it, a time without seconds the end of its minute.
	// Zero when there is none, or it is not a W3C datetime.
	Lastmod time.Time
	// Index says the entry is a sitemap file an index lists, not a page.
	Index bool
}

// SitemapLimits bound the reading of one sitemap file. Zero fields take the sitemaps.org limits.
type SitemapLimits struct {
	// MaxBytes caps the document once decompressed, and the bytes read from the input.
	MaxBytes int64
	// MaxEntries caps the entries: <url> or <sitemap> elements with a <loc>, or lines.
	MaxEntries int
}

var (
	// ErrSitemapTooBig is returned by ReadSitemap when the document is larger than its byte limit
	// once decompressed: a gzip bomb is refused with it after MaxBytes, whatever its real size.
	ErrSitemapTooBig = errors.New("larger than the sitemap limit once decompressed")
	// ErrSitemapTooMany is returned by ReadSitemap when a sitemap lists more entries than its limit.
	ErrSitemapTooMany = errors.New("more entries than the sitemap limit")
	// ErrNotSitemap is returned by ReadSitemap for XML whose root is neither urlset nor
	// sitemapindex.
	ErrNotSitemap = errors.New("not a sitemap: the XML root is neither urlset nor sitemapindex")
)

// ReadSitemap reads one sitemap file from r — an XML urlset or sitemapindex (any namespace, or
// none), or a text file of one URL per line, each possibly gzip-compressed — and calls fn with
// each entry in document order. Entries whose <loc> is not an absolute http(s) URL are left out.
// Reading stops at the first error fn returns, which ReadSitemap returns.
//
// It streams: memory stays small whatever r holds. It stops with ErrSitemapTooBig past
// lim.MaxBytes of decompressed data, ErrSitemapTooMany at the entry past lim.MaxEntries, or a
// syntax error; the entries before are passed to fn all the same, and the kind found is returned.
func ReadSitemap(r io.Reader, lim SitemapLimits, fn func(SitemapEntry) error) (SitemapKind, error) {
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = MaxSitemapBytes
	}
	if lim.MaxEntries <= 0 {
		lim.MaxEntries = MaxSitemapEntries
	}
	br := bufio.NewReader(&capReader{r: r, left: lim.MaxBytes})
	var body io.Reader = br
	for range maxGzipLayers {
		if magic, _ := br.Peek(2); !bytes.Equal(magic, []byte{0x1f, 0x8b}) {
			break
		}
		zr, err := gzip.NewReader(br)
		if err != nil {
			return SitemapNone, fmt.Errorf("gzip: %w", err)
		}
		br = bufio.NewReader(&capReader{r: zr, left: lim.MaxBytes})
		body = br
	}
	// A byte-order mark and white space may come before the document.
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			return SitemapNone, nil // empty: nothing listed
		}
		if err != nil {
			return SitemapNone, err
		}
		if !isSpace(c) {
			br.UnreadByte()
			if c == '<' {
				return readXMLSitemap(body, lim, fn)
			}
			return SitemapText, readTextSitemap(br, lim, fn)
		}
	}
}

// capReader passes at most left bytes of r; one more is ErrSitemapTooBig.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, ErrSitemapTooBig
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n - 1, ErrSitemapTooBig
	}
	return n, err
}

// runGuard fails a read once more than maxSitemapRun bytes have passed without a '<' (see
// maxSitemapRun).
type runGuard struct {
	r   io.Reader
	run int
}

var errSitemapRun = fmt.Errorf("a text, comment or tag longer than %d KiB", maxSitemapRun>>10)

func (g *runGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	for rest := p[:n]; ; {
		i := bytes.IndexByte(rest, '<')
		if i < 0 {
			g.run += len(rest)
			break
		}
		if g.run+i > maxSitemapRun {
			return n, errSitemapRun
		}
		g.run, rest = 0, rest[i+1:]
	}
	if g.run > maxSitemapRun {
		return n, errSitemapRun
	}
	return n, err
}

// sitemapElem is an element of a sitemap that matters: its local name and namespace.
type sitemapElem struct{ local, space string }

// xmlSitemap is the state of readXMLSitemap's pass over a sitemap's elements.
type xmlSitemap struct {
	lim     SitemapLimits
	fn      func(SitemapEntry) error
	kind    SitemapKind
	depth   int
	entry   sitemapElem // the <url> or <sitemap> being read (depth 2)
	field   string      // "loc" or "lastmod" while inside one (depth 3), else ""
	text    []byte
	loc     string
	lastmod string
	entries int
}

func readXMLSitemap(r io.Reader, lim SitemapLimits, fn func(SitemapEntry) error) (SitemapKind, error) {
	d := xml.NewDecoder(&runGuard{r: r})
	// Not strict: a raw '&' in a URL, a common slip, is read as it is rather than ending the file.
	d.Strict = false
	// Sitemaps must be UTF-8; one that declares another encoding is read as it is rather than
	// refused (its URLs are ASCII, or percent-encoded, in practice).
	d.CharsetReader = func(_ string, in io.Reader) (io.Reader, error) { return in, nil }
	x := &xmlSitemap{lim: lim, fn: fn}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			if x.kind == SitemapNone {
				return x.kind, ErrNotSitemap
			}
			return x.kind, nil
		}
		if err != nil {
			return x.kind, unwrapXML(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := x.start(t); err != nil {
				return SitemapNone, err
			}
		case xml.CharData:
			if x.field != "" && len(x.text)+len(t) <= maxSitemapText {
				x.text = append(x.text, t...)
			} else if x.field != "" {
				x.field = "-" // too long: dropped
			}
		case xml.EndElement:
			if err := x.end(); err != nil {
				return x.kind, err
			}
		}
	}
}

// start enters an element: the root names the sitemap's kind, an entry (depth 2) starts a page
// or sitemap, and its loc or lastmod (depth 3) starts collecting text.
func (x *xmlSitemap) start(t xml.StartElement) error {
	x.depth++
	switch x.depth {
	case 1:
		if x.kind != SitemapNone {
			break // a second root: its entries are not this sitemap's kind
		}
		switch t.Name.Local {
		case "urlset":
			x.kind = SitemapURLSet
		case "sitemapindex":
			x.kind = SitemapIndex
		default:
			return ErrNotSitemap
		}
	case 2:
		x.entry = sitemapElem{}
		if x.kind == SitemapURLSet && t.Name.Local == "url" || x.kind == SitemapIndex && t.Name.Local == "sitemap" {
			x.entry = sitemapElem{t.Name.Local, t.Name.Space}
		}
		x.loc, x.lastmod = "", ""
	case 3:
		// A child in the entry's own namespace: an extension's <image:loc> is another
		// namespace's, and is not the page.
		if x.entry.local != "" && t.Name.Space == x.entry.space && (t.Name.Local == "loc" || t.Name.Local == "lastmod") {
			x.field, x.text = t.Name.Local, x.text[:0]
		}
	}
	return nil
}

// end leaves an element: a loc or lastmod keeps its text, and an entry with a loc is emitted.
func (x *xmlSitemap) end() error {
	defer func() { x.depth-- }()
	switch x.depth {
	case 3:
		switch x.field {
		case "loc":
			x.loc = string(bytes.TrimSpace(x.text))
		case "lastmod":
			x.lastmod = string(bytes.TrimSpace(x.text))
		}
		x.field = ""
	case 2:
		if x.entry.local != "" && x.loc != "" {
			if x.entries++; x.entries > x.lim.MaxEntries {
				return ErrSitemapTooMany
			}
			if err := emit(x.loc, x.lastmod, x.kind == SitemapIndex, x.fn); err != nil {
				return err
			}
		}
		x.entry = sitemapElem{}
	}
	return nil
}

// unwrapXML returns the error a reader gave the XML decoder as it is (a cap, a network error), or
// the decoder's own.
func unwrapXML(err error) error {
	switch {
	case errors.Is(err, ErrSitemapTooBig), errors.Is(err, errSitemapRun):
		return err
	}
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("XML line %d: %s", se.Line, se.Msg)
	}
	return err
}

// emit passes an entry to fn if its URL is an absolute http(s) URL.
func emit(loc, lastmod string, index bool, fn func(SitemapEntry) error) error {
	u, err := Normalize(loc)
	if err != nil {
		return nil
	}
	return fn(SitemapEntry{URL: u, Lastmod: ParseLastmod(lastmod), Index: index})
}

// maxTextLine is the longest line of a text sitemap; the protocol's URLs are under 2,048.
const maxTextLine = 16 << 10

func readTextSitemap(r io.Reader, lim SitemapLimits, fn func(SitemapEntry) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxTextLine)
	entries := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if entries++; entries > lim.MaxEntries {
			return ErrSitemapTooMany
		}
		if err := emit(line, "", false, fn); err != nil {
			return err
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return fmt.Errorf("a line longer than %d KiB", maxTextLine>>10)
	}
	return sc.Err()
}

// lastmodLayouts are the W3C datetime forms sitemaps.org allows (and two common slips: a time
// without a zone, a space for the T), each with the end of the period its precision names.
var lastmodLayouts = []struct {
	layout string
	span   func(time.Time) time.Time
	zoned  bool
}{
	// Parsing takes a fractional second after the seconds whatever the layout says: its end is
	// then at most a second later.
	{"2006-01-02T15:04:05Z07:00", addSpan(time.Second), true},
	{"2006-01-02T15:04Z07:00", addSpan(time.Minute), true},
	{"2006-01-02T15:04:05", addSpan(time.Second), false},
	{"2006-01-02 15:04:05", addSpan(time.Second), false},
	{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }, false},
	{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }, false},
	{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }, false},
}

func addSpan(d time.Duration) func(time.Time) time.Time {
	return func(t time.Time) time.Time { return t.Add(d) }
}

// latestZone is how far behind UTC the last time zone is: a date or time without a zone may be
// that late.
const latestZone = 12 * time.Hour

// ParseLastmod reads a sitemap's <lastmod> as the latest instant it can mean, in UTC: the end of
// the period its precision names (a day, a minute...), in the last time zone when it names none.
// A caller that takes "changed at or before Lastmod" then never misses a change. It returns the
// zero time for anything else.
func ParseLastmod(s string) time.Time {
	if len(s) > 64 {
		return time.Time{}
	}
	for _, l := range lastmodLayouts {
		t, err := time.Parse(l.layout, s)
		if err != nil {
			continue
		}
		t = l.span(t)
		if !l.zoned {
			t = t.Add(latestZone)
		}
		return t.UTC()
	}
	return time.Time{}
}
