package integration_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// trawlBin is the binary under test: $TRAWL_BIN, or one built by TestMain.
var trawlBin string

// Exit codes, as README documents them.
const (
	exitOK          = 0
	exitFailed      = 1 // some URLs failed permanently
	exitUsage       = 2
	exitFatal       = 3 // state locked or corrupt, output not writable
	exitTransient   = 4 // transient failures remain after all retries
	exitInterrupted = 130
)

// runTimeout bounds every run of the binary: a hung trawl fails its test instead of the package.
const runTimeout = 60 * time.Second

// promptly bounds a run that must give up or answer at once rather than wait (a job another run
// holds). trawl waits a second for the state lock; the rest is room for a loaded -race run to
// start and exit, and still far short of waiting for the holder.
const promptly = 5 * time.Second

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if bin := os.Getenv("TRAWL_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "TRAWL_BIN:", err)
			return 2
		}
		trawlBin = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "trawl-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	trawlBin = filepath.Join(dir, "trawl")
	if runtime.GOOS == "windows" {
		trawlBin += ".exe"
	}
	// Built without -race on purpose: the tests race-check themselves and the test server; the
	// binary's own packages have their race-enabled unit tests.
	build := exec.Command("go", "build", "-o", trawlBin, "github.com/trawl-dev/trawl/cmd/trawl")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building trawl:", err)
		return 2
	}
	return m.Run()
}

// syncBuffer collects a process's output while tests wait for text to appear in it.
type syncBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	notify chan struct{} // closed and replaced on every write
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{notify: make(chan struct{})} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.notify)
	b.notify = make(chan struct{})
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor blocks until ok(output) holds, the process exits (exited is closed) or timeout
// passes, and reports whether ok held. It wakes on every write, not by polling.
func (b *syncBuffer) waitFor(ok func(string) bool, exited <-chan struct{}, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		s, ch := b.buf.String(), b.notify
		b.mu.Unlock()
		if ok(s) {
			return true
		}
		select {
		case <-ch:
		case <-exited:
			return ok(b.String())
		case <-deadline.C:
			return false
		}
	}
}

// result is how one run of trawl ended.
type result struct {
	code           int // exit code; -1 when killed by a signal
	stdout, stderr string
	elapsed        time.Duration // from start to exit
}

// proc is a running trawl. Its cleanup kills it if the test did not wait for it, before the
// test's temporary directories are removed.
type proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	start  time.Time
	exited chan struct{} // closed when the process has exited
	res    result
}

// trawlCmd is an unstarted trawl with args; tests may set Stdin or Stderr before start.
func trawlCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(trawlBin, args...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	// A test feeding stdin from a pipe it has not closed must not keep Wait from returning
	// once trawl has exited.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// start runs cmd in the background. Output not redirected by the test is captured.
func start(t testing.TB, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{t: t, cmd: cmd, stdout: newSyncBuffer(), stderr: newSyncBuffer(), exited: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = p.stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = p.stderr
	}
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting trawl: %v", err)
	}
	go func() {
		err := cmd.Wait()
		p.res.elapsed = time.Since(p.start)
		p.res.code = cmd.ProcessState.ExitCode()
		if err != nil && p.res.code == 0 {
			p.res.code = -1
		}
		p.res.stdout, p.res.stderr = p.stdout.String(), p.stderr.String()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// wait waits for the process to exit; after timeout it kills it and fails the test.
func (p *proc) wait(timeout time.Duration) result {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.res
	case <-time.After(timeout):
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.t.Fatalf("trawl %s still running after %s; killed it. stderr:\n%s",
		strings.Join(p.cmd.Args[1:], " "), timeout, tail(p.res.stderr))
	return p.res
}

// signal sends sig to the running process.
func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// kill9 kills the process with SIGKILL and waits for it to be gone.
func (p *proc) kill9() {
	p.t.Helper()
	p.signal(syscall.SIGKILL)
	if r := p.wait(10 * time.Second); r.code != -1 {
		p.t.Fatalf("trawl exited with %d before SIGKILL hit it; stderr:\n%s", r.code, tail(r.stderr))
	}
}

// waitStderr waits until stderr satisfies ok; it fails the test on timeout or if trawl exits
// first.
func (p *proc) waitStderr(what string, ok func(string) bool, timeout time.Duration) {
	p.t.Helper()
	if !p.stderr.waitFor(ok, p.exited, timeout) {
		p.t.Fatalf("waiting for %s on trawl's stderr: not seen within %s (exited: %v); stderr:\n%s",
			what, timeout, p.hasExited(), tail(p.stderr.String()))
	}
}

func (p *proc) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// runTrawl runs trawl with args to completion (bounded by runTimeout).
func runTrawl(t testing.TB, args ...string) result {
	t.Helper()
	return start(t, trawlCmd(args...)).wait(runTimeout)
}

// wantExit fails the test unless r exited with code.
func wantExit(t testing.TB, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", r.code, code, tail(r.stderr))
	}
}

// tail is the end of a long log, enough to diagnose a failure without flooding the output.
func tail(s string) string {
	const max = 4000
	if len(s) > max {
		return "...\n" + s[len(s)-max:]
	}
	return s
}

// eventually polls cond (a file system condition: there is no other event to wait on) until it
// holds, failing the test after timeout. exited, if not nil, stops the wait early when the
// process it belongs to is gone.
func eventually(t testing.TB, what string, timeout time.Duration, exited <-chan struct{}, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-exited:
			if !cond() {
				t.Fatalf("trawl exited while waiting for %s", what)
			}
			return
		case <-tick.C:
		}
	}
}

// servers starts n default HTTPS test servers; they share httptest's certificate, so the one
// CA file returned trusts them all.
func servers(t testing.TB, n int, opts ...testserver.Option) ([]*testserver.Server, string) {
	t.Helper()
	ss := make([]*testserver.Server, n)
	for i := range ss {
		ss[i] = testserver.New(t, opts...)
	}
	return ss, ss[0].CAFile(t)
}

// server starts one test server and returns it with its CA file.
func server(t testing.TB, opts ...testserver.Option) (*testserver.Server, string) {
	t.Helper()
	ss, ca := servers(t, 1, opts...)
	return ss[0], ca
}

// mirrorPath is where --layout mirror puts s's path under out.
func mirrorPath(out string, s *testserver.Server, path string) string {
	return filepath.Join(out, s.Addr(), filepath.FromSlash(strings.TrimPrefix(path, "/")))
}

// writeList writes a URL list file (one entry per line) and returns its path.
func writeList(t testing.TB, lines ...string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "urls.txt")
	if err := os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func fileSHA256(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("downloaded file: %v", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// wantFile fails unless the file at out's mirror path of s's path is byte-identical to what
// s serves there.
func wantFile(t testing.TB, out string, s *testserver.Server, path string) {
	t.Helper()
	if got, want := fileSHA256(t, mirrorPath(out, s, path)), s.SHA256(path); got != want {
		t.Errorf("%s: sha256 %s, want %s", s.URL(path), got, want)
	}
}

// wantNoFile fails if name exists.
func wantNoFile(t testing.TB, name string) {
	t.Helper()
	if _, err := os.Lstat(name); err == nil {
		t.Errorf("%s exists, want no file there", name)
	} else if !os.IsNotExist(err) {
		t.Error(err)
	}
}

// partFiles lists the .part files (and their sidecars) under dir.
func partFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".part") || strings.HasSuffix(p, ".part.meta")) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fileSize is the size of name, or -1 if it does not exist.
func fileSize(name string) int64 {
	fi, err := os.Stat(name)
	if err != nil {
		return -1
	}
	return fi.Size()
}

// countPaths counts requests per path.
func countPaths(reqs []testserver.Request) map[string]int {
	n := map[string]int{}
	for _, r := range reqs {
		n[r.Path]++
	}
	return n
}

// firstOnly applies fault to the first request for path only, later ones are served normally.
// The server evaluates a path's options for every request after logging it, so the log tells
// which request this is. (Generic so that it can wrap testserver.Option, whose parameter type
// is unexported.)
func firstOnly[P any](s *testserver.Server, path string, fault func(P)) func(P) {
	return func(c P) {
		if len(s.RequestsFor(path)) <= 1 {
			fault(c)
		}
	}
}

// startUntilPart starts trawl with args and waits until the .part file part holds more than
// minBytes: a transfer is then under way.
func startUntilPart(t testing.TB, part string, minBytes int64, args ...string) *proc {
	t.Helper()
	p := start(t, trawlCmd(args...))
	eventually(t, fmt.Sprintf("%s to exceed %d bytes", part, minBytes), 30*time.Second, p.exited,
		func() bool { return fileSize(part) > minBytes })
	return p
}

// lastLine is the last line of log that contains substr, or "".
func lastLine(log, substr string) string {
	lines := strings.Split(log, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], substr) {
			return lines[i]
		}
	}
	return ""
}

// logHas reports whether a text-format log line has key=value.
func logHas(line, key, value string) bool {
	return regexp.MustCompile(`(^| )` + regexp.QuoteMeta(key+"="+value) + `( |$)`).MatchString(line)
}

// logInt is the integer value of key in a text-format log line, or -1.
func logInt(line, key string) int {
	m := regexp.MustCompile(`(?:^| )` + regexp.QuoteMeta(key) + `=(\d+)(?: |$)`).FindStringSubmatch(line)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
