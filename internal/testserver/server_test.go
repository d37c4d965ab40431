package testserver

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

func get(t *testing.T, s *Server, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL(path), nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestServer(t *testing.T) {
	s := New(t, Size(1000))
	s.Handle("/seq", Statuses(503, 429), RetryAfter("3"))

	if !bytes.Equal(Content(7, 100), Content(7, 100)) || bytes.Equal(Content(7, 100), Content(8, 100)) {
		t.Fatal("Content is not deterministic per seed")
	}
	resp, b := get(t, s, "/a")
	if resp.StatusCode != 200 || !bytes.Equal(b, s.Body("/a")) || len(b) != 1000 || resp.Header.Get("ETag") == "" {
		t.Fatalf("plain GET: %d, %d bytes", resp.StatusCode, len(b))
	}
	resp, b = get(t, s, "/a", "Range", "bytes=900-", "If-Range", resp.Header.Get("ETag"))
	if resp.StatusCode != 206 || resp.Header.Get("Content-Range") != "bytes 900-999/1000" || !bytes.Equal(b, s.Body("/a")[900:]) {
		t.Fatalf("range GET: %d %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}
	if resp, _ = get(t, s, "/a", "Range", "bytes=900-", "If-Range", `"other"`); resp.StatusCode != 200 {
		t.Fatalf("If-Range mismatch: %d", resp.StatusCode)
	}
	for _, want := range []int{503, 429, 200} {
		if resp, _ = get(t, s, "/seq"); resp.StatusCode != want {
			t.Fatalf("status sequence: %d, want %d", resp.StatusCode, want)
		}
	}
	if log := s.RequestsFor("/a"); len(log) != 3 || log[1].Header.Get("Range") != "bytes=900-" || log[0].Proto != "HTTP/2.0" {
		t.Fatalf("request log %+v", log)
	}
	if len(s.WaitRequests(6, 0)) != 6 {
		t.Fatal("WaitRequests")
	}
	if len(s.CACertPEM()) == 0 {
		t.Fatal("no CA PEM")
	}
}

func TestRanges(t *testing.T) {
	s := New(t, Size(1000))
	s.Handle("/r", AcceptRanges(), PerRequest(func(n int, r *http.Request) []Option {
		if r.Header.Get("X-Lie") != "" {
			return []Option{IgnoreRange()}
		}
		return nil
	}))
	body := s.Body("/r")
	for _, tc := range []struct {
		name, rng, lie string
		status         int
		cr             string
		want           []byte
	}{
		{"closed", "bytes=100-199", "", 206, "bytes 100-199/1000", body[100:200]},
		{"open", "bytes=900-", "", 206, "bytes 900-999/1000", body[900:]},
		{"past the end is cut", "bytes=900-2000", "", 206, "bytes 900-999/1000", body[900:]},
		{"unsatisfiable", "bytes=1000-1001", "", 416, "bytes */1000", nil},
		{"last before first is no range", "bytes=200-100", "", 200, "", body},
		{"PerRequest", "bytes=100-199", "yes", 200, "", body},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := get(t, s, "/r", "Range", tc.rng, "X-Lie", tc.lie)
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Range") != tc.cr || !bytes.Equal(b, tc.want) {
				t.Fatalf("%d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(b))
			}
			if resp.Header.Get("Accept-Ranges") != "bytes" && resp.StatusCode != 416 {
				t.Fatal("no Accept-Ranges")
			}
		})
	}
	if resp, _ := get(t, s, "/other"); resp.Header.Get("Accept-Ranges") != "" {
		t.Fatal("Accept-Ranges sent without AcceptRanges")
	}
	if r := s.RequestsFor("/r"); r[0].Remote == "" {
		t.Fatal("no Remote in the log")
	}
}
