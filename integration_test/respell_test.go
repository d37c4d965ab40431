package integration_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/queue"
	"github.com/trawl-dev/trawl/store"
)

// TestOldStateSpellings: a state file an older trawl wrote, keyed by its list normalizer's
// spellings (%7E and %7e kept, a trailing "?" kept), is respelled when trawl opens it: the URL it
// holds done is not fetched again, whichever spelling the list gives it, and the one it holds
// pending is fetched once, to the path it reserved.
func TestOldStateSpellings(t *testing.T) {
	t.Parallel()
	s, ca := server(t)
	out := t.TempDir()
	state := defaultState(out)

	// The older trawl's run: ~user/x done, ~user/y still queued.
	old, err := store.Open(state, &store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Enqueue([]queue.NewURL{
		{URL: s.URL("/%7Euser/x"), Host: s.Addr(), Path: s.Addr() + "/~user/x"},
		{URL: s.URL("/%7euser/y?"), Host: s.Addr(), Path: s.Addr() + "/~user/y"},
	}); err != nil {
		t.Fatal(err)
	}
	leased, err := old.Lease(s.Addr(), 1, time.Now())
	if err != nil || len(leased) != 1 {
		t.Fatal(leased, err)
	}
	body := s.Body("/~user/x")
	if err := os.MkdirAll(filepath.Dir(mirrorPath(out, s, "/~user/x")), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mirrorPath(out, s, "/~user/x"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	done := leased[0]
	done.State, done.Status, done.Bytes, done.SHA256 = queue.Done, 200, int64(len(body)), s.SHA256("/~user/x")
	if err := old.Commit([]queue.Update{{Record: done}}); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	list := writeList(t, s.URL("/%7Euser/x"), s.URL("/~user/x"), s.URL("/%7euser/./x?"), s.URL("/~user/y"), s.URL("/%7Euser/y"))
	r := runTrawl(t, "get", "-i", list, "-o", out, "--ca-cert", ca)
	wantExit(t, r, exitOK)

	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Path != "/~user/y" {
		var paths []string
		for _, q := range reqs {
			paths = append(paths, q.Path)
		}
		t.Errorf("requests for %q; want one, for /~user/y", paths)
	}
	wantFile(t, out, s, "/~user/y")
	recs := stateRecords(t, state)
	if len(recs) != 2 {
		t.Errorf("%d records, want 2: %+v", len(recs), recs)
	}
	for _, rec := range recs {
		if rec.State != queue.Done || (rec.URL != s.URL("/~user/x") && rec.URL != s.URL("/~user/y")) {
			t.Errorf("record %s %v; want done, under its canonical spelling", rec.URL, rec.State)
		}
	}
	checkDoneRecords(t, out, recs)
}
