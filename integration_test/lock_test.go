package integration_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestStateLocked: while one trawl holds the state file, a second one on the same job exits 3
// at once with one line naming the state file and the process that holds it.
func TestStateLocked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		state func(t *testing.T, out string) (flag []string, file string)
	}{
		{"default state file", func(_ *testing.T, out string) ([]string, string) {
			return nil, filepath.Join(out, ".trawl", "state.db")
		}},
		{"--state elsewhere", func(t *testing.T, _ string) ([]string, string) {
			f := filepath.Join(t.TempDir(), "job.db")
			return []string{"--state", f}, f
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A response that never comes keeps the first trawl busy for as long as the test needs.
			s, ca := server(t, testserver.StallAfter(0))
			out := t.TempDir()
			stateFlag, stateFile := tt.state(t, out)
			args := append([]string{"get", "-o", out, "--ca-cert", ca, "--idle-timeout", "5m"}, stateFlag...)

			first := start(t, trawlCmd(append(args, s.URL("/stalls.bin"))...))
			eventually(t, "the state lock note "+stateFile+".lock", 30*time.Second, first.exited,
				func() bool { return fileSize(stateFile+".lock") > 0 })
			s.WaitRequests(1, 30*time.Second)

			r := runTrawl(t, append(args, s.URL("/other.bin"))...)
			wantExit(t, r, exitFatal)
			if r.elapsed > promptly {
				t.Errorf("second trawl took %s to give up, want < %s", r.elapsed.Round(time.Millisecond), promptly)
			}
			msg := strings.TrimSuffix(r.stderr, "\n")
			if msg == "" || strings.Contains(msg, "\n") {
				t.Errorf("stderr is not exactly one line:\n%q", r.stderr)
			}
			if !strings.Contains(msg, stateFile) {
				t.Errorf("message does not name the state file %s: %q", stateFile, msg)
			}
			if pid := fmt.Sprintf("pid %d", first.cmd.Process.Pid); !strings.Contains(msg, pid) {
				t.Errorf("message does not name the holder (%s): %q", pid, msg)
			}
			if n := len(s.RequestsFor("/other.bin")); n != 0 {
				t.Errorf("the locked-out trawl sent %d requests", n)
			}
			first.kill9()
		})
	}
}
