package fetcher

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	date := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"3600", time.Hour, true},
		{"3601", time.Hour, true},
		{"99999999999999999999999999", time.Hour, true},
		{date(90 * time.Second), 90 * time.Second, true},
		{date(-time.Minute), 0, true},
		{date(48 * time.Hour), time.Hour, true},
		{now.Add(30 * time.Second).Format(time.RFC850), 30 * time.Second, true},
		{"", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"+5", 0, false},
		{"soon", 0, false},
		{"Mon, 99 Foo 2025", 0, false},
	} {
		got, ok := ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in                string
		start, end, total int64
		ok                bool
	}{
		{"bytes 0-99/100", 0, 99, 100, true},
		{"bytes 100-199/*", 100, 199, -1, true},
		{"Bytes 5-5/6", 5, 5, 6, true},
		{" bytes 1-2/3 ", 1, 2, 3, true},
		{"bytes 0-9223372036854775806/9223372036854775807", 0, 9223372036854775806, 9223372036854775807, true},
		{"bytes */100", 0, 0, 0, false},
		{"bytes 10-5/100", 0, 0, 0, false},
		{"bytes 0-100/100", 0, 0, 0, false},
		{"bytes -1-5/10", 0, 0, 0, false},
		{"bytes +1-5/10", 0, 0, 0, false},
		{"bytes 1-5", 0, 0, 0, false},
		{"items 1-5/10", 0, 0, 0, false},
		{"bytes 1-99999999999999999999/*", 0, 0, 0, false},
		{"bytes=1-5/10", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	} {
		s, e, n, err := ParseContentRange(tc.in)
		if (err == nil) != tc.ok || tc.ok && (s != tc.start || e != tc.end || n != tc.total) {
			t.Errorf("ParseContentRange(%q) = %d, %d, %d, %v", tc.in, s, e, n, err)
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-99/100", "bytes 1-2/*", "bytes */5", "bytes 9-1/10", "bytes 0-0/1", "bytes 00-01/02", "bytes 1-2/3 4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		s, e, n, err := ParseContentRange(v)
		if err != nil {
			return
		}
		if s < 0 || e < s || (n != -1 && (n <= e)) {
			t.Fatalf("ParseContentRange(%q) = %d, %d, %d", v, s, e, n)
		}
	})
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "Wed, 21 Oct 2015 07:28:00 GMT", "99999999999999999999", "-1", "garbage", "Sunday, 06-Nov-94 08:49:37 GMT"} {
		f.Add(s, int64(1700000000))
	}
	f.Fuzz(func(t *testing.T, v string, unix int64) {
		d, ok := ParseRetryAfter(v, time.Unix(unix%(1<<40), 0))
		if d < 0 || d > maxRetryAfter || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v", v, d, ok)
		}
	})
}
