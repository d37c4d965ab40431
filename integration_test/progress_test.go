package integration_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// slowJob serves n files of 16 KiB that take ~0.5 s each to arrive, so that progress has
// time to be drawn or logged, and returns trawl's arguments for them.
func slowJob(t *testing.T, n int) (*testserver.Server, []string) {
	t.Helper()
	s, ca := server(t, testserver.Size(16<<10), testserver.Drip(2<<10, 60*time.Millisecond))
	args := []string{"get", "-o", t.TempDir(), "--ca-cert", ca}
	for i := range n {
		args = append(args, s.URL("/f"+string(rune('a'+i))+".bin"))
	}
	return s, args
}

// TestProgressTerminal: with stderr on a terminal, trawl draws a progress bar.
func TestProgressTerminal(t *testing.T) {
	t.Parallel()
	_, args := slowJob(t, 3)
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	var screen bytes.Buffer
	var readErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Reading ends with EIO once the last holder of the terminal's other side is gone.
		_, readErr = io.Copy(&screen, ptmx)
	}()
	cmd := trawlCmd(args...)
	cmd.Stderr = tty
	p := start(t, cmd)
	tty.Close() // trawl holds its own copy
	r := p.wait(runTimeout)
	wg.Wait()
	if readErr != nil && !errors.Is(readErr, syscall.EIO) {
		t.Fatalf("reading the terminal: %v", readErr)
	}
	wantExit(t, r, exitOK)

	out := screen.String()
	for _, want := range []string{"3/3", "100%", "|"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output has no %q:\n%q", want, out)
		}
	}
	if !strings.Contains(out, "\r") {
		t.Errorf("terminal output never redraws the bar (no carriage return):\n%q", out)
	}
	if strings.Contains(out, "msg=progress") {
		t.Errorf("plain progress lines on a terminal:\n%q", out)
	}
}

// TestProgressPlain: without a terminal, progress is logged as plain lines every
// --progress-interval and a summary at the end, with no bar drawing; -q prints nothing.
func TestProgressPlain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		want     []string // each must appear
		minLines int      // lines containing want[0]
		quiet    bool
	}{
		{"text", []string{"--progress-interval", "100ms"}, []string{"msg=progress", "msg=summary"}, 2, false},
		{"json", []string{"--progress-interval", "100ms", "--log-format", "json"}, []string{`"msg":"progress"`, `"msg":"summary"`}, 2, false},
		{"quiet", []string{"-q", "--progress-interval", "100ms"}, nil, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, args := slowJob(t, 3)
			r := runTrawl(t, append(args, tt.args...)...)
			wantExit(t, r, exitOK)
			if tt.quiet {
				if r.stderr != "" || r.stdout != "" {
					t.Errorf("-q printed something on success:\nstdout %q\nstderr %q", r.stdout, r.stderr)
				}
				return
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr has no %s:\n%s", w, tail(r.stderr))
				}
			}
			if n := strings.Count(r.stderr, tt.want[0]); n < tt.minLines {
				t.Errorf("%d progress lines, want at least %d:\n%s", n, tt.minLines, tail(r.stderr))
			}
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if last := lines[len(lines)-1]; !strings.Contains(last, tt.want[1]) {
				t.Errorf("last line is not the summary: %q", last)
			}
			if strings.ContainsAny(r.stderr, "\r\x1b") {
				t.Errorf("terminal drawing (CR or escape sequences) in plain output:\n%q", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout is not empty: %q", r.stdout)
			}
		})
	}
}
