//go:build bench && linux

// WAN benchmarks: the bench server (benchserver_test.go) behind latency and bandwidth proxies
// (toxiproxy, run in this process: wanproxy_test.go), and trawl beside curl, wget2 and aria2c,
// each at the flags a user types. Every tool is a sub-benchmark, so one run gives the ratios.
// Run them all, once each:
//
//	go test -tags bench -run '^$' -bench WAN -benchtime 1x -timeout 30m ./integration_test/
//
// or one of them with -bench WANSmallOneHost, WANSmallManyHosts or WANLarge, or one tool of one
// case with e.g. -bench 'WANSmallOneHost/^curl$'. Add -v to see each case's summary (below).
//
// The link: 25 ms added in each direction (a 50 ms round trip, no jitter, no loss) to every
// byte on every connection; for WANLarge also 8 MB/s (10^6 bytes) per connection from the server.
// The proxies accept at once on loopback, so TCP's own handshake costs no round trip: a new
// connection costs its TLS handshake's (one for TLS 1.3, which the server offers), one round
// trip less than on a real network.
//
// Cases:
//
//   - WANSmallOneHost: 2,000 files of 16 KiB from one host.
//   - WANSmallManyHosts: the same 2,000 files over 20 hosts (20 server ports, each behind its
//     own proxy), file i from host i mod 20.
//   - WANLarge: one file of 256 MiB ($TRAWL_BENCH_LARGE_MIB) from one host at 8 MB/s per
//     connection: 34 s for a tool that uses one connection.
//
// Tools (sub-benchmarks; a peer not on PATH is skipped):
//
//	trawl-defaults   trawl get -i LIST -o OUT --state STATE --ca-cert CA -q (the state file in the
//	                 test's temporary directory, as in bench_test.go: on disk, not in OUT)
//	trawl-tuned      the same with --concurrency 32 --per-host 32
//	curl             curl -s --parallel --cacert CA -K CONFIG (url = / output = pairs, as
//	                 shared/bench/compare.sh writes them)
//	wget2            wget2 -q -i LIST -P OUT --ca-certificate=CA
//	aria2c           aria2c -q -i LIST -d OUT --ca-certificate=CA --file-allocation=none
//	aria2c-x16-s16   WANLarge only: aria2c as above with -x16 -s16
//	c32-*            WANSmallOneHost only: every tool at 32 concurrent requests (trawl
//	                 --concurrency 32 --per-host 32, curl --parallel-max 32, wget2
//	                 --max-threads=32, aria2c -j 32)
//
// $TRAWL_WAN_FLAGS adds flags (split on spaces) to every trawl command, defaults and tuned: to
// measure a change behind a flag against the peers of the same run. Every tool runs with HOME
// set to an empty directory (no ~/.curlrc, ~/.wget2rc or ~/.aria2/aria2.conf) and no *_proxy
// variables. Output goes to /dev/shm or $TRAWL_BENCH_OUT, as in bench_test.go.
//
// Each run must save every file with the bytes the server holds (sha256 of each, by file
// name) and exit 0, or the benchmark fails. Metrics (ns/op is suppressed):
//
//	wall-s        seconds from starting the tool to its exit
//	files/s, MB/s files and bytes (10^6) saved per wall second
//	cpu-s         the tool's user+system CPU seconds (its rusage)
//	peak-RSS-MiB  the tool's peak resident set (VmHWM sampled every 10 ms; see sampleHWM)
//
// After its sub-benchmarks each case logs their wall times side by side and trawl's ratio to
// every peer (below 1 = trawl faster); go test prints a parent benchmark's log only with -v.

package integration_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	wanOneWayMs = 25   // each direction: a 50 ms round trip
	wanRateKBps = 8000 // WANLarge, per connection: 8 MB/s
	wanFiles    = 2000 // the small cases
	wanKiB      = 16
	wanHosts    = 20 // WANSmallManyHosts
	wanConc     = 32 // trawl-tuned and the c32 group
)

func BenchmarkWANSmallOneHost(b *testing.B) {
	spec := serveSpec{Corpus: "small", SmallFiles: wanFiles, SmallKiB: wanKiB}
	srv := startBenchServer(b, spec)
	w := newWANWorkload(b, spec, srv.CA, wanProxies(b, srv.Bases, wanLink{OneWayMs: wanOneWayMs}), smallPaths(wanFiles))
	w.run(b, w.userTools()...)
	c := strconv.Itoa(wanConc)
	w.run(b,
		w.trawl("c32-trawl", "--concurrency", c, "--per-host", c),
		w.curl("c32-curl", "--parallel-max", c),
		w.wget2("c32-wget2", "--max-threads="+c),
		w.aria2c("c32-aria2c", "-j", c),
	)
	w.summary(b)
}

func BenchmarkWANSmallManyHosts(b *testing.B) {
	spec := serveSpec{Corpus: "small", Hosts: wanHosts, SmallFiles: wanFiles, SmallKiB: wanKiB}
	srv := startBenchServer(b, spec)
	w := newWANWorkload(b, spec, srv.CA, wanProxies(b, srv.Bases, wanLink{OneWayMs: wanOneWayMs}), smallPaths(wanFiles))
	w.run(b, w.userTools()...)
	w.summary(b)
}

func BenchmarkWANLarge(b *testing.B) {
	spec := serveSpec{Corpus: "large", LargeFiles: 1, LargeMiB: envInt("TRAWL_BENCH_LARGE_MIB", 256)}
	srv := startBenchServer(b, spec)
	w := newWANWorkload(b, spec, srv.CA, wanProxies(b, srv.Bases, wanLink{OneWayMs: wanOneWayMs, RateKBps: wanRateKBps}), []string{"/large/big0.bin"})
	// One connection moves the file in size / rate: give every run several times that.
	w.timeout = 5*time.Minute + 4*time.Duration(float64(w.bytes)/(wanRateKBps*1000)*float64(time.Second))
	w.run(b, append(w.userTools(), w.aria2c("aria2c-x16-s16", "-x16", "-s16"))...)
	w.summary(b)
}

// smallPaths are the paths of the first n files of the small corpus.
func smallPaths(n int) []string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = fmt.Sprintf("/small/img%06d.jpg", i)
	}
	return ps
}

// wanWorkload is one case: a URL list over the proxies and what every tool must save from it.
type wanWorkload struct {
	ca      string
	urls    []string
	list    string            // the URLs, one per line
	want    map[string]string // file name → sha256 (hex) of what the server serves
	bytes   int64             // the sum of the files' sizes
	timeout time.Duration     // bound of one run of one tool
	walls   map[string]float64
	order   []string // names of the tools run, for the summary
}

// newWANWorkload spreads paths over bases round-robin (path i from bases[i mod len]) and reads
// from spec's corpus, in this process, what each file must hold.
func newWANWorkload(b *testing.B, spec serveSpec, ca string, bases, paths []string) *wanWorkload {
	b.Helper()
	files, err := newCorpus(spec)
	if err != nil {
		b.Fatal(err)
	}
	w := &wanWorkload{ca: ca, want: map[string]string{}, timeout: 5 * time.Minute, walls: map[string]float64{}}
	for i, p := range paths {
		f, ok := files(p)
		if !ok {
			b.Fatalf("corpus %s has no %s", spec.Corpus, p)
		}
		h := sha256.New()
		if _, err := io.Copy(h, f.open()); err != nil {
			b.Fatal(err)
		}
		w.want[path.Base(p)] = hex.EncodeToString(h.Sum(nil))
		w.bytes += f.size
		w.urls = append(w.urls, bases[i%len(bases)]+p)
	}
	if len(w.want) != len(paths) {
		b.Fatal("two paths of the workload share a file name: the check by name cannot tell them apart")
	}
	w.list = writeList(b, w.urls...)
	return w
}

// wanTool is one command under test. args returns its arguments for an output directory; tmp
// is a fresh directory for anything else the run needs (trawl's state, curl's config).
type wanTool struct {
	name string
	bin  string // "trawl" (the binary under test) or a name looked up on PATH
	args func(b *testing.B, out, tmp string) []string
}

// userTools are every case's tools: trawl at defaults and tuned, the peers at their defaults.
func (w *wanWorkload) userTools() []wanTool {
	c := strconv.Itoa(wanConc)
	return []wanTool{
		w.trawl("trawl-defaults"),
		w.trawl("trawl-tuned", "--concurrency", c, "--per-host", c),
		w.curl("curl"),
		w.wget2("wget2"),
		w.aria2c("aria2c"),
	}
}

func (w *wanWorkload) trawl(name string, extra ...string) wanTool {
	extra = append(extra, strings.Fields(os.Getenv("TRAWL_WAN_FLAGS"))...)
	return wanTool{name, "trawl", func(b *testing.B, out, tmp string) []string {
		return append([]string{"get", "--input", w.list, "--out", out, "--state", filepath.Join(tmp, "state.db"),
			"--ca-cert", w.ca, "--quiet"}, extra...)
	}}
}

func (w *wanWorkload) curl(name string, extra ...string) wanTool {
	return wanTool{name, "curl", func(b *testing.B, out, tmp string) []string {
		var cfg strings.Builder
		for _, u := range w.urls {
			fmt.Fprintf(&cfg, "url = %q\noutput = %q\n", u, filepath.Join(out, path.Base(u)))
		}
		name := filepath.Join(tmp, "curl.cfg")
		if err := os.WriteFile(name, []byte(cfg.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		return append([]string{"-s", "--parallel", "--cacert", w.ca, "-K", name}, extra...)
	}}
}

func (w *wanWorkload) wget2(name string, extra ...string) wanTool {
	return wanTool{name, "wget2", func(b *testing.B, out, tmp string) []string {
		return append([]string{"-q", "-i", w.list, "-P", out, "--ca-certificate=" + w.ca}, extra...)
	}}
}

func (w *wanWorkload) aria2c(name string, extra ...string) wanTool {
	return wanTool{name, "aria2c", func(b *testing.B, out, tmp string) []string {
		return append([]string{"-q", "-i", w.list, "-d", out, "--ca-certificate=" + w.ca, "--file-allocation=none"}, extra...)
	}}
}

// run runs each tool as a sub-benchmark: once per iteration into a fresh output directory,
// checking what it saved, and reports its metrics.
func (w *wanWorkload) run(b *testing.B, tools ...wanTool) {
	for _, t := range tools {
		b.Run(t.name, func(b *testing.B) {
			bin := trawlBin
			if t.bin != "trawl" {
				p, err := exec.LookPath(t.bin)
				if err != nil {
					b.Skipf("%s is not on PATH", t.bin)
				}
				bin = p
			}
			var wall, cpu time.Duration
			var rss float64
			runs := 0
			for b.Loop() {
				out, tmp := benchOutDir(b), b.TempDir()
				r := runWANTool(b, w.timeout, bin, t.args(b, out, tmp)...)
				if err := w.check(b, out); err != nil {
					b.Fatalf("%s: %v", t.name, err)
				}
				wall, cpu, rss, runs = wall+r.wall, cpu+r.cpu, max(rss, r.rssMiB), runs+1
				_ = os.RemoveAll(out) // give /dev/shm's memory back before the next run
			}
			secs := wall.Seconds()
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(secs/float64(runs), "wall-s")
			b.ReportMetric(float64(len(w.want)*runs)/secs, "files/s")
			b.ReportMetric(float64(w.bytes)*float64(runs)/secs/1e6, "MB/s")
			b.ReportMetric(cpu.Seconds()/float64(runs), "cpu-s")
			b.ReportMetric(rss, "peak-RSS-MiB")
			w.walls[t.name] = secs / float64(runs)
		})
		if !slices.Contains(w.order, t.name) {
			w.order = append(w.order, t.name)
		}
	}
}

// wanResult is what one run of a tool cost.
type wanResult struct {
	wall, cpu time.Duration
	rssMiB    float64
}

// runWANTool runs bin with args to completion, bounded by timeout, and fails the benchmark
// unless it exits 0.
func runWANTool(b *testing.B, timeout time.Duration, bin string, args ...string) wanResult {
	b.Helper()
	r, code, output := runTool(b, timeout, bin, args...)
	if code != 0 {
		b.Fatalf("%s %s: exit %d; output:\n%s", bin, strings.Join(args, " "), code, tail(output))
	}
	return r
}

// runTool runs bin with args to its exit, bounded by timeout, and returns what it cost (wall,
// CPU from its rusage, peak RSS from sampleHWM), its exit code and its output.
func runTool(b *testing.B, timeout time.Duration, bin string, args ...string) (wanResult, int, string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = wanEnv(b)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	cmd.WaitDelay = 5 * time.Second
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting %s: %v", bin, err)
	}
	stop := make(chan struct{})
	peak := sampleHWM(cmd.Process.Pid, stop)
	err := cmd.Wait()
	wall := time.Since(begin)
	close(stop)
	if ctx.Err() != nil {
		b.Fatalf("%s %s: still running after %s, killed; output:\n%s", bin, strings.Join(args, " "), timeout, tail(output.String()))
	}
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	r := wanResult{wall: wall, rssMiB: float64(<-peak) / 1024}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return r, code, output.String()
}

// sampleHWM follows the peak resident set (VmHWM, KiB) of process pid every 10 ms until stop is
// closed, then sends it. Not rusage's maxrss: Go starts a child with vfork, and Linux carries the
// parent's peak into the child's maxrss at exec, so every tool would report at least this test
// process's own peak (which holds the proxies). VmHWM belongs to the new program's memory alone;
// growth in the last 10 ms before exit is missed.
func sampleHWM(pid int, stop <-chan struct{}) <-chan int64 {
	peak := make(chan int64, 1)
	status := fmt.Sprintf("/proc/%d/status", pid)
	go func() {
		var kib int64
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if data, err := os.ReadFile(status); err == nil {
				for line := range strings.Lines(string(data)) {
					if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
						n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
						kib = max(kib, n)
					}
				}
			}
			select {
			case <-stop:
				peak <- kib
				return
			case <-tick.C:
			}
		}
	}()
	return peak
}

// wanEnv is the environment of every tool: this one without proxies, and a HOME of its own, so
// that no rc file of this machine's user changes a tool's defaults.
func wanEnv(b *testing.B) []string {
	home := b.TempDir()
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "NO_COLOR=1"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "home", "xdg_config_home", "http_proxy", "https_proxy", "all_proxy", "no_proxy", "curl_home", "wget2rc":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// check says what is wrong with out: a wanted file missing, saved twice or with other bytes
// than the server's. Files the workload did not ask for (a tool's leftovers) are not errors.
func (w *wanWorkload) check(b *testing.B, out string) error {
	seen := map[string]bool{}
	var wrong, dup, extra []string
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".trawl" {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(out, p)
		want, ok := w.want[d.Name()]
		switch {
		case !ok:
			extra = append(extra, rel)
		case seen[d.Name()]:
			dup = append(dup, rel)
		default:
			seen[d.Name()] = true
			if fileSHA256(b, p) != want {
				wrong = append(wrong, rel)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(seen) == len(w.want) && len(wrong) == 0 && len(dup) == 0 {
		return nil
	}
	var missing []string
	for name := range w.want {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	return fmt.Errorf("%d of %d files saved correctly; missing %d %s; other bytes %d %s; twice %d %s; not asked for %d %s",
		len(seen)-len(wrong), len(w.want), len(missing), few(missing), len(wrong), few(wrong), len(dup), few(dup), len(extra), few(extra))
}

// few is the first names of a list, for an error message.
func few(names []string) string {
	if len(names) > 5 {
		return fmt.Sprint(names[:5], "...")
	}
	return fmt.Sprint(names)
}

// summary logs the wall times of the tools that ran and trawl's ratio to each peer.
func (w *wanWorkload) summary(b *testing.B) {
	var walls, ratios []string
	for _, name := range w.order {
		if s, ok := w.walls[name]; ok {
			walls = append(walls, fmt.Sprintf("%s %.2f", name, s))
		}
	}
	for _, tr := range w.order {
		ts, ok := w.walls[tr]
		if !ok || !strings.Contains(tr, "trawl") {
			continue
		}
		group, _, _ := strings.Cut(tr, "trawl") // "" or "c32-": compare within a group
		for _, peer := range w.order {
			ps, ok := w.walls[peer]
			if !ok || strings.Contains(peer, "trawl") || !strings.HasPrefix(peer, group) || (group == "" && strings.HasPrefix(peer, "c32-")) {
				continue
			}
			ratios = append(ratios, fmt.Sprintf("%s/%s %.2f", tr, peer, ts/ps))
		}
	}
	b.Logf("wall s: %s", strings.Join(walls, ", "))
	if len(ratios) > 0 {
		b.Logf("ratios: %s", strings.Join(ratios, ", "))
	}
}
