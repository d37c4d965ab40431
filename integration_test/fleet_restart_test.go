package integration_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestFleetNATSRestart: the NATS server of a shared job is killed with SIGKILL (or stopped
// gracefully) in the middle of the job and started again on its store and port. The workers ride it out: they reconnect, and
// the job completes with every file whole in one of their outputs and every URL recorded done.
func TestFleetNATSRestart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		stop func(*natsProc)
	}{
		{"kill -9", (*natsProc).kill9},
		// A graceful stop ends the workers' pulls with "server shutdown", which is an outage too.
		{"graceful stop", (*natsProc).stop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			natsRestart(t, tc.stop)
		})
	}
}

func natsRestart(t *testing.T, stop func(*natsProc)) {
	const hosts, files, rate = 10, 1500, 30
	dir := t.TempDir()
	n := startNATS(t, dir, -1)
	count := newRequestCounter()
	site := newFleetSite(t, hosts, files, count.option())
	list := writeList(t, site.urls...)
	const job = "restart"
	outs := map[string]string{}
	worker := func(name string) *proc {
		outs[name] = t.TempDir()
		return start(t, trawlCmd("get", "-i", list, "-o", outs[name], "--ca-cert", site.ca, "--queue", n.url, "--job", job,
			"--rate", fmt.Sprint(rate), "--lease-time", "5s", "-H", "X-Worker: "+name, "--progress-interval", "1s"))
	}
	ws := map[string]*proc{"a": worker("a"), "b": worker("b")}
	count.waitFor(t, "two fifths of the job asked for", 2*time.Minute, func(n int, _ map[string]int) bool { return n >= files*2/5 })
	stop(n)
	killedAt := time.Now()
	// Back once both workers have found it gone, and gone on without it for a progress line.
	for _, p := range ws {
		p.waitStderr("the worker losing its connection, then a progress line", func(s string) bool {
			_, after, lost := strings.Cut(s, "lost the connection to the NATS server")
			return lost && strings.Contains(after, "msg=progress")
		}, 30*time.Second)
	}
	n = startNATS(t, dir, n.port())
	t.Logf("NATS down for %s", time.Since(killedAt).Round(time.Millisecond))

	for name, p := range ws {
		if r := p.wait(3 * time.Minute); r.code != exitOK {
			t.Fatalf("worker %s exited %d:\n%s", name, r.code, tail(r.stderr))
		}
	}
	site.checkOutputs(t, outs)
	st := jobStatus(t, n.url, job)
	if st.Job.Done != files || st.Job.Total != files {
		t.Errorf("after the job: %+v, want all %d done", st.Job, files)
	}
	dups := 0
	for _, reqs := range site.requests() {
		dups += len(reqs) - 1
	}
	for name, p := range ws {
		if !strings.Contains(p.res.stderr, "reconnected to the NATS server") {
			t.Errorf("worker %s does not say it reconnected:\n%s", name, tail(p.res.stderr))
		}
	}
	t.Logf("%d URLs fetched again", dups)
}
