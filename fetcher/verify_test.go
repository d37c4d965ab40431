package fetcher

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestFetchWantSHA256: a body is published only if its sha256 is the one the request wants, for
// a file fetched as one stream, resumed from a .part (the kept bytes count: a .part damaged on disk
// fails) or fetched in segments. A mismatch is a permanent ClassChecksum error naming both digests,
// and leaves nothing behind: no file at the path (or the copy that was there, untouched), no .part,
// no sidecar.
func TestFetchWantSHA256(t *testing.T) {
	const size, cut = 300_000, 100_000
	wrong := sha([]byte("another file"))
	for _, tc := range []struct {
		name      string
		resume    bool // a first fetch leaves a .part of cut bytes
		damage    bool // one of the .part's bytes is changed on disk before the resume
		segmented bool // an 8 MiB file fetched over several connections
		existing  bool // an older copy is at the path (a refresh with validators the server ignores)
		right     bool // WantSHA256 is the server's body's
	}{
		{name: "match", right: true},
		{name: "mismatch"},
		{name: "mismatch over an older copy", existing: true},
		{name: "resumed, match", resume: true, right: true},
		{name: "resumed, mismatch", resume: true},
		{name: "resumed, kept bytes damaged", resume: true, damage: true, right: true},
		{name: "segmented, match", segmented: true, right: true},
		{name: "segmented, mismatch", segmented: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []testserver.Option{testserver.Size(size)}
			if tc.segmented {
				opts = []testserver.Option{testserver.Size(segSize), testserver.AcceptRanges()}
			}
			srv := testserver.New(t, opts...)
			f := newSegFetcher(t, srv, forceSplit(4))
			root, dir := newRoot(t)
			if tc.resume {
				partial(t, srv, f, root, dir, "/f", "f", cut)
			}
			if tc.damage {
				p := filepath.Join(dir, "f.part")
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				b[cut/2] ^= 0xff
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			old := []byte("the older copy")
			if tc.existing {
				if err := os.WriteFile(filepath.Join(dir, "f"), old, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			c := &conns{t: t, limit: 16}
			req := Request{URL: srv.URL("/f"), Path: "f", WantSHA256: wrong}
			if tc.segmented {
				req = c.request(srv.URL("/f"), "f")
				req.WantSHA256 = wrong
			}
			if tc.existing {
				req.ETag, req.HaveSHA256 = `"older"`, sha(old)
			}
			if tc.right {
				req.WantSHA256 = srv.SHA256("/f")
			}
			resp, err := fetchReq(t, f, root, req)
			c.balanced()
			if tc.segmented && len(srv.RequestsFor("/f")) < 2 {
				t.Fatal("the file was not fetched in segments")
			}
			if tc.right && !tc.damage {
				if err != nil {
					t.Fatal(err)
				}
				if resp.SHA256 != req.WantSHA256 || !bytes.Equal(readFile(t, dir, "f"), srv.Body("/f")) {
					t.Fatal("published file differs from the server's")
				}
				if resp.Resumed != tc.resume || resp.Unchanged {
					t.Fatalf("response %+v", resp)
				}
			} else {
				e := wantError(t, err, ClassChecksum, false)
				got := srv.SHA256("/f")
				if tc.damage {
					b := srv.Body("/f")
					b[cut/2] ^= 0xff
					got = sha(b)
				}
				for _, d := range []string{req.WantSHA256, got} {
					if !strings.Contains(e.Error(), d) {
						t.Errorf("error %q does not name %s", e, d)
					}
				}
				switch {
				case tc.existing:
					if !bytes.Equal(readFile(t, dir, "f"), old) {
						t.Error("the older copy was replaced by a body with the wrong sha256")
					}
				case exists(dir, "f"):
					t.Error("a body with the wrong sha256 was published")
				}
			}
			if exists(dir, "f.part") || exists(dir, "f.part.meta") {
				t.Error(".part or sidecar left behind")
			}
		})
	}
}

// TestFetchSameBodyLeavesCopy: a refresh whose answer is a 200 with the very bytes of the copy on
// disk (HaveSHA256), from a server that ignores If-None-Match or with no validators to send, leaves
// that copy untouched: same inode, same mtime, no .part, Response.Unchanged. A different body, a
// copy of another length (changed on disk) or no copy at all gets the body published as usual.
func TestFetchSameBodyLeavesCopy(t *testing.T) {
	for _, tc := range []struct {
		name      string
		segmented bool
		etag      bool   // the request carries the first answer's ETag (the server ignores it)
		local     []byte // the copy on disk is changed to this
		remove    bool   // the copy on disk is removed
		newBody   bool   // the server has another body now
		unchanged bool
	}{
		{name: "same body, validators ignored", etag: true, unchanged: true},
		{name: "same body, no validators", unchanged: true},
		{name: "same body, segmented", segmented: true, etag: true, unchanged: true},
		{name: "another body", etag: true, newBody: true},
		{name: "copy changed on disk", etag: true, local: []byte("edited")},
		{name: "copy removed", etag: true, remove: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []testserver.Option{testserver.IgnoreConditional()}
			if tc.segmented {
				opts = append(opts, testserver.Size(segSize), testserver.AcceptRanges())
			}
			srv := testserver.New(t, opts...)
			f := newSegFetcher(t, srv, forceSplit(4))
			root, dir := newRoot(t)
			c := &conns{t: t, limit: 16}
			req := Request{URL: srv.URL("/f"), Path: "f"}
			if tc.segmented {
				req = c.request(srv.URL("/f"), "f")
			}
			first, err := fetchReq(t, f, root, req)
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(dir, "f")
			// An mtime of its own: a replacement would take the answer's Last-Modified.
			mtime := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
			switch {
			case tc.local != nil:
				if err := os.WriteFile(name, tc.local, 0o644); err != nil {
					t.Fatal(err)
				}
			case tc.remove:
				if err := os.Remove(name); err != nil {
					t.Fatal(err)
				}
			}
			if !tc.remove {
				if err := os.Chtimes(name, time.Time{}, mtime); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := os.Stat(name)
			if tc.newBody {
				srv.Handle("/f", testserver.Seed(99))
			}

			req.HaveSHA256 = first.SHA256
			if tc.etag {
				req.ETag = first.ETag
			}
			asked := len(srv.RequestsFor("/f"))
			resp, err := fetchReq(t, f, root, req)
			if err != nil {
				t.Fatal(err)
			}
			c.balanced()
			if inm := srv.RequestsFor("/f")[asked].Header.Get("If-None-Match"); tc.etag && !tc.remove && inm != first.ETag {
				t.Fatalf("the refresh sent If-None-Match %q, want %q", inm, first.ETag)
			}
			after, err := os.Stat(name)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Unchanged != tc.unchanged || resp.NotModified || resp.Status != 200 || resp.SHA256 != srv.SHA256("/f") {
				t.Fatalf("response %+v, want Unchanged %v", resp, tc.unchanged)
			}
			if tc.unchanged {
				if !os.SameFile(before, after) || !after.ModTime().Equal(mtime) {
					t.Errorf("the copy was replaced or touched: mtime %v, want %v", after.ModTime(), mtime)
				}
			} else if !bytes.Equal(readFile(t, dir, "f"), srv.Body("/f")) || before != nil && os.SameFile(before, after) {
				t.Error("the body was not published")
			}
			if exists(dir, "f.part") || exists(dir, "f.part.meta") {
				t.Error(".part or sidecar left behind")
			}
		})
	}
}

// TestFetchUnwantedCopyNotRevalidated: a copy on disk whose sha256 is not the one wanted (the list's
// sum changed) is not revalidated, however good its validators: a 304 would keep it. The request
// is unconditional and the wanted body replaces it.
func TestFetchUnwantedCopyNotRevalidated(t *testing.T) {
	srv := testserver.New(t)
	f := newFetcher(t, srv)
	root, dir := newRoot(t)
	first, err := fetch(t, f, root, srv.URL("/f"), "f")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("an older version"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		have        string
		conditional bool
	}{
		{"copy is the wanted file", first.SHA256, true},
		{"copy is another file", sha([]byte("an older version")), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := fetchReq(t, f, root, Request{URL: srv.URL("/f"), Path: "f", ETag: first.ETag,
				HaveSHA256: tc.have, WantSHA256: first.SHA256})
			if err != nil {
				t.Fatal(err)
			}
			reqs := srv.RequestsFor("/f")
			if inm := reqs[len(reqs)-1].Header.Get("If-None-Match"); (inm != "") != tc.conditional {
				t.Fatalf("If-None-Match %q, want conditional %v", inm, tc.conditional)
			}
			if resp.NotModified != tc.conditional {
				t.Fatalf("response %+v", resp)
			}
			if !tc.conditional && !bytes.Equal(readFile(t, dir, "f"), srv.Body("/f")) {
				t.Fatal("the wanted body did not replace the copy")
			}
		})
	}
}
