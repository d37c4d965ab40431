package extract

import (
	"bytes"
	"fmt"
	"testing"
)

// benchPage generates a gallery-like page of about 100 KiB with about 500 links of every kind.
func benchPage() []byte {
	var b bytes.Buffer
	b.WriteString(`<!doctype html><html><head><title>Gallery</title>
<link rel="stylesheet" href="/static/site.css"><link rel="icon" href="/favicon.ico">
<script src="/static/app.js"></script><style>body{background:url(/static/bg.png)}</style></head><body>
`)
	for i := 0; b.Len() < 100<<10; i++ {
		fmt.Fprintf(&b, `<div class="item" style="border-image:url(frame%d.png)"><a href="photo/%d.html" title="Photo number %d">`+
			`<img src="thumbs/%d.jpg" srcset="thumbs/%d.jpg 1x, thumbs/%d@2x.jpg 2x" alt="A photograph with a description"></a>`+
			`<p>Some descriptive text about photograph %d, long enough to look like real prose on a page.</p></div>
`, i%4, i, i, i, i, i, i)
	}
	b.WriteString(`</body></html>`)
	return b.Bytes()
}

func BenchmarkHTML(b *testing.B) {
	page := benchPage()
	base := mustURL(b, "https://example.org/gallery/index.html")
	links, err := HTML(bytes.NewReader(page), base)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := HTML(bytes.NewReader(page), base); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(links)), "links/op")
}
