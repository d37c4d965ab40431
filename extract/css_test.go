package extract

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCSS(t *testing.T) {
	const base = "https://example.org/css/site.css"
	r := func(s string) Link {
		if !strings.Contains(s, "://") && !strings.HasPrefix(s, "/") {
			s = "/css/" + s
		}
		return R(s)
	}
	for _, tc := range []struct {
		name, css string
		want      []Link
	}{
		{"double quoted", `a{background:url("a.png")}`, []Link{r("a.png")}},
		{"single quoted", `a{background:url('a.png')}`, []Link{r("a.png")}},
		{"unquoted", `a{background:url(a.png)}`, []Link{r("a.png")}},
		{"spaces inside", `a{background:url(  "a.png"  )}`, []Link{r("a.png")}},
		{"unquoted spaces", `a{background:url(  a.png  )}`, []Link{r("a.png")}},
		{"upper case", `a{background:URL(a.png)}`, []Link{r("a.png")}},
		{"relative to stylesheet", `a{background:url(../img/a.png)}`, []Link{R("/img/a.png")}},
		{"import string", `@import "reset.css";`, []Link{r("reset.css")}},
		{"import single", `@import 'reset.css' screen;`, []Link{r("reset.css")}},
		{"import url", `@import url(reset.css);`, []Link{r("reset.css")}},
		{"import url quoted", `@IMPORT url("reset.css") print;`, []Link{r("reset.css")}},
		{"import comment", `@import /* why */ "reset.css";`, []Link{r("reset.css")}},
		{"font-face", `@font-face{font-family:F;src:url(f.woff2) format("woff2"),url(f.woff) format("woff"), local("F")}`,
			[]Link{r("f.woff2"), r("f.woff")}},
		{"several", `a{background:url(a.png)} b{background:url(b.png), url(a.png)}`, []Link{r("a.png"), r("b.png")}},
		{"comment skipped", `/* url(no.png) */ a{background:url(yes.png)} /* unterminated url(no2.png)`, []Link{r("yes.png")}},
		{"string skipped", `a:after{content:"url(no.png)"} b{background:url(yes.png)}`, []Link{r("yes.png")}},
		{"escaped quote in string", `a:after{content:"\"url(no.png)"}`, nil},
		{"not url function", `a{x:myurl(no.png); y:-url(no2.png)}`, nil},
		{"data uri ignored", `a{background:url(data:image/png;base64,iVBOR=)}`, nil},
		{"fragment ignored", `a{filter:url(#blur)}`, nil},
		{"empty", `a{background:url()} b{background:url("")}`, nil},
		{"escape hex", `a{background:url(a\2e png)}`, []Link{r("a.png")}},
		{"escape char", `a{background:url("a\"b.png")}`, []Link{r("a%22b.png")}},
		{"escaped paren", `a{background:url(a\(1\).png)}`, []Link{r("a(1).png")}},
		{"image-set", `a{background-image:image-set("a.png" 1x, "a-2x.png" 2x)}`, []Link{r("a.png"), r("a-2x.png")}},
		{"webkit image-set url", `a{background-image:-webkit-image-set(url(a.png) 1x, url(b.png) 2x); content:"no.png"}`,
			[]Link{r("a.png"), r("b.png")}},
		{"absolute and scheme-relative", `a{background:url(//cdn.example.net/a.png)} b{background:url(http://x.example/b.png)}`,
			[]Link{R("https://cdn.example.net/a.png"), R("http://x.example/b.png")}},
		{"unterminated url", `a{background:url(a.png`, []Link{r("a.png")}},
		{"unterminated string", "a{background:url(\"a.png\n)}", []Link{r("a.png")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CSS(strings.NewReader(tc.css), mustURL(t, base))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("CSS(%s)\n got %v\nwant %v", tc.css, got, tc.want)
			}
		})
	}
}

func TestCSSBadBase(t *testing.T) {
	if _, err := CSS(strings.NewReader("a{}"), mustURL(t, "/x.css")); !errors.Is(err, ErrNoBase) {
		t.Fatalf("err = %v, want ErrNoBase", err)
	}
}
