package fetcher

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestFetchKeepBody: Response.Body is the file's content when asked for and the whole body came
// in one transfer shorter than the copy buffer; nil otherwise, and the file is written either way.
func TestFetchKeepBody(t *testing.T) {
	srv := testserver.New(t, testserver.HTTP1Only())
	f := newFetcher(t, srv)
	root, dir := newRoot(t)
	tests := []struct {
		name     string
		size     int64
		keep     bool
		resumed  bool // a first attempt cut short leaves a .part to resume
		wantBody bool
	}{
		{"empty", 0, true, false, true},
		{"small page", 20_000, true, false, true},
		{"one byte under the buffer", bufSize - 1, true, false, true},
		{"exactly the buffer", bufSize, true, false, false},
		{"bigger than the buffer", 3*bufSize + 5, true, false, false},
		{"not asked", 20_000, false, false, false},
		{"resumed", 20_000, true, true, false},
	}
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
		})
	}
}
