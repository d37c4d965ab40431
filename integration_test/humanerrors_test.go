package integration_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestTerminalFailuresGrouped: on a terminal, 20 URLs failing on one host for one reason are one
// line of the end summary, not 20; the first failure of each group is shown as it happens; the run
// ends with a sentence, not a log line (with -q: no sentence, the groups and the verdict). A log
// file (here JSON) still has a line per failed URL.
func TestTerminalFailuresGrouped(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name           string
		logFile, quiet bool
	}{{"log on the terminal", false, false}, {"json log file", true, false}, {"quiet", false, true}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// untrusted's certificate comes from a CA of its own; trawl is given the other
			// server's.
			past := time.Now().Add(-time.Hour)
			untrusted := testserver.New(t, testserver.GeneratedCert([]string{"127.0.0.1"}, past, past.Add(48*time.Hour)))
			s, ca := server(t)
			failing := make([]string, 0, 23)
			for i := range 20 {
				failing = append(failing, untrusted.URL(fmt.Sprintf("/img/%d.jpg", i)))
			}
			for i := range 3 {
				p := fmt.Sprintf("/gone/%d.bin", i)
				s.Handle(p, testserver.Statuses(404))
				failing = append(failing, s.URL(p))
			}
			args := append([]string{"get", "--ca-cert", ca, s.URL("/ok.bin")}, failing...)
			dir := t.TempDir()
			logFile := filepath.Join(dir, "trawl.log")
			a := append([]string{"-o", filepath.Join(dir, "out")}, args...)
			if tt.logFile {
				a = append(a, "--log-file", logFile, "--log-format", "json")
			}
			if tt.quiet {
				a = append(a, "-q")
			}
			r, screen := startOnTerminal(t, a...).finish()
			wantExit(t, r, exitFailed)
			want := []string{
				"20 URLs on " + untrusted.Addr() + ": tls: certificate signed by unknown authority (use --ca-cert to trust it)\r\n",
				"3 URLs on " + s.Addr() + ": HTTP 404 Not Found\r\n",
				"trawl: 23 URL(s) failed\r\n",
			}
			if tt.quiet {
				if strings.Contains(screen, "Fetched") || strings.Contains(screen, " files · ") {
					t.Errorf("-q drew a bar or said the summary sentence:\n%s", tail(screen))
				}
			} else {
				want = append(want, "Fetched 1 new file (", "; 23 failed.\r\n")
			}
			for _, want := range want {
				if !strings.Contains(screen, want) {
					t.Errorf("the terminal does not show %q:\n%s", want, tail(screen))
				}
			}
			// The reason once as it happens and once in the summary, for each group.
			if n := strings.Count(screen, "certificate signed by unknown authority"); n != 2 {
				t.Errorf("the TLS failure is told %d times, want 2:\n%s", n, tail(screen))
			}
			if n := strings.Count(screen, "404 Not Found"); n != 2 {
				t.Errorf("the 404 is told %d times, want 2:\n%s", n, tail(screen))
			}
			for _, jargon := range []string{"level=", "msg=", "time="} {
				if strings.Contains(screen, jargon) {
					t.Errorf("log syntax %q on the terminal:\n%s", jargon, tail(screen))
				}
			}
			if !tt.logFile {
				return
			}
			urls := failedURLsLogged(t, logFile)
			for _, u := range failing {
				if urls[u] != 1 {
					t.Errorf("the log file has %d failed lines for %s, want 1", urls[u], u)
				}
			}
		})
	}
}

// failedURLsLogged counts the "failed" lines of a JSON log file by URL; it also checks that
// the file has the summary line.
func failedURLsLogged(t *testing.T, file string) map[string]int {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	urls, summary := map[string]int{}, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m struct{ Msg, URL string }
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		switch m.Msg {
		case "failed":
			urls[m.URL]++
		case "summary":
			summary = true
		}
	}
	if !summary {
		t.Errorf("no summary line in the log file")
	}
	return urls
}

// TestQuietVerdict: with -q, a run that fails ends with its one-line verdict on stderr (with
// --log-file, it is all stderr holds), and a run that succeeds prints nothing, so that cron mails
// only trouble.
func TestQuietVerdict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		urls    []string
		logFile bool
		exit    int
		stderr  func(string) bool
		want    string
	}{
		{"failure", []string{"/ok.bin", "/gone.bin"}, false, exitFailed, func(e string) bool {
			lines := strings.Split(strings.TrimSuffix(e, "\n"), "\n")
			return len(lines) == 2 && strings.Contains(lines[0], "level=ERROR msg=failed") && lines[1] == "trawl: 1 URL(s) failed"
		}, "the failure's log line, then the verdict"},
		{"failure, log file", []string{"/ok.bin", "/gone.bin"}, true, exitFailed, func(e string) bool {
			return e == "trawl: 1 URL(s) failed\n"
		}, "the verdict alone"},
		{"success", []string{"/ok.bin"}, false, exitOK, func(e string) bool { return e == "" }, "nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, ca := server(t)
			s.Handle("/gone.bin", testserver.Statuses(404))
			dir := t.TempDir()
			args := []string{"get", "-q", "-o", filepath.Join(dir, "out"), "--ca-cert", ca}
			if tt.logFile {
				args = append(args, "--log-file", filepath.Join(dir, "trawl.log"))
			}
			for _, u := range tt.urls {
				args = append(args, s.URL(u))
			}
			r := runTrawl(t, args...)
			wantExit(t, r, tt.exit)
			if !tt.stderr(r.stderr) {
				t.Errorf("stderr %q, want %s", r.stderr, tt.want)
			}
		})
	}
}
