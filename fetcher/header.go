package fetcher

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfter caps a server's Retry-After, here only: a typo or a hostile server must not park a
// host for days. The scheduler may still choose to give up sooner (--max-wait).
const maxRetryAfter = time.Hour

// ParseRetryAfter parses a Retry-After value: delay-seconds or an HTTP-date (RFC 9110
// §10.2.3). A date in the past means "now" (0, true). The result is capped at one hour;
// anything unparsable, negative or empty gives (0, false).
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > int64(maxRetryAfter/time.Second) {
			// Only digits, so an error here is overflow: a huge delay, capped.
			return maxRetryAfter, true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	switch {
	case d < 0:
		return 0, true
	case d > maxRetryAfter:
		return maxRetryAfter, true
	}
	// Round up so a sub-second remainder never turns into an early retry.
	return d.Truncate(time.Second) + ceilSecond(d), true
}

func ceilSecond(d time.Duration) time.Duration {
	if d%time.Second != 0 {
		return time.Second
	}
	return 0
}

// errContentRange is the cause for every malformed Content-Range.
var errContentRange = errors.New("malformed Content-Range")

// ParseContentRange parses a 206 answer's Content-Range: "bytes a-b/N", or "bytes a-b/*"
// when the complete length is unknown (total = -1). It requires a ≤ b and, with a known
// total, b < total. The unsatisfied form "bytes */N" is an error: it belongs to a 416.
func ParseContentRange(v string) (start, end, total int64, err error) {
	v = strings.TrimSpace(v)
	unit, spec, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(unit, "bytes") {
		return 0, 0, 0, errContentRange
	}
	spec = strings.TrimLeft(spec, " ")
	rng, size, ok := strings.Cut(spec, "/")
	if !ok {
		return 0, 0, 0, errContentRange
	}
	first, last, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, 0, errContentRange
	}
	if start, ok = parseUint(first); !ok {
		return 0, 0, 0, errContentRange
	}
	if end, ok = parseUint(last); !ok || end < start {
		return 0, 0, 0, errContentRange
	}
	if size == "*" {
		return start, end, -1, nil
	}
	if total, ok = parseUint(size); !ok || end >= total {
		return 0, 0, 0, errContentRange
	}
	return start, end, total, nil
}

// parseUint accepts only plain decimal digits (no sign, no spaces) that fit an int64.
func parseUint(s string) (int64, bool) {
	if !isDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
