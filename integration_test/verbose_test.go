package integration_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestVerbose: -v prints a line for every file fetched, with its URL, status, size and path — a
// log line off a terminal (and in a log file), a plain line on one — and none without -v.
// -q and -v together are a usage error.
func TestVerbose(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		terminal bool
		logFile  bool
		line     func(url, path string) *regexp.Regexp // one for each file
	}{
		{"text log", []string{"-v"}, false, false, func(u, p string) *regexp.Regexp {
			return regexp.MustCompile(`level=INFO msg=fetched url=` + regexp.QuoteMeta(u) + ` status=200 bytes=4096 path=` + regexp.QuoteMeta(p) + ` result=new\n`)
		}},
		{"json log file", []string{"-v", "--log-format", "json"}, false, true, func(u, p string) *regexp.Regexp {
			return regexp.MustCompile(`"msg":"fetched","url":"` + regexp.QuoteMeta(u) + `","status":200,"bytes":4096,"path":"` + regexp.QuoteMeta(p) + `","result":"new"}`)
		}},
		{"terminal", []string{"-v"}, true, false, func(u, p string) *regexp.Regexp {
			return regexp.MustCompile(`\d\d:\d\d:\d\d 200 ` + regexp.QuoteMeta(u) + ` -> ` + regexp.QuoteMeta(p) + ` \(4\.0 KiB\)\r\n`)
		}},
		{"without -v", nil, false, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, ca := server(t)
			dir := t.TempDir()
			logFile := filepath.Join(dir, "trawl.log")
			args := append([]string{"get", "-o", filepath.Join(dir, "out"), "--ca-cert", ca, s.URL("/a.bin"), s.URL("/b/c.bin")}, tt.args...)
			if tt.logFile {
				args = append(args, "--log-file", logFile)
			}
			var out string
			if tt.terminal {
				var r result
				r, out = startOnTerminal(t, args...).finish()
				wantExit(t, r, exitOK)
			} else {
				r := runTrawl(t, args...)
				wantExit(t, r, exitOK)
				out = r.stderr
			}
			if tt.logFile {
				data, err := os.ReadFile(logFile)
				if err != nil {
					t.Fatal(err)
				}
				out = string(data)
			}
			if tt.line == nil {
				if strings.Contains(out, "fetched") {
					t.Errorf("a per-file line without -v:\n%s", out)
				}
				return
			}
			for _, p := range []string{"/a.bin", "/b/c.bin"} {
				re := tt.line(s.URL(p), s.Addr()+p)
				if n := len(re.FindAllString(out, -1)); n != 1 {
					t.Errorf("%d lines match %s, want 1:\n%s", n, re, tail(out))
				}
			}
		})
	}
	r := runTrawl(t, "get", "-q", "-v", "-o", t.TempDir(), "https://127.0.0.1:1/x")
	wantExit(t, r, exitUsage)
	if !strings.Contains(r.stderr, "--quiet and --verbose exclude each other") {
		t.Errorf("stderr: %q", r.stderr)
	}
}
