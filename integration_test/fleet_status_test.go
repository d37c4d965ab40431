package integration_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/trawl-dev/trawl/internal/natstest"
	"github.com/trawl-dev/trawl/internal/testserver"
)

// sharedStatus is `trawl status --json` of a shared job, the fields the tests read.
type sharedStatus struct {
	StateFile *string `json:"state_file"`
	Queue     string  `json:"queue"`
	JobName   string  `json:"job_name"`
	Running   bool    `json:"running"`
	Job       struct {
		Total, Done, Failed, Pending, Skipped int
		Bytes                                 int64
	} `json:"job"`
	Hosts   map[string]struct{ Total, Done, Failed, Pending int } `json:"hosts"`
	Workers []struct {
		ID         string    `json:"id"`
		Host       string    `json:"host"`
		PID        int       `json:"pid"`
		Partitions []int     `json:"partitions"`
		Held       int       `json:"held"`
		Started    time.Time `json:"started"`
		LastSeen   time.Time `json:"last_seen"`
	} `json:"workers"`
	TopErrors []struct {
		Error string
		Count int
	} `json:"top_errors"`
}

// jobStatus runs `trawl status --json` on a shared job.
func jobStatus(t testing.TB, nats, job string) sharedStatus {
	t.Helper()
	r := runTrawl(t, "status", "--queue", nats, "--job", job, "--json")
	wantExit(t, r, exitOK)
	var st sharedStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	return st
}

// waitStatus runs `trawl status` on a shared job until ok holds of it (the workers commit what
// the servers have seen a moment later; the job may not be made yet), failing the test after
// timeout.
func waitStatus(t testing.TB, what, nats, job string, timeout time.Duration, ok func(sharedStatus) bool) sharedStatus {
	t.Helper()
	var st sharedStatus
	eventually(t, what, timeout, nil, func() bool {
		r := runTrawl(t, "status", "--queue", nats, "--job", job, "--json")
		if r.code == exitUsage && strings.Contains(r.stderr, "no shared job") {
			return false
		}
		wantExit(t, r, exitOK)
		st = sharedStatus{}
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, r.stdout)
		}
		return ok(st)
	})
	return st
}

// TestFleetStatusRetry: `trawl status`, `list` and `retry` on a job shared by two workers, from a
// third process that is no worker. Status shows the whole job's counts (both workers' work, a
// 404 among the failures) and each live worker as the OS sees it (its pid, this machine), with
// the partitions dealt between them; list shows the failed URL; retry queues it again, and a
// running worker fetches it. Once the workers are done, status shows no worker and every URL done.
func TestFleetStatusRetry(t *testing.T) {
	t.Parallel()
	nats := natstest.Server(t).ClientURL()
	ss, ca := servers(t, 2)
	var lines []string
	var bytes int64
	for h, s := range ss {
		for i := range 8 {
			p := fmt.Sprintf("/f/%d-%d.bin", h, i)
			s.Handle(p, testserver.Size(int64(1000+i)))
			bytes += int64(1000 + i)
			lines = append(lines, s.URL(p))
		}
	}
	// The first request of gone.bin is a 404; after a retry it is served.
	const gone = "/f/gone.bin"
	ss[0].Handle(gone, testserver.Statuses(http.StatusNotFound))
	bytes += 4096
	// held.bin is answered once the test lets it go: until then the job is running.
	const held = "/f/held.bin"
	release := make(chan struct{})
	ss[1].Handle(held, testserver.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Write([]byte("held"))
	}))
	bytes += 4
	lines = append(lines, ss[0].URL(gone), ss[1].URL(held))
	list := writeList(t, lines...)
	const job = "stat"
	worker := func() *proc {
		return start(t, trawlCmd("get", "-i", list, "-o", t.TempDir(), "--ca-cert", ca, "--queue", nats, "--job", job,
			"--lease-time", "2s", "--idle-timeout", "30s"))
	}
	a, b := worker(), worker()

	// Every URL but held.bin settled: done, or the 404 failed.
	st := waitStatus(t, "status: 16 done, 1 failed, both workers dealt all 16 partitions", nats, job, 30*time.Second, func(st sharedStatus) bool {
		var dealt []int
		for _, w := range st.Workers {
			dealt = append(dealt, w.Partitions...)
		}
		slices.Sort(dealt)
		return st.Job.Done == 16 && st.Job.Failed == 1 && len(st.Workers) == 2 && len(dealt) == 16 && dealt[15] == 15 && len(slices.Compact(dealt)) == 16
	})
	if st.StateFile != nil || st.Queue != nats || st.JobName != job || !st.Running {
		t.Errorf("status: state_file %v, queue %q, job_name %q, running %v; want no state file, %s, %s, running",
			st.StateFile, st.Queue, st.JobName, st.Running, nats, job)
	}
	if st.Job.Total != 18 || st.Job.Pending != 1 || st.Job.Bytes != bytes-4096-4 {
		t.Errorf("job counts %+v: want 18 in all, 1 pending, %d bytes done", st.Job, bytes-4096-4)
	}
	if h := st.Hosts[ss[0].Addr()]; h.Total != 9 || h.Done != 8 || h.Failed != 1 {
		t.Errorf("host %s: %+v, want 9 URLs, 8 done, 1 failed", ss[0].Addr(), h)
	}
	if len(st.TopErrors) != 1 || st.TopErrors[0].Error != "http 404" || st.TopErrors[0].Count != 1 {
		t.Errorf("top errors %+v, want one http 404", st.TopErrors)
	}
	host, _ := os.Hostname()
	pids := []int{a.cmd.Process.Pid, b.cmd.Process.Pid}
	for _, w := range st.Workers {
		if !slices.Contains(pids, w.PID) || w.Host != host || w.ID == "" || w.Started.IsZero() || time.Since(w.LastSeen) > time.Minute {
			t.Errorf("worker %+v: want pid one of %v on %s, an ID, a start and a recent heartbeat", w, pids, host)
		}
	}
	if st.Workers[0].PID == st.Workers[1].PID {
		t.Errorf("both workers have pid %d", st.Workers[0].PID)
	}

	// The same as text, for a person.
	r := runTrawl(t, "status", "--queue", nats, "--job", job)
	wantExit(t, r, exitOK)
	for _, want := range []string{"job:        stat, shared on " + nats, "running:    yes (2 workers)",
		"urls:       18 total, 16 done, 1 failed, 1 pending", " " + strconv.Itoa(a.cmd.Process.Pid) + " ", " " + strconv.Itoa(b.cmd.Process.Pid) + " ", "http 404"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status does not say %q:\n%s", want, r.stdout)
		}
	}

	r = runTrawl(t, "list", "--queue", nats, "--job", job, "--failed")
	wantExit(t, r, exitOK)
	if got := strings.TrimSpace(r.stdout); !strings.HasPrefix(got, ss[0].URL(gone)+"\tfailed\t404") || strings.Count(got, "\n") != 0 {
		t.Errorf("list --failed:\n%s\nwant the one 404", got)
	}

	// Queued again from this third process, the 404 is fetched by a running worker.
	r = runTrawl(t, "retry", "--queue", nats, "--job", job, "--status", "404")
	wantExit(t, r, exitOK)
	if r.stdout != "1 failed URL(s) queued again\n" {
		t.Errorf("retry said %q", r.stdout)
	}
	waitStatus(t, "the URL queued again done", nats, job, 30*time.Second, func(st sharedStatus) bool {
		return st.Job.Done == 17 && st.Job.Failed == 0
	})
	if n := len(ss[0].RequestsFor(gone)); n != 2 {
		t.Errorf("%s requested %d times, want 2 (the 404, and once after retry)", gone, n)
	}

	// A worker's exit code tells of its own run: the one that got the 404 says so.
	close(release)
	ra, rb := a.wait(runTimeout), b.wait(runTimeout)
	if codes := []int{ra.code, rb.code}; !slices.Contains(codes, exitOK) || !slices.Contains(codes, exitFailed) {
		t.Errorf("the workers exited with %v, want %d from the one that got the 404 and %d\n%s\n%s", codes, exitFailed, exitOK, tail(ra.stderr), tail(rb.stderr))
	}
	for _, r := range []result{ra, rb} {
		if !strings.Contains(r.stderr, `msg="joined the shared job" job=stat queue=`+nats+" other_workers=") {
			t.Errorf("a worker did not say which job it joined:\n%s", tail(r.stderr))
		}
	}
	st = jobStatus(t, nats, job)
	if st.Running || len(st.Workers) != 0 || st.Job.Done != 18 || st.Job.Bytes != bytes {
		t.Errorf("after the workers ended: running %v, workers %+v, counts %+v; want no worker, 18 done, %d bytes", st.Running, st.Workers, st.Job, bytes)
	}
	// With no worker live, the list is there and empty (a script reads the key either way).
	var raw map[string]json.RawMessage
	rs := runTrawl(t, "status", "--queue", nats, "--job", job, "--json")
	if err := json.Unmarshal([]byte(rs.stdout), &raw); err != nil || string(raw["workers"]) != "[]" {
		t.Errorf("status --json workers: %s (%v), want []", raw["workers"], err)
	}
}

// TestFleetStatusUsage: status, list and retry of a shared job refuse what cannot be: a job the
// server does not have (and retry does not create it), --queue without --job and the reverse, a
// state file with a queue, a queue URL or job name that cannot be (before connecting), and a
// server that does not answer; get and crawl refuse the same names, and --save with a queue.
func TestFleetStatusUsage(t *testing.T) {
	t.Parallel()
	nats := natstest.Server(t).ClientURL()
	plain, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go plain.Start()
	t.Cleanup(plain.Shutdown)
	if !plain.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server without JetStream not ready")
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"status", "--queue", nats, "--job", "nosuch"}, exitUsage, `no shared job "nosuch" on ` + nats},
		{[]string{"retry", "--queue", nats, "--job", "nosuch"}, exitUsage, `no shared job "nosuch"`},
		{[]string{"list", "--queue", nats, "--job", "nosuch"}, exitUsage, `no shared job "nosuch"`},
		{[]string{"status", "--queue", nats}, exitUsage, "--queue needs --job NAME"},
		{[]string{"retry", "--job", "x"}, exitUsage, "--job names a job shared on --queue"},
		{[]string{"list", "--queue", nats, "--job", "x", "-o", t.TempDir()}, exitUsage, "-o/--state and --queue exclude each other"},
		{[]string{"status", "--queue", "http://" + strings.TrimPrefix(nats, "nats://"), "--job", "x"}, exitUsage, "want nats://HOST:PORT"},
		{[]string{"status", "--queue", nats, "--job", "a.b"}, exitUsage, `--job: job name "a.b": want letters, digits`},
		{[]string{"list", "--queue", nats, "--job", strings.Repeat("j", 201)}, exitUsage, "--job: job name of 201 characters: at most 200"},
		{[]string{"get", "--queue", nats, "--job", "a b*", "https://127.0.0.1:1/x"}, exitUsage, `--job: job name "a b*"`},
		{[]string{"get", "--queue", "http://127.0.0.1:1", "--job", "x", "https://127.0.0.1:1/x"}, exitUsage, "want nats://HOST:PORT"},
		{[]string{"crawl", "--queue", nats, "--job", "x", "--save", "image/*", "https://127.0.0.1:1/"}, exitUsage, "--save needs a state file for now"},
		{[]string{"status", "--queue", "nats://127.0.0.1:1", "--job", "x"}, exitFatal, "(is a NATS server running there?)"},
		{[]string{"status", "--queue", plain.ClientURL(), "--job", "x"}, exitFatal, "is JetStream enabled on the server? nats-server -js"},
		{[]string{"get", "--queue", plain.ClientURL(), "--job", "x", "https://127.0.0.1:1/x"}, exitFatal, "is JetStream enabled on the server? nats-server -js"},
	} {
		r := start(t, trawlCmd(c.args...)).wait(promptly)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("trawl %s: exit %d, stderr %q; want exit %d, one line with %q", strings.Join(c.args, " "), r.code, r.stderr, c.code, c.want)
		}
	}
	// The failed attempts made no job.
	r := runTrawl(t, "status", "--queue", nats, "--job", "nosuch")
	wantExit(t, r, exitUsage)
}
