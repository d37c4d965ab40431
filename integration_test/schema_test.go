package integration_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestStatusAndReportOneSchema: after a crawl that skips URLs for several reasons and fails one,
// `trawl status --json` and the --report give the same numbers under the same names and JSON
// types (job, skipped_by, the run's counts, exit code), and the summary log line's skipped count
// is the job's.
func TestStatusAndReportOneSchema(t *testing.T) {
	t.Parallel()
	a, other := newCrawlSite(t), newCrawlSite(t)
	a.robots("User-agent: *\nDisallow: /site/private/\n")
	a.page("/site/", `<a href="p.html">p</a> <a href="private/x.html">x</a> <a href="missing.html">m</a>
		<a href="{B}/elsewhere.html">e</a> <a href="/up.html">up</a>`, other)
	a.page("/site/p.html", `<img src="i.png">`)
	a.bin("/site/i.png", 1000)
	out := t.TempDir()
	report := filepath.Join(t.TempDir(), "report.json")
	r := runTrawl(t, "crawl", "-o", out, "--ca-cert", a.CAFile(t), "--log-format", "json", "--report", report, a.URL("/site/"))
	wantExit(t, r, exitFailed)

	var rep, st map[string]json.RawMessage
	if b, err := os.ReadFile(report); err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	s := runTrawl(t, "status", "-o", out, "--json")
	wantExit(t, s, exitOK)
	if err := json.Unmarshal([]byte(s.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, s.stdout)
	}
	var lastRun map[string]json.RawMessage
	if err := json.Unmarshal(st["last_run"], &lastRun); err != nil {
		t.Fatalf("status last_run: %v\n%s", err, st["last_run"])
	}
	for _, same := range []struct{ report, status json.RawMessage }{
		{rep["job"], st["job"]},
		{rep["skipped_by"], st["skipped_by"]},
		{rep["counts"], st["run"]},
		{rep["exit_code"], lastRun["exit_code"]},
		{rep["outcome"], lastRun["outcome"]},
	} {
		var a, b any
		if json.Unmarshal(same.report, &a) != nil || json.Unmarshal(same.status, &b) != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("report says %s, status %s", same.report, same.status)
		}
	}
	var job struct {
		Skipped int `json:"skipped"`
	}
	var by map[string]int
	if json.Unmarshal(rep["job"], &job) != nil || json.Unmarshal(rep["skipped_by"], &by) != nil ||
		job.Skipped != 3 || by["robots.txt"] != 1 || by["off-scope"] != 2 {
		t.Errorf("report job %s skipped_by %s; want 3 skipped: 1 robots.txt, 2 off-scope", rep["job"], rep["skipped_by"])
	}
	summary := lastLine(r.stderr, `"msg":"summary"`)
	if summary == "" || !strings.Contains(summary, `"skipped":3`) {
		t.Errorf("summary line %q, want skipped 3 as in status", summary)
	}
}
