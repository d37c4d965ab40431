//go:build bench && linux

// End-to-end benchmarks: the trawl binary (built once by TestMain) against HTTPS servers in a
// separate process on 127.0.0.1 (benchserver_test.go). They are not part of `go test ./...`:
// the build tag keeps them out. Run them all, once each:
//
//	go test -tags bench -run '^$' -bench E2E -benchtime 1x -timeout 30m ./integration_test/
//
// or one of them with -bench E2ESmall, E2ELarge, E2ECrawl, E2EScale or E2EPoliteness.
//
// Cases:
//
//   - E2ESmall: 5,000 files of 16 KiB from one host (-c 32 --per-host 32, as
//     shared/bench/compare.sh gives every tool).
//   - E2ELarge: 4 files of 256 MiB from one host (same flags).
//   - E2ECrawl: a crawl of a generated 2,000-page site (6,002 files: pages, two images each,
//     a stylesheet; robots.txt keeps one page out) with `trawl crawl`, same flags.
//   - E2EScale: a 1,000,000-URL list over 1,000 hosts (1,000 ports, default flags). Run A
//     enqueues it while every host answers 503 with Retry-After: 3600, so after one request per
//     host all hosts cool down and the run does nothing but stream the list into the state file:
//     the enqueue rate is then trawl's own, not shared with downloads (or with the servers, which
//     share this machine's CPUs). Run A is killed with SIGKILL 2 s after the queue holds every
//     URL. Then the servers answer 200 with 256-byte bodies: run B (the same command) downloads
//     for 15 s and is killed with SIGKILL in the middle of its transfers; run C continues for 5 s
//     and is stopped with SIGINT.
//   - E2EPoliteness: 1,000 URLs over 20 hosts, 80% on one, --rate 10.
//
// Metrics (b.ReportMetric; ns/op is suppressed, every case is one long run):
//
//	wall-s              seconds from starting trawl to its exit
//	files/s, MB/s       files and bytes (10^6) saved per wall second; for E2EScale, files done per
//	                    second of run B
//	cpu-s               trawl's user+system CPU seconds (its rusage; the servers are not counted)
//	peak-RSS-MiB        trawl's peak resident set (rusage maxrss); for E2EScale the largest of
//	                    runs A, B and C
//	peak-anon-MiB       E2EScale: the peak of RssAnon in /proc/PID/status (sampled every 20 ms):
//	                    peak-RSS-MiB without the state file's pages that bbolt maps
//	enqueue-URLs/s      E2EScale: URLs in the list ÷ seconds from starting run A until its
//	                    progress line (every 100 ms) says total=1,000,000
//	restart-first-req-s E2EScale: after kill -9, from starting trawl again to the server's
//	                    arrival time of the first request (the worse of runs B and C)
//	state-B/URL         E2EScale: the state file's size ÷ URLs, the larger of after run A and at
//	                    the end
//	ideal-s, wall/ideal E2EPoliteness: the busiest host's URLs ÷ its rate, and the run's wall time
//	                    over that
//	max-req-per-1s      E2EPoliteness: the most requests one host received in any one-second
//	                    window [t, t+1s), from the server's arrival timestamps (the limit is 10);
//	                    a host over it is logged with the gaps between those requests
//
// Trawl writes its output to /dev/shm when it exists (measuring trawl, not the disk, like
// compare.sh), or to $TRAWL_BENCH_OUT. The state file is always in the test's temporary
// directory ($TMPDIR; on disk unless that is a tmpfs): its fsyncs are part of what trawl costs. Knobs: $TRAWL_BENCH_CONC
// (default 32), $TRAWL_BENCH_LARGE_MIB (256), $TRAWL_BENCH_SCALE_URLS (1000000),
// $TRAWL_BENCH_POLITE_URLS (1000), $TRAWL_BENCH_CPUPROFILE=DIR (hand trawl the hidden
// --cpuprofile flag; runs ended by SIGKILL write no profile, so with it E2EScale stops run A
// with SIGINT instead).

package integration_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func BenchmarkE2ESmall(b *testing.B) {
	const files, kib = 5000, 16
	srv := startBenchServer(b, serveSpec{Corpus: "small", SmallFiles: files, SmallKiB: kib})
	lines := make([]string, files)
	for i := range lines {
		lines[i] = fmt.Sprintf("%s/small/img%06d.jpg", srv.Bases[0], i)
	}
	list := writeList(b, lines...)
	benchTransfer(b, "small", files, files*kib<<10, func(out, state string) []string {
		return append([]string{"get", "--input", list}, transferFlags(srv, out, state)...)
	})
}

func BenchmarkE2ELarge(b *testing.B) {
	files, mib := 4, envInt("TRAWL_BENCH_LARGE_MIB", 256)
	srv := startBenchServer(b, serveSpec{Corpus: "large", LargeFiles: files, LargeMiB: mib})
	lines := make([]string, files)
	for i := range lines {
		lines[i] = fmt.Sprintf("%s/large/big%d.bin", srv.Bases[0], i)
	}
	list := writeList(b, lines...)
	benchTransfer(b, "large", files, int64(files*mib)<<20, func(out, state string) []string {
		return append([]string{"get", "--input", list}, transferFlags(srv, out, state)...)
	})
}

func BenchmarkE2ECrawl(b *testing.B) {
	const pages = 2000
	srv := startBenchServer(b, serveSpec{Corpus: "crawl", Pages: pages})
	var want int64
	for p, body := range crawlCorpus(pages) {
		if strings.HasPrefix(p, "/site/") && !strings.HasPrefix(p, "/site/private/") {
			want += int64(len(body))
		}
	}
	benchTransfer(b, "crawl", crawlWant(pages), want, func(out, state string) []string {
		return append([]string{"crawl", srv.Bases[0] + "/site/index.html"}, transferFlags(srv, out, state)...)
	})
}

// transferFlags are the flags of the small, large and crawl cases.
func transferFlags(srv *benchServer, out, state string) []string {
	c := strconv.Itoa(envInt("TRAWL_BENCH_CONC", 32))
	return []string{"--out", out, "--state", state, "--ca-cert", srv.CA, "--concurrency", c, "--per-host", c, "--quiet"}
}

// benchTransfer runs trawl with args(out, state) once per iteration into fresh directories,
// checks that it saved wantFiles files of wantBytes in all, and reports throughput and cost.
func benchTransfer(b *testing.B, name string, wantFiles int, wantBytes int64, args func(out, state string) []string) {
	var wall, cpu time.Duration
	var rss float64
	runs := 0
	for b.Loop() {
		out := benchOutDir(b)
		state := filepath.Join(b.TempDir(), "state.db")
		p := start(b, trawlCmd(profiled(b, name, args(out, state))...))
		r := p.wait(30 * time.Minute)
		wantExit(b, r, exitOK)
		c, m := usage(p)
		wall, cpu, rss, runs = wall+r.elapsed, cpu+c, max(rss, m), runs+1

		files := diskFiles(b, out)
		count := 0
		var got int64
		for f, size := range files {
			if filepath.Base(f) == "robots.txt" {
				continue
			}
			count++
			got += size
		}
		if count != wantFiles || got != wantBytes {
			b.Fatalf("%s: saved %d files, %d bytes; want %d files, %d bytes", name, count, got, wantFiles, wantBytes)
		}
		_ = os.RemoveAll(out) // large: give the memory of /dev/shm back before the next run
	}
	secs := wall.Seconds()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(secs/float64(runs), "wall-s")
	b.ReportMetric(float64(wantFiles*runs)/secs, "files/s")
	b.ReportMetric(float64(wantBytes)*float64(runs)/secs/1e6, "MB/s")
	b.ReportMetric(cpu.Seconds()/float64(runs), "cpu-s")
	b.ReportMetric(rss, "peak-RSS-MiB")
}

func BenchmarkE2EScale(b *testing.B) {
	const hosts = 1000
	n := envInt("TRAWL_BENCH_SCALE_URLS", 1_000_000)
	srv := startBenchServer(b, serveSpec{Corpus: "tiny", Hosts: hosts, Mode: "503", TinyBytes: 256})
	list := filepath.Join(b.TempDir(), "urls.txt")
	writeScaleList(b, list, srv.Bases, n)
	for b.Loop() {
		benchScale(b, srv, list, n)
	}
}

// writeScaleList writes n URLs over bases, round-robin: every host has work from the start.
func writeScaleList(b *testing.B, name string, bases []string, n int) {
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		fmt.Fprintf(w, "%s/gallery/2026/photo-%08d.jpg\n", bases[i%len(bases)], i)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

func benchScale(b *testing.B, srv *benchServer, list string, n int) {
	out := benchOutDir(b)
	state := filepath.Join(b.TempDir(), "state.db")
	args := []string{"get", "--input", list, "--out", out, "--state", state, "--ca-cert", srv.CA,
		"--progress-interval", "100ms", "--max-wait", "2h"}

	// Run A: enqueue only (every host cools down after its first 503), then kill -9.
	srv.setMode("503")
	a := start(b, trawlCmd(profiled(b, "scale-enqueue", args)...))
	memA := sampleMem(a)
	a.waitStderr(fmt.Sprintf("a progress line with total=%d", n), func(s string) bool {
		return logInt(lastLine(s, "msg=progress"), "total") >= n
	}, 10*time.Minute)
	enqueue := time.Since(a.start)
	// The queue holds every URL: let the run sit on it for a moment, as a long run would.
	select {
	case <-a.exited:
		b.Fatalf("run A exited with %d while hosts were cooling down; stderr:\n%s", a.res.code, tail(a.res.stderr))
	case <-time.After(2 * time.Second):
	}
	if os.Getenv("TRAWL_BENCH_CPUPROFILE") != "" {
		// A profile is written only by a run that exits: stop run A gently instead.
		a.signal(syscall.SIGINT)
		wantExit(b, a.wait(time.Minute), exitInterrupted)
	} else {
		a.kill9()
	}
	cpuA, rssA := usage(a)
	anonA, fileA := memA.peaks()
	stateA := fileSize(state)
	b.Logf("run A enqueue rate by quarter of the list (from its progress lines): %s", enqueueCurve(a.res.stderr, n))
	if st := trawlStatus(b, "--state", state); st.Job.Total != n {
		b.Fatalf("after run A the state holds %d URLs, want %d", st.Job.Total, n)
	}
	b.Logf("run A (enqueue): %d URLs in %.2fs = %.0f URLs/s; cpu %.2fs; peak RSS %.1f MiB (anon %.1f, file %.1f); state %d bytes = %.0f B/URL",
		n, enqueue.Seconds(), float64(n)/enqueue.Seconds(), cpuA.Seconds(), rssA, anonA, fileA, stateA, float64(stateA)/float64(n))

	// Run B: the same command after kill -9, downloading now; killed again mid-transfer.
	srv.setMode("ok")
	bRun := start(b, trawlCmd(args...))
	memB := sampleMem(bRun)
	ttfrB := firstRequestAfter(b, srv, bRun)
	downloadFor := 15 * time.Second
	select {
	case <-bRun.exited:
		b.Fatalf("run B exited with %d; stderr:\n%s", bRun.res.code, tail(bRun.res.stderr))
	case <-time.After(downloadFor):
	}
	bRun.kill9()
	bElapsed := bRun.res.elapsed
	cpuB, rssB := usage(bRun)
	anonB, fileB := memB.peaks()
	doneB := trawlStatus(b, "--state", state).Job.Done
	b.Logf("run B (restart of run A with %d queued): first request %.3fs after start; %d done in %.1fs = %.0f files/s; cpu %.2fs; peak RSS %.1f MiB (anon %.1f, file %.1f)",
		n, ttfrB.Seconds(), doneB, bElapsed.Seconds(), float64(doneB)/bElapsed.Seconds(), cpuB.Seconds(), rssB, anonB, fileB)

	// Run C: restart after kill -9 of a busy run; stopped with SIGINT.
	srv.setMode("ok")
	c := start(b, trawlCmd(profiled(b, "scale-restart", args)...))
	memC := sampleMem(c)
	ttfrC := firstRequestAfter(b, srv, c)
	select {
	case <-c.exited:
		b.Fatalf("run C exited with %d; stderr:\n%s", c.res.code, tail(c.res.stderr))
	case <-time.After(5 * time.Second):
	}
	c.signal(syscall.SIGINT)
	wantExit(b, c.wait(time.Minute), exitInterrupted)
	cpuC, rssC := usage(c)
	anonC, fileC := memC.peaks()
	stateEnd := fileSize(state)
	doneC := trawlStatus(b, "--state", state).Job.Done
	b.Logf("run C (restart after kill -9 mid-transfer): first request %.3fs after start; %d done in all; cpu %.2fs; peak RSS %.1f MiB (anon %.1f, file %.1f); state %d bytes = %.0f B/URL",
		ttfrC.Seconds(), doneC, cpuC.Seconds(), rssC, anonC, fileC, stateEnd, float64(stateEnd)/float64(n))

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(n)/enqueue.Seconds(), "enqueue-URLs/s")
	b.ReportMetric(max(rssA, rssB, rssC), "peak-RSS-MiB")
	b.ReportMetric(max(anonA, anonB, anonC), "peak-anon-MiB")
	b.ReportMetric(max(ttfrB, ttfrC).Seconds(), "restart-first-req-s")
	b.ReportMetric(float64(max(stateA, stateEnd))/float64(n), "state-B/URL")
	b.ReportMetric(float64(doneB)/bElapsed.Seconds(), "files/s")
	b.ReportMetric((cpuA + cpuB + cpuC).Seconds(), "cpu-s")
}

// firstRequestAfter is how long after p started the server received its first request (the
// server was re-armed by setMode just before p started).
func firstRequestAfter(b *testing.B, srv *benchServer, p *proc) time.Duration {
	b.Helper()
	first, ok := srv.waitFirst(2 * time.Minute)
	if !ok {
		b.Fatalf("no request within 2m of restarting; stderr:\n%s", tail(p.stderr.String()))
	}
	return first.Sub(p.start)
}

func BenchmarkE2EPoliteness(b *testing.B) {
	const hosts, rate = 20, 10
	total := envInt("TRAWL_BENCH_POLITE_URLS", 1000)
	srv := startBenchServer(b, serveSpec{Corpus: "tiny", Hosts: hosts, TinyBytes: 1024})
	busy := total * 8 / 10
	lines := make([]string, total)
	for i := range lines {
		h := 0
		if i >= busy {
			h = 1 + i%(hosts-1)
		}
		lines[i] = fmt.Sprintf("%s/p/%06d.bin", srv.Bases[h], i)
	}
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	list := writeList(b, lines...)

	var wall time.Duration
	worst, runs := 0, 0
	for b.Loop() {
		before := len(srv.requests())
		out := benchOutDir(b)
		state := filepath.Join(b.TempDir(), "state.db")
		p := start(b, trawlCmd(profiled(b, "politeness", []string{"get", "--input", list, "--out", out,
			"--state", state, "--ca-cert", srv.CA, "--rate", strconv.Itoa(rate), "--quiet"})...))
		r := p.wait(30 * time.Minute)
		wantExit(b, r, exitOK)
		wall, runs = wall+r.elapsed, runs+1

		byHost := map[string][]time.Time{}
		for _, q := range srv.requests()[before:] {
			byHost[q.Host] = append(byHost[q.Host], q.Time)
		}
		for host, ts := range byHost {
			w := maxInWindow(ts, time.Second)
			worst = max(worst, w)
			if w > rate {
				b.Logf("%s: %d requests in one second (limit %d): %s", host, w, rate, tightest(ts, w))
			}
		}
		if got := len(byHost[strings.TrimPrefix(srv.Bases[0], "https://")]); got != busy {
			b.Fatalf("busiest host got %d requests, want %d", got, busy)
		}
	}
	ideal := float64(busy) / rate
	secs := wall.Seconds() / float64(runs)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(secs, "wall-s")
	b.ReportMetric(ideal, "ideal-s")
	b.ReportMetric(secs/ideal, "wall/ideal")
	b.ReportMetric(float64(worst), "max-req-per-1s")
}

// usage is the CPU time (user + system) and peak RSS in MiB of the exited process p.
func usage(p *proc) (time.Duration, float64) {
	ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return cpu, float64(ru.Maxrss) / 1024 // Linux: KiB
}

// benchOutDir is a fresh output directory: under $TRAWL_BENCH_OUT, else /dev/shm, else the
// test's temporary directory.
func benchOutDir(b *testing.B) string {
	b.Helper()
	root := os.Getenv("TRAWL_BENCH_OUT")
	if root == "" {
		if fi, err := os.Stat("/dev/shm"); err != nil || !fi.IsDir() {
			return b.TempDir()
		}
		root = "/dev/shm"
	}
	dir, err := os.MkdirTemp(root, "trawl-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// profiled adds --cpuprofile when $TRAWL_BENCH_CPUPROFILE names a directory.
func profiled(b *testing.B, name string, args []string) []string {
	dir := os.Getenv("TRAWL_BENCH_CPUPROFILE")
	if dir == "" {
		return args
	}
	f := filepath.Join(dir, name+".pprof")
	b.Logf("CPU profile of trawl: %s", f)
	return append(args, "--cpuprofile", f)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// memSampler follows a process's resident memory in /proc/PID/status, split into anonymous
// memory (heap, stacks) and file-backed pages (chiefly the state file, which bbolt maps):
// rusage's maxrss counts both together.
type memSampler struct {
	done             chan struct{}
	anonKiB, fileKiB int64 // peaks; read after done is closed
}

// sampleMem samples p every 20 ms until it exits (there is no event to wait on).
func sampleMem(p *proc) *memSampler {
	m := &memSampler{done: make(chan struct{})}
	status := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
	go func() {
		defer close(m.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if data, err := os.ReadFile(status); err == nil {
				for line := range strings.Lines(string(data)) {
					k, v, _ := strings.Cut(line, ":")
					kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
					switch k {
					case "RssAnon":
						m.anonKiB = max(m.anonKiB, kib)
					case "RssFile":
						m.fileKiB = max(m.fileKiB, kib)
					}
				}
			}
			select {
			case <-p.exited:
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

// peaks waits for the process to have exited and returns the peaks in MiB.
func (m *memSampler) peaks() (anon, file float64) {
	<-m.done
	return float64(m.anonKiB) / 1024, float64(m.fileKiB) / 1024
}

// enqueueCurve is the enqueue rate over each quarter of an n-URL list, from the time= and total=
// of a run's progress lines: whether the rate holds up as the state file grows.
func enqueueCurve(stderr string, n int) string {
	type point struct {
		t     time.Time
		total int
	}
	var pts []point
	for line := range strings.Lines(stderr) {
		if !strings.Contains(line, "msg=progress") {
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "time=") {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f[0], "time="))
		if err == nil {
			pts = append(pts, point{t, logInt(line, "total")})
		}
	}
	if len(pts) == 0 {
		return "no progress lines"
	}
	// From the first progress line: the time before it is start-up, reported as a whole.
	parts := []string{fmt.Sprintf("first line at total=%d", pts[0].total)}
	prev := pts[0]
	for q := 1; q <= 4; q++ {
		i := slices.IndexFunc(pts, func(p point) bool { return p.total >= n*q/4 })
		if i < 0 || !pts[i].t.After(prev.t) {
			continue
		}
		parts = append(parts, fmt.Sprintf("to %d%%: %.0f/s", q*25, float64(pts[i].total-prev.total)/pts[i].t.Sub(prev.t).Seconds()))
		prev = pts[i]
	}
	return strings.Join(parts, ", ")
}
