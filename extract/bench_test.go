package extract

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
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
		resolved.reset()
		if _, err := HTML(bytes.NewReader(page), base); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(links)), "links/op")
}

// docsHead is the <head> and navigation of a Sphinx page, as in Python's documentation: a dozen
// stylesheets, scripts and rel links, an inline <style>, an inline SVG icon, a search form.
func docsHead(title, root string) string {
	return `<!DOCTYPE html>

<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1.0" /><meta name="generator" content="Docutils 0.19: https://docutils.sourceforge.io/" />
    <title>` + title + ` &#8212; Python 3.11.2 documentation</title>
    <link rel="stylesheet" type="text/css" href="` + root + `_static/pygments.css" />
    <link rel="stylesheet" type="text/css" href="` + root + `_static/pydoctheme.css?2022.1" />
    <script data-url_root="./" id="documentation_options" src="` + root + `_static/documentation_options.js"></script>
    <script src="` + root + `_static/jquery.js"></script>
    <script src="` + root + `_static/underscore.js"></script>
    <script src="` + root + `_static/doctools.js"></script>
    <script src="` + root + `_static/sidebar.js"></script>
    <link rel="search" type="application/opensearchdescription+xml"
          title="Search within Python 3.11.2 documentation"
          href="` + root + `_static/opensearch.xml"/>
    <link rel="author" title="About these documents" href="` + root + `about.html" />
    <link rel="index" title="Index" href="` + root + `genindex.html" />
    <link rel="search" title="Search" href="` + root + `search.html" />
    <link rel="copyright" title="Copyright" href="` + root + `copyright.html" />
    <link rel="next" title="Next" href="` + root + `whatsnew/index.html" />
    <style>
      @media only screen {
        table.full-width-table {
            width: 100%;
        }
      }
    </style>
<link rel="shortcut icon" type="image/png" href="` + root + `_static/py.svg" />
            <script type="text/javascript" src="` + root + `_static/copybutton.js"></script>
  </head>
<body>
<div class="mobile-nav">
    <input type="checkbox" id="menuToggler" class="toggler__input" aria-controls="navigation"
           aria-pressed="false" aria-expanded="false" role="button" aria-label="Menu" />
    <nav class="nav-content" role="navigation">
         <a href="https://www.python.org/" class="nav-logo">
             <img src="` + root + `_static/py.svg" alt="Logo"/>
         </a>
        <form role="search" class="search" action="` + root + `search.html" method="get">
            <svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" viewBox="0 0 24 24" class="search-icon">
                <path fill-rule="nonzero" d="M15.5 14h-.79l-.28-.27a6.5 6.5 0 001.48-5.34c-.47-2.78-2.79-5-5.59-5.34a6.505 6.505 0 00-7.27 7.27c.34 2.8 2.56 5.12 5.34 5.59a6.5 6.5 0 005.34-1.48l.27.28v.79l4.25 4.25c.41.41 1.08.41 1.49 0 .41-.41.41-1.08 0-1.49L15.5 14zm-6 0C7.01 14 5 11.99 5 9.5S7.01 5 9.5 5 14 7.01 14 9.5 11.99 14 9.5 14z" fill="#444"></path>
            </svg>
            <input placeholder="Quick search" aria-label="Quick search" type="text" name="q" />
            <input type="submit" value="Go"/>
        </form>
    </nav>
</div>
<div class="related" role="navigation" aria-label="related navigation">
  <ul>
    <li class="right" style="margin-right: 10px"><a href="` + root + `genindex.html" title="General Index" accesskey="I">index</a></li>
    <li class="right" ><a href="` + root + `py-modindex.html" title="Python Module Index" >modules</a> |</li>
    <li><img src="` + root + `_static/py.svg" alt="python logo" style="vertical-align: middle; margin-top: -1px"/></li>
    <li><a href="https://www.python.org/">Python</a> &#187;</li>
  </ul>
</div>
<div class="document"><div class="documentwrapper"><div class="bodywrapper"><div class="body" role="main">
`
}

const docsFoot = `</div></div></div></div>
<div class="footer">&copy; <a href="copyright.html">Copyright</a> 2001-2023, Python Software Foundation.
<a href="https://www.python.org/psf/donations/">Please donate.</a></div>
</body>
</html>
`

// docsTOCPage generates a table of contents like Python's contents.html: about 2.5 MB of nested
// lists, some 14,000 links to about 500 pages, each with a fragment.
func docsTOCPage() []byte {
	var b bytes.Buffer
	b.WriteString(docsHead("Python Documentation contents", ""))
	b.WriteString(`<section id="python-documentation-contents"><h1>Python Documentation contents</h1>` + "\n<ul>\n")
	for i := 0; b.Len() < 2500<<10; i++ {
		page := fmt.Sprintf("library/module%03d.html", i%500)
		fmt.Fprintf(&b, `<li class="toctree-l1"><a class="reference internal" href="%s">Module %d — a title of ordinary length</a><ul>`+"\n", page, i)
		for j := range 27 {
			fmt.Fprintf(&b, `<li class="toctree-l2"><a class="reference internal" href="%s#section-%d-%d"><code class="docutils literal notranslate"><span class="pre">name%d_%d()</span></code> and some words</a></li>`+"\n", page, i, j, i, j)
		}
		b.WriteString("</ul>\n</li>\n")
	}
	b.WriteString("</ul>\n</section>\n" + docsFoot)
	return b.Bytes()
}

// docsPage generates a reference page like Python's library/*.html: about 150 KB of
// definitions, prose with cross-references, and highlighted code (many tags, few links).
func docsPage() []byte {
	var b bytes.Buffer
	b.WriteString(docsHead("functools — Higher-order functions", "../"))
	b.WriteString(`<section id="module-functools"><h1><a class="reference internal" href="#module-functools" title="functools"><code class="xref py py-mod docutils literal notranslate"><span class="pre">functools</span></code></a> — Higher-order functions<a class="headerlink" href="#module-functools" title="Permalink to this heading">¶</a></h1>` + "\n")
	for i := 0; b.Len() < 150<<10; i++ {
		fmt.Fprintf(&b, `<dl class="py function">
<dt class="sig sig-object py" id="functools.f%d">
<span class="sig-prename descclassname"><span class="pre">functools.</span></span><span class="sig-name descname"><span class="pre">f%d</span></span><span class="sig-paren">(</span><em class="sig-param"><span class="n"><span class="pre">func</span></span></em>, <em class="sig-param"><span class="o"><span class="pre">/</span></span></em><span class="sig-paren">)</span><a class="headerlink" href="#functools.f%d" title="Permalink to this definition">¶</a></dt>
<dd><p>Return a new <a class="reference internal" href="../glossary.html#term-callable"><span class="xref std std-term">callable</span></a> which behaves like <em>func</em>; see <a class="reference internal" href="stdtypes.html#typesseq-list"><code class="xref py py-class docutils literal notranslate"><span class="pre">list</span></code></a> and <a class="reference external" href="https://peps.python.org/pep-%04d/"><strong>PEP %d</strong></a>. Roughly equivalent to:</p>
<div class="highlight-python3 notranslate"><div class="highlight"><pre><span></span><span class="k">def</span> <span class="nf">f%d</span><span class="p">(</span><span class="n">func</span><span class="p">,</span> <span class="o">/</span><span class="p">):</span>
    <span class="k">def</span> <span class="nf">wrapper</span><span class="p">(</span><span class="o">*</span><span class="n">args</span><span class="p">,</span> <span class="o">**</span><span class="n">kwargs</span><span class="p">):</span>
        <span class="k">return</span> <span class="n">func</span><span class="p">(</span><span class="o">*</span><span class="n">args</span><span class="p">,</span> <span class="o">**</span><span class="n">kwargs</span><span class="p">)</span>
    <span class="k">return</span> <span class="n">wrapper</span>
</pre></div>
</div>
<div class="versionadded"><p><span class="versionmodified added">New in version 3.%d.</span></p></div>
</dd></dl>
`, i, i, i, i%700, i%700, i, i%12)
	}
	b.WriteString("</section>\n" + docsFoot)
	return b.Bytes()
}

// benchmarkHTML reports the cost of HTML on page.
func benchmarkHTML(b *testing.B, page []byte, pageURL string) {
	base := mustURL(b, pageURL)
	links, err := HTML(bytes.NewReader(page), base)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		resolved.reset() // a crawl parses a page once: what it resolves is not known yet
		if _, err := HTML(bytes.NewReader(page), base); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(links)), "links/op")
}

// BenchmarkHTMLDocsTOC is a 2.5 MB table of contents: 14,000 links.
func BenchmarkHTMLDocsTOC(b *testing.B) {
	benchmarkHTML(b, docsTOCPage(), "https://docs.example.org/3.11/contents.html")
}

// BenchmarkHTMLDocsPage is a 150 KB reference page: mostly highlighted code and definitions.
func BenchmarkHTMLDocsPage(b *testing.B) {
	benchmarkHTML(b, docsPage(), "https://docs.example.org/3.11/library/functools.html")
}

// pythonDocs is where Debian's python3-doc installs Python's HTML documentation.
const pythonDocs = "/usr/share/doc/python3/html"

// BenchmarkHTMLPythonDocs parses every page of Python's documentation (Debian python3-doc: 530
// pages, 48 MB), when it is installed: one op is the whole tree.
func BenchmarkHTMLPythonDocs(b *testing.B) {
	pages := readTree(b, pythonDocs)
	var size int64
	for _, p := range pages {
		size += int64(len(p.body))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		resolved.reset() // as a crawl of the tree starts
		for _, p := range pages {
			if _, err := HTML(bytes.NewReader(p.body), p.url); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(pages)), "pages/op")
}

// treePage is an HTML file of a documentation tree and the URL it is served at.
type treePage struct {
	url  *url.URL
	body []byte
}

// readTree reads every .html file under dir, as served at https://docs.example.org/; it skips
// the test when dir does not exist.
func readTree(tb testing.TB, dir string) []treePage {
	tb.Helper()
	dir, err := filepath.EvalSymlinks(dir) // Debian's is a link; WalkDir would not enter it
	if err != nil {
		tb.Skipf("%s not installed (Debian package python3-doc)", dir)
	}
	var pages []treePage
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".html" {
			return err
		}
		body, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		pages = append(pages, treePage{mustURL(tb, "https://docs.example.org/"+filepath.ToSlash(rel)), body})
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return pages
}
