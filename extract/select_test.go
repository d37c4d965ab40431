package extract

import (
	"net/url"
	"strings"
	"testing"
)

func TestSelected(t *testing.T) {
	const page = `<html><head><base href="https://example.org/gallery/"></head><body>
<a class="next" href="p2.html">next</a> <a href="/other.html">other</a>
<nav class=toc><a href="c1.html">one</a></nav>
<img class="gallery" src="a.jpg"> <img src="b.jpg"> <img class="gallery lazy" data-src="c.jpg">
</body></html>`
	base, _ := url.Parse("https://example.org/gallery/index.html")
	for _, tc := range []struct {
		name  string
		exprs []string
		want  []string
	}{
		{"class", []string{"a.next"}, []string{"https://example.org/gallery/p2.html"}},
		{"descendant, two selectors", []string{"nav.toc a", "a.next"}, []string{"https://example.org/gallery/c1.html", "https://example.org/gallery/p2.html"}},
		{"images and lazy ones", []string{"img.gallery"}, []string{"https://example.org/gallery/a.jpg", "https://example.org/gallery/c.jpg"}},
		{"nothing matches", []string{"video"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := CompileSelectors(tc.exprs)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Selected(strings.NewReader(page), base)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("selected %v, want %v", got, tc.want)
			}
			for _, w := range tc.want {
				if !got[w] {
					t.Fatalf("selected %v, want %v", got, tc.want)
				}
			}
		})
	}
	if s, err := CompileSelectors(nil); s != nil || err != nil {
		t.Fatalf("no selectors: %v, %v; want nil, nil", s, err)
	}
	if _, err := CompileSelectors([]string{"a.next", "a["}); err == nil || !strings.Contains(err.Error(), `"a["`) {
		t.Fatalf("a bad selector: %v, want an error naming it", err)
	}
}
