package store

import (
	"fmt"
	"testing"
)

func TestReservePath(t *testing.T) {
	tests := []struct {
		name     string
		reserved []string // enqueued first, in order
		path     string
		want     string
	}{
		{"free", nil, "h/a.jpg", "h/a.jpg"},
		{"exact file", []string{"h/a.jpg"}, "h/a.jpg", "h/a~2.jpg"},
		{"exact, no extension", []string{"h/a"}, "h/a", "h/a~2"},
		{"smallest free suffix", []string{"h/a.jpg", "h/a.jpg", "h/a.jpg"}, "h/a.jpg", "h/a~4.jpg"},
		{"suffix already taken", []string{"h/a.jpg", "h/a~2.jpg"}, "h/a.jpg", "h/a~3.jpg"},
		{"final extension only", []string{"h/a.tar.gz"}, "h/a.tar.gz", "h/a.tar~2.gz"},
		{"dotfile", []string{"h/.profile"}, "h/.profile", "h/.profile~2"},
		{"ancestor is a file", []string{"h/a"}, "h/a/b", "h/a~2/b"},
		{"ancestor and its ~2 are files", []string{"h/a", "h/a"}, "h/a/b", "h/a~3/b"},
		{"ancestor file with extension", []string{"h/a.d"}, "h/a.d/b.jpg", "h/a.d~2/b.jpg"},
		{"deep ancestor is a file", []string{"h"}, "h/a/b/c", "h~2/a/b/c"},
		{"path is a directory", []string{"h/a/b"}, "h/a", "h/a~2"},
		{"path is a deep directory", []string{"h/a/b/c.jpg"}, "h/a", "h/a~2"},
		{"sibling prefix is not a directory", []string{"h/ab"}, "h/a", "h/a"},
		{"sibling with dash sorts before slash", []string{"h/a-b/c", "h/a.b"}, "h/a", "h/a"},
		{"directory shared", []string{"h/a/b"}, "h/a/c", "h/a/c"},
		{"resolved dir then collision", []string{"h/a", "h/a/b"}, "h/a/b", "h/a~2/b~2"},
		{"suffixed name is a directory", []string{"h/a", "h/a~2/x"}, "h/a", "h/a~3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustOpen(t)
			for i, p := range tt.reserved {
				mustEnqueue(t, s.Store, []NewURL{{URL: fmt.Sprintf("https://h/%d", i), Host: "h", Path: p}})
			}
			u := NewURL{URL: "https://h/new", Host: "h", Path: tt.path}
			mustEnqueue(t, s.Store, []NewURL{u})
			r, ok, err := s.Get(u.URL)
			if err != nil || !ok || r.Path != tt.want {
				t.Errorf("path %q, %v, %v; want %q", r.Path, ok, err, tt.want)
			}
		})
	}
}

// TestReservePathDeterministic: the same URLs in the same order get the same paths in a fresh
// store, and many URLs proposing one name get consecutive suffixes (via the hint).
func TestReservePathDeterministic(t *testing.T) {
	var in []NewURL
	for i := 0; i < 300; i++ {
		in = append(in, NewURL{URL: fmt.Sprintf("https://h/p?id=%d", i), Host: "h", Path: "h/p.html"})
	}
	var paths [2][]string
	for run := range paths {
		s := mustOpen(t)
		for i := 0; i < len(in); i += 100 { // several transactions, so the hint is persisted
			mustEnqueue(t, s.Store, in[i:i+100])
		}
		for _, u := range in {
			r, _, _ := s.Get(u.URL)
			paths[run] = append(paths[run], r.Path)
		}
	}
	for i := range in {
		want := "h/p.html"
		if i > 0 {
			want = fmt.Sprintf("h/p~%d.html", i+1)
		}
		if paths[0][i] != want || paths[1][i] != want {
			t.Fatalf("url %d: paths %q, %q; want %q", i, paths[0][i], paths[1][i], want)
		}
	}
}
