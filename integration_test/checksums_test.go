package integration_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// Downloads verified against published sums (README "Checksums"), and refreshes that find the
// very bytes they have.

// otherSum is the sha256 of no file any test serves.
var otherSum = func() string { s := sha256.Sum256([]byte("another file")); return hex.EncodeToString(s[:]) }()

// wantChecksumFailure fails unless the report lists url as failed for its sha256, permanently,
// with both digests in its error, and the log has a line for it that names both.
func wantChecksumFailure(t testing.TB, rep runReport, stderr, url, want, got string) {
	t.Helper()
	var found bool
	for _, f := range rep.Failures {
		if f.URL != url {
			continue
		}
		found = true
		if f.Class != "checksum" || f.Transient || !strings.Contains(f.Error, want) || !strings.Contains(f.Error, got) {
			t.Errorf("report failure %+v: want class checksum, not transient, naming expected %s and got %s", f, want, got)
		}
	}
	if !found {
		t.Errorf("report lists no failure of %s: %+v", url, rep.Failures)
	}
	line := lastLine(stderr, url)
	if !strings.Contains(line, want) || !strings.Contains(line, got) {
		t.Errorf("log line for %s does not name both digests: %q", url, line)
	}
}

// TestChecksumInList: a list line's sha256 (third field, with or without a path) decides whether
// its file is kept. A wrong one fails its URL permanently (exit 1): nothing is published at the
// path, no .part is left, and the report and the log name both digests. The others are done. Once
// the list has the right sum, the next run fetches the file afresh and keeps it.
func TestChecksumInList(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	for i, p := range []string{"/a.bin", "/b.bin", "/c.bin"} {
		s.Handle(p, testserver.Size(int64(50_000+i)))
	}
	out := t.TempDir()
	report := filepath.Join(t.TempDir(), "report.json")
	named := filepath.Join(out, "named", "b.bin")
	listWith := func(bSum string) string {
		return writeList(t,
			s.URL("/a.bin")+"\t\tsha256:"+strings.ToUpper(s.SHA256("/a.bin")),
			s.URL("/b.bin")+"\tnamed/b.bin\tsha256:"+bSum,
			s.URL("/c.bin"))
	}
	args := func(list string) []string {
		return []string{"get", "-i", list, "-o", out, "--ca-cert", ca, "--report", report}
	}

	r := runTrawl(t, args(listWith(otherSum))...)
	wantExit(t, r, exitFailed)
	wantFile(t, out, s, "/a.bin")
	wantFile(t, out, s, "/c.bin")
	wantNoFile(t, named)
	if parts := partFiles(t, out); len(parts) > 0 {
		t.Errorf(".part files left: %v", parts)
	}
	rep := readReport(t, report)
	wantChecksumFailure(t, rep, r.stderr, s.URL("/b.bin"), otherSum, s.SHA256("/b.bin"))
	if rep.Counts.Failed != 1 || rep.Counts.New != 2 {
		t.Errorf("counts %+v, want 2 new and 1 failed", rep.Counts)
	}

	before := len(s.RequestsFor("/b.bin"))
	wantExit(t, runTrawl(t, args(listWith(s.SHA256("/b.bin")))...), exitOK)
	if got := fileSHA256(t, named); got != s.SHA256("/b.bin") {
		t.Errorf("%s: sha256 %s after the list's sum was corrected", named, got)
	}
	if reqs := s.RequestsFor("/b.bin")[before:]; len(reqs) != 1 || reqs[0].Header.Get("Range") != "" {
		t.Errorf("corrected run asked for b.bin %d times (Range %q), want once from byte 0", len(reqs), reqs[0].Header.Get("Range"))
	}
}

// TestChecksumSurvivesKill9: the sum a URL must have is kept with the job, so a run killed in the
// middle of the file, then run again with the same list (which the rerun does not even read: it is
// unchanged since it was queued), still verifies the resumed file as a whole and refuses it.
func TestChecksumSurvivesKill9(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	const big = "/data/big.bin"
	s.Handle(big, testserver.Body(testserver.Content(3, 8<<20)), slow)
	out := t.TempDir()
	report := filepath.Join(t.TempDir(), "report.json")
	list := writeList(t, s.URL(big)+"\t\tsha256:"+otherSum)
	args := []string{"get", "-i", list, "-o", out, "--ca-cert", ca, "--report", report, "--http1.1"}
	file := mirrorPath(out, s, big)
	startUntilPart(t, file+".part", 1<<20, args...).kill9()

	s.Handle(big, fast)
	before := len(s.RequestsFor(big))
	r := runTrawl(t, args...)
	wantExit(t, r, exitFailed)
	if !strings.Contains(r.stderr, "list unchanged since it was queued whole") {
		t.Errorf("the rerun read the list again; this test is about the sum kept with the job. stderr:\n%s", tail(r.stderr))
	}
	reqs := s.RequestsFor(big)[before:]
	if len(reqs) == 0 || !strings.HasPrefix(reqs[0].Header.Get("Range"), "bytes=") {
		t.Fatalf("the rerun did not resume the .part: requests %d, Range %q", len(reqs), reqs[0].Header.Get("Range"))
	}
	wantNoFile(t, file)
	if parts := partFiles(t, out); len(parts) > 0 {
		t.Errorf(".part files left: %v", parts)
	}
	wantChecksumFailure(t, readReport(t, report), r.stderr, s.URL(big), otherSum, s.SHA256(big))
}

// TestChecksumsFile: --checksums reads sha256sum's output and its --tag form; an entry matches by
// its file's base name, by a path the output path ends with, or by URL. A file whose sum differs is
// refused like a list line's; an entry that matched nothing is warned about. A sums file with a bad
// line is a usage error naming it, before anything is fetched or any state made; so is checksums
// in a crawl's config.
func TestChecksumsFile(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	files := []string{"/pub/a.iso", "/pub/sub/b.iso", "/pub/c.iso", "/pub/d.iso"}
	var lines []string
	for i, p := range files {
		s.Handle(p, testserver.Size(int64(40_000+i)))
		lines = append(lines, s.URL(p))
	}
	list := writeList(t, lines...)
	sums := filepath.Join(t.TempDir(), "SHA256SUMS")
	write := func(content string) {
		if err := os.WriteFile(sums, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(s.SHA256("/pub/a.iso") + "  a.iso\n" +
		s.SHA256("/pub/sub/b.iso") + " *./sub/b.iso\n" +
		"SHA256 (c.iso) = " + otherSum + "\n" +
		s.SHA256("/pub/d.iso") + "  " + s.URL("/pub/d.iso") + "\n" +
		otherSum + "  e.iso\n")
	out := t.TempDir()
	report := filepath.Join(t.TempDir(), "report.json")
	r := runTrawl(t, "get", "-i", list, "-o", out, "--ca-cert", ca, "--report", report, "--checksums", sums)
	wantExit(t, r, exitFailed)
	for _, p := range []string{"/pub/a.iso", "/pub/sub/b.iso", "/pub/d.iso"} {
		wantFile(t, out, s, p)
	}
	wantNoFile(t, mirrorPath(out, s, "/pub/c.iso"))
	wantChecksumFailure(t, readReport(t, report), r.stderr, s.URL("/pub/c.iso"), otherSum, s.SHA256("/pub/c.iso"))
	if line := lastLine(r.stderr, "matched no URL"); !logHas(line, "unmatched", "1") || !strings.Contains(line, "e.iso") {
		t.Errorf("no warning about the sum that matched nothing: %q", line)
	}

	// A bad line: refused before the state is made or anything fetched.
	write(s.SHA256("/pub/a.iso") + "  a.iso\n" + strings.Repeat("0", 32) + "  b.iso\n")
	fresh := t.TempDir()
	n := len(s.Requests())
	r = runTrawl(t, "get", "-i", list, "-o", fresh, "--ca-cert", ca, "--checksums", sums)
	wantExit(t, r, exitUsage)
	if !strings.Contains(r.stderr, sums+":2:") || !strings.Contains(r.stderr, "md5?") {
		t.Errorf("usage error does not name the sums file's line 2 and what is wrong with it:\n%s", r.stderr)
	}
	if len(s.Requests()) != n {
		t.Error("a run with a bad sums file fetched something")
	}
	wantNoFile(t, filepath.Join(fresh, ".trawl"))

	cfg := filepath.Join(t.TempDir(), "crawl.yaml")
	if err := os.WriteFile(cfg, []byte("checksums: "+sums+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runTrawl(t, "crawl", "--config", cfg, "-o", fresh, "--ca-cert", ca, s.URL("/pub/"))
	wantExit(t, r, exitUsage)
	if !strings.Contains(r.stderr, "checksums") {
		t.Errorf("crawl with checksums: %s", r.stderr)
	}
}

// TestChecksumChangedInList: a nightly list whose sum changes with its data set fetches the file
// again, unconditionally, without --refresh: the copy on disk is no longer the one the list wants.
// A new sum the server's file does not have fails the URL and leaves the copy from before as it
// was.
func TestChecksumChangedInList(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	const p = "/set/data.csv"
	v1, v2 := testserver.Content(1, 30_000), testserver.Content(2, 31_000)
	s.Handle(p, testserver.Body(v1), testserver.ETag(`"v1"`))
	out := t.TempDir()
	report := filepath.Join(t.TempDir(), "report.json")
	run := func(sum []byte, code int) result {
		t.Helper()
		d := sha256.Sum256(sum)
		list := writeList(t, s.URL(p)+"\t\tsha256:"+hex.EncodeToString(d[:]))
		r := runTrawl(t, "get", "-i", list, "-o", out, "--ca-cert", ca, "--report", report)
		wantExit(t, r, code)
		return r
	}
	file := mirrorPath(out, s, p)
	run(v1, exitOK)

	// The list says v2 before the server has it: refused, the v1 copy kept as it was.
	before := statNightlyFile(t, file)
	n := len(s.RequestsFor(p))
	r := run(v2, exitFailed)
	wantUntouched(t, file, before)
	d := sha256.Sum256(v2)
	wantChecksumFailure(t, readReport(t, report), r.stderr, s.URL(p), hex.EncodeToString(d[:]), s.SHA256(p))
	if reqs := s.RequestsFor(p)[n:]; len(reqs) != 1 || reqs[0].Header.Get("If-None-Match") != "" {
		t.Errorf("%d requests, If-None-Match %q: want one, unconditional", len(reqs), reqs[0].Header.Get("If-None-Match"))
	}

	// The server has v2 now: fetched again, kept, counted as changed.
	s.Handle(p, testserver.Body(v2), testserver.ETag(`"v2"`))
	run(v2, exitOK)
	wantFileBody(t, file, v2)
	if c := readReport(t, report).Counts; c.Changed != 1 || c.Failed != 0 {
		t.Errorf("counts %+v, want 1 changed", c)
	}
}

// TestRefreshSameBytesLeavesFile: a refresh against a server that ignores If-None-Match and
// If-Modified-Since, answering 200 with the bytes the files already have, leaves every file as it
// is (same inode, same mtime: a replacement would have a new inode and the answer's Last-Modified
// as its mtime), leaves no .part, and reports them unchanged.
func TestRefreshSameBytesLeavesFile(t *testing.T) {
	t.Parallel()
	s, ca := server(t, testserver.IgnoreConditional())
	paths := []string{"/r/1.bin", "/r/2.bin", "/r/3.bin"}
	var lines []string
	for i, p := range paths {
		s.Handle(p, testserver.Size(int64(20_000+i)), testserver.ETag(`"same"`))
		lines = append(lines, s.URL(p))
	}
	out := t.TempDir()
	report := filepath.Join(t.TempDir(), "report.json")
	args := []string{"get", "-i", writeList(t, lines...), "-o", out, "--ca-cert", ca, "--report", report}
	wantExit(t, runTrawl(t, args...), exitOK)
	before := map[string]nightlyFileState{}
	for i, p := range paths {
		file := mirrorPath(out, s, p)
		mtime := time.Date(2021, 1, 2, 3, 4, 5+i, 0, time.UTC)
		if err := os.Chtimes(file, time.Time{}, mtime); err != nil {
			t.Fatal(err)
		}
		before[p] = statNightlyFile(t, file)
	}

	n := len(s.Requests())
	wantExit(t, runTrawl(t, append(args, "--refresh")...), exitOK)
	for _, p := range paths {
		wantUntouched(t, mirrorPath(out, s, p), before[p])
	}
	for _, req := range s.Requests()[n:] {
		if req.Header.Get("If-None-Match") != `"same"` {
			t.Errorf("%s: If-None-Match %q: the refresh was not a revalidation", req.Path, req.Header.Get("If-None-Match"))
		}
	}
	if parts := partFiles(t, out); len(parts) > 0 {
		t.Errorf(".part files left: %v", parts)
	}
	if c := readReport(t, report).Counts; c.Unchanged != int64(len(paths)) || c.Changed != 0 || c.New != 0 || c.Bytes != 0 {
		t.Errorf("counts %+v, want %d unchanged", c, len(paths))
	}
}
