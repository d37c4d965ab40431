package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/scheduler"
)

// maxHostSeries bounds the hosts whose queue depth is a series of its own. A crawl may meet
// thousands of hosts, and a series each would swamp the monitoring that scrapes it; the deepest
// queues are the ones that hold a run up, and trawl_hosts_pending counts all of them.
const maxHostSeries = 10

var (
	filesDesc = prometheus.NewDesc("trawl_files_total",
		"URLs this run fetched or gave up on, by result: new (fetched for the first time), changed (fetched again, content changed), unchanged (revalidated, or fetched again identical), failed (for good).",
		[]string{"result"}, nil)
	fileBytesDesc = prometheus.NewDesc("trawl_file_bytes_total",
		"Size of the files this run fetched whole (new and changed).", nil, nil)
	receivedDesc = prometheus.NewDesc("trawl_received_bytes_total",
		"Body bytes received by this run, as they arrive.", nil, nil)
	retriesDesc = prometheus.NewDesc("trawl_retries_total",
		"Retries this run scheduled after transient errors.", nil, nil)
	inFlightDesc = prometheus.NewDesc("trawl_requests_in_flight",
		"Requests in flight now, over all hosts.", nil, nil)
	jobURLsDesc = prometheus.NewDesc("trawl_job_urls",
		"The job's URLs by state: done, failed (for good) and pending (not yet settled, in flight included); earlier runs' and, on a shared queue, every worker's included.",
		[]string{"state"}, nil)
	retriesWaitingDesc = prometheus.NewDesc("trawl_retries_waiting",
		"URLs waiting for a retry that is not yet due.", nil, nil)
	coolingDesc = prometheus.NewDesc("trawl_hosts_cooling_down",
		"Hosts in a cooldown after a Retry-After, 429 or 503.", nil, nil)
	hostsPendingDesc = prometheus.NewDesc("trawl_hosts_pending",
		"Hosts with URLs queued and not yet taken up by this run (on a shared queue: held by this worker).", nil, nil)
	hostDepthDesc = prometheus.NewDesc("trawl_host_queue_depth",
		"URLs queued for a host and not yet taken up by this run, for the "+strconv.Itoa(maxHostSeries)+" hosts with the most.",
		[]string{"host"}, nil)
	startDesc = prometheus.NewDesc("trawl_run_start_timestamp_seconds",
		"When this run started, in seconds since the Unix epoch.", nil, nil)
	progressDesc = prometheus.NewDesc("trawl_last_progress_timestamp_seconds",
		"When this run last settled a URL or was seen receiving bytes (checked at each scrape), in seconds since the Unix epoch; its start until then.",
		nil, nil)
)

// runMetrics is what --metrics serves about a run. Its numbers are the ones progress and the
// report already keep, read when Prometheus asks: the scheduler's live counters, the run's tally
// of outcomes and the watches of retries and cooling hosts. Only errors by class and the time of
// the last progress are its own, taken from the outcomes as they are committed (once per URL,
// never per chunk of a body).
type runMetrics struct {
	stats   *scheduler.Stats
	tally   *tally
	retries *retryWatch
	hosts   *limiterWatch
	pending func() []queue.HostQueue // the hosts with pending work: the scheduler's last look

	began        time.Time
	errors       *prometheus.CounterVec // failed attempts, retried or not, by error class
	lastProgress atomic.Int64           // Unix nanoseconds
	lastBytes    atomic.Int64           // Stats.Bytes at the last scrape
}

var _ prometheus.Collector = (*runMetrics)(nil)

func newRunMetrics(stats *scheduler.Stats, t *tally, retries *retryWatch, hosts *limiterWatch, began time.Time) *runMetrics {
	m := &runMetrics{stats: stats, tally: t, retries: retries, hosts: hosts, pending: stats.PendingHosts, began: began,
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trawl_errors_total",
			Help: "Failed attempts of this run, retried or not, by error class (http, network, timeout, stall, tls, short-body, redirect, local, url, range, checksum, robots, other).",
		}, []string{"class"}),
	}
	m.lastProgress.Store(began.UnixNano())
	return m
}

// outcome counts one committed outcome. A nil m counts nothing (no --metrics).
func (m *runMetrics) outcome(o scheduler.Outcome) {
	if m == nil {
		return
	}
	switch o.Kind {
	case scheduler.KindReleased:
		return
	case scheduler.KindRetry, scheduler.KindFailed:
		m.errors.WithLabelValues(cmp.Or(o.Record.ErrorClass, "other")).Inc()
	}
	if o.Kind != scheduler.KindRetry { // a retry is activity, not progress: the URL is still to do
		m.lastProgress.Store(time.Now().UnixNano())
	}
}

func (m *runMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{filesDesc, fileBytesDesc, receivedDesc, retriesDesc, inFlightDesc, jobURLsDesc,
		retriesWaitingDesc, coolingDesc, hostsPendingDesc, hostDepthDesc, startDesc, progressDesc} {
		ch <- d
	}
	m.errors.Describe(ch)
}

func (m *runMetrics) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	received := m.stats.Bytes.Load()
	if m.lastBytes.Swap(received) != received {
		m.lastProgress.Store(now.UnixNano())
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}

	c := m.tally.totals()
	counter(filesDesc, c.New, "new")
	counter(filesDesc, c.Changed, "changed")
	counter(filesDesc, c.Unchanged, "unchanged")
	counter(filesDesc, c.Failed, "failed")
	counter(fileBytesDesc, c.Bytes)
	counter(receivedDesc, received)
	counter(retriesDesc, c.Retries)
	m.errors.Collect(ch)

	gauge(inFlightDesc, float64(m.stats.InFlight.Load()))
	total, done, failed := m.stats.Total.Load(), m.stats.Done.Load(), m.stats.Failed.Load()
	gauge(jobURLsDesc, float64(done), "done")
	gauge(jobURLsDesc, float64(failed), "failed")
	gauge(jobURLsDesc, float64(max(total-done-failed, 0)), "pending")
	waiting, _ := m.retries.waiting(now)
	gauge(retriesWaitingDesc, float64(waiting))
	cooling, _ := m.hosts.cooling(now)
	gauge(coolingDesc, float64(cooling))
	pending := m.pending()
	gauge(hostsPendingDesc, float64(len(pending)))
	for _, h := range deepestQueues(pending, maxHostSeries) {
		gauge(hostDepthDesc, float64(h.Pending), h.Host)
	}
	gauge(startDesc, float64(m.began.UnixNano())/1e9)
	gauge(progressDesc, float64(m.lastProgress.Load())/1e9)
}

// deepestQueues returns the n hosts with the most URLs pending, the most first (ties by name), in
// one pass over hosts that keeps n of them: hosts may be many, n is small.
func deepestQueues(hosts []queue.HostQueue, n int) []queue.HostQueue {
	deeper := func(a, b queue.HostQueue) bool {
		return a.Pending > b.Pending || a.Pending == b.Pending && a.Host < b.Host
	}
	top := make([]queue.HostQueue, 0, n)
	for _, h := range hosts {
		if len(top) == n && !deeper(h, top[n-1]) {
			continue
		}
		i := len(top)
		if i < n {
			top = append(top, h)
		}
		for ; i > 0 && deeper(h, top[i-1]); i-- {
			if i < n {
				top[i] = top[i-1]
			}
		}
		top[i] = h
	}
	return top
}

// metricsServer serves Prometheus metrics on the --metrics address while a run goes on: the Go
// runtime's and the process's from the start, the run's once registered. It serves /metrics and
// nothing else, from a registry of its own (nothing another package registers globally leaks in).
type metricsServer struct {
	reg *prometheus.Registry
	ln  net.Listener
	srv *http.Server
}

// listenMetrics binds addr and starts serving on it.
func listenMetrics(addr string) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			err = op.Err // "bind: address already in use", not the address twice
		}
		return nil, fmt.Errorf("--metrics %s: cannot serve metrics there: %v", addr, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s := &metricsServer{reg: reg, ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}}
	go s.srv.Serve(ln) // returns when close shuts the server down
	return s, nil
}

// url is where the metrics are: the address bound, with the port chosen for port 0, and
// localhost for a listener on every address (":9090"), which [::] would not reach everywhere.
func (s *metricsServer) url() string {
	addr := s.ln.Addr().String()
	if tcp, ok := s.ln.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		addr = net.JoinHostPort("localhost", strconv.Itoa(tcp.Port))
	}
	return "http://" + addr + "/metrics"
}

// close stops serving: a scrape under way has a moment to finish.
func (s *metricsServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if s.srv.Shutdown(ctx) != nil {
		s.srv.Close()
	}
}

// checkMetricsAddr checks a --metrics address before anything is done: HOST:PORT or :PORT, with
// a port number (0: any free port).
func checkMetricsAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		if _, perr := strconv.ParseUint(port, 10, 16); perr != nil {
			err = fmt.Errorf("port %q is not a number from 0 to 65535", port)
		}
	}
	if err != nil {
		return fmt.Errorf("--metrics %q: want HOST:PORT or :PORT, e.g. 127.0.0.1:9090 (%v)", addr, err)
	}
	return nil
}
