package integration_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNothingUsable: a get with no usable URL — a list of garbage, an empty list, a directory or
// an unreadable file given as the list, arguments that are not URLs — is a usage error (exit 2)
// that says what is wrong, and leaves no state behind: no .trawl/ is created and nothing is
// requested.
func TestNothingUsable(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	garbage := make([]string, 20)
	for i := range garbage {
		garbage[i] = "garbage line " + string(rune('a'+i))
	}
	tests := []struct {
		name  string
		args  func(t *testing.T) []string
		stdin string
		want  []string // in stderr
	}{
		{"list of garbage", func(t *testing.T) []string {
			return []string{"-i", writeList(t, garbage...)}
		}, "", []string{"has no usable URL, only 20 bad lines", "urls.txt:1: not a URL", "urls.txt:10:", "(and 10 more)"}},
		{"list of garbage on stdin", func(*testing.T) []string {
			return []string{"-i", "-"}
		}, "ftp://example.org/x\nnot a url\n", []string{"(standard input) has no usable URL, only 2 bad lines", `-:1: unsupported scheme "ftp"`, "-:2: not a URL"}},
		{"empty list", func(t *testing.T) []string {
			return []string{"-i", writeList(t, "# nothing today", "")}
		}, "", []string{"has no URL"}},
		{"list is a directory", func(t *testing.T) []string {
			return []string{"-i", t.TempDir()}
		}, "", []string{"is a directory"}},
		{"unreadable list", func(t *testing.T) []string {
			if os.Geteuid() == 0 {
				t.Skip("root reads files without read permission")
			}
			list := writeList(t, s.URL("/a.bin"))
			if err := os.Chmod(list, 0); err != nil {
				t.Fatal(err)
			}
			return []string{"-i", list}
		}, "", []string{"permission denied"}},
		{"missing list", func(t *testing.T) []string {
			return []string{"-i", filepath.Join(t.TempDir(), "nope.txt")}
		}, "", []string{"nope.txt", "no such file"}},
		{"arguments that are not URLs", func(*testing.T) []string {
			return []string{"example.org/a.jpg", "mailto:x@example.org"}
		}, "", []string{"no usable URL among the arguments", `argument 1: "example.org/a.jpg": not a URL`, "argument 2:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "out")
			cmd := trawlCmd(append([]string{"get", "-o", out, "--ca-cert", ca}, tt.args(t)...)...)
			cmd.Stdin = strings.NewReader(tt.stdin)
			r := start(t, cmd).wait(runTimeout)
			wantExit(t, r, exitUsage)
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, r.stderr)
				}
			}
			if !strings.HasPrefix(r.stderr, "trawl: ") {
				t.Errorf("stderr is not trawl's one error:\n%s", r.stderr)
			}
			wantNoFile(t, out) // no output directory, so no .trawl/ either
		})
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("%d requests, want none", n)
	}
}

// TestBadLinesEveryRun: bad lines beside good ones make every run exit 1 and are listed in its
// report, also the runs that do not read the list again because it has not changed; once the
// list is fixed, the run exits 0 and the report lists none. Garbage beside a usable argument is
// bad input too, not a usage error.
func TestBadLinesEveryRun(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	out, dir := t.TempDir(), t.TempDir()
	list, report := filepath.Join(dir, "urls.txt"), filepath.Join(dir, "report.json")
	write := func(lines ...string) {
		t.Helper()
		if err := os.WriteFile(list, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"get", "-i", list, "-o", out, "--ca-cert", ca, "--report", report, "-q"}
	write(s.URL("/a.bin"), "not a url", s.URL("/b.bin"), "ftp://x/y")
	for run := 1; run <= 3; run++ {
		r := runTrawl(t, args...)
		wantExit(t, r, exitFailed)
		rep := readReport(t, report)
		if rep.BadInputCount != 2 || len(rep.BadInput) != 2 || rep.Outcome != "failed" || rep.ExitCode != exitFailed {
			t.Fatalf("run %d: report has bad_input_count %d, bad_input %+v, outcome %s, exit %d; want the 2 bad lines, failed, 1",
				run, rep.BadInputCount, rep.BadInput, rep.Outcome, rep.ExitCode)
		}
		for i, line := range []int{2, 4} {
			if b := rep.BadInput[i]; b.Line != line || b.Source != list || b.Error == "" {
				t.Errorf("run %d: bad_input[%d] = %+v, want line %d of %s", run, i, b, line, list)
			}
		}
		// -q: the bad lines (errors) and the one-line verdict still reach stderr.
		for _, w := range []string{"line=2", "line=4", "2 bad input lines skipped"} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("run %d: stderr does not say %q:\n%s", run, w, r.stderr)
			}
		}
	}
	if n := len(s.Requests()); n != 2 {
		t.Errorf("%d requests over three runs, want 2 (the list is not read again)", n)
	}

	write(s.URL("/a.bin"), s.URL("/b.bin"))
	r := runTrawl(t, args...)
	wantExit(t, r, exitOK)
	if rep := readReport(t, report); rep.BadInputCount != 0 || len(rep.BadInput) != 0 || rep.Outcome != "done" {
		t.Errorf("fixed list: bad_input_count %d, bad_input %+v, outcome %s; want none, done", rep.BadInputCount, rep.BadInput, rep.Outcome)
	}

	// A list of garbage beside a usable argument: the argument is fetched, the lines are bad input.
	garbage := writeList(t, "not a url")
	r = runTrawl(t, "get", "-i", garbage, "-o", t.TempDir(), "--ca-cert", ca, s.URL("/c.bin"))
	wantExit(t, r, exitFailed)
	if !strings.Contains(r.stderr, "line=1") {
		t.Errorf("the garbage line is not reported:\n%s", r.stderr)
	}
}

// TestSaveMatchesNothing: a crawl whose --save pattern matches none of the types it fetched (a
// typo: images/* for image/*) says so at the end; one that matches says nothing.
func TestSaveMatchesNothing(t *testing.T) {
	t.Parallel()
	site := newCrawlSite(t)
	site.page("/", `<html><body><img src="a.png"><img src="b.png"></body></html>`)
	site.bin("/a.png", 100)
	site.bin("/b.png", 100)
	ca := site.CAFile(t)
	tests := []struct {
		save string
		warn bool
	}{
		{"images/*", true},
		{"image/*", false},
		{"image/png,text/css", true}, // no stylesheet on this site: said of text/css alone
	}
	for _, tt := range tests {
		t.Run(tt.save, func(t *testing.T) {
			t.Parallel()
			r := runTrawl(t, "crawl", "--ignore-robots", "--save", tt.save, "-o", t.TempDir(), "--ca-cert", ca, site.URL("/"))
			wantExit(t, r, exitOK)
			warning := lastLine(r.stderr, "level=WARN")
			if !tt.warn {
				if warning != "" {
					t.Errorf("a warning for a pattern that matched:\n%s", r.stderr)
				}
				return
			}
			bad := strings.Split(tt.save, ",")[len(strings.Split(tt.save, ","))-1]
			for _, w := range []string{"--save " + bad + " matched none of the 3 files fetched", "2 image/png", "1 text/html"} {
				if !strings.Contains(warning, w) {
					t.Errorf("warning does not say %q:\n%s", w, r.stderr)
				}
			}
			if strings.Count(r.stderr, "level=WARN") != 1 {
				t.Errorf("want one warning:\n%s", r.stderr)
			}
		})
	}
}
