package extract

import (
	"testing"
	"time"
)

func TestRobots(t *testing.T) {
	body := []byte("User-agent: *\nDisallow: /private/\nCrawl-delay: 2\n\nUser-agent: otherbot\nDisallow: /\n")
	tests := []struct {
		name   string
		status int
		body   []byte
		url    string
		want   bool
	}{
		{"allowed path", 200, body, "https://a.test/site/p1.html", true},
		{"disallowed dir", 200, body, "https://a.test/private/secret.html", false},
		{"disallowed dir root", 200, body, "https://a.test/private/", false},
		{"404 allows all", 404, nil, "https://a.test/private/x", true},
		{"503 allows nothing", 503, nil, "https://a.test/x", false},
		{"garbage allows", 200, []byte("\x00\xff{{{"), "https://a.test/x", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ParseRobots(tt.status, tt.body, "trawl")
			if got := r.Allowed(tt.url); got != tt.want {
				t.Fatalf("Allowed(%s) = %v, want %v", tt.url, got, tt.want)
			}
		})
	}
	if d := ParseRobots(200, body, "trawl").CrawlDelay(); d != 2*time.Second {
		t.Errorf("CrawlDelay = %v, want 2s", d)
	}
	if ParseRobots(200, body, "otherbot").Allowed("https://a.test/x") {
		t.Error("otherbot group not applied")
	}
	if d := ParseRobots(200, []byte("User-agent: *\nCrawl-delay: 99999999999\n"), "trawl").CrawlDelay(); d < time.Hour {
		t.Errorf("huge Crawl-delay = %v, want a huge delay (capped by the caller), not none", d)
	}
	if got := RobotsAgent("trawl/0.1.0"); got != "trawl" {
		t.Errorf("RobotsAgent = %q", got)
	}
}

func FuzzParseRobots(f *testing.F) {
	f.Add(200, []byte("User-agent: *\nDisallow: /a\nAllow: /a/b\nCrawl-delay: 1.5\n"), "/a/b/c")
	f.Add(200, []byte("User-agent: trawl\nDisallow: /\n"), "/")
	f.Add(500, []byte(""), "/x")
	f.Fuzz(func(t *testing.T, status int, body []byte, path string) {
		if status < 100 || status > 599 {
			return
		}
		r := ParseRobots(status, body, "trawl")
		r.Allowed("https://a.test/" + path)
		if r.CrawlDelay() < 0 {
			t.Fatalf("negative crawl delay")
		}
	})
}
