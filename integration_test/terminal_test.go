package integration_test

import (
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// terminal is a trawl whose stderr is a pseudo-terminal, and what it drew there.
type terminal struct {
	*proc
	screen   *syncBuffer
	readDone chan struct{}
}

// startOnTerminal starts trawl with args and its stderr on a pseudo-terminal 160 columns wide.
func startOnTerminal(t *testing.T, args ...string) *terminal {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 160}); err != nil {
		t.Fatal(err)
	}
	term := &terminal{screen: newSyncBuffer(), readDone: make(chan struct{})}
	go func() {
		defer close(term.readDone)
		// Reading ends with EIO once the last holder of the terminal's other side is gone.
		if _, err := io.Copy(term.screen, ptmx); err != nil && !errors.Is(err, syscall.EIO) {
			t.Errorf("reading the terminal: %v", err)
		}
	}()
	cmd := trawlCmd(args...)
	cmd.Stderr = tty
	term.proc = start(t, cmd)
	tty.Close() // trawl holds its own copy
	return term
}

// waitScreen waits until the terminal shows what ok looks for.
func (term *terminal) waitScreen(what string, ok func(string) bool) {
	term.t.Helper()
	if !term.screen.waitFor(ok, term.exited, 30*time.Second) {
		term.t.Fatalf("waiting for %s on the terminal: not seen (exited: %v); screen:\n%q", what, term.hasExited(), tail(term.screen.String()))
	}
}

// finish waits for trawl to exit and for the terminal to be read to its end.
func (term *terminal) finish() (result, string) {
	term.t.Helper()
	r := term.wait(runTimeout)
	<-term.readDone
	return r, term.screen.String()
}

// frames are the states of the progress bar drawn on screen, in order.
func frames(screen string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(screen, func(r rune) bool { return r == '\r' || r == '\n' }) {
		if strings.Contains(f, " files") && strings.Contains(f, "|") {
			out = append(out, f)
		}
	}
	return out
}

// TestProgressTerminalWaiting: the bar says what a run is waiting for — a URL's retry and a host
// cooling down after a 503 with Retry-After — rather than sitting still.
func TestProgressTerminalWaiting(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	s.Handle("/busy.bin", testserver.Statuses(503), testserver.RetryAfter("3"))
	term := startOnTerminal(t, "get", "-o", t.TempDir(), "--ca-cert", ca, s.URL("/busy.bin"))
	term.waitScreen("a retry waiting and a host cooling down", func(screen string) bool {
		return regexp.MustCompile(`1 retry waiting \(next in [0-9.]+m?s\) · 1 host cooling down \(up to [0-9.]+m?s\)`).MatchString(screen)
	})
	r, screen := term.finish()
	wantExit(t, r, exitOK)
	if last := frames(screen); len(last) == 0 || !strings.Contains(last[len(last)-1], "1/1 files") {
		t.Errorf("the last frame does not show the file done:\n%q", tail(screen))
	}
}

// TestProgressTerminalBigFile: while a big file comes in, the bar shows its bytes growing, the
// rate, and a percent that counts the file's bytes (its length is declared), where it used to say
// "0%, ETA 0s" until the file ended.
func TestProgressTerminalBigFile(t *testing.T) {
	t.Parallel()
	s, ca := server(t, testserver.Size(4<<20), testserver.Drip(256<<10, 100*time.Millisecond))
	term := startOnTerminal(t, "get", "-o", t.TempDir(), "--ca-cert", ca, s.URL("/big.bin"))
	mib := regexp.MustCompile(`0/1 files · ([0-9.]+) MiB · ([0-9.]+) (KiB|MiB)/s`)
	term.waitScreen("the bytes of the big file growing", func(screen string) bool {
		return len(mib.FindAllString(screen, -1)) >= 2
	})
	// The percent counts the big file's bytes: it moves while the file is still coming, rather
	// than sitting at 0% until it ends.
	moving := regexp.MustCompile(`\b([1-9][0-9]?)% .*0/1 files`)
	term.waitScreen("the percent moving before the file ends", func(screen string) bool {
		return moving.MatchString(screen)
	})
	r, screen := term.finish()
	wantExit(t, r, exitOK)
	if !strings.Contains(screen, "1/1 files · 4.0 MiB") {
		t.Errorf("no frame shows the file done with its 4 MiB:\n%q", tail(screen))
	}
}

// TestProgressPlainFields: a progress line off a terminal has the percent done, an ETA, and what
// the run waits for, as key=value fields.
func TestProgressPlainFields(t *testing.T) {
	t.Parallel()
	_, args := slowJob(t, 3)
	r := runTrawl(t, append(args, "--progress-interval", "100ms")...)
	wantExit(t, r, exitOK)
	line := lastLine(r.stderr, "msg=progress")
	for _, key := range []string{"done", "total", "percent", "eta", "failed", "retries", "retries_waiting", "hosts_cooling", "in_flight", "bytes", "rate"} {
		if !regexp.MustCompile(`(^| )` + key + `=`).MatchString(line) {
			t.Errorf("progress line has no %s=: %q", key, line)
		}
	}
	var percents []float64
	for _, l := range strings.Split(r.stderr, "\n") {
		if m := regexp.MustCompile(`percent=([0-9.]+)`).FindStringSubmatch(l); m != nil {
			p, err := strconv.ParseFloat(m[1], 64)
			if err != nil || p < 0 || p > 100 {
				t.Errorf("percent %q in %q", m[1], l)
			}
			percents = append(percents, p)
		}
	}
	for i := 1; i < len(percents); i++ {
		if percents[i] < percents[i-1] {
			t.Errorf("percent went down: %v", percents)
		}
	}
	if !strings.Contains(r.stderr, "eta=unknown") {
		t.Errorf("no line says the ETA is unknown before a file finished:\n%s", tail(r.stderr))
	}
}
