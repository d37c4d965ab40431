package fetcher

import (
	"bytes"
	"testing"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestDirCacheMade: a directory counts as made by the Fetcher only when its open created it.
func TestDirCacheMade(t *testing.T) {
	root, _ := newRoot(t)
	if err := root.MkdirAll("there/before", 0o755); err != nil {
		t.Fatal(err)
	}
	var c dirCache
	defer c.close()
	for _, tt := range []struct {
		dir      string
		create   bool
		wantMade bool
	}{
		{"there/before", true, false},
		{"there", false, false},
		{"there/new", true, true},
		{"fresh/parent/too", true, true},
		{"fresh/parent", true, false}, // made as a parent, not by its own open
	} {
		e, release, err := c.open(root, tt.dir, tt.create)
		if err != nil {
			t.Fatalf("%s: %v", tt.dir, err)
		}
		release()
		if e.made != tt.wantMade {
			t.Errorf("%s: made = %v, want %v", tt.dir, e.made, tt.wantMade)
		}
		if got := c.mayHavePart(e, "f.part"); got != !tt.wantMade {
			t.Errorf("%s: mayHavePart = %v before any .part, want %v", tt.dir, got, !tt.wantMade)
		}
	}
}

// TestFetchResumesInDirectoryItMade: a first attempt in a directory this Fetcher created does not
// look for a .part, but a retry finds the one an earlier attempt kept, however the directory came
// to be.
func TestFetchResumesInDirectoryItMade(t *testing.T) {
	const size, cut = 300_000, 100_000
	for _, tt := range []struct {
		name    string
		premade bool
	}{{"made by the fetcher", false}, {"there before", true}} {
		t.Run(tt.name, func(t *testing.T) {
			srv := testserver.New(t, testserver.HTTP1Only(), testserver.Size(size))
			f := newFetcher(t, srv)
			root, dir := newRoot(t)
			if tt.premade {
				if err := root.MkdirAll("d/e", 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// A first file makes (or opens) the directory; the second is cut short, then resumed.
			if _, err := fetch(t, f, root, srv.URL("/first"), "d/e/first"); err != nil {
				t.Fatal(err)
			}
			partial(t, srv, f, root, dir, "/f", "d/e/f", cut)
			resp, err := fetch(t, f, root, srv.URL("/f"), "d/e/f")
			if err != nil {
				t.Fatal(err)
			}
			if !resp.Resumed || resp.Offset != cut || !bytes.Equal(readFile(t, dir, "d/e/f"), srv.Body("/f")) {
				t.Fatalf("response %+v: want the file complete, resumed from %d", resp, cut)
			}
		})
	}
}
