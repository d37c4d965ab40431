package integration_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/trawl-dev/trawl/internal/natstest"
	"github.com/trawl-dev/trawl/internal/testserver"
)

// metricsURLRe finds the line a run logs when it starts serving metrics.
var metricsURLRe = regexp.MustCompile(`msg="serving metrics" url=(http://\S+/metrics)`)

// scrapeMetrics GETs a run's metrics and parses them as Prometheus would.
func scrapeMetrics(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: %s %v", url, resp.Status, err)
	}
	var p expfmt.TextParser
	mf, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the scrape: %v\n%s", err, body)
	}
	return mf
}

// sample is the value of the series name{label="value"} in a scrape (label may be empty), or -1.
func sample(mf map[string]*dto.MetricFamily, name, label, value string) float64 {
	for _, m := range mf[name].GetMetric() {
		match := label == "" && len(m.Label) == 0
		for _, l := range m.Label {
			match = match || l.GetName() == label && l.GetValue() == value
		}
		if !match {
			continue
		}
		if m.Counter != nil {
			return m.Counter.GetValue()
		}
		return m.Gauge.GetValue()
	}
	return -1
}

// TestMetrics: a run with --metrics 127.0.0.1:0 logs where its metrics are, and serves them while
// it goes on — on a state file and on a shared job alike. Scraped while one transfer is held
// half-way, they show the files finished, the bytes received, the request in flight and the queue
// of the held host; once the run ends, nothing listens there any more.
func TestMetrics(t *testing.T) {
	t.Parallel()
	for _, shared := range []bool{false, true} {
		name := "state file"
		if shared {
			name = "shared job"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ss, ca := servers(t, 2)
			small, slow := ss[0], ss[1]
			g := newTransferGate(t)
			held := testserver.Content(7, 64<<10)
			slow.Handle("/held.bin", g.handler(held))
			lines := []string{slow.URL("/held.bin")}
			var smallBytes int64
			for i, size := range []int64{1000, 20 << 10, 3 << 10} {
				p := fmt.Sprintf("/s%d.bin", i)
				small.Handle(p, testserver.Size(size))
				lines = append(lines, small.URL(p))
				smallBytes += size
			}
			const queued = 20 // behind the held file on its host
			for i := range queued {
				p := fmt.Sprintf("/q%02d.bin", i)
				slow.Handle(p, testserver.Size(100))
				lines = append(lines, slow.URL(p))
			}
			args := []string{"get", "-i", writeList(t, lines...), "-o", t.TempDir(), "--ca-cert", ca,
				"--metrics", "127.0.0.1:0", "--progress-interval", "20ms", "-c", "2", "--per-host", "1"}
			if shared {
				args = append(args, "--queue", natstest.Server(t).ClientURL(), "--job", "metrics")
			}
			p := start(t, trawlCmd(args...))
			g.waitEntered(t, p)
			// The three small files done and the held one's first half in: the run stands still.
			p.waitStderr("a progress line with 3 done and half the held file received", func(s string) bool {
				l := lastLine(s, "msg=progress")
				return logInt(l, "done") == 3 && int64(logInt(l, "bytes")) == smallBytes+int64(len(held)/2)
			}, 30*time.Second)
			m := metricsURLRe.FindStringSubmatch(p.stderr.String())
			if m == nil {
				t.Fatalf("no line says where the metrics are served; stderr:\n%s", tail(p.stderr.String()))
			}
			url := m[1]

			var mf map[string]*dto.MetricFamily
			// The progress line can come a moment before the last outcome is tallied; the queue's
			// depth shows at the scheduler's next look at its hosts.
			eventually(t, "the three files counted and the held host's queue seen", 30*time.Second, p.exited, func() bool {
				mf = scrapeMetrics(t, url)
				return sample(mf, "trawl_files_total", "result", "new") == 3 && sample(mf, "trawl_hosts_pending", "", "") == 1
			})
			for _, c := range []struct {
				name, label, value string
				want               float64
			}{
				{"trawl_files_total", "result", "failed", 0},
				{"trawl_file_bytes_total", "", "", float64(smallBytes)},
				{"trawl_received_bytes_total", "", "", float64(smallBytes + int64(len(held)/2))},
				{"trawl_requests_in_flight", "", "", 1},
				{"trawl_job_urls", "state", "done", 3},
				{"trawl_job_urls", "state", "pending", 1 + queued},
			} {
				if got := sample(mf, c.name, c.label, c.value); got != c.want {
					t.Errorf("%s{%s=%q} = %v, want %v", c.name, c.label, c.value, got, c.want)
				}
			}
			// Some of the held host's queue is leased to the run; the rest is its queue's depth.
			if d := sample(mf, "trawl_host_queue_depth", "host", slow.Addr()); d < 1 || d > queued {
				t.Errorf("trawl_host_queue_depth{host=%q} = %v, want 1 to %d", slow.Addr(), d, queued)
			}
			if v := sample(mf, "process_resident_memory_bytes", "", ""); v <= 0 {
				t.Errorf("process_resident_memory_bytes = %v: no process metrics", v)
			}

			g.open()
			wantExit(t, p.wait(runTimeout), exitOK)
			if resp, err := http.Get(url); err == nil {
				resp.Body.Close()
				t.Errorf("after the run, %s still answers: %s", url, resp.Status)
			}
		})
	}
}

// TestMetricsAddrRefused: a --metrics address that is malformed, or taken by another program, is
// a usage error (exit 2) with one line naming it, before any URL is requested. A run that finds
// the job's last run still going says that (exit 3), even when that run holds the metrics port.
func TestMetricsAddrRefused(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() }) // after the parallel subtests, not when this function returns
	for _, tc := range []struct {
		addr, want string
	}{
		{"127.0.0.1:99999", "want HOST:PORT"},
		{"9090", "want HOST:PORT"},
		{taken.Addr().String(), "address already in use"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			t.Parallel()
			s, ca := server(t)
			r := runTrawl(t, "get", "-o", t.TempDir(), "--ca-cert", ca, "--metrics", tc.addr, s.URL("/a.bin"))
			wantExit(t, r, exitUsage)
			line := wantOneLine(t, r.stderr)
			if !strings.Contains(line, "--metrics") || !strings.Contains(line, tc.want) {
				t.Errorf("stderr %q does not name --metrics and say %q", line, tc.want)
			}
			if n := len(s.Requests()); n != 0 {
				t.Errorf("%d requests made", n)
			}
		})
	}

	t.Run("last run still going", func(t *testing.T) {
		t.Parallel()
		s, ca := server(t)
		g := newTransferGate(t)
		s.Handle("/held.bin", g.handler(testserver.Content(3, 32<<10)))
		out := t.TempDir()
		args := []string{"get", "-o", out, "--ca-cert", ca, s.URL("/held.bin")}
		first := start(t, trawlCmd(append(args, "--metrics", "127.0.0.1:0")...))
		g.waitEntered(t, first)
		m := metricsURLRe.FindStringSubmatch(first.stderr.String())
		if m == nil {
			t.Fatalf("no line says where the metrics are served; stderr:\n%s", tail(first.stderr.String()))
		}
		addr := strings.TrimSuffix(strings.TrimPrefix(m[1], "http://"), "/metrics")
		r := start(t, trawlCmd(append(args, "--metrics", addr)...)).wait(promptly)
		wantExit(t, r, exitFatal)
		if !strings.Contains(r.stderr, "in use") {
			t.Errorf("second run's stderr: %q", r.stderr)
		}
		g.open()
		wantExit(t, first.wait(runTimeout), exitOK)
	})
}
