package integration_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// slow serves a body at about 5 MiB/s, so that a test can interrupt its transfer; fast undoes
// it for the run after the interruption (a path's later options override earlier ones).
var (
	slow = testserver.Drip(128<<10, 25*time.Millisecond)
	fast = testserver.Drip(0, 0)
)

// TestKill9Resume kills trawl with SIGKILL in the middle of a large file. The same command then
// finishes the job: the large file resumes with a Range request from the bytes already on disk,
// and nothing finished before the kill is requested again.
func TestKill9Resume(t *testing.T) {
	t.Parallel()
	ss, ca := servers(t, 2)
	a, b := ss[0], ss[1]
	const big = "/iso/big.bin"
	a.Handle(big, testserver.Body(testserver.Content(1, 64<<20)), slow)
	small := []struct {
		s    *testserver.Server
		path string
	}{{a, "/s/1.txt"}, {a, "/s/2.txt"}, {a, "/s/3.txt"}, {b, "/s/4.txt"}, {b, "/s/5.txt"}}
	lines := []string{a.URL(big)}
	for i, f := range small {
		f.s.Handle(f.path, testserver.Size(int64(1000*i+1)))
		lines = append(lines, f.s.URL(f.path))
	}
	list := writeList(t, lines...)
	out := t.TempDir()
	// Over HTTP/1.1 only: with HTTP/2 offered the 64 MiB body is asked again over HTTP/1.1 (see
	// fetcher.ProtocolAuto), which doubles the requests this test counts.
	args := []string{"get", "-i", list, "-o", out, "--ca-cert", ca, "--progress-interval", "50ms", "--http1.1"}
	part := mirrorPath(out, a, big) + ".part"

	p := startUntilPart(t, part, 4<<20, args...)
	// The progress line counts committed outcomes: once it says 5, the small files are
	// recorded done in the state file, and the kill must not cost them.
	p.waitStderr("a progress line counting the small files done", func(s string) bool {
		return logInt(lastLine(s, "msg=progress"), "done") == len(small)
	}, 30*time.Second)
	p.kill9()
	offset := fileSize(part)
	if offset <= 0 || offset >= 64<<20 {
		t.Fatalf(".part has %d bytes after the kill, want a partial file", offset)
	}

	a.Handle(big, fast)
	r := runTrawl(t, args...)
	wantExit(t, r, exitOK)

	wantFile(t, out, a, big)
	reqs := a.RequestsFor(big)
	if len(reqs) != 2 {
		t.Fatalf("%s requested %d times, want 2 (first run, resume)", big, len(reqs))
	}
	if got, want := reqs[1].Header.Get("Range"), fmt.Sprintf("bytes=%d-", offset); got != want {
		t.Errorf("resume request has Range %q, want %q (the .part's size)", got, want)
	}
	if reqs[1].Header.Get("If-Range") == "" {
		t.Errorf("resume request has no If-Range: it could splice two versions of the file")
	}
	for _, f := range small {
		if n := len(f.s.RequestsFor(f.path)); n != 1 {
			t.Errorf("%s requested %d times, want once: it was done before the kill", f.s.URL(f.path), n)
		}
		wantFile(t, out, f.s, f.path)
	}
	if parts := partFiles(t, out); len(parts) > 0 {
		t.Errorf("temporary files left behind: %s", strings.Join(parts, ", "))
	}
}

// TestResumeIgnoredRange: a server that answers the resume's Range request with 200 and the
// whole body must not have it appended to the .part; the download restarts from zero.
func TestResumeIgnoredRange(t *testing.T) {
	t.Parallel()
	s, ca := server(t, testserver.IgnoreRange())
	const path = "/big.bin"
	s.Handle(path, testserver.Body(testserver.Content(2, 16<<20)), slow)
	out := t.TempDir()
	args := []string{"get", "-o", out, "--ca-cert", ca, "--http1.1", s.URL(path)} // see TestKill9Resume
	part := mirrorPath(out, s, path) + ".part"

	startUntilPart(t, part, 1<<20, args...).kill9()
	offset := fileSize(part)

	s.Handle(path, fast)
	r := runTrawl(t, args...)
	wantExit(t, r, exitOK)
	wantFile(t, out, s, path)
	reqs := s.RequestsFor(path)
	if len(reqs) < 2 || reqs[1].Header.Get("Range") != fmt.Sprintf("bytes=%d-", offset) {
		t.Fatalf("the rerun did not try to resume from the %d-byte .part; requests: %+v", offset, reqs)
	}
	if parts := partFiles(t, out); len(parts) > 0 {
		t.Errorf("temporary files left behind: %s", strings.Join(parts, ", "))
	}
}

// TestInterrupt: SIGINT during a slow transfer ends trawl with 130 — after the grace period for
// in-flight transfers on the first signal, at once on the second — and the same command then
// finishes the file, resuming the .part the interrupted run kept.
func TestInterrupt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		signals int
		within  time.Duration // from the last signal to the exit
	}{
		// The grace for in-flight transfers is 5 s; the transfer needs far longer.
		{"one SIGINT waits out the grace period", 1, 10 * time.Second},
		{"second SIGINT exits at once", 2, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, ca := server(t)
			const path = "/slow.bin"
			// ~1.3 MiB/s for 16 MiB: still running when the grace period ends.
			s.Handle(path, testserver.Body(testserver.Content(3, 16<<20)), testserver.Drip(32<<10, 25*time.Millisecond))
			out := t.TempDir()
			args := []string{"get", "-o", out, "--ca-cert", ca, s.URL(path)}
			part := mirrorPath(out, s, path) + ".part"

			p := startUntilPart(t, part, 256<<10, args...)
			p.signal(os.Interrupt)
			if tt.signals == 2 {
				p.waitStderr("the interrupt notice", func(s string) bool { return strings.Contains(s, "interrupted") }, 10*time.Second)
				p.signal(os.Interrupt)
			}
			last := time.Now()
			r := p.wait(30 * time.Second)
			if d := time.Since(last); d > tt.within {
				t.Errorf("exited %s after the last signal, want within %s", d.Round(time.Millisecond), tt.within)
			}
			wantExit(t, r, exitInterrupted)
			if fileSize(part) <= 0 {
				t.Fatalf("no .part kept after the interrupt")
			}
			wantNoFile(t, mirrorPath(out, s, path))

			s.Handle(path, fast)
			r = runTrawl(t, args...)
			wantExit(t, r, exitOK)
			wantFile(t, out, s, path)
			reqs := s.RequestsFor(path)
			if rg := reqs[len(reqs)-1].Header.Get("Range"); !strings.HasPrefix(rg, "bytes=") || rg == "bytes=0-" {
				t.Errorf("rerun did not resume the kept .part: Range %q", rg)
			}
		})
	}
}

// TestKill9ManyFiles kills trawl in the middle of a list of many small files. The rerun must not
// request again any URL that the killed run had already reported done, and must finish the rest.
func TestKill9ManyFiles(t *testing.T) {
	t.Parallel()
	const hosts, perHost = 3, 200
	ss, ca := servers(t, hosts)
	var lines []string
	for _, s := range ss {
		for i := range perHost {
			p := fmt.Sprintf("/m/%03d.bin", i)
			// ~20-120 ms each: the job takes a few seconds, so the kill lands mid-list even if
			// the test is slow to act on the progress line.
			s.Handle(p, testserver.Size(int64(4096+i*97)), testserver.Drip(4096, 20*time.Millisecond))
			lines = append(lines, s.URL(p))
		}
	}
	out := t.TempDir()
	args := []string{"get", "-i", writeList(t, lines...), "-o", out, "--ca-cert", ca, "--progress-interval", "20ms"}
	p := start(t, trawlCmd(args...))
	const atLeast = 100
	p.waitStderr(fmt.Sprintf("a progress line with %d done", atLeast), func(s string) bool {
		return logInt(lastLine(s, "msg=progress"), "done") >= atLeast
	}, 30*time.Second)
	p.kill9()
	// Progress counts committed outcomes only, so at least this many URLs are recorded done.
	done := logInt(lastLine(p.res.stderr, "msg=progress"), "done")
	if done >= hosts*perHost {
		t.Fatalf("the job finished before the kill (done=%d); nothing left to test", done)
	}
	before := make([]map[string]int, hosts)
	for h, s := range ss {
		before[h] = countPaths(s.Requests())
	}

	wantExit(t, runTrawl(t, args...), exitOK)
	notAgain := 0 // requested by the killed run and not by the rerun
	for h, s := range ss {
		after := countPaths(s.Requests())
		for path, n := range before[h] {
			if after[path] == n {
				notAgain++
			}
		}
		for i := range perHost {
			wantFile(t, out, s, fmt.Sprintf("/m/%03d.bin", i))
		}
	}
	if notAgain < done {
		t.Errorf("the killed run reported %d done, but only %d of its URLs were left alone by the rerun", done, notAgain)
	}
	if parts := partFiles(t, out); len(parts) > 0 {
		t.Errorf("temporary files left behind: %s", strings.Join(parts, ", "))
	}
}
