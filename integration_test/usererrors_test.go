package integration_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSettingErrorsInUserWords: a bad flag value or config file is a usage error (exit 2) told in
// the user's words — the flag or key as written, the line of the config file, a suggestion for a
// mistyped flag or key — never in Go's (strconv, time.ParseDuration, yaml's type names).
func TestSettingErrorsInUserWords(t *testing.T) {
	t.Parallel()
	const url = "https://127.0.0.1:1/never.bin" // nothing listens: a run that started would fail with 1
	tests := []struct {
		name   string
		flags  []string
		config string // written to a config file given with --config, if not empty
		want   string // stderr, after "trawl: "
	}{
		{"word for a number", []string{"-c", "abc"}, "",
			`-c/--concurrency: "abc" is not a whole number (see trawl get --help)`},
		{"number for a duration", []string{"--idle-timeout", "60"}, "",
			"--idle-timeout: 60 is not a duration (try 60s)"},
		{"word for a duration", []string{"--max-wait", "soon"}, "",
			`--max-wait: "soon" is not a duration (like 90s, 5m, 2h30m or 1d)`},
		{"word for a rate", []string{"--rate", "fast"}, "",
			`--rate: "fast" is not a number`},
		{"mistyped flag", []string{"--load-cookie", "cookies.txt"}, "",
			"unknown flag: --load-cookie (did you mean --load-cookies?)"},
		{"flag with _", []string{"--no_proxy", "intranet.example"}, "",
			"unknown flag: --no_proxy (did you mean --no-proxy?)"},
		{"crawl's flag", []string{"--sitemaps"}, "",
			"unknown flag: --sitemaps (trawl crawl has it; see trawl get --help)"},
		{"flag near to none", []string{"--bogus"}, "",
			"unknown flag: --bogus (see trawl get --help)"},
		{"mistyped key", nil, "# nightly pull\nconcurrency: 8\nperhost: 2\n",
			"trawl.yaml line 3: unknown key perhost (did you mean per_host?)"},
		{"flag name as key", nil, "refresh-after: 20h\n",
			"trawl.yaml line 1: unknown key refresh-after (did you mean refresh_after?)"},
		{"number for a duration in the config", nil, "retries: 2\nidle_timeout: 60\n",
			"trawl.yaml line 2: idle_timeout: 60 is not a duration (try 60s)"},
		{"word for a number in the config", nil, "concurrency: lots\n",
			`trawl.yaml line 1: concurrency: "lots" is not a whole number`},
		{"two problems", nil, "perhost: 2\nmax_wait: 5\n",
			"trawl.yaml:\n  line 1: unknown key perhost (did you mean per_host?)\n  line 2: max_wait: 5 is not a duration (try 5s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			args := append([]string{"get", "-o", filepath.Join(dir, "out")}, tt.flags...)
			if tt.config != "" {
				cfg := filepath.Join(dir, "trawl.yaml")
				if err := os.WriteFile(cfg, []byte(tt.config), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", cfg)
			}
			r := runTrawl(t, append(args, url)...)
			wantExit(t, r, exitUsage)
			if !strings.HasPrefix(r.stderr, "trawl: ") || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr:\n%s\nwant it to say:\n%s", r.stderr, tt.want)
			}
			for _, jargon := range []string{"strconv", "time: ", "main.Config", "!!", "unmarshal", "invalid argument"} {
				if strings.Contains(r.stderr, jargon) {
					t.Errorf("stderr says %q:\n%s", jargon, r.stderr)
				}
			}
			wantNoFile(t, filepath.Join(dir, "out"))
		})
	}
}

// TestDurationInDays: --refresh-after and its config key take days. A job done a moment ago is
// not revalidated with 1d (a duration read as anything shorter than the run's age would ask the
// server again).
func TestDurationInDays(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	dir := t.TempDir()
	out, cfg := filepath.Join(dir, "out"), filepath.Join(dir, "trawl.yaml")
	if err := os.WriteFile(cfg, []byte("refresh_after: 1.5d\nmax_wait: 1d12h\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"get", "-o", out, "--ca-cert", ca, s.URL("/a.bin")}
	wantExit(t, runTrawl(t, args...), exitOK)
	for _, extra := range [][]string{{"--refresh-after", "1d"}, {"--config", cfg}} {
		r := runTrawl(t, append(args, extra...)...)
		wantExit(t, r, exitOK)
	}
	if n := len(s.Requests()); n != 1 {
		t.Errorf("%d requests, want 1: a file done a moment ago was revalidated", n)
	}
	// Days are not taken for a duration that is not one.
	r := runTrawl(t, append(args, "--refresh-after", "1day")...)
	wantExit(t, r, exitUsage)
}
