package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// The parsers of setting values, shared by flags and the config file, with errors in the user's
// words: "60 is not a duration (try 60s)", not "strconv.ParseInt: parsing ...".

// parseDuration parses a Go duration (90s, 5m, 2h30m) or one that starts with days (1d, 1.5d,
// 1d12h): a nightly job thinks in days.
func parseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if d, err := time.ParseDuration(t); err == nil {
		return d, nil
	}
	neg := strings.HasPrefix(t, "-")
	days, rest, ok := strings.Cut(strings.TrimLeft(t, "+-"), "d")
	if ok && days != "" && strings.Trim(days, "0123456789.") == "" {
		n, err := strconv.ParseFloat(days, 64)
		var r time.Duration
		if err == nil && rest != "" {
			r, err = time.ParseDuration(rest)
		}
		if err == nil && r >= 0 && !strings.ContainsAny(rest, "+-") && n*24*float64(time.Hour)+float64(r) < math.MaxInt64 {
			d := time.Duration(n*24*float64(time.Hour)) + r
			if neg {
				d = -d
			}
			return d, nil
		}
	}
	if _, err := strconv.ParseFloat(t, 64); err == nil {
		return 0, fmt.Errorf("%s is not a duration (try %ss)", t, t)
	}
	return 0, fmt.Errorf("%q is not a duration (like 90s, 5m, 2h30m or 1d)", s)
}

// parseWhole parses a whole number.
func parseWhole(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%s is too large", s)
	}
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	return n, nil
}

// parseNumber parses a number, such as 2 or 0.5.
func parseNumber(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return f, nil
}

// parseBool parses true or false (and what strconv and YAML 1.1 take for them: 1, 0, yes, no, on,
// off...).
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "y", "on":
		return true, nil
	case "no", "n", "off":
		return false, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return false, fmt.Errorf("%q is not true or false", s)
	}
	return b, nil
}

// durationValue is a flag of type duration that also takes days (see parseDuration).
type durationValue time.Duration

func (d *durationValue) Set(s string) error {
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = durationValue(v)
	return nil
}

func (d *durationValue) Type() string { return "duration" }

func (d *durationValue) String() string {
	if *d == 0 {
		return "0" // pflag leaves a zero default out of --help
	}
	return time.Duration(*d).String()
}

// durationVar defines a duration flag that takes days, like pflag's DurationVar.
func durationVar(fs *pflag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var((*durationValue)(p), name, usage)
}

// flagValueError rewrites pflag's error for a value a flag refused: "-c/--concurrency: "abc" is
// not a whole number" rather than "invalid argument "abc" for "-c, --concurrency" flag:
// strconv.ParseInt: parsing "abc": invalid syntax".
func flagValueError(e *pflag.InvalidValueError) error {
	f, v := e.GetFlag(), e.GetValue()
	name := "--" + f.Name
	if f.Shorthand != "" {
		name = "-" + f.Shorthand + "/" + name
	}
	var err error
	switch f.Value.Type() {
	case "int":
		_, err = parseWhole(v)
	case "float64":
		_, err = parseNumber(v)
	case "bool":
		_, err = parseBool(v)
	}
	if err == nil {
		err = e.Unwrap() // our own Values say it well already
	}
	return fmt.Errorf("%s: %v", name, err)
}
