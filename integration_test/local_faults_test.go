package integration_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/internal/testserver"
	"github.com/trawl-dev/trawl/queue"
)

// TestDiskFullMidBody: the output file system fills up in the middle of a body. The run stops
// with exit 3 and says why; the URL is left pending or failed, never done; the state file
// (on another file system) stays usable; and once there is room the same command finishes.
func TestDiskFullMidBody(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	const big = "/big.bin"
	s.Handle(big, testserver.Size(3<<20))
	smalls := []string{"/s1.bin", "/s2.bin", "/s3.bin"}
	for _, p := range smalls {
		s.Handle(p, testserver.Size(20<<10))
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	mountTmpfs(t, out, "size=1m")
	state := filepath.Join(dir, "state.db")
	args := []string{"get", "-o", out, "--state", state, "--ca-cert", ca, "-c", "1", "--per-host", "1"}
	for _, p := range append(smalls, big) {
		args = append(args, s.URL(p))
	}

	r := runTrawl(t, args...)
	wantExit(t, r, exitFatal)
	if msg := strings.ToLower(r.stderr); !strings.Contains(msg, "no space") && !strings.Contains(msg, "disk full") {
		t.Errorf("stderr does not say the disk is full:\n%s", tail(r.stderr))
	}
	if strings.Contains(r.stderr, "panic") {
		t.Errorf("panic:\n%s", tail(r.stderr))
	}
	recs := stateRecords(t, state)
	checkDoneRecords(t, out, recs)
	bigRec, ok := recordFor(recs, s.URL(big))
	if !ok || (bigRec.State != queue.Pending && bigRec.State != queue.Failed) {
		t.Errorf("%s after disk full: %+v, want pending or failed", big, bigRec)
	}
	wantNoFile(t, mirrorPath(out, s, big))
	st := runTrawl(t, "status", "--state", state, "--json")
	wantExit(t, st, exitOK)

	remount(t, out, "size=16m")
	wantExit(t, runTrawl(t, args...), exitOK)
	recs = stateRecords(t, state)
	done := checkDoneRecords(t, out, recs)
	checkNoStrayFiles(t, out, done)
	for _, p := range append(smalls, big) {
		wantFile(t, out, s, p)
	}
}

// TestReadOnlyOutputMount: an output directory on a read-only file system is fatal at once
// (exit 3, a message naming the directory), also for root, who ignores permission bits.
func TestReadOnlyOutputMount(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "ro")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	mountTmpfs(t, out, "ro,size=1m")
	r := runTrawl(t, "get", "-o", out, "--state", filepath.Join(dir, "state.db"), "--ca-cert", ca, s.URL("/a.bin"), s.URL("/b.bin"))
	wantExit(t, r, exitFatal)
	if !strings.Contains(r.stderr, out) || (!strings.Contains(r.stderr, "not writable") && !strings.Contains(r.stderr, "read-only")) {
		t.Errorf("stderr does not say %s is not writable:\n%s", out, tail(r.stderr))
	}
	if n := len(s.Requests()); n > 1 {
		t.Errorf("%d requests to fill a read-only output", n)
	}
}

// TestCorruptStateFile: a state file that is truncated, zero-filled or garbage makes every
// command that opens it exit 3 with a one-line message naming it; nothing panics and nothing
// is fetched.
func TestCorruptStateFile(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	good := t.TempDir()
	wantExit(t, runTrawl(t, "get", "-o", good, "--ca-cert", ca, s.URL("/a.bin"), s.URL("/b.bin")), exitOK)
	orig, err := os.ReadFile(defaultState(good))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, len(orig))
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	// The file is preallocated: cut just below its last page in use, so live data is lost.
	const page = 4096
	used := len(orig)
	for used > 0 && bytes.Count(orig[used-page:used], []byte{0}) == page {
		used -= page
	}
	t.Logf("state file: %d bytes, %d in use", len(orig), used)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"truncated below its last page", orig[:used-page]},
		{"truncated mid-page", orig[:used-page/2]},
		{"truncated to the meta pages", orig[:2*page]},
		{"truncated to 100 bytes", orig[:100]},
		{"zero-filled", make([]byte, len(orig))},
		{"garbage", garbage},
		{"short garbage", []byte("this is not a bbolt file\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			state := defaultState(out)
			if err := os.MkdirAll(filepath.Dir(state), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(state, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			n0 := len(s.Requests())
			for _, args := range [][]string{
				{"get", "-o", out, "--ca-cert", ca, s.URL("/a.bin")},
				{"status", "-o", out},
				{"status", "-o", out, "--json"},
				{"retry", "-o", out},
			} {
				r := runTrawl(t, args...)
				if r.code != exitFatal {
					t.Errorf("trawl %s: exit %d, want %d; stderr:\n%s", args[0], r.code, exitFatal, tail(r.stderr))
				}
				if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
					t.Errorf("trawl %s panicked:\n%s", args[0], head(r.stderr, 3000))
				}
				if !strings.Contains(r.stderr, "state.db") {
					t.Errorf("trawl %s: message does not name the state file:\n%s", args[0], tail(r.stderr))
				}
			}
			if n := len(s.Requests()) - n0; n != 0 {
				t.Errorf("%d requests with a corrupt state file", n)
			}
			if b, _ := os.ReadFile(state); !bytes.Equal(b, tc.data) {
				t.Errorf("the corrupt state file was modified (%d bytes, was %d): the evidence is gone", len(b), len(tc.data))
			}
		})
	}
}

// head is the start of a long log: where a crash says what happened.
func head(s string, n int) string {
	if len(s) > n {
		return s[:n] + "\n..."
	}
	return s
}

// TestCorruptStateFileDataPages: a state file whose meta pages are intact but whose data pages
// are damaged (bit rot, a torn copy) must give exit 3 and a message, like the cases above.
func TestCorruptStateFileDataPages(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	good := t.TempDir()
	wantExit(t, runTrawl(t, "get", "-o", good, "--ca-cert", ca, s.URL("/a.bin"), s.URL("/b.bin")), exitOK)
	orig, err := os.ReadFile(defaultState(good))
	if err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		trashed := bytes.Clone(orig)
		for i := 2*4096 + round; i < len(trashed); i += 97 { // keep the two meta pages
			trashed[i] ^= 0xff
		}
		out := t.TempDir()
		state := defaultState(out)
		os.MkdirAll(filepath.Dir(state), 0o755)
		if err := os.WriteFile(state, trashed, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"status", "-o", out}, {"get", "-o", out, "--ca-cert", ca, s.URL("/a.bin")}} {
			r := runTrawl(t, args...)
			if r.code != exitFatal || strings.Contains(r.stderr, "fatal error") || strings.Contains(r.stderr, "goroutine ") {
				t.Fatalf("round %d, trawl %s: exit %d, want %d with a message; stderr:\n%s", round, args[0], r.code, exitFatal, head(r.stderr, 3000))
			}
		}
	}
}

// TestReadOnlyStateMount: a healthy state file on a file system remounted read-only is reported
// as read-only (exit 3), never as corrupt — a user told "corrupt" deletes it; trawl status still
// reads it.
func TestReadOnlyStateMount(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	out, stateDir := t.TempDir(), t.TempDir()
	mountTmpfs(t, stateDir, "size=4m")
	state := filepath.Join(stateDir, "state.db")
	args := []string{"get", "-o", out, "--state", state, "--ca-cert", ca, s.URL("/a.bin")}
	wantExit(t, runTrawl(t, args...), exitOK)
	remount(t, stateDir, "ro")
	r := runTrawl(t, args...)
	wantExit(t, r, exitFatal)
	if !strings.Contains(r.stderr, state) || !strings.Contains(r.stderr, "read-only") || strings.Contains(r.stderr, "corrupt") {
		t.Errorf("stderr does not say %s is read-only (or calls it corrupt):\n%s", state, tail(r.stderr))
	}
	if st := trawlStatus(t, "--state", state); st.Job.Done != 1 {
		t.Errorf("status of the read-only state: job %+v, want 1 done", st.Job)
	}
}
