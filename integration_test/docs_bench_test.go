//go:build bench && linux

// BenchmarkE2EDocs crawls a documentation site — the shape that made trawl 5x slower than wget2
// (issue 17): a table of contents of 2.5 MB, hundreds of pages of 50-200 KB, stylesheets,
// scripts and images — with trawl and with wget2 in the same run, each round running every tool
// once into a fresh directory (the order rotating), and reports each tool's medians and
// trawl's ratios to wget2:
//
//	go test -tags bench -run '^$' -bench E2EDocs -benchtime 5x -timeout 30m ./integration_test/
//
// Sub-benchmarks:
//
//   - generated: a generated Sphinx-like site (docsSite): 400 pages averaging 125 KB, a 2.5 MB
//     contents page and a 1 MB index, 120 images, stylesheets with fonts and backgrounds. trawl
//     must save every file of it.
//   - python3-doc: Python's own HTML documentation as Debian's python3-doc installs it (530
//     pages, 48 MB, in /usr/share/doc/python3/html or $TRAWL_BENCH_DOCS), skipped when absent.
//
// Tools: trawl crawl URL -c 16 --per-host 16 (the binary under test); wget2 -q -r -l 0 -np
// --max-threads=16 (skipped if not on PATH); and, when $TRAWL_BENCH_BASELINE names another
// trawl binary (say, one built from the previous commit), that one as trawl-baseline, with the
// same flags. $TRAWL_BENCH_DOCS_CONC changes the 16. Output goes to /dev/shm as in bench_test.go.
//
// Metrics (ns/op is suppressed), medians over the rounds:
//
//	TOOL-wall-s, TOOL-cpu-s   seconds from start to exit; user+system CPU seconds (rusage)
//	TOOL-RSS-MiB              peak resident set (VmHWM, sampled: see sampleHWM)
//	TOOL-files                files saved (robots.txt not counted)
//	wall/wget2, cpu/wget2     trawl's median over wget2's (the targets: at most 0.8 and 3)

package integration_test

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"mime"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// pythonDocsDir is where Debian's python3-doc puts Python's HTML documentation.
const pythonDocsDir = "/usr/share/doc/python3/html"

func BenchmarkE2EDocs(b *testing.B) {
	b.Run("generated", func(b *testing.B) {
		const pages = 400
		srv := startBenchServer(b, serveSpec{Corpus: "docs", Pages: pages})
		site := docsSite(pages)
		var want int64
		for _, body := range site {
			want += int64(len(body))
		}
		benchDocs(b, srv, len(site), want)
	})
	b.Run("python3-doc", func(b *testing.B) {
		dir := os.Getenv("TRAWL_BENCH_DOCS")
		if dir == "" {
			dir = pythonDocsDir
		}
		dir, err := filepath.EvalSymlinks(dir)
		if err != nil {
			b.Skipf("no documentation tree at %s (Debian package python3-doc): %v", pythonDocsDir, err)
		}
		srv := startBenchServer(b, serveSpec{Corpus: "docs", DocsDir: dir})
		benchDocs(b, srv, 0, 0)
	})
}

// docsTool is one crawler under test.
type docsTool struct {
	name string
	bin  string
	args func(out, tmp string) []string
	ok   func(code int) bool // exit codes that mean it finished its crawl
}

// benchDocs crawls srv's /docs/index.html with every tool once per round. wantFiles and
// wantBytes, when not 0, are what trawl must save.
func benchDocs(b *testing.B, srv *benchServer, wantFiles int, wantBytes int64) {
	seed := srv.Bases[0] + "/docs/index.html"
	c := strconv.Itoa(envInt("TRAWL_BENCH_DOCS_CONC", 16))
	trawl := func(name, bin string) docsTool {
		return docsTool{name, bin, func(out, tmp string) []string {
			return []string{"crawl", seed, "--out", out, "--state", filepath.Join(tmp, "state.db"),
				"--ca-cert", srv.CA, "--concurrency", c, "--per-host", c, "--quiet"}
		}, func(code int) bool { return code == exitOK || code == exitFailed }} // the real docs link a few missing files
	}
	tools := []docsTool{trawl("trawl", trawlBin)}
	if bin := os.Getenv("TRAWL_BENCH_BASELINE"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			b.Fatal(err)
		}
		tools = append(tools, trawl("trawl-baseline", abs))
	}
	if bin, err := exec.LookPath("wget2"); err == nil {
		tools = append(tools, docsTool{"wget2", bin, func(out, tmp string) []string {
			return []string{"-q", "-r", "-l", "0", "-np", "--max-threads=" + c, "-P", out, "--ca-certificate=" + srv.CA, seed}
		}, func(code int) bool { return code == 0 || code == 8 }}) // 8: some answer was an error (404)
	} else {
		b.Log("wget2 is not on PATH: trawl runs alone")
	}

	type sample struct {
		wall, cpu float64
		rss       float64
		files     int
	}
	samples := map[string][]sample{}
	round := 0
	for b.Loop() {
		for i := range tools {
			t := tools[(i+round)%len(tools)]
			out, tmp := benchOutDir(b), b.TempDir()
			r, code, output := runTool(b, 10*time.Minute, t.bin, t.args(out, tmp)...)
			if !t.ok(code) {
				b.Fatalf("%s exited %d:\n%s", t.name, code, tail(output))
			}
			files, size := savedFiles(b, out)
			if strings.HasPrefix(t.name, "trawl") && wantFiles != 0 && (files != wantFiles || size != wantBytes) {
				b.Fatalf("%s saved %d files, %d bytes; want %d files, %d bytes", t.name, files, size, wantFiles, wantBytes)
			}
			samples[t.name] = append(samples[t.name], sample{r.wall.Seconds(), r.cpu.Seconds(), r.rssMiB, files})
			_ = os.RemoveAll(out)
		}
		round++
	}

	med := func(name string, f func(sample) float64) float64 {
		var v []float64
		for _, s := range samples[name] {
			v = append(v, f(s))
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	wall := func(s sample) float64 { return s.wall }
	cpu := func(s sample) float64 { return s.cpu }
	b.ReportMetric(0, "ns/op")
	var line []string
	for _, t := range tools {
		b.ReportMetric(med(t.name, wall), t.name+"-wall-s")
		b.ReportMetric(med(t.name, cpu), t.name+"-cpu-s")
		b.ReportMetric(med(t.name, func(s sample) float64 { return s.rss }), t.name+"-RSS-MiB")
		b.ReportMetric(med(t.name, func(s sample) float64 { return float64(s.files) }), t.name+"-files")
		var walls []string
		for _, s := range samples[t.name] {
			walls = append(walls, fmt.Sprintf("%.2f/%.2f", s.wall, s.cpu))
		}
		line = append(line, fmt.Sprintf("%s wall/cpu s: %s", t.name, strings.Join(walls, " ")))
	}
	if _, ok := samples["wget2"]; ok {
		b.ReportMetric(med("trawl", wall)/med("wget2", wall), "wall/wget2")
		b.ReportMetric(med("trawl", cpu)/med("wget2", cpu), "cpu/wget2")
	}
	b.Log(strings.Join(line, "\n"))
}

// savedFiles counts the files under out and their bytes, leaving out trawl's state and
// robots.txt.
func savedFiles(b *testing.B, out string) (int, int64) {
	n, size := 0, int64(0)
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".trawl" {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() || d.Name() == "robots.txt" {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n, size = n+1, size+fi.Size()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n, size
}

// docsCorpus serves spec.DocsDir under /docs/ (files read once, on first request), or the
// generated docsSite(spec.Pages).
func docsCorpus(spec serveSpec) (corpus, error) {
	ctype := func(p string) string {
		if t := mime.TypeByExtension(path.Ext(p)); t != "" {
			return t
		}
		return "application/octet-stream"
	}
	if spec.DocsDir == "" {
		site := docsSite(spec.Pages)
		return func(p string) (benchFile, bool) {
			body, ok := site[p]
			return bytesFile(ctype(p), body), ok
		}, nil
	}
	root, err := os.OpenRoot(spec.DocsDir)
	if err != nil {
		return nil, err
	}
	var cache sync.Map // path → []byte
	return func(p string) (benchFile, bool) {
		rel, ok := strings.CutPrefix(p, "/docs/")
		if !ok {
			return benchFile{}, false
		}
		if rel == "" || strings.HasSuffix(rel, "/") {
			rel += "index.html"
		}
		if body, ok := cache.Load(rel); ok {
			return bytesFile(ctype(rel), body.([]byte)), true
		}
		f, err := root.Open(rel)
		if err != nil {
			return benchFile{}, false
		}
		defer f.Close()
		if fi, err := f.Stat(); err != nil || fi.IsDir() {
			return benchFile{}, false
		}
		body, err := io.ReadAll(f)
		if err != nil {
			return benchFile{}, false
		}
		cache.Store(rel, body)
		return bytesFile(ctype(rel), body), true
	}, nil
}

// docsSite generates a documentation site in the shape of Python's (Sphinx's), under /docs/:
// an index; contents.html, a 2.5 MB table of contents linking every page at each of its
// sections; genindex.html, a 1 MB index; pages of 50-200 KB in six sections, each linking its
// neighbours and some 30 others, with definitions, prose, highlighted code and an image or two;
// three stylesheets (fonts and backgrounds by url()), six scripts, an OpenSearch description,
// 120 images. Deterministic: the server and the test generate the same bytes.
func docsSite(pages int) map[string][]byte {
	rnd := rand.New(rand.NewPCG(17, 17))
	site := map[string][]byte{}
	sections := []string{"library", "library", "library", "reference", "tutorial", "howto", "c-api", "whatsnew"}
	names := make([]string, pages)
	for i := range names {
		names[i] = fmt.Sprintf("%s/page%03d.html", sections[i%len(sections)], i)
	}
	const images = 120
	for i := range images {
		site[fmt.Sprintf("/docs/_images/figure%03d.png", i)] = docsBlob(i, 10<<10+rnd.IntN(50<<10))
	}
	for i, name := range []string{"pygments.css", "pydoctheme.css", "basic.css"} {
		site["/docs/_static/"+name] = []byte(fmt.Sprintf(`@import url("basic-%d.css");
body { background: url(bg%d.png) repeat-x; font-family: "Source Sans", sans-serif }
@font-face { font-family: "Source Sans"; src: url(fonts/source-sans-%d.woff2) format("woff2") }
`, i, i, i) + strings.Repeat(".highlight .k { color: #007020; font-weight: bold } /* Keyword */\n", 200))
		site[fmt.Sprintf("/docs/_static/basic-%d.css", i)] = []byte("div.body { max-width: 800px }\n")
		site[fmt.Sprintf("/docs/_static/bg%d.png", i)] = docsBlob(1000+i, 2<<10)
		site[fmt.Sprintf("/docs/_static/fonts/source-sans-%d.woff2", i)] = docsBlob(2000+i, 60<<10)
	}
	for i, name := range []string{"documentation_options.js", "jquery.js", "underscore.js", "doctools.js", "sidebar.js", "copybutton.js"} {
		site["/docs/_static/"+name] = docsBlob(3000+i, 5<<10+rnd.IntN(80<<10))
	}
	site["/docs/_static/py.svg"] = []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><path d="M8 0C3 0 3 2 3 3v2h5v1H2C0 6 0 8 0 10s1 4 3 4h1v-2c0-1 1-3 3-3h5c1 0 3-1 3-3V3c0-1-1-3-5-3z"/></svg>`)
	site["/docs/_static/opensearch.xml"] = []byte(`<?xml version="1.0" encoding="utf-8"?><OpenSearchDescription xmlns="http://a9.com/-/spec/opensearch/1.1/"><ShortName>Docs</ShortName></OpenSearchDescription>`)

	small := func(title, body string) []byte {
		return []byte(docsHead(title, "") + body + docsFoot(""))
	}
	site["/docs/about.html"] = small("About these documents", "<p>Written in reStructuredText.</p>")
	site["/docs/copyright.html"] = small("Copyright", "<p>Copyright 2001-2023.</p>")
	site["/docs/search.html"] = small("Search", `<form action="" method="get"><input type="text" name="q"></form>`)
	var index strings.Builder
	index.WriteString(`<h1>Documentation</h1><p><a href="contents.html">Contents</a> <a href="genindex.html">Index</a></p><ul>`)
	for _, s := range sections[2:] {
		fmt.Fprintf(&index, `<li><a href="%s/page%03d.html">%s</a></li>`, s, slices.Index(sections, s), s)
	}
	index.WriteString("</ul>")
	site["/docs/index.html"] = small("Documentation", index.String())

	var toc bytes.Buffer
	toc.WriteString(docsHead("Contents", "") + "<h1>Contents</h1>\n<ul>\n")
	for i := 0; toc.Len() < 2500<<10; i++ {
		p := names[i%pages]
		fmt.Fprintf(&toc, `<li class="toctree-l1"><a class="reference internal" href="%s">Page %d: a title of ordinary length</a><ul>`+"\n", p, i%pages)
		for j := range 24 {
			fmt.Fprintf(&toc, `<li class="toctree-l2"><a class="reference internal" href="%s#s%d"><code class="docutils literal notranslate"><span class="pre">name%d_%d()</span></code> and a few words</a></li>`+"\n", p, j, i, j)
		}
		toc.WriteString("</ul></li>\n")
	}
	toc.WriteString("</ul>\n" + docsFoot(""))
	site["/docs/contents.html"] = toc.Bytes()

	var gen bytes.Buffer
	gen.WriteString(docsHead("Index", "") + "<h1>Index</h1>\n<table class=\"indextable\"><tr><td><ul>\n")
	for i := 0; gen.Len() < 1<<20; i++ {
		fmt.Fprintf(&gen, `<li><a href="%s#name%d">name%d() (in module m%d)</a></li>`+"\n", names[rnd.IntN(pages)], i, i, i%97)
	}
	gen.WriteString("</ul></td></tr></table>\n" + docsFoot(""))
	site["/docs/genindex.html"] = gen.Bytes()

	for i, name := range names {
		size := 50<<10 + rnd.IntN(150<<10)
		var b bytes.Buffer
		b.WriteString(docsHead(fmt.Sprintf("Page %d", i), "../"))
		fmt.Fprintf(&b, `<div class="related"><a href="../%s" accesskey="P">previous</a> | <a href="../%s" accesskey="N">next</a></div>`+"\n",
			names[(i+pages-1)%pages], names[(i+1)%pages])
		fmt.Fprintf(&b, `<section id="page%d"><h1>Page %d<a class="headerlink" href="#page%d">¶</a></h1>`+"\n", i, i, i)
		fmt.Fprintf(&b, `<figure><img alt="figure" src="../_images/figure%03d.png" /></figure>`+"\n", i%images)
		if i%3 == 0 {
			fmt.Fprintf(&b, `<img alt="diagram" src="../_images/figure%03d.png" style="width: 80%%" />`+"\n", (i*7+1)%images)
		}
		for j := 0; b.Len() < size; j++ {
			other := names[rnd.IntN(pages)]
			fmt.Fprintf(&b, `<dl class="py function">
<dt class="sig sig-object py" id="s%d"><span class="sig-name descname"><span class="pre">f%d</span></span><span class="sig-paren">(</span><em class="sig-param"><span class="n"><span class="pre">obj</span></span></em><span class="sig-paren">)</span><a class="headerlink" href="#s%d" title="Permalink to this definition">¶</a></dt>
<dd><p>Return the thing, as <a class="reference internal" href="../%s#s%d"><code class="xref py py-func docutils literal notranslate"><span class="pre">f%d()</span></code></a> does for a <a class="reference internal" href="../glossary.html#term-sequence"><span class="xref std std-term">sequence</span></a>; see <a class="reference external" href="https://peps.python.org/pep-%04d/"><strong>PEP %d</strong></a>.</p>
<div class="highlight-python3 notranslate"><div class="highlight"><pre><span></span><span class="gp">&gt;&gt;&gt; </span><span class="n">f%d</span><span class="p">(</span><span class="p">[</span><span class="mi">1</span><span class="p">,</span> <span class="mi">2</span><span class="p">])</span>
<span class="go">[2, 1]</span>
<span class="gp">&gt;&gt;&gt; </span><span class="k">for</span> <span class="n">x</span> <span class="ow">in</span> <span class="n">f%d</span><span class="p">(</span><span class="s1">&#39;abc&#39;</span><span class="p">):</span>
<span class="gp">... </span>    <span class="nb">print</span><span class="p">(</span><span class="n">x</span><span class="p">)</span>
</pre></div></div>
</dd></dl>
`, j, j, j, other, j%24, j, j%700, j%700, j, j)
		}
		b.WriteString("</section>\n" + docsFoot("../"))
		site["/docs/"+name] = b.Bytes()
	}
	site["/docs/glossary.html"] = small("Glossary", `<dl><dt id="term-sequence">sequence</dt><dd>An iterable.</dd></dl>`)
	return site
}

// docsBlob is n bytes that differ from every other blob's.
func docsBlob(seed, n int) []byte {
	r := rand.New(rand.NewPCG(uint64(seed), 99))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// docsHead is a Sphinx page's head and navigation; root leads back to /docs/.
func docsHead(title, root string) string {
	return `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1.0" />
    <title>` + title + ` &#8212; Documentation</title>
    <link rel="stylesheet" type="text/css" href="` + root + `_static/pygments.css" />
    <link rel="stylesheet" type="text/css" href="` + root + `_static/pydoctheme.css?2022.1" />
    <link rel="stylesheet" type="text/css" href="` + root + `_static/basic.css" />
    <script data-url_root="./" id="documentation_options" src="` + root + `_static/documentation_options.js"></script>
    <script src="` + root + `_static/jquery.js"></script>
    <script src="` + root + `_static/underscore.js"></script>
    <script src="` + root + `_static/doctools.js"></script>
    <script src="` + root + `_static/sidebar.js"></script>
    <link rel="search" type="application/opensearchdescription+xml" title="Search" href="` + root + `_static/opensearch.xml"/>
    <link rel="author" title="About these documents" href="` + root + `about.html" />
    <link rel="index" title="Index" href="` + root + `genindex.html" />
    <link rel="search" title="Search" href="` + root + `search.html" />
    <link rel="copyright" title="Copyright" href="` + root + `copyright.html" />
    <style>
      @media only screen { table.full-width-table { width: 100%; } }
    </style>
    <link rel="shortcut icon" type="image/png" href="` + root + `_static/py.svg" />
    <script type="text/javascript" src="` + root + `_static/copybutton.js"></script>
  </head>
<body>
<div class="mobile-nav">
  <nav class="nav-content" role="navigation">
    <a href="https://www.python.org/" class="nav-logo"><img src="` + root + `_static/py.svg" alt="Logo"/></a>
    <form role="search" class="search" action="` + root + `search.html" method="get">
      <svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" viewBox="0 0 24 24" class="search-icon">
        <path fill-rule="nonzero" d="M15.5 14h-.79l-.28-.27a6.5 6.5 0 001.48-5.34c-.47-2.78-2.79-5-5.59-5.34a6.505 6.505 0 00-7.27 7.27c.34 2.8 2.56 5.12 5.34 5.59a6.5 6.5 0 005.34-1.48l.27.28v.79l4.25 4.25c.41.41 1.08.41 1.49 0 .41-.41.41-1.08 0-1.49L15.5 14z" fill="#444"></path>
      </svg>
      <input placeholder="Quick search" aria-label="Quick search" type="text" name="q" />
    </form>
  </nav>
</div>
<div class="related" role="navigation"><ul>
  <li class="right"><a href="` + root + `genindex.html" title="General Index" accesskey="I">index</a></li>
  <li><a href="` + root + `index.html">Documentation</a> &#187;</li>
</ul></div>
<div class="document"><div class="documentwrapper"><div class="bodywrapper"><div class="body" role="main">
`
}

func docsFoot(root string) string {
	return `</div></div></div></div>
<div class="footer">&copy; <a href="` + root + `copyright.html">Copyright</a> 2001-2023.
<a href="https://www.python.org/psf/donations/">Please donate.</a></div>
</body>
</html>
`
}
