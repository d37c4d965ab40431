package integration_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// The nightly pull (README "Nightly pulls from cron"): the same command every night revalidates
// what the job has, fetches what changed, writes a report, and never runs twice at once.

// lastMod1 is the Last-Modified of a file a test changes on the server.
var lastMod1 = time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)

// wantConditional fails unless req revalidates with the validators etag and lm, and asks for the
// whole body.
func wantConditional(t testing.TB, req testserver.Request, etag string, lm time.Time) {
	t.Helper()
	if got := req.Header.Get("If-None-Match"); got != etag {
		t.Errorf("%s: If-None-Match %q, want %q", req.Path, got, etag)
	}
	if got, want := req.Header.Get("If-Modified-Since"), lm.Format(http.TimeFormat); got != want {
		t.Errorf("%s: If-Modified-Since %q, want %q", req.Path, got, want)
	}
	if rg := req.Header.Get("Range"); rg != "" {
		t.Errorf("%s: revalidation sent Range %q", req.Path, rg)
	}
}

// TestNightlyRefreshUnchanged: a second run with --refresh over an unchanged server sends one
// conditional request per URL, rewrites no file (same inode, same mtime), reports every URL
// unchanged and exits 0.
func TestNightlyRefreshUnchanged(t *testing.T) {
	t.Parallel()
	j := newNightlyJob(t, 2, 3)
	wantExit(t, runTrawl(t, j.args()...), exitOK)
	before := map[nightlyFile]nightlyFileState{}
	for _, f := range j.files {
		wantFile(t, j.out, f.s, f.path)
		before[f] = statNightlyFile(t, j.file(f))
	}

	n0 := j.requestCounts()
	wantExit(t, runTrawl(t, j.args("--refresh")...), exitOK)

	for h, reqs := range j.requestsSince(n0) {
		if len(reqs) != 3 {
			t.Errorf("host %d got %d requests, want 3 (one per file)", h, len(reqs))
		}
		etags := map[string]string{}
		for _, f := range j.files {
			if f.s == j.ss[h] {
				etags[f.path] = f.etag
			}
		}
		for _, req := range reqs {
			etag, ok := etags[req.Path]
			if !ok {
				t.Errorf("unexpected request for %s", req.Path)
				continue
			}
			delete(etags, req.Path) // a second request for the path is reported as unexpected
			wantConditional(t, req, etag, lastMod0)
		}
	}
	for _, f := range j.files {
		wantUntouched(t, j.file(f), before[f])
	}
	if parts := partFiles(t, j.out); len(parts) > 0 {
		t.Errorf("temporary files left behind: %s", strings.Join(parts, ", "))
	}

	rep := readReport(t, j.report)
	if want := (reportCounts{Unchanged: 6}); rep.Counts != want {
		t.Errorf("report counts %+v, want %+v", rep.Counts, want)
	}
	if rep.ReceivedBytes != 0 {
		t.Errorf("report received_bytes %d, want 0: nothing was downloaded", rep.ReceivedBytes)
	}
	if rep.Outcome != "done" || rep.ExitCode != exitOK {
		t.Errorf("report outcome %q exit %d, want done 0", rep.Outcome, rep.ExitCode)
	}
	for _, s := range j.ss {
		if got, want := rep.Hosts[s.Addr()], (reportCounts{Unchanged: 3}); got != want {
			t.Errorf("report hosts[%s] %+v, want %+v", s.Addr(), got, want)
		}
	}
	if rep.Job.Done != 6 || rep.Job.Total != 6 {
		t.Errorf("report job %+v, want 6 total, 6 done", rep.Job)
	}
}

// TestNightlyRefreshChanged: two of six files change on the server; a --refresh run downloads
// those two only, gives them the new Last-Modified as mtime, leaves the other four alone and
// reports changed = 2. The next refresh revalidates with the new validators.
func TestNightlyRefreshChanged(t *testing.T) {
	t.Parallel()
	j := newNightlyJob(t, 2, 3)
	wantExit(t, runTrawl(t, j.args()...), exitOK)
	before := map[nightlyFile]nightlyFileState{}
	for _, f := range j.files {
		before[f] = statNightlyFile(t, j.file(f))
	}

	changed := map[nightlyFile]string{j.files[0]: `"changed-a"`, j.files[4]: `"changed-b"`} // one per host
	var changedBytes int64
	k := 0
	for f, etag := range changed {
		k++
		size := int64(20<<10 + k*333)
		changedBytes += size
		f.s.Handle(f.path, testserver.Seed(uint64(1000+k)), testserver.Size(size), testserver.ETag(etag),
			testserver.LastModified(lastMod1))
	}

	n0 := j.requestCounts()
	wantExit(t, runTrawl(t, j.args("--refresh")...), exitOK)
	for _, reqs := range j.requestsSince(n0) {
		if n := len(reqs); n != 3 {
			t.Errorf("%d requests to a host, want 3 (one conditional request per file)", n)
		}
	}
	for _, f := range j.files {
		reqs := f.s.RequestsFor(f.path)
		if len(reqs) != 2 {
			t.Errorf("%s requested %d times in all, want 2", f.path, len(reqs))
			continue
		}
		wantConditional(t, reqs[1], f.etag, lastMod0)
		if _, ok := changed[f]; ok {
			wantFile(t, j.out, f.s, f.path)
			wantMtime(t, j.file(f), lastMod1)
			continue
		}
		wantUntouched(t, j.file(f), before[f])
	}
	if parts := partFiles(t, j.out); len(parts) > 0 {
		t.Errorf("temporary files left behind: %s", strings.Join(parts, ", "))
	}

	rep := readReport(t, j.report)
	if want := (reportCounts{Changed: 2, Unchanged: 4, Bytes: changedBytes}); rep.Counts != want {
		t.Errorf("report counts %+v, want %+v", rep.Counts, want)
	}
	if rep.ReceivedBytes != changedBytes {
		t.Errorf("report received_bytes %d, want %d (the two changed files)", rep.ReceivedBytes, changedBytes)
	}
	for f := range changed {
		if h := rep.Hosts[f.s.Addr()]; h.Changed != 1 || h.Unchanged != 2 {
			t.Errorf("report hosts[%s] %+v, want 1 changed, 2 unchanged", f.s.Addr(), h)
		}
	}
	if disk := diskFiles(t, j.out); rep.Job.Done != len(disk) || rep.Job.Bytes != sumSizes(disk) {
		t.Errorf("report job %+v, but %d files of %d bytes on disk", rep.Job, len(disk), sumSizes(disk))
	}

	// The changed files' new validators were recorded.
	wantExit(t, runTrawl(t, j.args("--refresh")...), exitOK)
	for f, etag := range changed {
		reqs := f.s.RequestsFor(f.path)
		wantConditional(t, reqs[len(reqs)-1], etag, lastMod1)
	}
	if rep := readReport(t, j.report); rep.Counts != (reportCounts{Unchanged: 6}) {
		t.Errorf("third run: report counts %+v, want 6 unchanged", rep.Counts)
	}
}

// TestNightlyRefreshValidators: a refresh revalidates with whichever validators the server gave
// (ETag, Last-Modified, both, a weak ETag): a 304 leaves the file alone, a new version replaces it.
func TestNightlyRefreshValidators(t *testing.T) {
	t.Parallel()
	noLM := time.Time{}
	tests := []struct {
		name     string
		v1, v2   []testserver.Option // the first and the changed version
		inm, ims string              // the conditional headers the refresh of v1 must send
	}{
		{"ETag and Last-Modified",
			[]testserver.Option{testserver.ETag(`"e1"`), testserver.LastModified(lastMod0)},
			[]testserver.Option{testserver.ETag(`"e2"`), testserver.LastModified(lastMod1)},
			`"e1"`, lastMod0.Format(http.TimeFormat)},
		{"ETag only",
			[]testserver.Option{testserver.ETag(`"e1"`), testserver.LastModified(noLM)},
			[]testserver.Option{testserver.ETag(`"e2"`), testserver.LastModified(noLM)},
			`"e1"`, ""},
		{"weak ETag only",
			[]testserver.Option{testserver.ETag(`W/"e1"`), testserver.LastModified(noLM)},
			[]testserver.Option{testserver.ETag(`W/"e2"`), testserver.LastModified(noLM)},
			`W/"e1"`, ""},
		{"Last-Modified only",
			[]testserver.Option{testserver.ETag(""), testserver.LastModified(lastMod0)},
			[]testserver.Option{testserver.ETag(""), testserver.LastModified(lastMod1)},
			"", lastMod0.Format(http.TimeFormat)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, ca := server(t)
			const path = "/v/file.bin"
			s.Handle(path, append([]testserver.Option{testserver.Size(48 << 10)}, tt.v1...)...)
			out, rep := t.TempDir(), filepath.Join(t.TempDir(), "report.json")
			args := []string{"get", "-o", out, "--ca-cert", ca, "--report", rep, "--refresh", s.URL(path)}
			wantExit(t, runTrawl(t, args...), exitOK)
			file := mirrorPath(out, s, path)
			before := statNightlyFile(t, file)

			wantExit(t, runTrawl(t, args...), exitOK)
			reqs := s.RequestsFor(path)
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want 2", len(reqs))
			}
			if got := reqs[1].Header.Get("If-None-Match"); got != tt.inm {
				t.Errorf("If-None-Match %q, want %q", got, tt.inm)
			}
			if got := reqs[1].Header.Get("If-Modified-Since"); got != tt.ims {
				t.Errorf("If-Modified-Since %q, want %q", got, tt.ims)
			}
			wantUntouched(t, file, before)
			if got := readReport(t, rep); got.Counts != (reportCounts{Unchanged: 1}) {
				t.Errorf("refresh of an unchanged file: report counts %+v, want 1 unchanged", got.Counts)
			}

			s.Handle(path, append([]testserver.Option{testserver.Seed(77)}, tt.v2...)...)
			wantExit(t, runTrawl(t, args...), exitOK)
			wantFile(t, out, s, path)
			if got := readReport(t, rep); got.Counts != (reportCounts{Changed: 1, Bytes: 48 << 10}) {
				t.Errorf("refresh of a changed file: report counts %+v, want 1 changed", got.Counts)
			}
		})
	}
}

// TestNightlyRefreshFailureKeepsOldFile: when the new version's transfer breaks half-way during a
// refresh, yesterday's file stays as it was; the next run completes the new version.
func TestNightlyRefreshFailureKeepsOldFile(t *testing.T) {
	t.Parallel()
	const size = 4 << 20
	tests := []struct {
		name   string
		fault  testserver.Option // on the new version
		heal   testserver.Option
		killed bool // kill -9 mid-transfer instead of a broken body
	}{
		{"body cut off half-way", testserver.TruncateAfter(size / 2), testserver.TruncateAfter(-1), false},
		{"connection reset half-way", testserver.ResetAfter(size / 2), testserver.ResetAfter(-1), false},
		{"trawl killed half-way", slow, fast, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, ca := server(t)
			const path = "/nightly/data.bin"
			s.Handle(path, testserver.Body(testserver.Content(11, size)), testserver.LastModified(lastMod0))
			out, rep := t.TempDir(), filepath.Join(t.TempDir(), "report.json")
			args := []string{"get", "-o", out, "--ca-cert", ca, "--report", rep, "--retries", "0", "--refresh", s.URL(path)}
			wantExit(t, runTrawl(t, args...), exitOK)
			file := mirrorPath(out, s, path)
			before := statNightlyFile(t, file)

			s.Handle(path, testserver.Body(testserver.Content(12, size)), testserver.LastModified(lastMod1), tt.fault)
			if tt.killed {
				startUntilPart(t, file+".part", 256<<10, args...).kill9()
			} else {
				r := runTrawl(t, args...)
				wantExit(t, r, exitTransient)
				got := readReport(t, rep)
				if got.Counts.Failed != 1 || got.Counts.Transient != 1 || got.Counts.Changed != 0 {
					t.Errorf("report counts %+v, want 1 failed (transient), 0 changed", got.Counts)
				}
				if len(got.Failures) != 1 || got.Failures[0].URL != s.URL(path) || !got.Failures[0].Transient {
					t.Errorf("report failures %+v, want one transient failure of %s", got.Failures, s.URL(path))
				}
			}
			wantUntouched(t, file, before)

			s.Handle(path, tt.heal)
			wantExit(t, runTrawl(t, args...), exitOK)
			wantFile(t, out, s, path)
			wantMtime(t, file, lastMod1)
			if got := readReport(t, rep); got.Counts.Changed != 1 || got.Counts.Failed != 0 {
				t.Errorf("run after the failure: report counts %+v, want 1 changed", got.Counts)
			}
			if parts := partFiles(t, out); len(parts) > 0 {
				t.Errorf("temporary files left behind: %s", strings.Join(parts, ", "))
			}
		})
	}
}

// TestNightlyRefreshMtime: a downloaded file's mtime is the server's Last-Modified, however it
// was sent, and a changed file gets the new one.
func TestNightlyRefreshMtime(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	files := []struct {
		name string
		path string
		lm   time.Time
		opts []testserver.Option
	}{
		{"small", "/m/small.txt", time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC), []testserver.Option{testserver.Size(100)}},
		{"empty", "/m/empty.txt", time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC), []testserver.Option{testserver.Body(nil)}},
		{"large", "/m/large.bin", time.Date(2019, 12, 31, 23, 59, 59, 0, time.UTC), []testserver.Option{testserver.Size(3 << 20)}},
		{"chunked", "/m/chunked.bin", time.Date(2024, 7, 8, 9, 10, 11, 0, time.UTC), []testserver.Option{testserver.Size(70 << 10), testserver.Chunked()}},
	}
	var urls []string
	for _, f := range files {
		s.Handle(f.path, append(f.opts, testserver.LastModified(f.lm))...)
		urls = append(urls, s.URL(f.path))
	}
	out := t.TempDir()
	args := append([]string{"get", "-o", out, "--ca-cert", ca, "--refresh"}, urls...)
	wantExit(t, runTrawl(t, args...), exitOK)
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			wantFile(t, out, s, f.path)
			wantMtime(t, mirrorPath(out, s, f.path), f.lm)
		})
	}

	t.Run("changed on refresh", func(t *testing.T) {
		f := files[0]
		s.Handle(f.path, testserver.Size(200), testserver.LastModified(lastMod1))
		wantExit(t, runTrawl(t, args...), exitOK)
		wantFile(t, out, s, f.path)
		wantMtime(t, mirrorPath(out, s, f.path), lastMod1)
		for _, g := range files[1:] {
			wantMtime(t, mirrorPath(out, s, g.path), g.lm)
		}
	})
}

// TestNightlyRefreshAfter: --refresh-after revalidates only what was done longer ago than the
// duration: right after a run, 1h finds nothing old enough and sends no request at all, 1ns
// revalidates everything.
func TestNightlyRefreshAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		after       string
		revalidated bool
	}{
		{"1h", false},
		{"1ns", true},
	}
	for _, tt := range tests {
		t.Run(tt.after, func(t *testing.T) {
			t.Parallel()
			j := newNightlyJob(t, 2, 2)
			wantExit(t, runTrawl(t, j.args()...), exitOK)
			before := map[nightlyFile]nightlyFileState{}
			for _, f := range j.files {
				before[f] = statNightlyFile(t, j.file(f))
			}

			n0 := j.requestCounts()
			wantExit(t, runTrawl(t, j.args("--refresh-after", tt.after)...), exitOK)
			var reqs []testserver.Request
			for _, r := range j.requestsSince(n0) {
				reqs = append(reqs, r...)
			}
			rep := readReport(t, j.report)
			if !tt.revalidated {
				if len(reqs) != 0 {
					t.Errorf("%d requests, want none: nothing was done more than %s ago", len(reqs), tt.after)
				}
				if rep.Counts != (reportCounts{}) {
					t.Errorf("report counts %+v, want all zero", rep.Counts)
				}
			} else {
				if len(reqs) != len(j.files) {
					t.Errorf("%d requests, want %d (one per file)", len(reqs), len(j.files))
				}
				for _, f := range j.files {
					if rs := f.s.RequestsFor(f.path); len(rs) == 2 {
						wantConditional(t, rs[1], f.etag, lastMod0)
					}
				}
				if want := (reportCounts{Unchanged: int64(len(j.files))}); rep.Counts != want {
					t.Errorf("report counts %+v, want %+v", rep.Counts, want)
				}
			}
			if rep.Job.Done != len(j.files) || rep.Outcome != "done" {
				t.Errorf("report job %+v outcome %q, want all %d done", rep.Job, rep.Outcome, len(j.files))
			}
			for _, f := range j.files {
				wantUntouched(t, j.file(f), before[f])
			}
		})
	}
}

// finishedNightlyJob runs a job of six files on two hosts, one URL that is 404 and one bad list
// line to its end (exit 1) and returns it with the run's result.
func finishedNightlyJob(t *testing.T) (*nightlyJob, nightlyFile, result) {
	t.Helper()
	j := newNightlyJob(t, 2, 3)
	gone := nightlyFile{j.ss[0], "/pull/gone.bin", ""}
	gone.s.Handle(gone.path, testserver.Statuses(404, 404, 404))
	j.addLines(t, gone.url(), "ftp://not-fetched.example/x")
	r := runTrawl(t, j.args()...)
	wantExit(t, r, exitFailed)
	return j, gone, r
}

// TestNightlyReportMatchesDisk: the report is valid JSON with every documented key, and its counts
// are those of the files on disk, of the requests made, and of the failures.
func TestNightlyReportMatchesDisk(t *testing.T) {
	t.Parallel()
	began := time.Now()
	j, gone, _ := finishedNightlyJob(t)
	ended := time.Now()
	rep := readReport(t, j.report)

	disk := diskFiles(t, j.out)
	onDisk := sumSizes(disk)
	if len(disk) != len(j.files) {
		t.Errorf("%d files on disk, want %d: %v", len(disk), len(j.files), disk)
	}
	for _, f := range j.files {
		wantFile(t, j.out, f.s, f.path)
	}
	wantNoFile(t, mirrorPath(j.out, gone.s, gone.path))
	want := reportCounts{New: int64(len(disk)), Failed: 1, Bytes: onDisk}
	if rep.Counts != want || rep.BadInputCount != 1 {
		t.Errorf("report counts %+v, bad_input_count %d, want %+v and 1", rep.Counts, rep.BadInputCount, want)
	}
	if rep.ReceivedBytes != onDisk {
		t.Errorf("report received_bytes %d, want %d (the files on disk)", rep.ReceivedBytes, onDisk)
	}
	if want := (jobTotals{Total: 7, Done: len(disk), Failed: 1, Bytes: onDisk}); rep.Job != want {
		t.Errorf("report job %+v, want %+v", rep.Job, want)
	}
	if rep.Outcome != "failed" || rep.ExitCode != exitFailed || rep.Error == "" {
		t.Errorf("report outcome %q exit %d error %q, want failed, 1 and a message", rep.Outcome, rep.ExitCode, rep.Error)
	}
	if len(rep.Failures) != 1 {
		t.Fatalf("report failures %+v, want the 404", rep.Failures)
	}
	if f := rep.Failures[0]; f.URL != gone.url() || f.Status != 404 || f.Attempts != 1 || f.Transient || f.Class == "" || f.Error == "" {
		t.Errorf("report failure %+v, want %s, status 404, 1 attempt, not transient, with class and error", f, gone.url())
	}

	// Per host: the host's files and failures.
	var hostSum reportCounts
	for h, s := range j.ss {
		var n, bytes int64
		for rel, size := range disk {
			if strings.HasPrefix(rel, s.Addr()+string(filepath.Separator)) {
				n++
				bytes += size
			}
		}
		want := reportCounts{New: n, Bytes: bytes}
		if h == 0 {
			want.Failed = 1
		}
		got := rep.Hosts[s.Addr()]
		if got != want {
			t.Errorf("report hosts[%s] %+v, want %+v", s.Addr(), got, want)
		}
		hostSum.New += got.New
		hostSum.Bytes += got.Bytes
	}
	if len(rep.Hosts) != len(j.ss) {
		t.Errorf("report has %d hosts, want %d: %v", len(rep.Hosts), len(j.ss), rep.Hosts)
	}
	if hostSum.New != rep.Counts.New || hostSum.Bytes != rep.Counts.Bytes {
		t.Errorf("hosts add up to %+v, counts say %+v", hostSum, rep.Counts)
	}

	if rep.Start.Before(began.Add(-time.Second)) || rep.End.Before(rep.Start) || rep.End.After(ended.Add(time.Second)) {
		t.Errorf("report start %s end %s, want within the run (%s .. %s)", rep.Start, rep.End, began, ended)
	}
	if d := rep.End.Sub(rep.Start).Seconds(); d-rep.DurationSeconds > 0.01 || rep.DurationSeconds-d > 0.01 {
		t.Errorf("report duration_seconds %.3f, but end - start = %.3f", rep.DurationSeconds, d)
	}
	if rep.StateFile != j.state() || rep.Out != j.out {
		t.Errorf("report state_file %q out %q, want %q and %q", rep.StateFile, rep.Out, j.state(), j.out)
	}
}

// TestNightlyStatusMatchesReport: `trawl status` on a finished job shows the job counts the
// report gave, per host too, and the last run's start, end and outcome.
func TestNightlyStatusMatchesReport(t *testing.T) {
	t.Parallel()
	j, _, _ := finishedNightlyJob(t)
	rep := readReport(t, j.report)
	byOut := trawlStatus(t, "-o", j.out)
	byState := trawlStatus(t, "--state", j.state())

	for _, st := range []statusJSON{byOut, byState} {
		if st.Running {
			t.Errorf("status says running after the run ended")
		}
		if st.Job != rep.Job {
			t.Errorf("status job %+v, report job %+v", st.Job, rep.Job)
		}
		var sum jobTotals
		for _, h := range st.Hosts {
			sum.Total += h.Total
			sum.Done += h.Done
			sum.Failed += h.Failed
			sum.Pending += h.Pending
			sum.Skipped += h.Skipped
			sum.Bytes += h.Bytes
		}
		if sum != st.Job {
			t.Errorf("status hosts add up to %+v, job says %+v", sum, st.Job)
		}
		for _, s := range j.ss {
			if h := st.Hosts[s.Addr()]; h.Done != 3 {
				t.Errorf("status hosts[%s] %+v, want 3 done", s.Addr(), h)
			}
		}
		lr := st.LastRun
		if lr.Outcome != rep.Outcome || lr.ExitCode == nil || *lr.ExitCode != rep.ExitCode ||
			lr.Start != rep.Start.Format(time.RFC3339) || lr.End != rep.End.Format(time.RFC3339) {
			t.Errorf("status last_run %+v, report says %s exit %d from %s to %s", lr, rep.Outcome, rep.ExitCode,
				rep.Start.Format(time.RFC3339), rep.End.Format(time.RFC3339))
		}
		if len(st.TopErrors) != 1 || st.TopErrors[0].Count != 1 || !strings.Contains(st.TopErrors[0].Error, "404") {
			t.Errorf("status top_errors %+v, want the one 404", st.TopErrors)
		}
		if st.StateFile != j.state() {
			t.Errorf("status state_file %q, want %q", st.StateFile, j.state())
		}
	}

	r := runTrawl(t, "status", "-o", j.out)
	wantExit(t, r, exitOK)
	for _, want := range []string{
		"running:    no",
		fmt.Sprintf("urls:       %d total, %d done, %d failed, %d pending", rep.Job.Total, rep.Job.Done, rep.Job.Failed, rep.Job.Pending),
		fmt.Sprintf("ended %s, failed (exit 1)", rep.End.Format(time.RFC3339)),
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("trawl status does not say %q:\n%s", want, r.stdout)
		}
	}
}

// TestNightlyStatusNoJob: status on a directory or state file without a job is a usage error (2)
// that names the path, and creates nothing.
func TestNightlyStatusNoJob(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args func(dir string) (args []string, named string)
	}{
		{"-o empty dir", func(dir string) ([]string, string) { return []string{"status", "-o", dir}, dir }},
		{"--json -o empty dir", func(dir string) ([]string, string) { return []string{"status", "--json", "-o", dir}, dir }},
		{"-o missing dir", func(dir string) ([]string, string) {
			return []string{"status", "-o", filepath.Join(dir, "nope")}, filepath.Join(dir, "nope")
		}},
		{"--state missing file", func(dir string) ([]string, string) {
			return []string{"status", "--state", filepath.Join(dir, "job.db")}, filepath.Join(dir, "job.db")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			args, named := tt.args(dir)
			r := runTrawl(t, args...)
			wantExit(t, r, exitUsage)
			if line := wantOneLine(t, r.stderr); !strings.Contains(line, named) {
				t.Errorf("message does not name %s: %q", named, line)
			}
			if r.stdout != "" {
				t.Errorf("stdout: %q, want nothing", r.stdout)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("status created %d entries in %s", len(ents), dir)
			}
		})
	}
}

// TestNightlyRetryWithoutJob: `trawl retry` on a directory without a job is a usage error like
// status's, and must not leave an empty job behind (a mistyped -o in a crontab).
func TestNightlyRetryWithoutJob(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "typo")
	r := runTrawl(t, "retry", "-o", out)
	if r.code != exitUsage {
		t.Errorf("trawl retry -o %s (no job there): exit %d, want 2; stdout %q stderr %q", out, r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("trawl retry created %s (and a state file in it) where there was no job", out)
	}
}

// TestNightlyStatusLive: while a run is going, `trawl status` shows the numbers it publishes
// (who holds the job, what is done so far) at once, and the run goes on undisturbed.
func TestNightlyStatusLive(t *testing.T) {
	t.Parallel()
	j := newNightlyJob(t, 2, 5)
	g := newTransferGate(t)
	held := nightlyFile{j.ss[0], "/pull/held.bin", `"gated"`}
	heldBody := testserver.Content(21, 256<<10)
	held.s.Handle(held.path, g.handler(heldBody))
	j.addLines(t, held.url())

	p := start(t, trawlCmd(j.args()...))
	g.waitEntered(t, p)
	// The run publishes every 2 s; wait for the snapshot that has the ten other files done.
	snapshot := j.state() + ".status.json"
	eventually(t, "a status snapshot with 10 files done", 30*time.Second, p.exited, func() bool {
		var st statusJSON
		data, err := os.ReadFile(snapshot)
		return err == nil && json.Unmarshal(data, &st) == nil && st.Job.Done == 10
	})

	holder := regexp.MustCompile(fmt.Sprintf(`^pid %d,? since \d{4}-\d\d-\d\dT`, p.cmd.Process.Pid))
	for i := range 3 {
		began := time.Now()
		st := trawlStatus(t, "-o", j.out)
		if d := time.Since(began); d > promptly {
			t.Errorf("status #%d took %s while the run holds the job, want < %s", i, d.Round(time.Millisecond), promptly)
		}
		if !st.Running || !holder.MatchString(st.Holder) {
			t.Errorf("status #%d running %v holder %q, want running by pid %d", i, st.Running, st.Holder, p.cmd.Process.Pid)
		}
		if want := (jobTotals{Total: 11, Done: 10, Pending: 1, Bytes: st.Job.Bytes}); st.Job != want || st.Job.Bytes <= 0 {
			t.Errorf("status #%d job %+v, want 11 total, 10 done, 1 pending", i, st.Job)
		}
		if st.Run == nil || st.Run.New != 10 {
			t.Errorf("status #%d run %+v, want 10 new so far", i, st.Run)
		}
		if st.LastRun.Outcome != "running" || st.LastRun.PID != p.cmd.Process.Pid {
			t.Errorf("status #%d last_run %+v, want running, pid %d", i, st.LastRun, p.cmd.Process.Pid)
		}
	}
	r := runTrawl(t, "status", "-o", j.out)
	wantExit(t, r, exitOK)
	for _, want := range []string{
		fmt.Sprintf("running:    yes (pid %d", p.cmd.Process.Pid),
		"11 total, 10 done, 0 failed, 1 pending",
		"this run:   10 new, 0 changed, 0 unchanged, 0 failed",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("trawl status does not say %q:\n%s", want, r.stdout)
		}
	}
	if p.hasExited() {
		t.Fatalf("the run ended while held at the gate; stderr:\n%s", tail(p.stderr.String()))
	}

	g.open()
	res := p.wait(runTimeout)
	wantExit(t, res, exitOK)
	for _, f := range j.files {
		wantFile(t, j.out, f.s, f.path)
		if n := len(f.s.RequestsFor(f.path)); n != 1 {
			t.Errorf("%s requested %d times, want once", f.path, n)
		}
	}
	wantFileBody(t, j.file(held), heldBody)
	if n := len(held.s.RequestsFor(held.path)); n != 1 {
		t.Errorf("the held transfer was requested %d times, want once: status disturbed it", n)
	}
	for _, bad := range []string{"level=WARN", "level=ERROR"} {
		if strings.Contains(res.stderr, bad) {
			t.Errorf("the run logged %s:\n%s", bad, tail(res.stderr))
		}
	}
	if rep := readReport(t, j.report); rep.Counts.New != 11 || rep.Outcome != "done" {
		t.Errorf("report counts %+v outcome %q, want 11 new, done", rep.Counts, rep.Outcome)
	}
	st := trawlStatus(t, "-o", j.out)
	if st.Running || st.Job.Done != 11 || st.LastRun.Outcome != "done" || st.LastRun.ExitCode == nil || *st.LastRun.ExitCode != 0 {
		t.Errorf("status after the run: running %v job %+v last_run %+v, want 11 done, done exit 0", st.Running, st.Job, st.LastRun)
	}
}

// TestNightlyLockedOut: tonight's run while last night's is still going exits 3 within 2 s with one
// line naming the state file and the holder, sends nothing and writes nothing (not even its
// report); last night's run finishes as if nothing happened.
func TestNightlyLockedOut(t *testing.T) {
	t.Parallel()
	j := newNightlyJob(t, 1, 3)
	g := newTransferGate(t)
	held := nightlyFile{j.ss[0], "/pull/held.bin", `"gated"`}
	heldBody := testserver.Content(22, 256<<10)
	held.s.Handle(held.path, g.handler(heldBody))
	j.addLines(t, held.url())
	logFile := filepath.Join(t.TempDir(), "trawl.log")
	nightly := j.args("--refresh-after", "20h", "--log-file", logFile, "--log-format", "json", "-q")

	first := start(t, trawlCmd(nightly...))
	g.waitEntered(t, first)
	lockNote := j.state() + ".lock"
	note, err := os.ReadFile(lockNote)
	if err != nil {
		t.Fatalf("no lock note while the first run holds the job: %v", err)
	}
	// The first run's other requests go out on connections of their own, maybe after the held
	// one: count from when all of them are in.
	if got := held.s.WaitRequests(len(j.files)+1, 10*time.Second); len(got) < len(j.files)+1 {
		t.Fatalf("the first run sent %d requests, want %d", len(got), len(j.files)+1)
	}
	n0 := j.requestCounts()

	r := runTrawl(t, nightly...)
	wantExit(t, r, exitFatal)
	if r.elapsed > promptly {
		t.Errorf("second run took %s to give up, want < %s", r.elapsed.Round(time.Millisecond), promptly)
	}
	msg := wantOneLine(t, r.stderr)
	if !strings.Contains(msg, j.state()) {
		t.Errorf("message does not name the state file %s: %q", j.state(), msg)
	}
	if !regexp.MustCompile(fmt.Sprintf(`pid %d,? since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`, first.cmd.Process.Pid)).MatchString(msg) {
		t.Errorf("message does not say pid %d since when: %q", first.cmd.Process.Pid, msg)
	}
	for _, reqs := range j.requestsSince(n0) {
		if len(reqs) != 0 {
			t.Errorf("the locked-out run sent %d requests", len(reqs))
		}
	}
	wantNoFile(t, j.report) // the first run writes it when it ends; the second must not
	if after, _ := os.ReadFile(lockNote); !bytes.Equal(after, note) {
		t.Errorf("lock note changed from %q to %q", note, after)
	}
	if data, _ := os.ReadFile(logFile); len(data) != 0 {
		t.Errorf("log file written while the first run was held (by which run?):\n%s", data)
	}
	// trawl retry must not touch a job a run holds either.
	r = runTrawl(t, "retry", "-o", j.out)
	wantExit(t, r, exitFatal)
	if r.elapsed > promptly || !strings.Contains(r.stderr, j.state()) {
		t.Errorf("trawl retry on the held job: %s, stderr %q; want exit 3 within %s naming the state file", r.elapsed, r.stderr, promptly)
	}

	g.open()
	res := first.wait(runTimeout)
	wantExit(t, res, exitOK)
	wantFileBody(t, j.file(held), heldBody)
	for _, f := range append(j.files, held) {
		if f != held {
			wantFile(t, j.out, f.s, f.path)
		}
		if n := len(f.s.RequestsFor(f.path)); n != 1 {
			t.Errorf("%s requested %d times, want once", f.path, n)
		}
	}
	if rep := readReport(t, j.report); rep.Counts.New != 4 || rep.Outcome != "done" || rep.ExitCode != exitOK {
		t.Errorf("first run's report: counts %+v outcome %q exit %d, want 4 new, done, 0", rep.Counts, rep.Outcome, rep.ExitCode)
	}
	wantNoFile(t, lockNote)

	// The job is free again: tomorrow's run works.
	wantExit(t, runTrawl(t, nightly...), exitOK)
}

// laterJob serves five files on one host and, on another, /later.bin answering with fail and
// Retry-After: 3600; lines lists the six URLs.
func laterJob(t *testing.T, fail testserver.Option) (ss []*testserver.Server, ca string, lines []string) {
	t.Helper()
	ss, ca = servers(t, 2)
	for i := range 5 {
		p := fmt.Sprintf("/done/%d.bin", i)
		ss[0].Handle(p, testserver.Size(int64(10<<10+i)))
		lines = append(lines, ss[0].URL(p))
	}
	ss[1].Handle("/later.bin", fail, testserver.RetryAfter("3600"))
	return ss, ca, append(lines, ss[1].URL("/later.bin"))
}

// interruptedRun is a run stopped by sig while one URL waits out a one-hour Retry-After (so no
// transfer is in flight) and five others are done.
func interruptedRun(t *testing.T, sig os.Signal) (r result, report, out string, sinceSignal time.Duration) {
	t.Helper()
	_, ca, lines := laterJob(t, testserver.Statuses(503))
	out = t.TempDir()
	report = filepath.Join(t.TempDir(), "report.json")
	p := start(t, trawlCmd("get", "-i", writeList(t, lines...), "-o", out, "--ca-cert", ca,
		"--report", report, "--progress-interval", "20ms", "--max-wait", "2h"))
	p.waitStderr("a progress line with 5 done and 1 retry", func(s string) bool {
		line := lastLine(s, "msg=progress")
		return logInt(line, "done") == 5 && logInt(line, "retries") == 1
	}, 30*time.Second)
	p.signal(sig)
	sent := time.Now()
	r = p.wait(30 * time.Second)
	return r, report, out, time.Since(sent)
}

// TestNightlyMaxWait: a host answering 429 with Retry-After: 3600 does not hold a cron run for
// an hour: once everything else is done the run ends with exit 4, reports the URL left waiting
// with its due time, and the next run does not ask that host before it is due.
func TestNightlyMaxWait(t *testing.T) {
	t.Parallel()
	ss, ca, lines := laterJob(t, testserver.Statuses(429, 429))
	out, report := t.TempDir(), filepath.Join(t.TempDir(), "report.json")
	args := []string{"get", "-i", writeList(t, lines...), "-o", out, "--ca-cert", ca, "--report", report}
	for run := range 2 {
		wantExit(t, runTrawl(t, args...), exitTransient)
		rep := readReport(t, report)
		if rep.Outcome != "waiting" || rep.ExitCode != exitTransient || !strings.Contains(rep.Error, "--max-wait") {
			t.Errorf("run %d: report outcome %q exit %d error %q, want waiting, 4 and a message naming --max-wait", run, rep.Outcome, rep.ExitCode, rep.Error)
		}
		if len(rep.Waiting) != 1 || rep.Waiting[0].URL != ss[1].URL("/later.bin") || rep.Waiting[0].Due == nil ||
			time.Until(*rep.Waiting[0].Due) < 50*time.Minute {
			t.Errorf("run %d: report waiting %+v, want /later.bin due in about an hour", run, rep.Waiting)
		}
		if want := (jobTotals{Total: 6, Done: 5, Pending: 1, Bytes: rep.Job.Bytes}); rep.Job != want {
			t.Errorf("run %d: report job %+v, want %+v", run, rep.Job, want)
		}
		if n := len(ss[1].RequestsFor("/later.bin")); n != 1 {
			t.Errorf("run %d: /later.bin requested %d times, want once (it is not due before an hour)", run, n)
		}
	}
}

// TestNightlyReportInterrupted: a run interrupted with SIGINT (or SIGTERM) exits 130 and still
// writes its report, with outcome "interrupted", what it did, and what is left.
func TestNightlyReportInterrupted(t *testing.T) {
	t.Parallel()
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			r, report, out, d := interruptedRun(t, sig)
			wantExit(t, r, exitInterrupted)
			if d > 3*time.Second {
				t.Errorf("exited %s after the signal with no transfer in flight, want < 3s", d.Round(time.Millisecond))
			}
			rep := readReport(t, report)
			if rep.Outcome != "interrupted" || rep.ExitCode != exitInterrupted || rep.Error == "" {
				t.Errorf("report outcome %q exit %d error %q, want interrupted, 130 and a message", rep.Outcome, rep.ExitCode, rep.Error)
			}
			disk := diskFiles(t, out)
			if want := (reportCounts{New: 5, Retries: 1, Bytes: sumSizes(disk)}); rep.Counts != want {
				t.Errorf("report counts %+v, want %+v", rep.Counts, want)
			}
			if want := (jobTotals{Total: 6, Done: 5, Pending: 1, Bytes: sumSizes(disk)}); rep.Job != want || len(disk) != 5 {
				t.Errorf("report job %+v, want %+v; on disk: %v", rep.Job, want, disk)
			}
			st := trawlStatus(t, "-o", out)
			if st.LastRun.Outcome != "interrupted" || st.LastRun.ExitCode == nil || *st.LastRun.ExitCode != 130 || st.Job != rep.Job {
				t.Errorf("status after the interrupt: last_run %+v job %+v, want interrupted, 130, job as reported", st.LastRun, st.Job)
			}
		})
	}
}

// TestNightlyRetriesEarlierFailures: URLs that failed in an earlier run, permanently or not, are
// fetched again by the next run of the same command; what was done is not.
func TestNightlyRetriesEarlierFailures(t *testing.T) {
	t.Parallel()
	const flaky, fine = "/f/flaky.bin", "/f/fine.bin"
	tests := []struct {
		name      string
		fault     func(s *testserver.Server) testserver.Option // for the first request only
		exit      int
		status    int
		transient bool
	}{
		{"404", func(*testserver.Server) testserver.Option { return testserver.Statuses(404) }, exitFailed, 404, false},
		{"503", func(*testserver.Server) testserver.Option { return testserver.Statuses(503) }, exitTransient, 503, true},
		{"body cut short", func(s *testserver.Server) testserver.Option {
			return firstOnly(s, flaky, testserver.TruncateAfter(1000))
		}, exitTransient, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, ca := server(t)
			s.Handle(flaky, testserver.Size(32<<10), tt.fault(s))
			out, rep := t.TempDir(), filepath.Join(t.TempDir(), "report.json")
			args := []string{"get", "-o", out, "--ca-cert", ca, "--report", rep, "--retries", "0", s.URL(flaky), s.URL(fine)}

			wantExit(t, runTrawl(t, args...), tt.exit)
			first := readReport(t, rep)
			if len(first.Failures) != 1 {
				t.Fatalf("report failures %+v, want one", first.Failures)
			}
			if f := first.Failures[0]; f.URL != s.URL(flaky) || f.Status != tt.status || f.Transient != tt.transient || f.Attempts != 1 {
				t.Errorf("report failure %+v, want %s status %d transient %v after 1 attempt", f, s.URL(flaky), tt.status, tt.transient)
			}
			if c := first.Counts; c.Failed != 1 || (c.Transient == 1) != tt.transient {
				t.Errorf("report counts %+v, want 1 failed (transient: %v)", c, tt.transient)
			}
			wantNoFile(t, mirrorPath(out, s, flaky))

			wantExit(t, runTrawl(t, args...), exitOK)
			if n := len(s.RequestsFor(flaky)); n != 2 {
				t.Errorf("%s requested %d times in all, want 2", flaky, n)
			}
			if n := len(s.RequestsFor(fine)); n != 1 {
				t.Errorf("%s requested %d times in all, want once", fine, n)
			}
			wantFile(t, out, s, flaky)
			second := readReport(t, rep)
			if second.Counts.New != 1 || second.Counts.Failed != 0 || len(second.Failures) != 0 || second.Job.Done != 2 {
				t.Errorf("second run: counts %+v job %+v failures %+v, want 1 new and nothing failed", second.Counts, second.Job, second.Failures)
			}
		})
	}
}

// TestNightlyRetryCommand: `trawl retry` requeues the failed URLs that --host and --status select,
// and only those; the next run then fetches them.
func TestNightlyRetryCommand(t *testing.T) {
	t.Parallel()
	type counts struct{ failed, pending int }
	tests := []struct {
		name   string
		flags  func(a, b *testserver.Server) []string
		queued int
		hosts  func(a, b *testserver.Server) map[string]counts // after retry
	}{
		{"--status 404", func(a, b *testserver.Server) []string { return []string{"--status", "404"} }, 2,
			func(a, b *testserver.Server) map[string]counts {
				return map[string]counts{a.Addr(): {1, 1}, b.Addr(): {0, 1}}
			}},
		{"--host", func(a, b *testserver.Server) []string { return []string{"--host", a.Addr()} }, 2,
			func(a, b *testserver.Server) map[string]counts {
				return map[string]counts{a.Addr(): {0, 2}, b.Addr(): {1, 0}}
			}},
		{"--host --status 404", func(a, b *testserver.Server) []string {
			return []string{"--host", a.Addr(), "--status", "404"}
		}, 1, func(a, b *testserver.Server) map[string]counts {
			return map[string]counts{a.Addr(): {1, 1}, b.Addr(): {1, 0}}
		}},
		{"--status 410 matches none", func(a, b *testserver.Server) []string { return []string{"--status", "410"} }, 0,
			func(a, b *testserver.Server) map[string]counts {
				return map[string]counts{a.Addr(): {2, 0}, b.Addr(): {1, 0}}
			}},
		{"no filter", func(a, b *testserver.Server) []string { return nil }, 3,
			func(a, b *testserver.Server) map[string]counts {
				return map[string]counts{a.Addr(): {0, 2}, b.Addr(): {0, 1}}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ss, ca := servers(t, 2)
			a, b := ss[0], ss[1]
			// Each fails on its first request only: the server is "fixed" by the next run.
			failing := []nightlyFile{{a, "/gone.bin", ""}, {a, "/forbidden.bin", ""}, {b, "/gone.bin", ""}}
			a.Handle("/gone.bin", testserver.Statuses(404))
			a.Handle("/forbidden.bin", testserver.Statuses(403))
			b.Handle("/gone.bin", testserver.Statuses(404))
			lines := []string{a.URL("/ok.bin"), b.URL("/ok.bin")}
			for _, f := range failing {
				lines = append(lines, f.url())
			}
			out, rep := t.TempDir(), filepath.Join(t.TempDir(), "report.json")
			args := []string{"get", "-i", writeList(t, lines...), "-o", out, "--ca-cert", ca, "--report", rep}
			wantExit(t, runTrawl(t, args...), exitFailed)

			r := runTrawl(t, append([]string{"retry", "-o", out}, tt.flags(a, b)...)...)
			wantExit(t, r, exitOK)
			if want := fmt.Sprintf("%d failed URL(s) queued again\n", tt.queued); r.stdout != want {
				t.Errorf("trawl retry said %q, want %q", r.stdout, want)
			}
			st := trawlStatus(t, "-o", out)
			for host, want := range tt.hosts(a, b) {
				if h := st.Hosts[host]; h.Failed != want.failed || h.Pending != want.pending || h.Done != 1 {
					t.Errorf("after retry, host %s: %+v, want 1 done, %d failed, %d pending", host, h, want.failed, want.pending)
				}
			}

			wantExit(t, runTrawl(t, args...), exitOK)
			for _, f := range failing {
				wantFile(t, out, f.s, f.path)
			}
			if got := readReport(t, rep); got.Counts.New != 3 || got.Job.Done != 5 || got.Job.Failed != 0 {
				t.Errorf("run after retry: counts %+v job %+v, want 3 new, 5 done", got.Counts, got.Job)
			}
		})
	}
}

// TestNightlyLogFileJSON: --log-file with --log-format json gets one JSON object per line, each
// with a "msg"; stderr keeps only the one-line verdict. With -q only errors are logged.
func TestNightlyLogFileJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		flags     []string
		wantMsgs  []string
		onlyError bool
	}{
		{"default", nil, []string{"failed", "summary"}, false},
		{"-q", []string{"-q"}, []string{"failed"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, ca := server(t)
			const gone = "/l/gone.bin"
			s.Handle(gone, testserver.Statuses(404))
			logFile := filepath.Join(t.TempDir(), "trawl.log")
			args := append([]string{"get", "-o", t.TempDir(), "--ca-cert", ca, "--log-file", logFile,
				"--log-format", "json", "--progress-interval", "10ms"}, tt.flags...)
			r := runTrawl(t, append(args, s.URL("/l/ok.bin"), s.URL(gone))...)
			wantExit(t, r, exitFailed)
			if line := wantOneLine(t, r.stderr); !strings.HasPrefix(line, "trawl: ") {
				t.Errorf("stderr is not the verdict: %q", line)
			}

			data, err := os.ReadFile(logFile)
			if err != nil {
				t.Fatal(err)
			}
			msgs := map[string]map[string]any{}
			sc := bufio.NewScanner(bytes.NewReader(data))
			n := 0
			for sc.Scan() {
				n++
				var m map[string]any
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
					t.Errorf("log line %d is not JSON: %v: %q", n, err, sc.Text())
					continue
				}
				msg, ok := m["msg"].(string)
				if !ok || msg == "" {
					t.Errorf("log line %d has no msg: %q", n, sc.Text())
				}
				if _, ok := m["time"]; !ok {
					t.Errorf("log line %d has no time: %q", n, sc.Text())
				}
				if tt.onlyError && m["level"] != "ERROR" {
					t.Errorf("log line %d with -q is not an error: %q", n, sc.Text())
				}
				msgs[msg] = m
			}
			if n == 0 {
				t.Fatalf("log file is empty")
			}
			for _, want := range tt.wantMsgs {
				if _, ok := msgs[want]; !ok {
					t.Errorf("no %q line in the log:\n%s", want, data)
				}
			}
			if f := msgs["failed"]; f != nil && f["url"] != s.URL(gone) {
				t.Errorf("failed line names %v, want %s", f["url"], s.URL(gone))
			}
			if sum := msgs["summary"]; sum != nil && (sum["new"] != 1.0 || sum["failed"] != 1.0) {
				t.Errorf("summary line %v, want new 1, failed 1", sum)
			}

			// The next night appends (the 404 is gone by then).
			r = runTrawl(t, append(args, s.URL("/l/ok.bin"), s.URL(gone))...)
			wantExit(t, r, exitOK)
			if r.stderr != "" {
				t.Errorf("stderr of a successful run: %q, want nothing", r.stderr)
			}
			again, err := os.ReadFile(logFile)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(again, data) {
				t.Errorf("the second run did not append to the log file; it now holds:\n%s", again)
			}
		})
	}
}

// TestNightlyExitCodes: each exit code of README "Exit codes" from a scenario that causes it; the
// report, when the run got far enough to write one, says the same.
func TestNightlyExitCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		run     func(t *testing.T) (r result, report string) // report: the --report file, "" if none
		exit    int
		outcome string // in the report; "" = no report may be written
	}{
		{"0 every URL done", func(t *testing.T) (result, string) {
			j := newNightlyJob(t, 1, 2)
			return runTrawl(t, j.args()...), j.report
		}, exitOK, "done"},
		{"0 refresh finds everything unchanged", func(t *testing.T) (result, string) {
			j := newNightlyJob(t, 1, 2)
			wantExit(t, runTrawl(t, j.args()...), exitOK)
			return runTrawl(t, j.args("--refresh")...), j.report
		}, exitOK, "done"},
		{"1 a URL failed permanently", func(t *testing.T) (result, string) {
			j := newNightlyJob(t, 1, 2)
			j.ss[0].Handle("/gone.bin", testserver.Statuses(404))
			j.addLines(t, j.ss[0].URL("/gone.bin"))
			return runTrawl(t, j.args()...), j.report
		}, exitFailed, "failed"},
		{"2 bad --refresh-after", func(t *testing.T) (result, string) {
			j := newNightlyJob(t, 1, 2)
			return runTrawl(t, j.args("--refresh-after", "-1h")...), j.report
		}, exitUsage, ""},
		{"2 bad --log-format", func(t *testing.T) (result, string) {
			j := newNightlyJob(t, 1, 2)
			return runTrawl(t, j.args("--log-format", "xml")...), j.report
		}, exitUsage, ""},
		{"2 status without a job", func(t *testing.T) (result, string) {
			return runTrawl(t, "status", "-o", t.TempDir()), ""
		}, exitUsage, ""},
		{"3 another run holds the job", func(t *testing.T) (result, string) {
			j := newNightlyJob(t, 1, 2)
			g := newTransferGate(t)
			j.ss[0].Handle("/held.bin", g.handler(testserver.Content(23, 64<<10)))
			j.addLines(t, j.ss[0].URL("/held.bin"))
			first := start(t, trawlCmd(j.args("--report", filepath.Join(t.TempDir(), "first.json"))...))
			g.waitEntered(t, first)
			return runTrawl(t, j.args()...), j.report
		}, exitFatal, ""},
		{"3 report cannot be written", func(t *testing.T) (result, string) {
			j := newNightlyJob(t, 1, 2)
			j.report = filepath.Join(t.TempDir(), "no", "such", "dir", "report.json")
			return runTrawl(t, j.args()...), j.report
		}, exitFatal, ""},
		{"4 transient failures remain", func(t *testing.T) (result, string) {
			j := newNightlyJob(t, 1, 2)
			j.ss[0].Handle("/busy.bin", testserver.Statuses(503, 503))
			j.addLines(t, j.ss[0].URL("/busy.bin"))
			return runTrawl(t, j.args("--retries", "0")...), j.report
		}, exitTransient, "transient"},
		{"130 SIGINT", func(t *testing.T) (result, string) {
			r, report, _, _ := interruptedRun(t, os.Interrupt)
			return r, report
		}, exitInterrupted, "interrupted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, report := tt.run(t)
			wantExit(t, r, tt.exit)
			if tt.exit != exitOK {
				lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
				if last := lines[len(lines)-1]; !strings.HasPrefix(last, "trawl: ") {
					t.Errorf("stderr does not end with the verdict line: %q", last)
				}
			}
			switch {
			case tt.outcome != "":
				rep := readReport(t, report)
				if rep.ExitCode != tt.exit || rep.Outcome != tt.outcome {
					t.Errorf("report exit_code %d outcome %q, want %d %q", rep.ExitCode, rep.Outcome, tt.exit, tt.outcome)
				}
			case report != "":
				wantNoFile(t, report)
			}
		})
	}
}
