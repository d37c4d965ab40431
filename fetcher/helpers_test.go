package fetcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// newFetcher builds a Fetcher that trusts srv (nil: system roots only) and closes it at
// the end of the test.
func newFetcher(t testing.TB, srv *testserver.Server, mod ...func(*Options)) *Fetcher {
	t.Helper()
	opts := Options{IdleTimeout: 5 * time.Second, ConnectTimeout: 5 * time.Second, Protocol: ProtocolHTTP1}
	if srv != nil {
		opts.CACertFile = srv.CAFile(t)
	}
	for _, m := range mod {
		m(&opts)
	}
	f, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(f.Close)
	return f
}

// stallTimeout is the idle timeout of tests that wait for a stall to be noticed. It also bounds
// how long the response headers may take, so it leaves a loaded -race run room to send them.
const stallTimeout = time.Second

// forEachProtocol runs fn over HTTP/1.1 alone ("h1") and with HTTP/2 offered ("h2", the default
// ProtocolAuto, against a server that offers it); fn passes proto to newFetcher.
func forEachProtocol(t *testing.T, fn func(t *testing.T, proto func(*Options))) {
	for _, p := range []struct {
		name  string
		http2 bool
	}{{"h1", false}, {"h2", true}} {
		t.Run(p.name, func(t *testing.T) { fn(t, func(o *Options) { o.Protocol = protoOf(p.http2) }) })
	}
}

// protoOf is the default ProtocolAuto when HTTP/2 is wanted, else HTTP/1.1 alone.
func protoOf(http2 bool) Protocol {
	if http2 {
		return ProtocolAuto
	}
	return ProtocolHTTP1
}

// newRoot opens a fresh output directory.
func newRoot(t testing.TB) (*os.Root, string) {
	t.Helper()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root, dir
}

func fetch(t testing.TB, f *Fetcher, root *os.Root, url, path string) (Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return f.Fetch(ctx, root, Request{URL: url, Path: path})
}

// wantError asserts err is an *Error of class with the given Retryable.
func wantError(t testing.TB, err error, class Class, retryable bool) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Class != class || e.Retryable != retryable {
		t.Fatalf("error %q: class %q retryable %v, want %q %v", e, e.Class, e.Retryable, class, retryable)
	}
	return e
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func readFile(t testing.TB, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func exists(dir, name string) bool {
	_, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(name)))
	return err == nil
}

func fileSize(t testing.TB, dir, name string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
