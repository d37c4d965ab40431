package ratelimit

import (
	"math"
	"strings"
	"testing"
)

var parseBytesTests = []struct {
	in      string
	want    int64
	wantErr bool
}{
	{in: "0", want: 0},
	{in: "1024", want: 1024},
	{in: "500k", want: 500 << 10},
	{in: "500K", want: 500 << 10},
	{in: "10M", want: 10 << 20},
	{in: "10m", want: 10 << 20},
	{in: "2G", want: 2 << 30},
	{in: "1.5MiB", want: 3 << 19},
	{in: "1.5mib", want: 3 << 19},
	{in: "1.5MIB", want: 3 << 19},
	{in: "10MB", want: 10 << 20},
	{in: "10mb", want: 10 << 20},
	{in: "64KiB", want: 64 << 10},
	{in: "1GB", want: 1 << 30},
	{in: "100B", want: 100},
	{in: "100b", want: 100},
	{in: " 10 M ", want: 10 << 20},
	{in: "0.5k", want: 512},
	{in: "1.1k", want: 1126}, // 1126.4, rounded down
	{in: "0.1", want: 0},
	{in: "007", want: 7},
	{in: "8G", want: 8 << 30},
	{in: "9223372036854775807", want: math.MaxInt64},
	{in: "8589934591G", want: 8589934591 << 30},

	{in: "", wantErr: true},
	{in: "   ", wantErr: true},
	{in: "-1", wantErr: true},
	{in: "-0", wantErr: true},
	{in: "-10M", wantErr: true},
	{in: "+5", wantErr: true},
	{in: "M", wantErr: true},
	{in: "MiB", wantErr: true},
	{in: "abc", wantErr: true},
	{in: "10X", wantErr: true},
	{in: "10T", wantErr: true},
	{in: "10iB", wantErr: true},
	{in: "10MiBs", wantErr: true},
	{in: "10 M B", wantErr: true},
	{in: "1.", wantErr: true},
	{in: ".5", wantErr: true},
	{in: "1.2.3", wantErr: true},
	{in: "1e3", wantErr: true},
	{in: "0x10", wantErr: true},
	{in: "1/2", wantErr: true},
	{in: "1_000", wantErr: true},
	{in: "NaN", wantErr: true},
	{in: "Inf", wantErr: true},
	{in: "9223372036854775808", wantErr: true},
	{in: "8589934592G", wantErr: true},
	{in: "99999999999999999999999999999999G", wantErr: true},
	{in: strings.Repeat("1", 100), wantErr: true},
}

func TestParseBytes(t *testing.T) {
	for _, tt := range parseBytesTests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseBytes(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseBytes(%q) = %d, nil; want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseBytes(%q) = %d, %v; want %d, nil", tt.in, got, err, tt.want)
			}
		})
	}
}

func FuzzParseBytes(f *testing.F) {
	for _, tt := range parseBytesTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseBytes(s)
		if err != nil {
			if n != 0 {
				t.Fatalf("ParseBytes(%q) = %d with error %v; want 0", s, n, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseBytes(%q) = %d; want >= 0", s, n)
		}
	})
}
