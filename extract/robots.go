package extract

import (
	"net/url"
	"strings"
	"time"

	"github.com/temoto/robotstxt"
)

// Robots is a host's robots.txt as it applies to one user agent.
type Robots struct {
	data  *robotstxt.RobotsData
	agent string
	group *robotstxt.Group
}

// RobotsAgent is the product token trawl looks for in robots.txt: the User-Agent up to its first
// "/" ("trawl/0.1.0" → "trawl").
func RobotsAgent(userAgent string) string {
	agent, _, _ := strings.Cut(strings.TrimSpace(userAgent), "/")
	if agent == "" {
		return "trawl"
	}
	return agent
}

// ParseRobots interprets a robots.txt fetch the way crawlers agree to: 2xx is parsed, 4xx means
// no rules (allow everything), 5xx means the site is unsure (allow nothing for now). A body that
// fails to parse allows everything rather than stopping the crawl on a typo.
func ParseRobots(status int, body []byte, agent string) *Robots {
	data, err := robotstxt.FromStatusAndBytes(status, body)
	if err != nil {
		data, _ = robotstxt.FromStatusAndBytes(404, nil)
	}
	return &Robots{data: data, agent: agent, group: data.FindGroup(agent)}
}

// Allowed says whether the rules allow fetching rawURL (its path and query are what is tested).
func (r *Robots) Allowed(rawURL string) bool {
	if r == nil || r.data == nil {
		return true
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	// TestAgent, not the group's Test: it also knows the allow-all and disallow-all verdicts of
	// 4xx and 5xx answers.
	return r.data.TestAgent(p, r.agent)
}

// CrawlDelay is the delay the rules ask for between requests, zero if none. A delay too large
// to represent (the parser overflows to a negative value) is reported as a day: the caller's cap
// applies, where a negative value would mean no delay at all.
func (r *Robots) CrawlDelay() time.Duration {
	if r == nil || r.group == nil {
		return 0
	}
	if d := r.group.CrawlDelay; d >= 0 {
		return d
	}
	return 24 * time.Hour
}

// Sitemaps are the URLs of the rules' Sitemap: lines, in order. They are not the agent's: a
// Sitemap: line holds for every agent, wherever it stands in the file.
func (r *Robots) Sitemaps() []string {
	if r == nil || r.data == nil {
		return nil
	}
	return r.data.Sitemaps
}
