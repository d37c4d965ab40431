package fetcher

import "testing"

func TestFlush(t *testing.T) {
	root, _ := newRoot(t)
	if err := root.WriteFile("x", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Flush(root); err != nil {
		t.Fatal(err)
	}
}
