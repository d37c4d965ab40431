package fetcher

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestOpen: a Stream's body arrives as sent (a gzip Content-Encoding is not undone), its status
// whatever it is, after redirects; a stall ends a Read with a stall error, not a hang.
func TestOpen(t *testing.T) {
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write([]byte("<urlset/>"))
	zw.Close()
	srv := testserver.New(t)
	srv.Handle("/plain.xml", testserver.Body([]byte("<urlset/>")))
	srv.Handle("/zipped.xml", testserver.Body(zipped.Bytes()), testserver.Header("Content-Encoding", "gzip"))
	srv.Handle("/moved.xml", testserver.Redirect("/plain.xml"))
	srv.Handle("/missing.xml", testserver.Statuses(404))
	srv.Handle("/stalls.xml", testserver.Size(1<<20), testserver.StallAfter(10))
	f := newFetcher(t, srv, func(o *Options) { o.IdleTimeout = stallTimeout })

	tests := []struct {
		path   string
		status int
		body   []byte
		final  string
		class  Class // a Read's error class, "" for none
	}{
		{"/plain.xml", 200, []byte("<urlset/>"), "/plain.xml", ""},
		{"/zipped.xml", 200, zipped.Bytes(), "/zipped.xml", ""},
		{"/moved.xml", 200, []byte("<urlset/>"), "/plain.xml", ""},
		{"/missing.xml", 404, nil, "/missing.xml", ""},
		{"/stalls.xml", 200, nil, "/stalls.xml", ClassStall},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			st, err := f.Open(ctx, srv.URL(tt.path))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer st.Body.Close()
			if st.Status != tt.status || st.FinalURL != srv.URL(tt.final) {
				t.Fatalf("status %d at %s, want %d at %s", st.Status, st.FinalURL, tt.status, srv.URL(tt.final))
			}
			body, err := io.ReadAll(st.Body)
			if tt.class != "" {
				wantError(t, err, tt.class, true)
				return
			}
			if err != nil {
				t.Fatalf("reading: %v", err)
			}
			if tt.body != nil && !bytes.Equal(body, tt.body) {
				t.Errorf("body %q, want %q", body, tt.body)
			}
		})
	}
	if got := srv.RequestsFor("/zipped.xml")[0].Header.Get("Accept-Encoding"); got != "gzip" {
		t.Errorf("Accept-Encoding %q, want gzip", got)
	}
	if _, err := f.Open(context.Background(), "ftp://h.test/x"); err == nil {
		t.Error("ftp URL opened")
	}
}
