package integration_test

import (
	"bytes"
	"encoding/base64"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestNetrc: a .netrc entry's login reaches its host as Basic credentials, and not the other
// host a redirect leads to, which gets its own entry's if it has one; it is not written anywhere. --netrc finds the file through $NETRC,
// --netrc-file takes it as given.
func TestNetrc(t *testing.T) {
	t.Parallel()
	a, b, bBase, ca := twoHosts(t)
	const password = "n3trcPassw0rd"
	dir := t.TempDir()
	netrc := filepath.Join(dir, "netrc")
	if err := os.WriteFile(netrc, []byte("# logins\nmachine 127.0.0.1\n  login alice\n  password "+password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	both := filepath.Join(dir, "netrc-both")
	if err := os.WriteFile(both, []byte("machine 127.0.0.1 login alice password "+password+"\nmachine localhost login bob password b0bsOwn\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.Handle("/private/a.bin", testserver.Size(100))
	a.Handle("/private/moved.bin", testserver.Redirect(bBase+"/public/b.bin"))
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+password))

	for _, tc := range []struct {
		name  string
		args  []string
		env   string
		wantB string // the Authorization the redirect's target gets
	}{
		{"--netrc with $NETRC", []string{"--netrc"}, "NETRC=" + netrc, ""},
		{"--netrc-file", []string{"--netrc-file", netrc}, "", ""},
		{"an entry for each host", []string{"--netrc-file", both}, "", "Basic " + base64.StdEncoding.EncodeToString([]byte("bob:b0bsOwn"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, report := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "report.json")
			na, nb := len(a.RequestsFor("/private/a.bin")), len(b.RequestsFor("/public/b.bin"))
			cmd := trawlCmd(append([]string{"get", "-o", out, "--ca-cert", ca, "-v", "--report", report,
				a.URL("/private/a.bin"), a.URL("/private/moved.bin")}, tc.args...)...)
			if tc.env != "" {
				cmd.Env = append(cmd.Env, tc.env)
			}
			r := start(t, cmd).wait(runTimeout)
			wantExit(t, r, exitOK)
			if got := a.RequestsFor("/private/a.bin")[na].Header.Get("Authorization"); got != want {
				t.Errorf("the .netrc host got Authorization %q, want %q", got, want)
			}
			if got := a.RequestsFor("/private/moved.bin"); got[len(got)-1].Header.Get("Authorization") != want {
				t.Errorf("the redirecting request carried no credentials")
			}
			if got := b.RequestsFor("/public/b.bin")[nb].Header.Get("Authorization"); got != tc.wantB {
				t.Errorf("the host a redirect led to got Authorization %q, want %q", got, tc.wantB)
			}
			if strings.Contains(r.stderr, password) {
				t.Errorf("the log shows the password:\n%s", r.stderr)
			}
			rep, _ := os.ReadFile(report)
			if bytes.Contains(rep, []byte(password)) {
				t.Error("the report holds the password")
			}
			filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(password)) {
						t.Errorf("%s holds the password", p)
					}
				}
				return nil
			})
		})
	}
}

// TestNetrcRefused: a .netrc that others may read is refused before any work, as is one that
// is missing or malformed, in one line naming the file; the password is never repeated.
func TestNetrcRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	open := write("open", "machine h login u password secretpw\n", 0o644)
	bad := write("bad", "machine h\nlogin u\npassword my secretpw\n", 0o600)
	const url = "https://127.0.0.1:1/never.bin" // nothing listens: a run that started would fail with 1
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"readable by others", []string{"--netrc-file", open}, "netrc file " + open + " may be read or changed by other users (mode 0644); it holds passwords: chmod 600 " + open},
		{"through $NETRC", []string{"--netrc"}, "netrc file " + open + " may be read"},
		{"malformed", []string{"--netrc-file", bad}, "netrc file " + bad + " line 3: unexpected word"},
		{"missing", []string{"--netrc-file", filepath.Join(dir, "none")}, "netrc file: open " + filepath.Join(dir, "none")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			cmd := trawlCmd(append(append([]string{"get", "-o", out}, tc.args...), url)...)
			cmd.Env = append(cmd.Env, "NETRC="+open)
			r := start(t, cmd).wait(runTimeout)
			wantExit(t, r, exitUsage)
			if !strings.Contains(r.stderr, tc.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
				t.Errorf("stderr:\n%s\nwant one line with %q", r.stderr, tc.want)
			}
			if strings.Contains(r.stderr, "secretpw") {
				t.Errorf("stderr repeats the password:\n%s", r.stderr)
			}
			wantNoFile(t, out)
		})
	}
}
