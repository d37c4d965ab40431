package integration_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/natstest"
	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestFleetKill9: two trawl workers share one job on JetStream, each saving to its own disk, as
// two machines would. One is killed with SIGKILL in the middle of a slow file; the other
// finishes the job: every file is saved, whole, on one of the two disks, and what the killed
// worker had finished is not fetched again.
func TestFleetKill9(t *testing.T) {
	t.Parallel()
	nats := natstest.Server(t).ClientURL()
	ss, ca := servers(t, 4)
	var lines []string
	for h, s := range ss {
		for i := range 10 {
			p := fmt.Sprintf("/f/%d-%d.bin", h, i)
			s.Handle(p, testserver.Size(int64(4<<10+100*i)))
			lines = append(lines, s.URL(p))
		}
	}
	const slowPath = "/f/slow.bin"
	ss[0].Handle(slowPath, testserver.Size(256<<10), testserver.StallAfter(64<<10))
	lines = append(lines, ss[0].URL(slowPath))
	list := writeList(t, lines...)
	outA, outB := t.TempDir(), t.TempDir()
	args := func(out string) []string {
		return []string{"get", "-i", list, "-o", out, "--ca-cert", ca, "--queue", nats, "--job", "fleet",
			"--progress-interval", "50ms", "--idle-timeout", "30s", "--lease-time", "1s"}
	}

	// Worker A starts alone, and dies with SIGKILL once it has recorded most of the job done and
	// is in the middle of the slow file.
	a := start(t, trawlCmd(args(outA)...))
	a.waitStderr("a progress line with 30 done", func(s string) bool {
		return logInt(lastLine(s, "msg=progress"), "done") >= 30
	}, 30*time.Second)
	eventually(t, "worker a in the middle of the slow file", 30*time.Second, a.exited, func() bool {
		return len(ss[0].RequestsFor(slowPath)) > 0
	})
	a.kill9()
	before := map[string]int{}
	for _, s := range ss {
		for p, n := range countPaths(s.Requests()) {
			before[s.URL(p)] = n
		}
	}

	// Worker B, on another "machine", finishes the job once the dead worker's leases lapse.
	ss[0].Handle(slowPath, testserver.Size(256<<10), testserver.StallAfter(-1))
	r := runTrawl(t, args(outB)...)
	wantExit(t, r, exitOK)
	for _, u := range lines {
		var s *testserver.Server
		var p string
		for _, c := range ss {
			if len(u) > len(c.URL("")) && u[:len(c.URL(""))] == c.URL("") {
				s, p = c, u[len(c.URL("")):]
			}
		}
		inA, inB := exists(mirrorPath(outA, s, p)), exists(mirrorPath(outB, s, p))
		switch {
		case inB:
			wantFile(t, outB, s, p)
		case inA:
			wantFile(t, outA, s, p)
		default:
			t.Errorf("%s saved by neither worker", u)
		}
		n := len(s.RequestsFor(p))
		if inA && !inB && n != 1 {
			t.Errorf("%s, saved by worker a, requested %d times: worker b fetched it again", u, n)
		}
	}
	if n := len(ss[0].RequestsFor(slowPath)); n < 2 || before[ss[0].URL(slowPath)] < 1 {
		t.Errorf("the slow file was requested %d times: want worker a's request and worker b's", n)
	}
}

func exists(name string) bool {
	_, err := os.Stat(filepath.Clean(name))
	return err == nil
}
