package ratelimit

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// maxBytesLen bounds the input to ParseBytes. A real size fits in a few characters; the bound
// keeps the exact big.Rat arithmetic cheap whatever a config file or fuzzer passes in.
const maxBytesLen = 64

// ParseBytes parses a byte count such as "10M", "1.5MiB", "500k", "2G", "1024" or "0".
//
// Units are binary, whatever their spelling: k/K = 1024, M = 1024², G = 1024³, each optionally
// followed by "B" or "iB"; a bare number may be followed by "B". Letters may be lower or upper
// case and spaces may separate the number from the unit. A fraction is allowed ("1.5M") and the
// result is rounded down to whole bytes. Negative, empty, malformed and overflowing values
// (more than math.MaxInt64) are errors.
func ParseBytes(s string) (int64, error) {
	n, err := parseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("ratelimit: invalid byte size %q: %w", s, err)
	}
	return n, nil
}

func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty")
	}
	if len(s) > maxBytesLen {
		return 0, errors.New("too long")
	}
	if s[0] == '-' {
		return 0, errors.New("negative")
	}

	// Split at the end of the number: digits with at most one '.', at least one digit before
	// and after it. Checked by hand because big.Rat.SetString would also take "1e3" or "1/2".
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intDigits := i
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == start {
			return 0, errors.New("missing digits after decimal point")
		}
	}
	if intDigits == 0 {
		return 0, errors.New("missing number")
	}
	num, unit := s[:i], strings.TrimLeft(s[i:], " ")

	mult, ok := unitMultiplier(strings.ToLower(unit))
	if !ok {
		return 0, fmt.Errorf("unknown unit %q", unit)
	}

	// Exact rational arithmetic: float64 would misround large values and the overflow check.
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, errors.New("malformed number")
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	v := new(big.Int).Quo(r.Num(), r.Denom()) // both positive, so this rounds down
	if !v.IsInt64() {
		return 0, errors.New("too large")
	}
	return v.Int64(), nil
}

// unitMultiplier maps a lower-cased unit suffix to its size in bytes.
func unitMultiplier(unit string) (int64, bool) {
	switch unit {
	case "", "b":
		return 1, true
	case "k", "kb", "kib":
		return 1 << 10, true
	case "m", "mb", "mib":
		return 1 << 20, true
	case "g", "gb", "gib":
		return 1 << 30, true
	}
	return 0, false
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
