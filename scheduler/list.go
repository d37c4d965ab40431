package scheduler

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trawl-dev/trawl/extract"
	"github.com/trawl-dev/trawl/fetcher"
	"github.com/trawl-dev/trawl/queue"
)

// maxLineBytes bounds one line of a URL list; longer lines are reported and skipped rather than
// read whole, so a hostile list can't make us hold an unbounded line in memory.
const maxLineBytes = 64 << 10

// ListEntry is one usable line of a URL list.
type ListEntry struct {
	URL  string // normalized absolute http(s) URL
	Host string // host[:port], lower case: the politeness key
	Path string // user-chosen output path ("" = derive from the URL)
	Line int    // line number in the list, when read by ReadList
	// WantSHA256 is the file's sha256 (lowercase hex) from the line's third field, "" if none.
	WantSHA256 string
	// User is the URL's userinfo, taken out of URL: credentials are kept in memory for the run
	// (see Credentials), never written to the state file, a path, a log or a report.
	User *url.Userinfo
}

// ParseListLine parses one line of a URL list: a URL, optionally followed by a tab and the file's
// path relative to the output directory, optionally followed by another tab and the file's sha256
// as "sha256:HEX" (the path may be empty: "URL<TAB><TAB>sha256:HEX"). Blank lines and lines
// starting with '#' give ok=false and no error. Surrounding white space and a trailing CR are
// ignored.
func ParseListLine(line string) (e ListEntry, ok bool, err error) {
	line = strings.TrimRight(line, "\r\n")
	if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
		return ListEntry{}, false, nil
	}
	raw, rest, _ := strings.Cut(line, "\t")
	path, sum, hasSum := strings.Cut(rest, "\t")
	if strings.Contains(sum, "\t") {
		return ListEntry{}, false, errors.New("more than three tab-separated fields (want URL, path, sha256:HEX)")
	}
	raw = strings.TrimSpace(raw)
	e, err = NormalizeURL(raw)
	if err != nil {
		return ListEntry{}, false, err
	}
	if p := strings.TrimSpace(path); p != "" {
		if len(p) >= len("sha256:") && strings.EqualFold(p[:len("sha256:")], "sha256:") {
			// A sum typed one field early would name the file "sha256:..." and check nothing.
			return ListEntry{}, false, fmt.Errorf("output path %.80q is a checksum: the sum is the third field, after the path (URL<TAB><TAB>sha256:HEX when the path is empty)", p)
		}
		clean, err := fetcher.CleanPath(p)
		if err != nil {
			return ListEntry{}, false, fmt.Errorf("bad output path %q: %w", p, err)
		}
		e.Path = clean
	}
	if sum = strings.TrimSpace(sum); hasSum && sum != "" {
		if e.WantSHA256, err = ParseChecksum(sum); err != nil {
			return ListEntry{}, false, err
		}
	}
	return e, true, nil
}

// NormalizeURL checks that raw is an absolute http or https URL and returns its canonical form
// (extract.Normalize: the one spelling every list line, seed and link of a resource shares) and
// host, with the userinfo taken out of the URL into User.
func NormalizeURL(raw string) (ListEntry, error) {
	if !utf8.ValidString(raw) {
		return ListEntry{}, fmt.Errorf("URL is not valid UTF-8")
	}
	n, err := extract.Normalize(raw)
	if err != nil {
		return ListEntry{}, urlError(raw, err)
	}
	return entryOf(n), nil
}

// Respell gives a URL of a state file its canonical spelling and host, for store.Options.Respell:
// an older trawl keyed records by another normalizer's spelling (it kept /%7Euser/, /a/../b and a
// trailing "?"), which the store rekeys once so that a resource it knows is not fetched again.
func Respell(raw string) (canonical, host string, err error) {
	e, err := NormalizeURL(raw)
	return e.URL, e.Host, err
}

// entryOf splits a canonical URL, "scheme://[userinfo@]host[:port]/path[?query]", into an entry:
// the path always starts the first '/' after the scheme, and net/url escapes any '@' or '/' in
// the userinfo.
func entryOf(canonical string) ListEntry {
	i := strings.Index(canonical, "://") + len("://")
	j := i + strings.IndexByte(canonical[i:], '/')
	authority := canonical[i:j]
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return ListEntry{URL: canonical, Host: authority}
	}
	e := ListEntry{URL: canonical[:i] + canonical[i+at+1:], Host: authority[at+1:]}
	if u, err := url.Parse(canonical); err == nil {
		e.User = u.User
	}
	return e
}

// urlError says in a list's terms why extract.Normalize refused raw.
func urlError(raw string, err error) error {
	switch {
	case errors.Is(err, extract.ErrTooLong):
		return fmt.Errorf("URL longer than %d bytes", extract.MaxURLLength)
	case errors.Is(err, extract.ErrNotHTTP):
		if u, perr := url.Parse(raw); perr == nil && u.Scheme != "" {
			return fmt.Errorf("unsupported scheme %q (only http and https)", u.Scheme)
		}
		return fmt.Errorf("%w: no scheme (want http:// or https://)", errNotURL)
	case errors.Is(err, extract.ErrNoHost):
		return fmt.Errorf("%w: no host", errNotURL)
	case errors.Is(err, extract.ErrBadHost):
		return fmt.Errorf("%w: invalid host or port", errNotURL)
	}
	// url.Error repeats the URL; the caller reports the line already.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%w: %v", errNotURL, err)
}

// BadLine is a list line that was skipped.
type BadLine struct {
	Line int
	Err  error
}

func (b BadLine) Error() string { return fmt.Sprintf("line %d: %v", b.Line, b.Err) }

// ReadList streams a URL list from r, calling emit for each usable line and bad for each line that
// is skipped. The list is never held in memory whole. A UTF-8 BOM at the start and CRLF line ends
// are tolerated. It returns the number of usable lines, or the first error from r or emit.
func ReadList(r io.Reader, emit func(ListEntry) error, bad func(BadLine)) (int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	n, lineNo := 0, 0
	for {
		lineNo++
		line, tooLong, err := readLine(br)
		if err != nil && err != io.EOF {
			return n, err
		}
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\ufeff"))
		}
		switch {
		case tooLong:
			bad(BadLine{Line: lineNo, Err: fmt.Errorf("line longer than %d bytes", maxLineBytes)})
		default:
			e, ok, perr := ParseListLine(string(line))
			if perr != nil {
				bad(BadLine{Line: lineNo, Err: perr})
			} else if ok {
				e.Line = lineNo
				if eerr := emit(e); eerr != nil {
					return n, eerr
				}
				n++
			}
		}
		if err == io.EOF {
			return n, nil
		}
	}
}

// readLine returns the next line without its newline. A line longer than maxLineBytes is consumed
// and reported with tooLong, its bytes dropped.
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > maxLineBytes {
			tooLong = true
			buf = buf[:0]
		} else if !tooLong {
			buf = append(buf, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(buf) == 0 && !tooLong {
			return nil, false, io.EOF
		}
		return bytes.TrimRight(buf, "\n"), tooLong, err
	}
}

// NewURL converts a list entry into a queue record proposal, mapping the URL to its output path
// when the list did not give one. Its expected sha256 is the list's word (SetWant): a URL known
// from an earlier run takes it, or loses the one it had if the line has none.
func (e ListEntry) NewURL(layout fetcher.Layout, depth int) (queue.NewURL, error) {
	p := e.Path
	if p == "" {
		var err error
		if p, err = fetcher.MapPath(e.URL, layout); err != nil {
			return queue.NewURL{}, err
		}
	}
	return queue.NewURL{URL: e.URL, Host: e.Host, Path: p, Named: e.Path != "", Depth: depth, Auth: e.User != nil,
		WantSHA256: e.WantSHA256, SetWant: true}, nil
}

// feedBatch is how many URLs go into one Enqueue transaction: the first batch is small, so the
// first downloads start at once, and each one after is twice as large up to feedBatch. Larger
// batches cost bbolt less per URL (store.BenchmarkEnqueueScale) but hold more memory and hold off
// the leases and commits of downloads meanwhile; past 25,000 they add memory, not speed.
const (
	feedFirstBatch = 1000
	feedBatch      = 25000
)

// feedLinger is how long a partial batch waits for more lines: a list trickling in from a pipe
// (find | trawl get -i -) is worked on as it comes, not when the pipe closes.
const feedLinger = 100 * time.Millisecond

// ListFeed streams a URL list into the queue in batches, mapping each URL to its output path with
// layout. A line without a sha256 of its own takes the one sums has for it, if any (sums may be
// nil). Each skipped line is reported to bad (from another goroutine).
func ListFeed(r io.Reader, layout fetcher.Layout, creds *Credentials, sums *Checksums, bad func(BadLine)) Feed {
	return func(ctx context.Context, enqueue func([]queue.NewURL) error) error {
		// The reader runs in its own goroutine, so that a partial batch can be enqueued while a
		// read blocks. It stops when the feed returns (stop), or when r ends.
		entries := make(chan queue.NewURL, feedBatch)
		readErr := make(chan error, 1)
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			defer close(entries)
			_, err := ReadList(r, func(e ListEntry) error {
				nu, err := e.NewURL(layout, 0)
				if err != nil {
					bad(BadLine{Line: e.Line, Err: err})
					return nil
				}
				sums.Apply(&nu)
				creds.Add(e)
				select {
				case entries <- nu:
					return nil
				case <-stop:
					return context.Canceled
				}
			}, bad)
			readErr <- err
		}()

		batch := make([]queue.NewURL, 0, feedFirstBatch)
		limit := feedFirstBatch
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			err := enqueue(batch)
			batch = batch[:0]
			limit = min(2*limit, feedBatch)
			return err
		}
		linger := time.NewTimer(feedLinger)
		defer linger.Stop()
		for {
			select {
			case nu, ok := <-entries:
				if !ok {
					if err := flush(); err != nil {
						return err
					}
					return <-readErr
				}
				if len(batch) == 0 {
					linger.Reset(feedLinger)
				}
				batch = append(batch, nu)
				if len(batch) >= limit {
					if err := flush(); err != nil {
						return err
					}
				}
			case <-linger.C:
				if err := flush(); err != nil {
					return err
				}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}
