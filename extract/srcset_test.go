package extract

import (
	"reflect"
	"testing"
)

func TestParseSrcset(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"a.jpg", []string{"a.jpg"}},
		{"a.jpg 1x", []string{"a.jpg"}},
		{"a.jpg 1x, b.jpg 2x", []string{"a.jpg", "b.jpg"}},
		{"a.jpg 1x,b.jpg 2x", []string{"a.jpg", "b.jpg"}},
		{"a.jpg 480w, b.jpg 800w, c.jpg 1200w", []string{"a.jpg", "b.jpg", "c.jpg"}},
		{"  \n a.jpg   1.5x ,\n\t b.jpg  ", []string{"a.jpg", "b.jpg"}},
		{"a.jpg, b.jpg 2x", []string{"a.jpg", "b.jpg"}},
		{"a.jpg,,, b.jpg", []string{"a.jpg", "b.jpg"}},
		{"img.php?w=1,2 1x, c.jpg 2x", []string{"img.php?w=1,2", "c.jpg"}},
		{"a.jpg,b.jpg", []string{"a.jpg,b.jpg"}}, // no whitespace after the comma: one URL, per the standard
		{"a.jpg 100w 200h, b.jpg", []string{"a.jpg", "b.jpg"}},
		{"a.jpg (x, y) 1x, b.jpg", []string{"a.jpg", "b.jpg"}},
		{"a.jpg (unclosed, b.jpg", []string{"a.jpg"}},
		{"data:image/png;base64,AAA= 1x, b.jpg 2x", []string{"data:image/png;base64,AAA=", "b.jpg"}},
		{"", nil},
		{" , , ", nil},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := parseSrcset(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("parseSrcset(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
