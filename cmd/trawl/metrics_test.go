package main

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/ratelimit"
	"github.com/trawl-dev/trawl/scheduler"
)

// scrape GETs url and parses the text exposition format, as Prometheus would.
func scrape(t *testing.T, url string) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scraping: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping: %s %v\n%s", resp.Status, err, body)
	}
	var p expfmt.TextParser
	mf, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the scrape: %v\n%s", err, body)
	}
	return mf, body
}

// metricValue is the value of the series name{labels} (given as "k=v" pairs) in a scrape, and
// whether it is there.
func metricValue(mf map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := mf[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		var got []string
		for _, l := range m.Label {
			got = append(got, l.GetName()+"="+l.GetValue())
		}
		if !slices.Equal(got, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}

// TestRunMetrics: after known events — outcomes committed, bytes received, requests in flight,
// retries waiting, a host cooling down, hosts with work — a scrape of the metrics server shows
// each in its series, by Prometheus's conventions; the server serves /metrics only, and nothing
// once closed.
func TestRunMetrics(t *testing.T) {
	ms, err := listenMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ms.close()
	var stats scheduler.Stats
	tl, retries := newTally(), newRetryWatch()
	lim := newLimiterWatch(ratelimit.New(ratelimit.Options{}))
	began := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	m := newRunMetrics(&stats, tl, retries, lim, began)
	hosts := make([]queue.HostQueue, 0, 40)
	for i := range 40 {
		hosts = append(hosts, queue.HostQueue{Host: fmt.Sprintf("h%02d.test", i), Pending: i % 25})
	}
	m.pending = func() []queue.HostQueue { return hosts }
	ms.reg.MustRegister(m)

	// Before any outcome: the process's metrics and the run's, at zero, progress at the start.
	mf, _ := scrape(t, ms.url())
	for _, name := range []string{"process_cpu_seconds_total", "go_goroutines"} {
		if _, ok := mf[name]; !ok {
			t.Errorf("no %s: the standard collectors are not registered", name)
		}
	}
	if v, _ := metricValue(mf, "trawl_last_progress_timestamp_seconds"); math.Abs(v-float64(began.UnixMilli())/1e3) > 1e-3 {
		t.Errorf("last progress before any: %v, want the start %v", v, float64(began.UnixMilli())/1e3)
	}

	now := time.Now()
	outcome := func(kind scheduler.Kind, r queue.Record) {
		o := scheduler.Outcome{Kind: kind, Record: r}
		tl.add(o) // as runJob's OnOutcome does
		retries.add(o)
		m.outcome(o)
	}
	outcome(scheduler.KindNew, queue.Record{URL: "https://a.test/1", Host: "a.test", Bytes: 1000})
	outcome(scheduler.KindNew, queue.Record{URL: "https://a.test/2", Host: "a.test", Bytes: 500})
	outcome(scheduler.KindChanged, queue.Record{URL: "https://a.test/3", Host: "a.test", Bytes: 70})
	outcome(scheduler.KindUnchanged, queue.Record{URL: "https://a.test/4", Host: "a.test", Bytes: 9})
	outcome(scheduler.KindSkipped, queue.Record{URL: "https://a.test/5", Host: "a.test"}) // not fetched: counted for the job
	outcome(scheduler.KindReleased, queue.Record{URL: "https://a.test/6", Host: "a.test"})
	outcome(scheduler.KindRetry, queue.Record{URL: "https://b.test/1", Host: "b.test", ErrorClass: "http", NextAttempt: now.Add(time.Hour)})
	outcome(scheduler.KindRetry, queue.Record{URL: "https://b.test/2", Host: "b.test", ErrorClass: "timeout", NextAttempt: now.Add(time.Hour)})
	outcome(scheduler.KindFailed, queue.Record{URL: "https://b.test/3", Host: "b.test", ErrorClass: "http"})
	outcome(scheduler.KindFailed, queue.Record{URL: "https://b.test/4", Host: "b.test"})
	outcome(scheduler.KindFailed, queue.Record{URL: "https://b.test/5", Host: "b.test", ErrorClass: "checksum"})
	stats.Bytes.Add(4096)
	stats.InFlight.Store(3)
	stats.Total.Store(20)
	stats.Done.Store(12)
	stats.Failed.Store(2)
	lim.Cooldown("b.test", now.Add(time.Hour))

	mf, body := scrape(t, ms.url())
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"trawl_files_total", []string{"result=new"}, 2},
		{"trawl_files_total", []string{"result=changed"}, 1},
		{"trawl_files_total", []string{"result=unchanged"}, 1},
		{"trawl_files_total", []string{"result=failed"}, 3},
		{"trawl_file_bytes_total", nil, 1570},
		{"trawl_received_bytes_total", nil, 4096},
		{"trawl_retries_total", nil, 2},
		{"trawl_errors_total", []string{"class=http"}, 2},
		{"trawl_errors_total", []string{"class=timeout"}, 1},
		{"trawl_errors_total", []string{"class=other"}, 1},
		{"trawl_errors_total", []string{"class=checksum"}, 1},
		{"trawl_requests_in_flight", nil, 3},
		{"trawl_job_urls", []string{"state=done"}, 12},
		{"trawl_job_urls", []string{"state=failed"}, 2},
		{"trawl_job_urls", []string{"state=pending"}, 6},
		{"trawl_retries_waiting", nil, 2},
		{"trawl_hosts_cooling_down", nil, 1},
		{"trawl_hosts_pending", nil, 40},
		{"trawl_host_queue_depth", []string{"host=h24.test"}, 24},
		{"trawl_host_queue_depth", []string{"host=h15.test"}, 15},
		{"trawl_run_start_timestamp_seconds", nil, float64(began.UnixMilli()) / 1e3},
	} {
		got, ok := metricValue(mf, tc.name, tc.labels...)
		if !ok || math.Abs(got-tc.want) > 1e-3 { // timestamps: to the millisecond
			t.Errorf("%s%v = %v (present: %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	// The help names every class a series carries: a dashboard's author reads it for the labels.
	help := mf["trawl_errors_total"].GetHelp()
	_, named, _ := strings.Cut(help, "(")
	named, _, _ = strings.Cut(named, ")")
	for _, m := range mf["trawl_errors_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if !slices.Contains(strings.Split(named, ", "), l.GetValue()) {
				t.Errorf("trawl_errors_total's help does not name class %s: %q", l.GetValue(), help)
			}
		}
	}
	// Ten hosts have a series: the ten deepest queues (24 down to 15), none of the others.
	if n := len(mf["trawl_host_queue_depth"].GetMetric()); n != maxHostSeries {
		t.Errorf("%d host queue series, want %d", n, maxHostSeries)
	}
	if _, ok := metricValue(mf, "trawl_host_queue_depth", "host=h14.test"); ok {
		t.Error("a series for h14.test, the 11th deepest queue")
	}
	if v, _ := metricValue(mf, "trawl_last_progress_timestamp_seconds"); v < float64(now.UnixNano())/1e9 {
		t.Errorf("last progress %v, before the outcomes at %v", v, float64(now.UnixNano())/1e9)
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "trawl_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}

	// Bytes arriving, and nothing settled: progress all the same, seen at the scrape.
	before := time.Now()
	stats.Bytes.Add(1)
	mf, _ = scrape(t, ms.url())
	if v, _ := metricValue(mf, "trawl_last_progress_timestamp_seconds"); v < float64(before.UnixNano())/1e9 {
		t.Errorf("last progress %v after bytes arrived, before the scrape at %v", v, float64(before.UnixNano())/1e9)
	}

	resp, err := http.Get(strings.TrimSuffix(ms.url(), "metrics") + "debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/: %s, want 404: only /metrics is served", resp.Status)
	}

	ms.close()
	if resp, err := http.Get(ms.url()); err == nil {
		resp.Body.Close()
		t.Errorf("GET after close: %s, want no server", resp.Status)
	}
}

// TestListenMetricsTaken: an address another listener holds is refused with a line that names
// it and says why.
func TestListenMetricsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ms, err := listenMetrics(ln.Addr().String())
	if err == nil {
		ms.close()
		t.Fatal("listening on a taken address: no error")
	}
	if msg := err.Error(); !strings.Contains(msg, "--metrics "+ln.Addr().String()) || !strings.Contains(msg, "address already in use") {
		t.Errorf("error: %q", msg)
	}
}

func TestCheckMetricsAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:9090", true},
		{":9090", true},
		{"localhost:0", true},
		{"[::1]:9090", true},
		{"9090", false},
		{"127.0.0.1", false},
		{"127.0.0.1:", false},
		{"127.0.0.1:http", false},
		{"127.0.0.1:70000", false},
		{"127.0.0.1:-1", false},
		{"http://127.0.0.1:9090", false},
		{"::1:9090", false},
	} {
		err := checkMetricsAddr(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("%q: %v, want ok %v", tc.addr, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "HOST:PORT") {
			t.Errorf("%q: %q does not say what is wanted", tc.addr, err)
		}
	}
}

// FuzzCheckMetricsAddr: any address is either refused with an error or one net.Listen takes the
// port of: a number within range.
func FuzzCheckMetricsAddr(f *testing.F) {
	for _, s := range []string{"127.0.0.1:9090", ":0", "[::1]:1", "a:b:c", "[", ":65536", "host:+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		if checkMetricsAddr(addr) != nil {
			return
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%q accepted: %v", addr, err)
		}
		if _, err := net.LookupPort("tcp", port); err != nil || port == "" || strings.ContainsAny(port, "+-") {
			t.Fatalf("%q accepted with port %q", addr, port)
		}
	})
}

// TestDeepestQueues: the n deepest queues, deepest first, ties by host name — the same as
// sorting them all, for lists shorter and longer than n.
func TestDeepestQueues(t *testing.T) {
	ref := func(hosts []queue.HostQueue, n int) []queue.HostQueue {
		s := slices.Clone(hosts)
		slices.SortFunc(s, func(a, b queue.HostQueue) int {
			return cmp.Or(cmp.Compare(b.Pending, a.Pending), cmp.Compare(a.Host, b.Host))
		})
		return s[:min(n, len(s))]
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 3, 10, 11, 500} {
		for _, n := range []int{1, 3, 10} {
			hosts := make([]queue.HostQueue, size)
			for i := range hosts {
				hosts[i] = queue.HostQueue{Host: fmt.Sprintf("h%d", rng.IntN(size+1)), Pending: rng.IntN(8)}
			}
			if got, want := deepestQueues(hosts, n), ref(hosts, n); !slices.Equal(got, want) {
				t.Errorf("%d hosts, n %d:\n got %v\nwant %v", size, n, got, want)
			}
		}
	}
}

// TestMetricsURLEveryAddress: a listener on every address (":PORT") is announced at localhost,
// where a browser or curl on the machine reaches it, not at [::].
func TestMetricsURLEveryAddress(t *testing.T) {
	ms, err := listenMetrics(":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ms.close()
	u := ms.url()
	if !strings.HasPrefix(u, "http://localhost:") || !strings.HasSuffix(u, "/metrics") {
		t.Fatalf("url %q, want http://localhost:PORT/metrics", u)
	}
	if mf, _ := scrape(t, u); len(mf) == 0 {
		t.Errorf("nothing scraped at %s", u)
	}
}
