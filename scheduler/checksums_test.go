package scheduler

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/ratelimit"
)

var (
	sumA = strings.Repeat("a1", 32)
	sumB = strings.Repeat("b2", 32)
)

// TestParseListLineChecksum: a list line's third field is the file's sha256 as sha256:HEX, with or
// without a path before it; anything else there is a bad line, never a URL fetched unverified.
func TestParseListLineChecksum(t *testing.T) {
	for _, tc := range []struct {
		line, path, want string
		err              string // a part of the error; "" = no error
	}{
		{line: "https://a.test/x\tsub/x\tsha256:" + sumA, path: "sub/x", want: sumA},
		{line: "https://a.test/x\t\tsha256:" + sumA, want: sumA},
		{line: "https://a.test/x\t\tSHA256:" + strings.ToUpper(sumA) + " \r", want: sumA},
		{line: "https://a.test/x\tsub/x\t", path: "sub/x"},
		{line: "https://a.test/x\tsub/x", path: "sub/x"},
		{line: "https://a.test/x\t\tmd5:" + strings.Repeat("0", 32), err: `algorithm "md5" is not supported`},
		{line: "https://a.test/x\t\tsha256:" + sumA[:63], err: "63 characters, want 64"},
		{line: "https://a.test/x\t\tsha256:" + sumA[:62] + "zz", err: "is not hex"},
		{line: "https://a.test/x\t\t" + sumA, err: "want sha256:HEX"},
		{line: "https://a.test/x\tsub/x\tsha256:" + sumA + "\textra", err: "more than three"},
		{line: "https://a.test/x\t../x\tsha256:" + sumA, err: "bad output path"},
	} {
		t.Run(tc.line, func(t *testing.T) {
			e, ok, err := ParseListLine(tc.line)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseListLine = %+v, %v; want an error with %q", e, err, tc.err)
				}
				return
			}
			if err != nil || !ok || e.Path != tc.path || e.WantSHA256 != tc.want {
				t.Fatalf("ParseListLine = %+v, %v, %v; want path %q, sha256 %q", e, ok, err, tc.path, tc.want)
			}
			nu, err := e.NewURL(fetcher.Mirror, 0)
			if err != nil || nu.WantSHA256 != tc.want || !nu.SetWant {
				t.Fatalf("NewURL = %+v, %v: the list's word on the sum must reach the queue", nu, err)
			}
		})
	}
	// In a list, a bad sum is a bad line with its number, the rest is read.
	var good []int
	var bad []BadLine
	list := "https://a.test/1\t\tsha256:" + sumA + "\nhttps://a.test/2\t\tsha256:nope\nhttps://a.test/3\n"
	if _, err := ReadList(strings.NewReader(list), func(e ListEntry) error { good = append(good, e.Line); return nil },
		func(b BadLine) { bad = append(bad, b) }); err != nil {
		t.Fatal(err)
	}
	if len(good) != 2 || len(bad) != 1 || bad[0].Line != 2 || !strings.Contains(bad[0].Error(), "line 2") {
		t.Fatalf("lines %v read, bad %v; want 1 and 3, and line 2 reported", good, bad)
	}
}

// TestReadChecksums: the forms of sha256sum's output (text and binary mode), of
// sha256sum --tag and BSD tools; comments and blank lines; and every malformed line refused with
// its line number.
func TestReadChecksums(t *testing.T) {
	upper := strings.ToUpper(sumA)
	good := "\ufeff# made by sha256sum\r\n" +
		sumA + "  ./pub/a.iso\r\n" +
		"\n" +
		upper + " *b with spaces (1).bin\n" +
		"SHA256 (c.txt) = " + sumB + "\n" +
		sumA + "  https://User:pw@Example.test:443/x/../g.bin\n" +
		sumA + "  ./pub/a.iso\n" // again, with the same sum
	c, err := ReadChecksums(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"pub/a.iso": sumA, "b with spaces (1).bin": sumA, "c.txt": sumB,
		"https://example.test/g.bin": sumA} {
		if i, ok := c.index[key]; !ok || c.Lookup("", key) != want && c.Lookup(key, "") != want {
			t.Errorf("entry %q: index %d %v, want sum %s", key, i, ok, want)
		}
	}
	if c.Len() != 4 {
		t.Errorf("%d entries, want 4", c.Len())
	}

	for _, tc := range []struct {
		name, file string
		line       int
		err        string
	}{
		{"md5sum output", "# x\n" + strings.Repeat("0", 32) + "  a\n", 2, "md5?"},
		{"sha512sum output", strings.Repeat("0", 128) + "  a\n", 1, "sha512?"},
		{"BSD MD5", "MD5 (a) = " + strings.Repeat("0", 32) + "\n", 1, `"MD5" is not supported`},
		{"short sum", sumA[:60] + "  a\n", 1, "60 characters"},
		{"one space", sumA + " a\n", 1, "not a checksum line"},
		{"no name", sumA + "  \n", 1, "without a file name"},
		{"BSD not hex", "SHA256 (a) = " + strings.Repeat("x", 64) + "\n", 1, "not hex"},
		{"BSD without =", "SHA256 (a) " + sumA + "\n", 1, "not a checksum line"},
		{"words", "hello world\n", 1, "not a checksum line"},
		{"absolute name", sumA + "  ok\n" + sumA + "  /srv/data/a.iso\n", 2, "absolute"},
		{"name climbing out", sumA + "  ../a.iso\n", 1, "escapes"},
		{"bad URL", sumA + "  ftp://a.test/x\n", 1, "URL"},
		{"bad escape", `\` + sumA + `  a\tb` + "\n", 1, "unknown escape"},
		// Names GNU tools escape can never be output paths: said so, not "not a checksum line".
		{"escaped backslash", `\` + sumA + `  a\\b` + "\n", 1, `"a\\b": path contains a backslash`},
		{"escaped newline", `\` + sumA + `  a\nb` + "\n", 1, "control character"},
		{"same name, another sum", sumA + "  a\n" + sumB + "  ./a\n", 2, "first on line 1"},
		{"line too long", sumA + "  " + strings.Repeat("x", maxLineBytes) + "\n", 1, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ReadChecksums(strings.NewReader(tc.file))
			var bad BadLine
			if !errors.As(err, &bad) || bad.Line != tc.line || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("ReadChecksums = %v, %v; want line %d: ...%s...", c, err, tc.line, tc.err)
			}
		})
	}
}

// TestChecksumsLookup: how an entry matches a file, as README states it. A URL entry matches its
// URL, whatever the spelling, and before any name; a name matches the output path that is it or
// ends with "/" and it, never part of a path segment; the longest such name wins. Unused counts the
// entries nothing matched.
func TestChecksumsLookup(t *testing.T) {
	sumC := strings.Repeat("c3", 32)
	sumD := strings.Repeat("d4", 32)
	c, err := ReadChecksums(strings.NewReader(sumA + "  a.iso\n" + sumB + "  pub/a.iso\n" +
		sumC + "  HTTPS://host.test:443/url/a.iso\n" + sumD + "  unused.bin\n" + sumD + "  also/unused.bin\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ url, path, want string }{
		{"https://host.test/x", "a.iso", sumA},
		{"https://host.test/x", "host.test/other/a.iso", sumA},
		{"https://host.test/x", "host.test/pub/a.iso", sumB},
		{"https://host.test/x", "pub/a.iso", sumB},
		{"https://host.test/url/a.iso", "host.test/pub/a.iso", sumC},
		{"https://host.test/x", "host.test/pub/ba.iso", ""},
		{"https://host.test/x", "host.test/a.iso/b", ""},
		{"https://host.test/x", "", ""},
	} {
		if got := c.Lookup(tc.url, tc.path); got != tc.want {
			t.Errorf("Lookup(%s, %s) = %.8s, want %.8s", tc.url, tc.path, got, tc.want)
		}
	}
	if n, names := c.Unused(1); n != 2 || len(names) != 1 || names[0] != "also/unused.bin" {
		t.Errorf("Unused = %d, %q; want 2, [also/unused.bin]", n, names)
	}
	var none *Checksums
	if none.Lookup("https://host.test/x", "a.iso") != "" || none.Len() != 0 {
		t.Error("a nil Checksums matched")
	}
	nu := queue.NewURL{URL: "https://host.test/x", Path: "a.iso", WantSHA256: sumD}
	c.Apply(&nu)
	if nu.WantSHA256 != sumD {
		t.Error("a sums file overrode the list line's own sha256")
	}
}

// FuzzChecksumsLine: a sums file's line never panics the parser; one it accepts gives a lowercase
// 64-digit sum that its own name looks up, and writes back (as sha256sum and as --tag would) to a
// line that reads the same.
func FuzzChecksumsLine(f *testing.F) {
	for _, s := range []string{sumA + "  a.iso", strings.ToUpper(sumA) + " *b c", "SHA256 (x) = y) = " + sumB,
		`\` + sumA + `  a\nb\\c`, sumA + "  https://h.test/x", "# c", "", "MD5 (a) = 00", sumA + "  ./d/../e",
		"SHA256 (a (b)) = " + sumA, sumA + "   lead"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsAny(line, "\n") {
			return // one line
		}
		c := &Checksums{index: map[string]int{}}
		if err := c.addLine(line, 1); err != nil || c.Len() == 0 {
			return
		}
		var key string
		for k := range c.index {
			key = k
		}
		sum := c.Lookup(key, key)
		if len(sum) != 64 || strings.ToLower(sum) != sum {
			t.Fatalf("%q: sum %q", line, sum)
		}
		name, _, err := parseSumLine(strings.TrimRight(line, "\r"))
		if err != nil {
			t.Fatalf("%q accepted, then refused: %v", line, err)
		}
		if strings.ContainsAny(name, "\n\r\\") {
			return // written escaped; the escapes have their own test
		}
		for _, again := range []string{sum + "  " + name, sum + " *" + name, "SHA256 (" + name + ") = " + sum} {
			n2, s2, err := parseSumLine(again)
			if err != nil || n2 != name || s2 != sum {
				t.Fatalf("%q read as %q %s; written as %q, read back as %q %s, %v", line, name, sum, again, n2, s2, err)
			}
		}
	})
}

// TestRunPassesDigests: the worker hands the fetcher the sum a URL must have (from its list line or
// a sums file) and, on a refresh, the sum of the copy on disk; an answer that the fetcher found to
// be that copy counts as unchanged.
func TestRunPassesDigests(t *testing.T) {
	st := openStore(t)
	sums, err := ReadChecksums(strings.NewReader(sumB + "  h.test/b\n"))
	if err != nil {
		t.Fatal(err)
	}
	list := "https://h.test/a\t\tsha256:" + sumA + "\nhttps://h.test/b\nhttps://h.test/c\n"
	var mu sync.Mutex
	reqs := map[string]fetcher.Request{}
	f := &funcFetcher{fn: func(_ context.Context, req fetcher.Request) (fetcher.Response, error) {
		mu.Lock()
		reqs[req.URL] = req
		mu.Unlock()
		sum := map[string]string{"https://h.test/a": sumA, "https://h.test/b": sumB, "https://h.test/c": sumA}[req.URL]
		return fetcher.Response{Status: 200, Bytes: 1, SHA256: sum, Path: req.Path, ETag: `"e"`,
			Unchanged: req.HaveSHA256 == sum}, nil
	}}
	kinds := map[string]Kind{}
	opts := fastOptions()
	opts.OnOutcome = func(o Outcome) { kinds[o.Record.URL] = o.Kind }
	feed := func() Feed {
		return ListFeed(strings.NewReader(list), fetcher.Mirror, nil, sums, func(b BadLine) { t.Error(b) })
	}
	if err := run(t, st, f, nil, opts, feed()); err != nil {
		t.Fatal(err)
	}
	for url, want := range map[string]string{"https://h.test/a": sumA, "https://h.test/b": sumB, "https://h.test/c": ""} {
		if r := reqs[url]; r.WantSHA256 != want || r.HaveSHA256 != "" {
			t.Errorf("%s: fetched wanting %q, having %q; want %q and nothing", url, r.WantSHA256, r.HaveSHA256, want)
		}
	}
	if _, err := st.Revalidate(nil); err != nil {
		t.Fatal(err)
	}
	if err := run(t, st, f, nil, opts, feed()); err != nil {
		t.Fatal(err)
	}
	for url, want := range map[string]string{"https://h.test/a": sumA, "https://h.test/b": sumB, "https://h.test/c": sumA} {
		if r := reqs[url]; r.HaveSHA256 != want || r.ETag != `"e"` {
			t.Errorf("%s: refreshed having %q, ETag %q; want %q", url, r.HaveSHA256, r.ETag, want)
		}
		if kinds[url] != KindUnchanged {
			t.Errorf("%s: %v, want unchanged", url, kinds[url])
		}
	}
}

// TestFeedFirst: on a job with records from earlier runs, nothing is leased or dispatched while
// the feed runs (its list may change what they expect); once it is done, the work goes out. A
// dispatcher of a job without FeedFirst dispatches at once.
func TestFeedFirst(t *testing.T) {
	for _, feedFirst := range []bool{true, false} {
		st := openStore(t)
		enqueueAll(t, st, []string{"https://a.test/1"})
		opts := fastOptions()
		s := New(st, newFakeFetcher(nil), ratelimit.New(ratelimit.Options{PerHost: opts.PerHost}), nil, opts)
		jobs := make(chan queue.Record, s.opts.Workers)
		d := newDispatcher(s, jobs, newCommitter(st, s.opts, &s.stats))
		d.feeding, d.feedFirst = true, feedFirst
		now := time.Now()
		if _, err := d.scan(now); err != nil {
			t.Fatal(err)
		}
		if err := d.dispatch(now); err != nil {
			t.Fatal(err)
		}
		if c, _ := st.Counts(); feedFirst && (len(jobs) != 0 || c.Leased != 0) || !feedFirst && len(jobs) != 1 {
			t.Fatalf("FeedFirst %v, feeding: %d dispatched, %d leased", feedFirst, len(jobs), c.Leased)
		}
		d.feeding = false
		if err := d.dispatch(now); err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 1 {
			t.Fatalf("FeedFirst %v, fed: %d dispatched, want 1", feedFirst, len(jobs))
		}
	}
}
