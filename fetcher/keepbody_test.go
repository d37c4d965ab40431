package fetcher

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestFetchKeepBody: Response.Body is the file's content when KeepBody wants it and the whole body
// came in one transfer shorter than the copy buffer; nil otherwise, and the file is written either
// way. A kept body is the caller's: later fetches do not overwrite it.
func TestFetchKeepBody(t *testing.T) {
	srv := testserver.New(t, testserver.HTTP1Only())
	f := newFetcher(t, srv)
	root, dir := newRoot(t)
	always := func(string) bool { return true }
	var asked []string // the Content-Types KeepBody was asked about
	typed := func(ct string) bool { asked = append(asked, ct); return ct == "text/html" }
	tests := []struct {
		name     string
		size     int64
		keep     func(string) bool
		resumed  bool // a first attempt cut short leaves a .part to resume
		wantBody bool
	}{
		{"empty", 0, always, false, true},
		{"small page", 20_000, always, false, true},
		{"one byte under the buffer", bufSize - 1, always, false, true},
		{"exactly the buffer", bufSize, always, false, false},
		{"bigger than the buffer", 3*bufSize + 5, always, false, false},
		{"not asked", 20_000, nil, false, false},
		{"declined for its type", 20_000, typed, false, false},
		{"resumed", 20_000, always, true, false},
	}
	var held []byte // the first kept body, checked after all the other fetches
	var heldWant []byte
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := "/" + tt.name
			path := "keep/" + tt.name
			srv.Handle(p, testserver.Size(tt.size))
			if tt.resumed {
				partial(t, srv, f, root, dir, p, path, tt.size/2)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			resp, err := f.Fetch(ctx, root, Request{URL: srv.URL(p), Path: path, KeepBody: tt.keep})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Resumed != tt.resumed {
				t.Fatalf("Resumed = %v, want %v", resp.Resumed, tt.resumed)
			}
			if !bytes.Equal(readFile(t, dir, path), srv.Body(p)) {
				t.Fatal("file differs from the server's body")
			}
			switch {
			case tt.wantBody && (resp.Body == nil || !bytes.Equal(resp.Body, srv.Body(p))):
				t.Fatalf("Body has %d bytes (nil: %v), want the file's %d", len(resp.Body), resp.Body == nil, tt.size)
			case !tt.wantBody && resp.Body != nil:
				t.Fatalf("Body has %d bytes, want nil", len(resp.Body))
			}
			if held == nil && len(resp.Body) > 0 {
				held, heldWant = resp.Body, bytes.Clone(srv.Body(p))
			}
		})
	}
	if !bytes.Equal(held, heldWant) {
		t.Error("a kept body changed during later fetches (it shares the copy buffer)")
	}
	if len(asked) != 1 || asked[0] != "application/octet-stream" {
		t.Errorf("KeepBody asked about %q, want the response's Content-Type once", asked)
	}
}
