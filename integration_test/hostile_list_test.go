package integration_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
	"github.com/trawl-dev/trawl/queue"
)

// servedSHA is the sha256 of what s serves for the URL u (the server keys content by the
// decoded path).
func servedSHA(t testing.TB, s *testserver.Server, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatalf("%q: %v", u, err)
	}
	sum := sha256.Sum256(s.Body(pu.Path))
	return hex.EncodeToString(sum[:])
}

// TestHostileList runs one list full of hostile lines — a BOM, CRLF line ends, traversal in
// every encoding, NUL, control characters and CR/LF in paths, overlong segments and paths,
// names differing only by case, a file and a directory URL with the same path, query strings,
// a server-sent Content-Disposition, non-http schemes, invalid UTF-8, and output paths that
// climb out — and checks that the bad lines are reported and skipped, every good URL is done
// with the server's exact bytes, every file is accounted for by a record, and nothing at all
// was written outside the output directory.
func TestHostileList(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	s.Handle("/cd.bin", testserver.Header("Content-Disposition", `attachment; filename="../../cd-escape.sh"`))
	base := s.Base()
	long := "/" + strings.Repeat("L", 300) + ".bin"
	deep := strings.Repeat("/"+strings.Repeat("d", 250), 20) + "/deep.bin"
	good := []string{
		base + "/plain.bin",
		base + "/../../../../etc/passwd",
		base + "/%2e%2e/%2e%2e/etc/shadow",
		base + "/%2E%2E%2F%2E%2E%2Fescape%2Fx",
		base + "/..%2f..%2fescape2%2fx",
		base + "/..%5c..%5cwin%5cx.ini",
		base + "/nul%00byte.bin",
		base + "/crlf%0d%0aX-Injected:%20yes",
		base + "/ctl%1b%07%7f.bin",
		base + long,
		base + deep,
		base + "/Case.bin", base + "/case.bin", base + "/CASE.BIN",
		base + "/dir", base + "/dir/", base + "/dir/inner.bin",
		base + "/q.bin?a=1", base + "/q.bin?a=2", base + "/q.bin?a=1&x=../../etc/passwd",
		base + "/.trawl/state.db",
		base + "/cd.bin",
	}
	const named = "ok/named.bin"
	bad := []string{
		"file:///etc/passwd",
		"ftp://127.0.0.1/x",
		"data:text/plain,hi",
		"javascript:alert(1)",
		base + "/bad\xff\xfe.bin",
		base + "/named-a.bin\t../escape.bin",
		base + "/named-b.bin\t/abs/escape.bin",
		base + "/named-c.bin\t.trawl/state.db",
		base + "/named-d.bin\tsub/../../escape.bin",
		base + "/named-e.bin\tnul\x00name",
	}
	// Line 1 carries the BOM; every line ends in CRLF.
	lines := []string{"\ufeff" + good[0], "# a comment", ""}
	lines = append(lines, good[1:]...)
	lines = append(lines, base+"/named-ok.bin\t"+named)
	firstBad := len(lines) + 1
	lines = append(lines, bad...)
	parent := t.TempDir()
	list := filepath.Join(parent, "urls.txt")
	if err := os.WriteFile(list, []byte(strings.Join(lines, "\r\n")+"\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(parent, "out")
	before := treeSnapshot(t, parent)

	r := runTrawl(t, "get", "-i", list, "-o", out, "--ca-cert", ca, "--idle-timeout", "5s")
	wantExit(t, r, exitFailed) // the bad lines

	for i := range bad {
		if n := firstBad + i; !strings.Contains(r.stderr, fmt.Sprintf("line=%d ", n)) && !strings.Contains(r.stderr, fmt.Sprintf("line=%d\n", n)) {
			t.Errorf("bad line %d (%q) not reported; stderr:\n%s", n, bad[i], tail(r.stderr))
		}
	}
	if got := strings.Count(r.stderr, `msg="skipping bad line"`); got != len(bad) {
		t.Errorf("%d lines reported bad, want %d; stderr:\n%s", got, len(bad), tail(r.stderr))
	}

	recs := stateRecords(t, defaultState(out))
	done := checkDoneRecords(t, out, recs)
	checkNoStrayFiles(t, out, done)
	if len(recs) != len(good)+1 || len(done) != len(good)+1 {
		t.Errorf("%d records, %d done; want %d done", len(recs), len(done), len(good)+1)
	}
	for _, rec := range recs {
		if rec.State != queue.Done {
			t.Errorf("%s: %s (%s)", rec.URL, rec.State, rec.LastError)
			continue
		}
		// Byte-identical to what the server sent for that URL.
		if want := servedSHA(t, s, rec.URL); rec.SHA256 != want {
			t.Errorf("%s: recorded sha256 %s, the server sent %s", rec.URL, rec.SHA256, want)
		}
		if strings.HasPrefix(rec.Path, ".") || strings.Contains("/"+rec.Path+"/", "/../") {
			t.Errorf("%s mapped to %q", rec.URL, rec.Path)
		}
	}
	if r, ok := recordFor(recs, base+"/named-ok.bin"); !ok || r.Path != named {
		t.Errorf("the list's path field was not used: %+v", r)
	}
	// Nothing outside out/: the parent holds what it held before, plus out/.
	var outside []string
	for _, l := range strings.Split(treeSnapshot(t, parent), "\n") {
		if !strings.HasPrefix(l, "out/") && !strings.Contains(before, l) {
			outside = append(outside, l)
		}
	}
	if len(outside) > 0 {
		t.Errorf("written outside the output directory: %v", outside)
	}
}

func recordFor(recs []queue.Record, u string) (queue.Record, bool) {
	for _, r := range recs {
		if r.URL == u {
			return r, true
		}
	}
	return queue.Record{}, false
}

// TestHostileListMillionDuplicates: a list of a million copies of one URL (and a few others)
// is streamed, not held, and each URL is requested exactly once.
func TestHostileListMillionDuplicates(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	list := filepath.Join(t.TempDir(), "dups.txt")
	f, err := os.Create(list)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	dup := s.URL("/dup.bin")
	for i := range 1_000_000 {
		w.WriteString(dup)
		if i%250_000 == 0 {
			w.WriteString("\r\n" + s.URL(fmt.Sprintf("/other-%d.bin", i)))
		}
		w.WriteString("\r\n")
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out := t.TempDir()
	start := time.Now()
	r := runTrawl(t, "get", "-i", list, "-o", out, "--ca-cert", ca)
	wantExit(t, r, exitOK)
	t.Logf("1,000,004 lines in %s", time.Since(start).Round(time.Millisecond))
	if n := len(s.RequestsFor("/dup.bin")); n != 1 {
		t.Errorf("/dup.bin requested %d times, want once", n)
	}
	if n := len(s.Requests()); n != 5 {
		t.Errorf("%d requests, want 5", n)
	}
	wantFile(t, out, s, "/dup.bin")
	recs := stateRecords(t, defaultState(out))
	if len(recs) != 5 {
		t.Errorf("%d records, want 5", len(recs))
	}
}

// TestHostileUserinfo: credentials given as userinfo in the list reach their host as Basic
// auth, and appear nowhere on disk — not in the state file, a path, the log, or the report —
// also when the URL fails.
func TestHostileUserinfo(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	s.Handle("/private/missing.bin", testserver.Statuses(404, 404, 404))
	const user, pass = "alice-the-user", "hunter2-s3cr3t"
	withUser := func(p string) string {
		return strings.Replace(s.URL(p), "https://", "https://"+user+":"+pass+"@", 1)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	report := filepath.Join(dir, "report.json")
	logFile := filepath.Join(dir, "trawl.log")
	list := writeList(t, withUser("/private/a.bin"), withUser("/private/missing.bin"), s.URL("/public.bin"))
	r := runTrawl(t, "get", "-i", list, "-o", out, "--ca-cert", ca, "--report", report,
		"--log-file", logFile, "--log-format", "json")
	wantExit(t, r, exitFailed)

	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	for _, p := range []string{"/private/a.bin", "/private/missing.bin"} {
		reqs := s.RequestsFor(p)
		if len(reqs) == 0 || reqs[0].Header.Get("Authorization") != wantAuth {
			t.Errorf("%s: the server did not receive the userinfo as Basic auth: %v", p, reqs)
		}
	}
	wantFile(t, out, s, "/private/a.bin")

	leaks := func(what string, b []byte) {
		t.Helper()
		for _, secret := range []string{user, pass, base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))} {
			if strings.Contains(string(b), secret) {
				t.Errorf("%s contains %q", what, secret)
			}
		}
	}
	leaks("stderr", []byte(r.stderr))
	leaks("stdout", []byte(r.stdout))
	for _, f := range []string{report, logFile, defaultState(out)} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if len(b) == 0 {
			t.Errorf("%s is empty", f)
		}
		leaks(filepath.Base(f), b)
	}
	if !strings.Contains(mustRead(t, report), "/private/missing.bin") {
		t.Errorf("the report does not list the failed URL")
	}
	for _, f := range outputFiles(t, dir) {
		leaks("output path "+f, []byte(f))
	}
	// status prints records too.
	st := runTrawl(t, "status", "-o", out, "--json")
	wantExit(t, st, exitOK)
	leaks("trawl status", []byte(st.stdout+st.stderr))
}

func mustRead(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHostileSymlinkInOutput: symlinks planted inside the output directory — the host's
// directory itself, a subdirectory, a file — that point outside it never lead a write outside.
func TestHostileSymlinkInOutput(t *testing.T) {
	t.Parallel()
	ss, ca := servers(t, 2)
	a, b := ss[0], ss[1]
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	outside := filepath.Join(parent, "outside")
	for _, d := range []string{outside, filepath.Join(out, b.Addr())} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	victim := filepath.Join(outside, "victim.bin")
	if err := os.WriteFile(victim, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	// a's whole host directory, a subdirectory of b's, and one of b's files lead outside.
	for link, target := range map[string]string{
		filepath.Join(out, a.Addr()):                  outside,
		filepath.Join(out, b.Addr(), "sub"):           outside,
		filepath.Join(out, b.Addr(), "victim.bin"):    victim,
		filepath.Join(out, b.Addr(), "relative"):      "../../outside",
		filepath.Join(out, b.Addr(), "absolute-file"): "/etc/hostname",
	} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	before := treeSnapshot(t, outside)
	list := writeList(t, a.URL("/x.bin"), a.URL("/deep/y.bin"), b.URL("/sub/z.bin"), b.URL("/victim.bin"),
		b.URL("/relative/r.bin"), b.URL("/absolute-file"), b.URL("/fine.bin"))
	r := runTrawl(t, "get", "-i", list, "-o", out, "--ca-cert", ca, "--retries", "0")
	if r.code != exitFailed && r.code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", r.code, tail(r.stderr))
	}
	if after := treeSnapshot(t, outside); after != before {
		t.Errorf("the directory outside changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if got := mustRead(t, victim); got != "keep me" {
		t.Errorf("the file outside was overwritten: %q", got)
	}
	wantFile(t, out, b, "/fine.bin")
	recs := stateRecords(t, defaultState(out))
	done := checkDoneRecords(t, out, recs)
	for _, rec := range recs {
		if rec.State == queue.Done {
			// Only a plain file that replaced a leaf symlink may be done; it must be a regular file inside.
			if fi, err := os.Lstat(filepath.Join(out, filepath.FromSlash(rec.Path))); err != nil || !fi.Mode().IsRegular() {
				t.Errorf("done %s at %s: %v %v", rec.URL, rec.Path, fi, err)
			}
		}
	}
	t.Logf("%d of %d URLs done; exit %d", len(done), len(recs), r.code)
}

// TestHostileLongNameCollision: two URLs that want the same 255-byte file name (the most
// NAME_MAX allows) must both be saved; the store's collision suffix must keep the second name
// within 255 bytes.
func TestHostileLongNameCollision(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	name := strings.Repeat("n", 251) + ".bin"
	list := writeList(t, s.URL("/one.bin")+"\tlong/"+name, s.URL("/two.bin")+"\tlong/"+name,
		s.URL("/_"+name[1:]), s.URL("/."+name[1:])) // the last two map to the same 255-byte leaf too ('.' leading a name becomes '_')
	out := t.TempDir()
	r := runTrawl(t, "get", "-i", list, "-o", out, "--ca-cert", ca)
	wantExit(t, r, exitOK)
	done := checkDoneRecords(t, out, stateRecords(t, defaultState(out)))
	if len(done) != 4 {
		t.Errorf("%d of 4 URLs done", len(done))
	}
}
