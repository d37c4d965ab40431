//go:build bench && linux

// BenchmarkFleetScaling is issue 16's fleet benchmark: how throughput grows with the number of
// worker processes sharing one job on NATS JetStream, and what the queue costs per URL.
//
//	go test -tags bench -run '^$' -bench FleetScaling -benchtime 1x -count 3 -timeout 60m -v ./integration_test/
//
// One bench server process (benchserver_test.go) serves $TRAWL_SCALE_URLS (default 100,000)
// files of 2 KiB over 100 hosts (100 listeners on 127.0.0.1, each a distinct host:port), round
// robin in the list; one NATS server with JetStream runs in a child process (natsproc_test.go),
// its store in the test's temporary directory. The sub-benchmarks, in this order:
//
//   - bbolt: one trawl with its default queue (the state file in the test's temporary
//     directory), the single-machine baseline;
//   - jetstream-1w, -2w, -4w: that many trawl workers started together on one fresh job, each
//     given the same list (as the README has every machine do), each its own output directory.
//
// Every trawl is pinned to one core with `taskset -c K` (K = its index mod the CPUs this process
// may use; without taskset it runs unpinned and the log says so), so a worker is one core's worth
// of trawl (Go sizes GOMAXPROCS to the affinity mask). The servers are not pinned: they share the
// machine's cores with the workers, which the CPU figures below show. Flags are trawl's defaults
// for a throughput run (no --rate, default concurrency) with -q and --report; $TRAWL_SCALE_CONC
// adds -c N, $TRAWL_SCALE_LEASE sets the job's --lease-time (default 5s: a worker joining a job
// another has begun to serve gets its share about a lease time later, which the default 30s would
// make most of a short run). Outputs go to /dev/shm when it exists ($TRAWL_BENCH_OUT elsewhere);
// $TRAWL_BENCH_CPUPROFILE=DIR writes each trawl's CPU profile there.
//
// Every run must end with every worker exiting 0, every file of the list in the union of the
// outputs with its size, and the workers' reports agreeing: counts.new over the workers is the
// files saved (a file fetched twice is in two outputs and counted by both), nothing failed, and
// each report's job says all N done.
//
// Metrics (per run; ns/op is suppressed):
//
//	urls/s              N ÷ wall seconds from starting the first trawl to the last one's exit
//	wall-s              those wall seconds
//	speedup             jetstream-Ww's urls/s ÷ the median urls/s of the jetstream-1w runs so far
//	                    (with -count, Go runs each sub-benchmark that many times in a row)
//	x-bbolt             jetstream-1w's urls/s ÷ the median of the bbolt runs so far
//	worker-cpu-us/url   the trawl processes' user+system CPU (rusage) ÷ N, in microseconds
//	nats-cpu-us/url     the NATS server process's CPU over the run ÷ N (/proc/PID/stat)
//	server-cpu-us/url   the bench server process's CPU over the run ÷ N
//	machine-busy-%      the machine's CPU time not idle over the run ÷ its capacity (/proc/stat)
//	other-busy-%        of that, what neither the trawls, the two servers nor this test process
//	                    used: other work on a shared machine
//	dup-fetches         requests the server saw beyond N (a URL fetched by two workers)

package integration_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fleetScaleKiB is the size of every file of the benchmark's list.
const fleetScaleKiB = 2

func BenchmarkFleetScaling(b *testing.B) {
	const hosts = 100
	n := envInt("TRAWL_SCALE_URLS", 100_000)
	srv := startBenchServer(b, serveSpec{Corpus: "small", Hosts: hosts, SmallFiles: n, SmallKiB: fleetScaleKiB})
	list := filepath.Join(b.TempDir(), "urls.txt")
	want := writeFleetScaleList(b, list, srv.Bases, n)
	ns := startNATS(b, b.TempDir(), -1)
	pin := newPinner(b)

	// The urls/s of every bbolt and jetstream-1w run so far, for the ratios.
	var bbolt, js1 []float64
	b.Run("bbolt", func(b *testing.B) {
		var runs []fleetRun
		for b.Loop() {
			out := benchOutDir(b)
			state := filepath.Join(b.TempDir(), "state.db")
			rep := filepath.Join(b.TempDir(), "report.json")
			args := fleetScaleArgs(list, out, srv.CA, rep, "--state", state)
			r := runFleet(b, srv, ns, pin, n, [][]string{profiled(b, "fleet-bbolt", args)})
			checkFleetScale(b, n, want, []string{out}, []string{rep}, r)
			_ = os.RemoveAll(out)
			runs = append(runs, r)
		}
		bbolt = append(bbolt, reportFleet(b, n, runs))
	})
	for _, w := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("jetstream-%dw", w), func(b *testing.B) {
			var runs []fleetRun
			for b.Loop() {
				job := fmt.Sprintf("scale%dw%d", w, time.Now().UnixNano())
				lease := os.Getenv("TRAWL_SCALE_LEASE")
				if lease == "" {
					lease = "5s"
				}
				var outs, reps []string
				var argv [][]string
				for i := range w {
					out := benchOutDir(b)
					rep := filepath.Join(b.TempDir(), "report.json")
					outs, reps = append(outs, out), append(reps, rep)
					args := fleetScaleArgs(list, out, srv.CA, rep, "--queue", ns.url, "--job", job, "--lease-time", lease,
						"--user-agent", fleetAgent(i))
					argv = append(argv, profiled(b, fmt.Sprintf("fleet-%dw-%d", w, i), args))
				}
				r := runFleet(b, srv, ns, pin, n, argv)
				checkFleetScale(b, n, want, outs, reps, r)
				for _, out := range outs {
					_ = os.RemoveAll(out)
				}
				dropJob(b, ns.url, job) // so that later runs do not share the server with its records
				runs = append(runs, r)
			}
			rate := reportFleet(b, n, runs)
			switch {
			case w == 1:
				js1 = append(js1, rate)
				if len(bbolt) > 0 {
					b.ReportMetric(rate/median(bbolt), "x-bbolt")
				}
			case len(js1) > 0:
				b.ReportMetric(rate/median(js1), "speedup")
			default:
				b.Log("no jetstream-1w run before this one: no speedup to report")
			}
		})
	}
}

// writeFleetScaleList writes n URLs of the small corpus over bases, round robin (every host has
// work from the start), and returns the paths under an output directory the files must take.
func writeFleetScaleList(b *testing.B, name string, bases []string, n int) map[string]bool {
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	want := make(map[string]bool, n)
	for i := range n {
		base := bases[i%len(bases)]
		p := fmt.Sprintf("/small/img%06d.jpg", i)
		fmt.Fprintf(w, "%s%s\n", base, p)
		want[filepath.FromSlash(strings.TrimPrefix(base, "https://")+p)] = true
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return want
}

// fleetScaleArgs are one trawl's arguments: a throughput run with trawl's defaults.
func fleetScaleArgs(list, out, ca, report string, more ...string) []string {
	args := []string{"get", "-i", list, "-o", out, "--ca-cert", ca, "-q", "--report", report}
	if c := os.Getenv("TRAWL_SCALE_CONC"); c != "" {
		args = append(args, "-c", c)
	}
	return append(args, more...)
}

// fleetAgent is the User-Agent of the i-th worker of a run: the server's log says whose request
// each was.
func fleetAgent(i int) string { return fmt.Sprintf("trawl-bench-w%d", i) }

// fleetDups describes, for a failed run, each worker's count of new files against the files in
// its output, and the URLs the server saw requested more than once, with whose requests they
// were and which outputs hold the file.
func fleetDups(b *testing.B, outs []string, r fleetRun) string {
	b.Helper()
	var sb strings.Builder
	holders := map[string][]int{} // path under an output -> the workers whose output holds it
	for i, out := range outs {
		files := diskFiles(b, out)
		for f := range files {
			holders[f] = append(holders[f], i)
		}
		news := "?"
		if i < len(r.perWorker) {
			news = strconv.Itoa(r.perWorker[i])
		}
		fmt.Fprintf(&sb, "worker %d: report counts %s new, output holds %d\n", i, news, len(files))
	}
	byURL := map[string][]benchLogged{}
	var order []string
	for _, l := range r.logged {
		u := l.Host + l.Path
		if len(byURL[u]) == 0 {
			order = append(order, u)
		}
		byURL[u] = append(byURL[u], l)
	}
	dups := 0
	for _, u := range order {
		ls := byURL[u]
		if len(ls) < 2 {
			continue
		}
		dups++
		if dups > 40 {
			continue
		}
		fmt.Fprintf(&sb, "%s requested %d times:", u, len(ls))
		for _, l := range ls {
			fmt.Fprintf(&sb, " %s by %s;", l.Time.Format("15:04:05.000"), l.Agent)
		}
		fmt.Fprintf(&sb, " in the outputs of workers %v\n", holders[filepath.FromSlash(u)])
	}
	fmt.Fprintf(&sb, "%d URLs requested more than once", dups)
	return sb.String()
}

// pinner pins the i-th trawl of a run to one core.
type pinner struct {
	taskset string // its path, or "" to run unpinned
	cpus    int
}

func newPinner(b *testing.B) pinner {
	p := pinner{cpus: runtime.NumCPU()}
	if path, err := exec.LookPath("taskset"); err == nil {
		p.taskset = path
		b.Logf("each trawl pinned to one of %d CPUs with taskset", p.cpus)
	} else {
		b.Logf("no taskset on this machine: the trawl processes run unpinned, each with all %d CPUs", p.cpus)
	}
	return p
}

// cmd is the i-th trawl of a run, with args.
func (p pinner) cmd(i int, args []string) *exec.Cmd {
	cmd := trawlCmd(args...)
	if p.taskset != "" {
		cmd.Path = p.taskset
		cmd.Args = append([]string{"taskset", "-c", strconv.Itoa(i % p.cpus), trawlBin}, args...)
	}
	return cmd
}

// fleetRun is what one run took.
type fleetRun struct {
	wall            time.Duration
	workerCPU       time.Duration // the trawl processes' user+system, summed
	natsCPU, srvCPU time.Duration
	busy            float64       // the machine's non-idle share of its CPU capacity over the run
	other           float64       // of which not this benchmark's processes
	requests        int           // the bench server's requests during the run
	logged          []benchLogged // those requests
	perWorker       []int         // counts.new of each trawl's report
	workerWall      []time.Duration
	workerCPUs      []time.Duration
}

// runFleet starts one trawl per argv, all together, waits for all to exit 0, and measures the
// run: wall time, every process's CPU, the machine's.
func runFleet(b *testing.B, srv *benchServer, ns *natsProc, pin pinner, n int, argv [][]string) fleetRun {
	b.Helper()
	before := len(srv.requests())
	nats0, srv0 := procCPU(b, ns.cmd.Process.Pid), procCPU(b, srv.cmd.Process.Pid)
	self0 := procCPU(b, os.Getpid())
	busy0, total0 := machineCPU(b)
	began := time.Now()
	procs := make([]*proc, len(argv))
	for i, args := range argv {
		procs[i] = start(b, pin.cmd(i, args))
	}
	var r fleetRun
	for i, p := range procs {
		res := p.wait(30 * time.Minute)
		if res.code != exitOK {
			b.Fatalf("trawl %d of %d exited %d; stderr:\n%s", i+1, len(procs), res.code, tail(res.stderr))
		}
		cpu, _ := usage(p)
		r.workerCPU += cpu
		r.workerCPUs = append(r.workerCPUs, cpu)
		r.workerWall = append(r.workerWall, res.elapsed)
	}
	r.wall = time.Since(began)
	busy1, total1 := machineCPU(b)
	r.natsCPU = procCPU(b, ns.cmd.Process.Pid) - nats0
	r.srvCPU = procCPU(b, srv.cmd.Process.Pid) - srv0
	self := procCPU(b, os.Getpid()) - self0
	if total1 > total0 {
		capacity := float64(total1-total0) * float64(time.Second) / clockTicks
		r.busy = float64(busy1-busy0) * float64(time.Second) / clockTicks / capacity
		ours := r.workerCPU + r.natsCPU + r.srvCPU + self
		r.other = max(0, r.busy-float64(ours)/capacity)
	}
	r.logged = srv.requests()[before:]
	r.requests = len(r.logged)
	return r
}

// checkFleetScale fails the run unless every file of want is in the union of outs with its size,
// the outputs hold nothing else, and the reports agree with what is on disk.
func checkFleetScale(b *testing.B, n int, want map[string]bool, outs, reps []string, r fleetRun) {
	b.Helper()
	size := int64(fleetScaleKiB) << 10
	seen := make(map[string]int, n)
	saved := 0
	for _, out := range outs {
		for f, got := range diskFiles(b, out) {
			if !want[f] {
				b.Fatalf("%s holds %s, no file of the list", out, f)
			}
			if got != size {
				b.Fatalf("%s: %d bytes, want %d", filepath.Join(out, f), got, size)
			}
			seen[f]++
			saved++
		}
	}
	if len(seen) != n {
		b.Fatalf("the outputs hold %d of the list's %d files", len(seen), n)
	}
	var news int64
	for i, rep := range reps {
		rp := readReport(b, rep)
		if rp.ExitCode != exitOK || rp.Outcome != "done" || rp.Counts.Failed != 0 {
			b.Fatalf("trawl %d's report: outcome %q, exit %d, %d failed", i+1, rp.Outcome, rp.ExitCode, rp.Counts.Failed)
		}
		if rp.Counts.Bytes != rp.Counts.New*size {
			b.Fatalf("trawl %d's report: %d new files of %d bytes in all, want %d bytes each", i+1, rp.Counts.New, rp.Counts.Bytes, size)
		}
		if rp.Job.Total != n || rp.Job.Done != n {
			b.Fatalf("trawl %d's report: the job has %d URLs, %d done; want %d, all done\n%s", i+1, rp.Job.Total, rp.Job.Done, n,
				fleetDups(b, outs, r))
		}
		news += rp.Counts.New
		r.perWorker = append(r.perWorker, int(rp.Counts.New))
	}
	if news != int64(saved) {
		b.Fatalf("the reports count %d new files, the outputs hold %d; the server saw %d requests\n%s",
			news, saved, r.requests, fleetDups(b, outs, r))
	}
	if r.requests < saved {
		b.Fatalf("the server saw %d requests for %d files saved", r.requests, saved)
	}
	cpus := make([]string, len(r.workerCPUs))
	for i, c := range r.workerCPUs {
		cpus[i] = fmt.Sprintf("%d files in %.1fs wall, %.1fs CPU", r.perWorker[i], r.workerWall[i].Seconds(), c.Seconds())
	}
	b.Logf("%d URLs in %.1fs = %.0f/s; workers: %s; CPU s: workers %.1f, nats-server %.1f, bench server %.1f; machine %.0f%% busy (%.0f%% not this benchmark); %d requests (%d files in two outputs)",
		n, r.wall.Seconds(), float64(n)/r.wall.Seconds(), strings.Join(cpus, "; "),
		r.workerCPU.Seconds(), r.natsCPU.Seconds(), r.srvCPU.Seconds(), 100*r.busy, 100*r.other, r.requests, saved-n)
}

// reportFleet reports the runs' metrics (averaged over them) and returns the urls/s.
func reportFleet(b *testing.B, n int, runs []fleetRun) float64 {
	var wall, worker, natsCPU, srvCPU time.Duration
	var busy, other float64
	dups := 0
	for _, r := range runs {
		wall += r.wall
		worker += r.workerCPU
		natsCPU += r.natsCPU
		srvCPU += r.srvCPU
		busy += r.busy
		other += r.other
		dups += r.requests - n
	}
	urls := float64(n * len(runs))
	perURL := func(d time.Duration) float64 { return float64(d.Microseconds()) / urls }
	rate := urls / wall.Seconds()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(rate, "urls/s")
	b.ReportMetric(wall.Seconds()/float64(len(runs)), "wall-s")
	b.ReportMetric(perURL(worker), "worker-cpu-us/url")
	b.ReportMetric(perURL(natsCPU), "nats-cpu-us/url")
	b.ReportMetric(perURL(srvCPU), "server-cpu-us/url")
	b.ReportMetric(100*busy/float64(len(runs)), "machine-busy-%")
	b.ReportMetric(100*other/float64(len(runs)), "other-busy-%")
	b.ReportMetric(float64(dups)/float64(len(runs)), "dup-fetches")
	return rate
}

// clockTicks is Linux's USER_HZ, the unit of /proc's CPU times (100 on every architecture Go
// supports there).
const clockTicks = 100

// procCPU is the user+system CPU time process pid has used so far, from /proc/PID/stat.
func procCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name (in parentheses, which may hold spaces): state is the
	// 3rd field of the line, utime the 14th and stime the 15th.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		b.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// machineCPU is the machine's CPU time so far, busy (neither idle nor waiting on I/O) and in
// all, in clock ticks summed over its CPUs, from /proc/stat.
func machineCPU(b *testing.B) (busy, total int64) {
	b.Helper()
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		b.Fatalf("/proc/stat: %q", line)
	}
	// user nice system idle iowait irq softirq steal (guest time is inside user already).
	for i, v := range f[1:min(len(f), 9)] {
		t, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatalf("/proc/stat: %q", line)
		}
		total += t
		if i != 3 && i != 4 {
			busy += t
		}
	}
	return busy, total
}

// dropJob deletes a job's stream and buckets from the NATS server.
func dropJob(b *testing.B, url, job string) {
	b.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	names := js.StreamNames(ctx)
	var drop []string
	for name := range names.Name() {
		if name == "TRAWL_"+job || strings.HasPrefix(name, "KV_TRAWL_"+job+"_") {
			drop = append(drop, name)
		}
	}
	if err := names.Err(); err != nil {
		b.Fatal(err)
	}
	if len(drop) == 0 {
		b.Fatalf("no streams of job %s on the NATS server", job)
	}
	for _, name := range drop {
		if err := js.DeleteStream(ctx, name); err != nil {
			b.Fatalf("deleting stream %s: %v", name, err)
		}
	}
}

// median is the middle of xs (the mean of the two middle ones for an even count).
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
