package integration_test

import (
	"bytes"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// twoHosts starts a (127.0.0.1, httptest's certificate) and b (localhost, a certificate of its
// own): two host names for the cookie jar and for credentials. The CA file returned trusts both.
func twoHosts(t *testing.T) (a, b *testserver.Server, bBase, ca string) {
	t.Helper()
	a = testserver.New(t)
	b = testserver.New(t, testserver.GeneratedCert([]string{"localhost"}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)))
	ca = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, append(append([]byte{}, a.CACertPEM()...), b.CACertPEM()...), 0o644); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(b.Addr())
	return a, b, "https://localhost:" + port, ca
}

// cookiesSent lists the cookies the last request for path carried, sorted.
func cookiesSent(t *testing.T, s *testserver.Server, path string) []string {
	t.Helper()
	reqs := s.RequestsFor(path)
	if len(reqs) == 0 {
		t.Fatalf("no request for %s", path)
	}
	var got []string
	for _, v := range reqs[len(reqs)-1].Header.Values("Cookie") {
		got = append(got, strings.Split(v, "; ")...)
	}
	slices.Sort(got)
	return got
}

// TestCookies: a cookie host A sets is sent back to A, over a redirect within A too, and never
// to host B the chain then leads to; a loaded cookie goes to its own host only, a -H cookie to
// the URL's host only; --save-cookies writes the jar, privately, and no cookie value reaches
// the state file, the log or the report.
func TestCookies(t *testing.T) {
	t.Parallel()
	a, b, bBase, ca := twoHosts(t)
	const secret = "s3ss10nS3cret"
	a.Handle("/login", testserver.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: secret, Path: "/", MaxAge: 3600, HttpOnly: true})
		http.Redirect(w, r, "/members/page", http.StatusFound)
	}))
	a.Handle("/members/page", testserver.Redirect(bBase+"/elsewhere.bin"))

	dir := t.TempDir()
	in, saved, report, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "saved.txt"), filepath.Join(dir, "report.json"), filepath.Join(dir, "out")
	loaded := "# Netscape HTTP Cookie File\n" +
		"127.0.0.1\tFALSE\t/\tFALSE\t0\tfora\tA1\n" +
		"localhost\tFALSE\t/\tFALSE\t0\tforb\tB1\n" +
		"#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t1\texpired\tlong-ago\n"
	if err := os.WriteFile(in, []byte(loaded), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runTrawl(t, "get", "-o", out, "--ca-cert", ca, "-v", "--report", report,
		"--load-cookies", in, "--save-cookies", saved, "-H", "Cookie: hdr=H1", a.URL("/login"))
	wantExit(t, r, exitOK)

	for _, tc := range []struct {
		srv  *testserver.Server
		path string
		want []string
	}{
		{a, "/login", []string{"fora=A1", "hdr=H1"}},
		{a, "/members/page", []string{"fora=A1", "hdr=H1", "session=" + secret}},
		{b, "/elsewhere.bin", []string{"forb=B1"}},
	} {
		if got := cookiesSent(t, tc.srv, tc.path); !slices.Equal(got, tc.want) {
			t.Errorf("%s got cookies %q, want %q", tc.path, got, tc.want)
		}
	}

	fi, err := os.Stat(saved)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("--save-cookies file mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(saved)
	for _, want := range []string{"#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t", "\tsession\t" + secret + "\n",
		"127.0.0.1\tFALSE\t/\tFALSE\t0\tfora\tA1\n", "localhost\tFALSE\t/\tFALSE\t0\tforb\tB1\n"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("saved cookies:\n%s\nwant %q", data, want)
		}
	}
	if strings.Contains(string(data), "expired") {
		t.Errorf("an expired cookie was saved:\n%s", data)
	}

	// Nothing else holds a cookie value: not the state, the log or the report.
	for _, v := range []string{secret, "A1", "B1", "H1"} {
		if strings.Contains(r.stderr, v) {
			t.Errorf("the log shows cookie value %s:\n%s", v, r.stderr)
		}
	}
	if rep, _ := os.ReadFile(report); bytes.Contains(rep, []byte(secret)) {
		t.Errorf("the report holds the session cookie")
	}
	filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds the session cookie", p)
			}
		}
		return nil
	})

	// The next run starts with what was saved: A gets the session cookie at once.
	a.Handle("/again", testserver.Size(10))
	wantExit(t, runTrawl(t, "get", "-o", out, "--ca-cert", ca, "--load-cookies", saved, a.URL("/again")), exitOK)
	if got := cookiesSent(t, a, "/again"); !slices.Contains(got, "session="+secret) {
		t.Errorf("the saved session cookie was not sent back: %q", got)
	}
}

// TestCookieFileErrors: a cookie file that cannot be used is a usage error before any work, in
// one line naming the file (and the line); a --save-cookies place that cannot be written to is
// found out before the run, not after it.
func TestCookieFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.txt")
	if err := os.WriteFile(bad, []byte("# ok\n\nexample.com\tTRUE\t/\tFALSE\tsoon\tn\tv\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const url = "https://127.0.0.1:1/never.bin" // nothing listens: a run that started would fail with 1
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"malformed line", []string{"--load-cookies", bad}, "--load-cookies: cookie file " + bad + " line 3: expiry \"soon\": want Unix seconds"},
		{"missing file", []string{"--load-cookies", filepath.Join(dir, "none.txt")}, "--load-cookies: cookie file: open " + filepath.Join(dir, "none.txt")},
		{"save into a missing directory", []string{"--save-cookies", filepath.Join(dir, "no", "c.txt")}, "--save-cookies " + filepath.Join(dir, "no", "c.txt") + ": no directory"},
		{"save over a directory", []string{"--save-cookies", dir}, "is a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			r := runTrawl(t, append(append([]string{"get", "-o", out}, tc.args...), url)...)
			wantExit(t, r, exitUsage)
			if !strings.Contains(r.stderr, tc.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
				t.Errorf("stderr:\n%s\nwant one line with %q", r.stderr, tc.want)
			}
			wantNoFile(t, out)
		})
	}
}

// TestCookieSessionFile: --load-cookies and --save-cookies naming one file keep a session in it
// across runs (curl's -b F -c F): the first run, before the file exists, starts with no cookies
// instead of refusing; the next sends back what the first saved. A missing file to load alone is
// still refused (TestCookieFileErrors).
func TestCookieSessionFile(t *testing.T) {
	t.Parallel()
	a, ca := server(t)
	a.Handle("/login", testserver.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "kept", Path: "/", MaxAge: 3600})
		w.Write([]byte("in"))
	}))
	a.Handle("/next", testserver.Size(10))
	dir := t.TempDir()
	jar, out := filepath.Join(dir, "jar.txt"), filepath.Join(dir, "out")
	// The same file spelled two ways: a relative name run from its directory, and its full path.
	runIn := func(args ...string) result {
		cmd := trawlCmd(append(args, "--ca-cert", ca, "--load-cookies", jar, "--save-cookies", "./"+filepath.Base(jar))...)
		cmd.Dir = dir
		return start(t, cmd).wait(runTimeout)
	}
	first := runIn("get", "-o", out, a.URL("/login"))
	wantExit(t, first, exitOK)
	if _, err := os.Stat(jar); err != nil {
		t.Fatalf("the first run saved no cookie file: %v\n%s", err, first.stderr)
	}
	wantExit(t, runIn("get", "-o", out, a.URL("/next")), exitOK)
	if got := cookiesSent(t, a, "/next"); !slices.Equal(got, []string{"session=kept"}) {
		t.Errorf("second run sent cookies %q, want the saved session", got)
	}
}
