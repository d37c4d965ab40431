package integration_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// Helpers for the nightly-pull tests (nightly_test.go): the JSON that --report and
// `trawl status --json` write, a job of files spread over hosts, a transfer the test holds
// open, and snapshots of files on disk.

// reportCounts are the "counts" of a report (and a host's entry in "hosts").
type reportCounts struct {
	New       int64 `json:"new"`
	Changed   int64 `json:"changed"`
	Unchanged int64 `json:"unchanged"`
	Failed    int64 `json:"failed"`
	Transient int64 `json:"failed_transient"`
	Retries   int64 `json:"retries"`
	Bytes     int64 `json:"bytes"`
}

// jobTotals are the whole job's records by state, in a report's "job" and in status.
type jobTotals struct {
	Total   int   `json:"total"`
	Done    int   `json:"done"`
	Failed  int   `json:"failed"`
	Pending int   `json:"pending"`
	Skipped int   `json:"skipped"`
	Bytes   int64 `json:"bytes"`
}

type reportFailure struct {
	URL       string `json:"url"`
	Status    int    `json:"status"`
	Class     string `json:"class"`
	Error     string `json:"error"`
	Attempts  int    `json:"attempts"`
	Transient bool   `json:"transient"`
}

// runReport is the JSON --report writes, as README "Nightly pulls from cron" describes it.
type runReport struct {
	Command         string                  `json:"command"`
	StateFile       string                  `json:"state_file"`
	Out             string                  `json:"out"`
	Start           time.Time               `json:"start"`
	End             time.Time               `json:"end"`
	DurationSeconds float64                 `json:"duration_seconds"`
	Outcome         string                  `json:"outcome"`
	ExitCode        int                     `json:"exit_code"`
	Error           string                  `json:"error"`
	Counts          reportCounts            `json:"counts"`
	ReceivedBytes   int64                   `json:"received_bytes"`
	Hosts           map[string]reportCounts `json:"hosts"`
	Job             jobTotals               `json:"job"`
	Failures        []reportFailure         `json:"failures"`
	Waiting         []reportWaiting         `json:"waiting"`
	BadInputCount   int64                   `json:"bad_input_count"`
	BadInput        []reportBadInput        `json:"bad_input"`
}

// reportBadInput is a list line or argument a run skipped.
type reportBadInput struct {
	Source string `json:"source"`
	Line   int    `json:"line"`
	Error  string `json:"error"`
}

// reportWaiting is a URL a run ended by --max-wait left queued.
type reportWaiting struct {
	URL      string     `json:"url"`
	Due      *time.Time `json:"due"`
	Attempts int        `json:"attempts"`
}

// The keys a script reading a report may rely on.
var (
	reportKeys      = []string{"start", "end", "outcome", "exit_code", "counts", "received_bytes", "hosts", "job", "failures", "bad_input_count", "bad_input"}
	reportCountKeys = []string{"new", "changed", "unchanged", "failed", "failed_transient", "retries", "bytes"}
	reportJobKeys   = []string{"total", "done", "failed", "pending", "skipped", "bytes"}
)

// readReport parses the report at path, failing the test unless it is valid JSON with every
// documented key.
func readReport(t testing.TB, path string) runReport {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	if !json.Valid(data) {
		t.Fatalf("report %s is not valid JSON:\n%s", path, data)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatalf("report %s is not a JSON object: %v", path, err)
	}
	wantKeys(t, "report", top, reportKeys)
	for _, sub := range []struct {
		key  string
		keys []string
	}{{"counts", reportCountKeys}, {"job", reportJobKeys}} {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(top[sub.key], &m); err != nil {
			t.Fatalf("report %q is not an object: %v", sub.key, err)
		}
		wantKeys(t, "report "+sub.key, m, sub.keys)
	}
	var r runReport
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("report %s: %v\n%s", path, err, data)
	}
	return r
}

func wantKeys(t testing.TB, what string, m map[string]json.RawMessage, keys []string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s has no %q key", what, k)
		}
	}
}

// statusJSON is `trawl status --json`.
type statusJSON struct {
	StateFile string               `json:"state_file"`
	Running   bool                 `json:"running"`
	Holder    string               `json:"holder"`
	Taken     time.Time            `json:"taken"`
	Job       jobTotals            `json:"job"`
	Hosts     map[string]jobTotals `json:"hosts"`
	LastRun   struct {
		Start    string `json:"start"`
		End      string `json:"end"`
		Outcome  string `json:"outcome"`
		ExitCode *int   `json:"exit_code"`
		PID      int    `json:"pid"`
	} `json:"last_run"`
	Run       *reportCounts `json:"run"`
	TopErrors []struct {
		Error string `json:"error"`
		Count int64  `json:"count"`
	} `json:"top_errors"`
}

// trawlStatus runs `trawl status --json` with args, which must succeed.
func trawlStatus(t testing.TB, args ...string) statusJSON {
	t.Helper()
	r := runTrawl(t, append([]string{"status", "--json"}, args...)...)
	wantExit(t, r, exitOK)
	var st statusJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("trawl status --json: %v; stdout:\n%s", err, r.stdout)
	}
	return st
}

// nightlyFile is one file a test server serves.
type nightlyFile struct {
	s    *testserver.Server
	path string
	etag string // the ETag it is served with
}

func (f nightlyFile) url() string { return f.s.URL(f.path) }

// lastMod0 is the Last-Modified of every file of a nightlyJob until a test changes it.
var lastMod0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// nightlyJob is a URL list over several hosts, mirrored into out, as a cron job would pull it
// every night.
type nightlyJob struct {
	ss     []*testserver.Server
	ca     string
	files  []nightlyFile
	list   string // the -i file
	out    string
	report string // the --report file (outside out, as a cron user would put it)
}

// newNightlyJob serves perHost files on each of hosts servers, each with its own size, a known
// ETag ("<n>-v1") and Last-Modified lastMod0.
func newNightlyJob(t testing.TB, hosts, perHost int) *nightlyJob {
	t.Helper()
	ss, ca := servers(t, hosts)
	j := &nightlyJob{ss: ss, ca: ca, out: t.TempDir()}
	j.report = filepath.Join(t.TempDir(), "report.json")
	var lines []string
	for h, s := range ss {
		for i := range perHost {
			f := nightlyFile{s, fmt.Sprintf("/pull/%d/%02d.bin", h, i), fmt.Sprintf(`"%d-%d-v1"`, h, i)}
			s.Handle(f.path, testserver.Size(int64(8<<10+1000*(h*perHost+i))),
				testserver.ETag(f.etag), testserver.LastModified(lastMod0))
			j.files = append(j.files, f)
			lines = append(lines, f.url())
		}
	}
	j.list = writeList(t, lines...)
	return j
}

// addLines rewrites the list with extra lines after the job's URLs.
func (j *nightlyJob) addLines(t testing.TB, lines ...string) {
	t.Helper()
	var all []string
	for _, f := range j.files {
		all = append(all, f.url())
	}
	j.list = writeList(t, append(all, lines...)...)
}

// state is the job's state file.
func (j *nightlyJob) state() string { return filepath.Join(j.out, ".trawl", "state.db") }

// args is the nightly command line, with extra flags.
func (j *nightlyJob) args(extra ...string) []string {
	return append([]string{"get", "-i", j.list, "-o", j.out, "--ca-cert", j.ca, "--report", j.report}, extra...)
}

// file is where f is mirrored.
func (j *nightlyJob) file(f nightlyFile) string { return mirrorPath(j.out, f.s, f.path) }

// requestCounts is the number of requests each server has logged so far, to tell one run's
// requests from the previous ones'.
func (j *nightlyJob) requestCounts() []int {
	n := make([]int, len(j.ss))
	for i, s := range j.ss {
		n[i] = len(s.Requests())
	}
	return n
}

// requestsSince returns the requests logged after the counts in before, by server.
func (j *nightlyJob) requestsSince(before []int) [][]testserver.Request {
	out := make([][]testserver.Request, len(j.ss))
	for i, s := range j.ss {
		out[i] = s.Requests()[before[i]:]
	}
	return out
}

// nightlyFileState is what a rewrite of a file would change.
type nightlyFileState struct {
	info  os.FileInfo
	mtime time.Time
	sum   string
}

func statNightlyFile(t testing.TB, name string) nightlyFileState {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return nightlyFileState{info: fi, mtime: fi.ModTime(), sum: fileSHA256(t, name)}
}

// wantUntouched fails unless name is still the very file before describes: same inode, mtime
// and content.
func wantUntouched(t testing.TB, name string, before nightlyFileState) {
	t.Helper()
	after := statNightlyFile(t, name)
	if !os.SameFile(before.info, after.info) {
		t.Errorf("%s was replaced (another inode)", name)
	}
	if !after.mtime.Equal(before.mtime) {
		t.Errorf("%s: mtime changed from %s to %s", name, before.mtime, after.mtime)
	}
	if after.sum != before.sum {
		t.Errorf("%s: content changed", name)
	}
}

// wantFileBody fails unless the file name holds exactly body (for paths a HandlerFunc serves, which
// Server.SHA256 does not know).
func wantFileBody(t testing.TB, name string, body []byte) {
	t.Helper()
	sum := sha256.Sum256(body)
	if got, want := fileSHA256(t, name), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("%s: sha256 %s, want %s", name, got, want)
	}
}

// wantMtime fails unless name's mtime is lm.
func wantMtime(t testing.TB, name string, lm time.Time) {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(lm) {
		t.Errorf("%s: mtime %s, want the Last-Modified %s", name, fi.ModTime().UTC(), lm.UTC())
	}
}

// diskFiles lists the regular files under out with their sizes, leaving out the job's own
// .trawl directory.
func diskFiles(t testing.TB, out string) map[string]int64 {
	t.Helper()
	files := map[string]int64{}
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".trawl" {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(out, p)
			files[rel] = fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func sumSizes(files map[string]int64) int64 {
	var n int64
	for _, s := range files {
		n += s
	}
	return n
}

// transferGate holds a transfer half-way until the test opens it: a run that is certainly still
// going, without guessing how long a slow transfer takes.
type transferGate struct {
	entered   chan struct{} // closed when the first request reached the handler
	release   chan struct{}
	enterOnce sync.Once
	openOnce  sync.Once
}

// newTransferGate returns a closed gate that is opened at the end of the test at the latest,
// before the servers started earlier in the test are closed.
func newTransferGate(t testing.TB) *transferGate {
	g := &transferGate{entered: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *transferGate) open() { g.openOnce.Do(func() { close(g.release) }) }

// waitEntered waits until a request is held at the gate.
func (g *transferGate) waitEntered(t testing.TB, p *proc) {
	t.Helper()
	select {
	case <-g.entered:
	case <-p.exited:
		t.Fatalf("trawl exited before its request reached the gate; stderr:\n%s", tail(p.stderr.String()))
	case <-time.After(30 * time.Second):
		t.Fatal("no request reached the gate within 30s")
	}
}

// handler serves body with validators, sending the first half at once and the rest when the
// gate opens.
func (g *transferGate) handler(body []byte) testserver.Option {
	return testserver.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Length", strconv.Itoa(len(body)))
		h.Set("ETag", `"gated"`)
		h.Set("Last-Modified", lastMod0.Format(http.TimeFormat))
		half := len(body) / 2
		if _, err := w.Write(body[:half]); err != nil {
			return
		}
		_ = http.NewResponseController(w).Flush()
		g.enterOnce.Do(func() { close(g.entered) })
		select {
		case <-g.release:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write(body[half:])
	})
}

// wantOneLine fails unless s (stderr) is exactly one line, and returns it.
func wantOneLine(t testing.TB, s string) string {
	t.Helper()
	line := strings.TrimSuffix(s, "\n")
	if line == "" || strings.Contains(line, "\n") {
		t.Errorf("stderr is not exactly one line:\n%q", s)
	}
	return line
}
