package scheduler

import (
	"strconv"
	"strings"
	"time"

	"github.com/trawl-dev/trawl/extract"
	"github.com/trawl-dev/trawl/queue"
)

// robots.txt handling of a crawl: one fetch per host (off the workers), cached in the store for a
// day, obeyed for the crawl's agent, its Crawl-delay applied as the host's rate.

const (
	// robotsTTL is how long a cached robots.txt is trusted (RFC 9309 suggests at most a day).
	robotsTTL = 24 * time.Hour
	// robotsTries is how often an unreachable robots.txt (network error, 5xx) is tried before
	// the host's URLs fail for this run; the next run tries again.
	robotsTries = 3
)

type robotsResult struct {
	host   string
	status int
	body   []byte
	err    error
}

func robotsKey(host string) string { return "robots:" + host }

// loadRobots settles h's robots.txt from the cache if it can; otherwise it starts fetching it
// (off the dispatcher, not on a worker) and returns false.
func (d *dispatcher) loadRobots(h *hostState, now time.Time) bool {
	c := d.s.opts.Crawl
	if c == nil || c.Robots == nil {
		h.robotsOK = true
		return true
	}
	if h.fetching {
		return false
	}
	if c.Cache != nil {
		if v, err := c.Cache.Meta(robotsKey(h.name)); err == nil && v != "" {
			if at, status, body, ok := decodeRobots(v); ok && now.Sub(at) < robotsTTL {
				d.applyRobots(h, extract.ParseRobots(status, body, c.Agent))
				return true
			}
		}
	}
	scheme := "https"
	if len(h.buf) > 0 && strings.HasPrefix(h.buf[0].URL, "http:") {
		scheme = "http"
	}
	robotsURL := scheme + "://" + h.name + "/robots.txt"
	h.fetching = true
	go func() {
		status, body, err := c.Robots.Get(d.ctx, robotsURL, maxRobotsBytes)
		select {
		case d.robotsDone <- robotsResult{h.name, status, body, err}:
		case <-d.stop:
		}
	}()
	return false
}

// setRobots takes a fetched robots.txt. A definite answer (2xx: rules; 4xx: no rules) is cached
// and applied. An unreachable one (network error, 5xx) means the site cannot say now: the host
// waits and asks again, and after robotsTries its URLs fail for this run (transiently: the next
// run retries). It is never cached, and never taken as permission.
func (d *dispatcher) setRobots(rr robotsResult, now time.Time) {
	h := d.host(rr.host)
	h.fetching = false
	c := d.s.opts.Crawl
	if rr.err == nil && rr.status < 500 {
		h.fails = 0
		if c.Cache != nil {
			if err := c.Cache.SetMeta(robotsKey(rr.host), encodeRobots(now, rr.status, rr.body)); err != nil && d.fatal == nil {
				d.fatal = &FatalError{err}
			}
		}
		d.applyRobots(h, extract.ParseRobots(rr.status, rr.body, c.Agent))
		if h.where == awaiting {
			d.pushReady(h)
		}
		return
	}
	h.fails++
	reason := "robots.txt unavailable"
	if rr.err != nil {
		reason += ": " + rr.err.Error()
	} else {
		reason += ": HTTP " + strconv.Itoa(rr.status)
	}
	if h.fails >= robotsTries {
		h.gaveUp = reason
		if h.where == awaiting {
			d.pushReady(h)
		}
		return
	}
	if h.where == awaiting {
		d.sleepUntil(h, now.Add(d.s.opts.backoff(h.fails)))
	}
}

func (d *dispatcher) applyRobots(h *hostState, rules *extract.Robots) {
	h.robots, h.robotsOK = rules, true
	if rate, ok := d.s.opts.Crawl.robotsRate(rules); ok {
		d.s.lim.SetHostRate(h.name, rate)
	}
}

// robotsRate is the request rate a host's Crawl-delay asks for, capped by MaxCrawlDelay; ok is
// false when it asks for none.
func (c *Crawl) robotsRate(rules *extract.Robots) (rate float64, ok bool) {
	delay := rules.CrawlDelay()
	if delay <= 0 {
		return 0, false
	}
	rate = float64(time.Second) / float64(min(delay, c.MaxCrawlDelay))
	if c.Rate > 0 {
		rate = min(rate, c.Rate) // never faster than the user asked
	}
	return rate, true
}

// skipDisallowed records the buffered jobs robots.txt forbids as skipped, without fetching them.
func (d *dispatcher) skipDisallowed(h *hostState, now time.Time) {
	if h.robots == nil {
		return
	}
	kept := h.buf[:0]
	for _, rec := range h.buf {
		if h.robots.Allowed(rec.URL) {
			kept = append(kept, rec)
			continue
		}
		rec.State, rec.LastError, rec.Updated = queue.Skipped, "robots.txt", now
		d.cm.add(KindSkipped, queue.Update{Record: rec})
		d.sent++
	}
	clear(h.buf[len(kept):])
	d.setBuf(h, kept)
}

// failBuffered records h's buffered jobs as failed (transiently) for reason.
func (d *dispatcher) failBuffered(h *hostState, reason string, now time.Time) {
	for _, rec := range h.buf {
		rec.State, rec.LastError, rec.ErrorClass, rec.Transient, rec.Updated = queue.Failed, reason, "robots", true, now
		d.cm.add(KindFailed, queue.Update{Record: rec})
		d.sent++
	}
	clear(h.buf)
	d.setBuf(h, h.buf[:0])
}

func encodeRobots(at time.Time, status int, body []byte) string {
	return strconv.FormatInt(at.Unix(), 10) + " " + strconv.Itoa(status) + "\n" + string(body)
}

func decodeRobots(v string) (at time.Time, status int, body []byte, ok bool) {
	head, rest, found := strings.Cut(v, "\n")
	ts, code, found2 := strings.Cut(head, " ")
	sec, err1 := strconv.ParseInt(ts, 10, 64)
	status, err2 := strconv.Atoi(code)
	if !found || !found2 || err1 != nil || err2 != nil {
		return time.Time{}, 0, nil, false
	}
	return time.Unix(sec, 0), status, []byte(rest), true
}
