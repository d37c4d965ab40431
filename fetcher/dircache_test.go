package fetcher

import "testing"

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
