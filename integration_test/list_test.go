package integration_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBadListLines: bad lines in the list are reported with their line numbers and skipped; the
// rest is downloaded, and the run exits 1: the list is the user's to fix.
func TestBadListLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		format    string // --log-format
		stdin     bool   // -i - instead of a file
		badLine   func(n string) string
		badNotice string
	}{
		{"text log", "text", false, func(n string) string { return "line=" + n }, "msg=\"skipping bad line\""},
		{"json log", "json", false, func(n string) string { return `"line":` + n }, `"msg":"skipping bad line"`},
		{"list on stdin", "text", true, func(n string) string { return "line=" + n }, "msg=\"skipping bad line\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, ca := server(t)
			lines := []string{
				s.URL("/one.txt"),                     // 1
				s.URL("/two.txt"),                     // 2
				"not a url",                           // 3
				s.URL("/four.txt"),                    // 4
				"ftp://x/y",                           // 5
				"# a comment",                         // 6
				"",                                    // 7
				s.URL("/eight.txt") + "\tnamed/8.txt", // 8
			}
			list := writeList(t, lines...)
			out := t.TempDir()
			input := list
			if tt.stdin {
				input = "-"
			}
			cmd := trawlCmd("get", "-i", input, "-o", out, "--ca-cert", ca, "--log-format", tt.format)
			if tt.stdin {
				f, err := os.Open(list)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				cmd.Stdin = f
			}
			r := start(t, cmd).wait(runTimeout)
			wantExit(t, r, exitFailed)

			for _, n := range []string{"3", "5"} {
				if !strings.Contains(r.stderr, tt.badLine(n)) {
					t.Errorf("stderr does not report bad line %s:\n%s", n, tail(r.stderr))
				}
			}
			for _, n := range []string{"1", "2", "4", "6", "7", "8"} {
				if strings.Contains(r.stderr, tt.badLine(n)+" ") || strings.Contains(r.stderr, tt.badLine(n)+",") {
					t.Errorf("stderr reports good line %s as bad:\n%s", n, tail(r.stderr))
				}
			}
			if got := strings.Count(r.stderr, tt.badNotice); got != 2 {
				t.Errorf("%d bad-line reports, want 2:\n%s", got, tail(r.stderr))
			}
			for _, p := range []string{"/one.txt", "/two.txt", "/four.txt"} {
				wantFile(t, out, s, p)
			}
			if got, want := fileSHA256(t, filepath.Join(out, "named", "8.txt")), s.SHA256("/eight.txt"); got != want {
				t.Errorf("named/8.txt: sha256 %s, want %s", got, want)
			}
			if n := len(s.Requests()); n != 4 {
				t.Errorf("%d requests, want 4", n)
			}
		})
	}
}

// TestListStreamed: a list read from a pipe is worked on while it is still being written (a
// slow producer: a crawler, find, tail -f), not only once it ends.
func TestListStreamed(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	out := t.TempDir()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	cmd := trawlCmd("get", "-i", "-", "-o", out, "--ca-cert", ca)
	cmd.Stdin = pr // a real pipe: trawl reads it directly, and sees EOF when pw is closed
	p := start(t, cmd)
	pr.Close()

	for i := range 3 {
		path := fmt.Sprintf("/stream/%d.bin", i)
		if _, err := fmt.Fprintln(pw, s.URL(path)); err != nil {
			t.Fatal(err)
		}
		if got := s.WaitRequests(i+1, 10*time.Second); len(got) != i+1 {
			t.Fatalf("line %d was written to the list 10 s ago and is still not requested (%d requests)", i+1, len(got))
		}
	}
	pw.Close()
	wantExit(t, p.wait(runTimeout), exitOK)
	for i := range 3 {
		wantFile(t, out, s, fmt.Sprintf("/stream/%d.bin", i))
	}
}
