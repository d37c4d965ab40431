//go:build bench && linux

package integration_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// The benchmark's HTTPS servers run in a separate process — this test binary re-executed with
// $TRAWL_BENCH_SERVE set (the standard helper-process pattern) — so that trawl's CPU time and
// peak RSS, read from its rusage, are its own, and the servers' garbage collector never runs in
// the measured process.
//
// Protocol: the child writes "ready {JSON}" (its base URLs and CA file) on stdout, then obeys
// one command per stdin line, answering each with "ok": "mode ok" or "mode 503" switches what
// every path answers (and re-arms the first-request notice), "flush" writes the request log out.
// The first request after a mode switch is announced with "first UNIXNANO" on stdout. Closing
// stdin stops the child.

// serveEnv names the environment variable that turns the test binary into a bench server.
const serveEnv = "TRAWL_BENCH_SERVE"

func init() {
	// init, not TestMain: TestMain (helpers_test.go) builds trawl first, which the child must not.
	if spec := os.Getenv(serveEnv); spec != "" {
		os.Exit(serveMain(spec))
	}
}

// serveSpec says what a bench server process serves.
type serveSpec struct {
	Corpus string // "small", "large", "crawl", "docs" or "tiny" (any path: a small body)
	Hosts  int    // listeners on 127.0.0.1, each a distinct host:port for trawl's politeness
	Dir    string // where the CA certificate and the request log are written
	Mode   string // initial mode: "ok" (serve the corpus) or "503" (Retry-After: 3600 on every path)

	SmallFiles, SmallKiB int    // corpus small
	LargeFiles, LargeMiB int    // corpus large
	Pages                int    // corpus crawl; corpus docs, generated
	DocsDir              string // corpus docs: serve this directory under /docs/ instead
	TinyBytes            int    // corpus tiny
}

// serveReady is the child's "ready" line.
type serveReady struct {
	Bases []string // https://127.0.0.1:PORT, one per host
	CA    string   // PEM file for --ca-cert
}

// benchLogged is one request from the child's log.
type benchLogged struct {
	Time time.Time
	Host string // host:port as the client sent it
	Path string
	// Agent is the request's User-Agent, spaces as '_' ("-" if none): the fleet benchmark gives
	// each worker its own, to tell whose request it was.
	Agent string
}

// benchFile is one resource of a corpus.
type benchFile struct {
	ctype string
	size  int64
	open  func() io.ReadSeeker
}

// corpus resolves a request path.
type corpus func(path string) (benchFile, bool)

// serveMain is the child process: it returns its exit code.
func serveMain(raw string) int {
	var spec serveSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "bench server: spec:", err)
		return 2
	}
	if err := serve(spec, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench server:", err)
		return 1
	}
	return 0
}

func serve(spec serveSpec, stdin io.Reader, stdout io.Writer) error {
	files, err := newCorpus(spec)
	if err != nil {
		return err
	}
	ca, err := testserver.NewCA()
	if err != nil {
		return err
	}
	cert, _, _, err := ca.Leaf([]string{"127.0.0.1", "localhost"}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), false)
	if err != nil {
		return err
	}
	caFile := filepath.Join(spec.Dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(spec.Dir, "requests.log"))
	if err != nil {
		return err
	}
	defer logf.Close()

	h := &benchHandler{files: files, log: bufio.NewWriterSize(logf, 1<<20), stdout: stdout}
	h.mode503.Store(spec.Mode == "503")
	srv := &http.Server{
		Handler:  h,
		ErrorLog: log.New(io.Discard, "", 0), // trawl's kill -9 leaves broken connections behind
		// Serves HTTP/2 (ALPN h2) and HTTP/1.1, as ServeTLS does by default.
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 30 * time.Second,
	}
	ready := serveReady{CA: caFile}
	for range max(spec.Hosts, 1) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ready.Bases = append(ready.Bases, "https://"+l.Addr().String())
		go srv.ServeTLS(l, "", "")
	}
	line, _ := json.Marshal(ready)
	h.say("ready " + string(line))

	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		switch cmd := strings.TrimSpace(sc.Text()); cmd {
		case "mode ok", "mode 503":
			h.mode503.Store(cmd == "mode 503")
			h.armFirst.Store(true)
		case "flush":
			h.mu.Lock()
			err = h.log.Flush()
			h.mu.Unlock()
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown command %q", cmd)
		}
		h.say("ok")
	}
	srv.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.log.Flush()
}

// benchHandler serves a corpus and logs every request with its arrival time.
type benchHandler struct {
	files    corpus
	mode503  atomic.Bool
	armFirst atomic.Bool // announce the next request on stdout

	outMu  sync.Mutex
	stdout io.Writer

	mu  sync.Mutex
	log *bufio.Writer
}

func (h *benchHandler) say(line string) {
	h.outMu.Lock()
	defer h.outMu.Unlock()
	fmt.Fprintln(h.stdout, line)
}

// modTime is every file's Last-Modified: fixed, so a restarted run's resume checks hold.
var modTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func (h *benchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	if h.armFirst.CompareAndSwap(true, false) {
		h.say("first " + strconv.FormatInt(now.UnixNano(), 10))
	}
	h.mu.Lock()
	agent := strings.ReplaceAll(r.UserAgent(), " ", "_")
	if agent == "" {
		agent = "-"
	}
	fmt.Fprintf(h.log, "%d %s %s %s\n", now.UnixNano(), r.Host, r.URL.Path, agent)
	h.mu.Unlock()

	if h.mode503.Load() {
		// A host that is "down for maintenance": trawl cools the whole host down for an hour.
		w.Header().Set("Retry-After", "3600")
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	f, ok := h.files(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", f.ctype)
	// ServeContent sets Content-Length and Last-Modified and answers Range requests (resume).
	http.ServeContent(w, r, "", modTime, f.open())
}

// newCorpus builds the corpus the spec names; bodies are generated, deterministic, in memory.
func newCorpus(spec serveSpec) (corpus, error) {
	switch spec.Corpus {
	case "small":
		blob := testserver.Content(1, int64(spec.SmallKiB)<<10+4096)
		size := int64(spec.SmallKiB) << 10
		return func(p string) (benchFile, bool) {
			i, ok := numbered(p, "/small/img", ".jpg")
			if !ok || i >= spec.SmallFiles {
				return benchFile{}, false
			}
			off := int64(i % 4096) // as gen_corpus.py: every file different, one blob in memory
			return bytesFile("image/jpeg", blob[off:off+size]), true
		}, nil
	case "large":
		chunk := testserver.Content(2, 1<<20)
		size := int64(spec.LargeMiB) << 20
		return func(p string) (benchFile, bool) {
			i, ok := numbered(p, "/large/big", ".bin")
			if !ok || i >= spec.LargeFiles {
				return benchFile{}, false
			}
			return benchFile{"application/octet-stream", size, func() io.ReadSeeker {
				return io.NewSectionReader(repeatReader(chunk), 0, size)
			}}, true
		}, nil
	case "crawl":
		site := crawlCorpus(spec.Pages)
		return func(p string) (benchFile, bool) {
			b, ok := site[p]
			if !ok {
				return benchFile{}, false
			}
			return bytesFile(benchCtype(p), b), true
		}, nil
	case "docs":
		return docsCorpus(spec)
	case "tiny":
		body := testserver.Content(3, int64(spec.TinyBytes))
		return func(string) (benchFile, bool) { return bytesFile("application/octet-stream", body), true }, nil
	}
	return nil, fmt.Errorf("unknown corpus %q", spec.Corpus)
}

func bytesFile(ctype string, b []byte) benchFile {
	return benchFile{ctype, int64(len(b)), func() io.ReadSeeker { return bytes.NewReader(b) }}
}

// numbered parses prefix + decimal + suffix.
func numbered(p, prefix, suffix string) (int, bool) {
	if !strings.HasPrefix(p, prefix) || !strings.HasSuffix(p, suffix) {
		return 0, false
	}
	n, err := strconv.Atoi(p[len(prefix) : len(p)-len(suffix)])
	return n, err == nil && n >= 0
}

func benchCtype(p string) string {
	switch filepath.Ext(p) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css"
	case ".jpg":
		return "image/jpeg"
	}
	return "text/plain; charset=utf-8"
}

// repeatReader is an endless repetition of itself, read at any offset: large bodies without
// holding them in memory.
type repeatReader []byte

func (r repeatReader) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], r[(off+int64(n))%int64(len(r)):])
	}
	return n, nil
}

// crawlCorpus is the site of shared/bench/gen_corpus.py: pages p0..pN-1, each linking to 8
// random pages and the next one, with two 8 KiB images and a shared stylesheet; an index
// linking to p0 and to a page robots.txt disallows; an offsite link that must not be followed.
func crawlCorpus(pages int) map[string][]byte {
	blob := testserver.Content(4, 8192+2)
	site := map[string][]byte{
		"/site/style.css":           []byte("body{font-family:sans-serif}"),
		"/site/index.html":          []byte(`<html><body><a href="p0.html">start</a> <a href="private/secret.html">members</a></body></html>`),
		"/robots.txt":               []byte("User-agent: *\nDisallow: /site/private/\n"),
		"/site/private/secret.html": []byte(`<html><body>robots.txt says no <img src="s.jpg"></body></html>`),
	}
	rnd := rand.New(rand.NewPCG(42, 42))
	for i := range pages {
		links := map[int]bool{(i + 1) % pages: true}
		for range 8 {
			links[int(rnd.Uint64()%uint64(pages))] = true
		}
		var b strings.Builder
		fmt.Fprintf(&b, "<!doctype html><html><head><title>p%d</title>\n", i)
		b.WriteString(`<link rel="stylesheet" href="/site/style.css"></head><body>` + "\n")
		for j := range pages {
			if links[j] {
				fmt.Fprintf(&b, "<a href=\"/site/p%d.html\">page %d</a>\n", j, j)
			}
		}
		for k := range 2 {
			fmt.Fprintf(&b, "<img src=\"img/i%d_%d.jpg\" alt=\"\">\n", i, k)
			site[fmt.Sprintf("/site/img/i%d_%d.jpg", i, k)] = blob[k : k+8192]
		}
		b.WriteString(`<a href="https://elsewhere.invalid/x">offsite</a></body></html>`)
		site[fmt.Sprintf("/site/p%d.html", i)] = []byte(b.String())
	}
	return site
}

// crawlWant is how many files a polite crawl of crawlCorpus(pages) saves: every page and both
// its images, the stylesheet and the index (robots.txt and the disallowed page are not counted).
func crawlWant(pages int) int { return 3*pages + 2 }

// benchServer is the test's handle on a running server process.
type benchServer struct {
	tb     testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	acks   chan struct{}
	firsts chan time.Time
	Bases  []string
	CA     string
	log    string
}

// startBenchServer starts a server process for spec (its Dir defaults to a temporary
// directory) and stops it when the benchmark ends.
func startBenchServer(tb testing.TB, spec serveSpec) *benchServer {
	tb.Helper()
	if spec.Dir == "" {
		spec.Dir = tb.TempDir()
	}
	if spec.Mode == "" {
		spec.Mode = "ok"
	}
	raw, _ := json.Marshal(spec)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting bench server: %v", err)
	}
	s := &benchServer{tb: tb, cmd: cmd, stdin: stdin, acks: make(chan struct{}, 1),
		firsts: make(chan time.Time, 16), log: filepath.Join(spec.Dir, "requests.log")}
	exited := make(chan struct{})
	tb.Cleanup(func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	readyc := make(chan serveReady, 1)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<24) // the ready line of 1,000 hosts
		for sc.Scan() {
			line := sc.Text()
			switch verb, rest, _ := strings.Cut(line, " "); verb {
			case "ready":
				var r serveReady
				if json.Unmarshal([]byte(rest), &r) == nil {
					readyc <- r
				}
			case "ok":
				s.acks <- struct{}{}
			case "first":
				ns, _ := strconv.ParseInt(rest, 10, 64)
				s.firsts <- time.Unix(0, ns)
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case r := <-readyc:
		s.Bases, s.CA = r.Bases, r.CA
	case <-exited:
		tb.Fatal("bench server exited before it was ready")
	case <-time.After(60 * time.Second):
		tb.Fatal("bench server not ready after 60s")
	}
	return s
}

// do sends one command and waits for its acknowledgement.
func (s *benchServer) do(cmd string) {
	s.tb.Helper()
	if _, err := fmt.Fprintln(s.stdin, cmd); err != nil {
		s.tb.Fatalf("bench server %q: %v", cmd, err)
	}
	select {
	case <-s.acks:
	case <-time.After(30 * time.Second):
		s.tb.Fatalf("bench server: no answer to %q", cmd)
	}
}

// setMode switches what every path answers ("ok" or "503") and re-arms waitFirst.
func (s *benchServer) setMode(mode string) {
	s.tb.Helper()
	// Drop a notice left from an earlier mode.
	for len(s.firsts) > 0 {
		<-s.firsts
	}
	s.do("mode " + mode)
}

// waitFirst returns the server's arrival time of the first request since the last setMode.
func (s *benchServer) waitFirst(timeout time.Duration) (time.Time, bool) {
	select {
	case t := <-s.firsts:
		return t, true
	case <-time.After(timeout):
		return time.Time{}, false
	}
}

// requests flushes the child's request log and reads it.
func (s *benchServer) requests() []benchLogged {
	s.tb.Helper()
	s.do("flush")
	f, err := os.Open(s.log)
	if err != nil {
		s.tb.Fatal(err)
	}
	defer f.Close()
	var out []benchLogged
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 4 {
			continue
		}
		ns, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, benchLogged{time.Unix(0, ns), fields[1], fields[2], fields[3]})
	}
	if err := sc.Err(); err != nil {
		s.tb.Fatal(err)
	}
	return out
}
