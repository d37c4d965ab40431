package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/trawl-dev/trawl/fetcher"
)

// TestExampleConfig loads config.example.yaml: it must parse, validate, set every option, and
// state the defaults, so the documented file can't rot.
func TestExampleConfig(t *testing.T) {
	data, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	if err := decodeConfig("config.example.yaml", data, &cfg); err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	if err := cfg.validate(); err != nil {
		t.Fatalf("config.example.yaml does not validate: %v", err)
	}
	def := defaultConfig()
	// "[]" in YAML is an empty slice, the default a nil one: the same setting.
	v := reflect.ValueOf(&cfg).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Slice && f.Len() == 0 {
			f.SetZero()
		}
	}
	if !reflect.DeepEqual(cfg, def) {
		t.Errorf("config.example.yaml values differ from the defaults:\n file     %+v\n defaults %+v", cfg, def)
	}
	// Every key of Config appears in the file.
	typ := reflect.TypeOf(Config{})
	for i := range typ.NumField() {
		key := strings.Split(typ.Field(i).Tag.Get("yaml"), ",")[0]
		if !strings.Contains(string(data), "\n"+key+":") {
			t.Errorf("config.example.yaml does not document %q", key)
		}
	}
}

func TestConfigFileAndFlags(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/c.yaml"
	os.WriteFile(file, []byte("concurrency: 7\nper_host: 2\nheaders: [\"A: 1\"]\nidle_timeout: 3s\n"), 0o644)
	tests := []struct {
		name    string
		args    []string
		check   func(Config) bool
		wantErr string
	}{
		{"file applies", nil, func(c Config) bool { return c.Concurrency == 7 && c.PerHost == 2 && c.IdleTimeout.Seconds() == 3 }, ""},
		{"flag overrides file", []string{"-c", "9"}, func(c Config) bool { return c.Concurrency == 9 && c.PerHost == 2 }, ""},
		{"repeatable flag replaces file list", []string{"-H", "B: 2"}, func(c Config) bool {
			return len(c.Headers) == 1 && c.Headers[0] == "B: 2"
		}, ""},
		{"defaults kept", nil, func(c Config) bool { return c.Retries == 5 && c.Layout == "mirror" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			var cf string
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			addFlags(fs, &cfg, &cf)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if err := loadConfigFile(file, &cfg, fs); err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Fatalf("config %+v", cfg)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "retries: 1\nconcurency: 3\n", "config c.yaml line 2: unknown key concurency (did you mean concurrency?)"},
		{"key without underscore", "rate: 1\n\nperhost: 3\n", "config c.yaml line 3: unknown key perhost (did you mean per_host?)"},
		{"flag name as key", "ca-cert: x.pem\n", "line 1: unknown key ca-cert (did you mean ca_cert?)"},
		{"short flag as key", "c: 3\n", "line 1: unknown key c (did you mean concurrency?)"},
		{"unknown key, nothing near", "colour: blue\n", "config c.yaml line 1: unknown key colour"},
		{"number for a duration", "idle_timeout: 60\n", "config c.yaml line 1: idle_timeout: 60 is not a duration (try 60s)"},
		{"word for a duration", "idle_timeout: soon\n", `line 1: idle_timeout: "soon" is not a duration (like 90s, 5m, 2h30m or 1d)`},
		{"word for a number", "retries: 1\nconcurrency: many\n", `config c.yaml line 2: concurrency: "many" is not a whole number`},
		{"fraction for a whole number", "retries: 2.5\n", `retries: "2.5" is not a whole number`},
		{"word for a rate", "rate: fast\n", `rate: "fast" is not a number`},
		{"word for a switch", "insecure: maybe\n", `insecure: "maybe" is not true or false`},
		{"list for a value", "out: [a, b]\n", "line 1: out: want a single value"},
		{"mapping for a list", "headers: {a: b}\n", "line 1: headers: want a list"},
		{"set twice", "rate: 1\nrate: 2\n", "line 2: rate is set twice (first on line 1)"},
		{"not key: value", "- concurrency: 3\n", "line 1: want settings as key: value lines"},
		{"bad YAML", "concurrency: 3\n  rate: 2\n", "config c.yaml line 2: mapping values are not allowed"},
		{"several problems", "perhost: 3\nidle_timeout: 60\n", "config c.yaml:\n  line 1: unknown key perhost (did you mean per_host?)\n  line 2: idle_timeout: 60 is not a duration (try 60s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			err := decodeConfig("c.yaml", []byte(tt.yaml), &cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("decodeConfig(%q) = %v, want an error saying %q", tt.yaml, err, tt.want)
			}
		})
	}
	bad := []func(*Config){
		func(c *Config) { c.Concurrency = -1 },
		func(c *Config) { c.PerHost = -1 },
		func(c *Config) { c.HTTP2, c.HTTP11 = true, true },
		func(c *Config) { c.MaxWait = -time.Second },
		func(c *Config) { c.Rate = -1 },
		func(c *Config) { c.LimitRate = "fast" },
		func(c *Config) { c.Headers = []string{"no colon"} },
		func(c *Config) { c.Layout = "tree" },
		func(c *Config) { c.ClientCert = "x.pem" },
		func(c *Config) { c.LogFormat = "xml" },
		func(c *Config) { c.IdleTimeout = 0 },
		func(c *Config) { c.Queue, c.Job, c.Sitemaps = "nats://127.0.0.1:4222", "j", true },
		func(c *Config) { c.Queue, c.Job, c.ContentDisposition = "nats://127.0.0.1:4222", "j", true },
	}
	for i, mutate := range bad {
		cfg := defaultConfig()
		mutate(&cfg)
		if err := cfg.validate(); err == nil {
			t.Errorf("case %d: validate accepted %+v", i, cfg)
		}
	}
}

// TestBoundsFor: unset bounds take the command's defaults (many requests in flight for a get,
// fewer for a crawl, a cap per host that adapts); --per-host pins the cap, and no host's cap
// exceeds the overall bound.
func TestBoundsFor(t *testing.T) {
	for _, tc := range []struct {
		command          string
		concurrency, per int
		want             bounds
	}{
		{"get", 0, 0, bounds{workers: 256, perHost: 128, adaptive: true, start: 8, http1PerHost: 8, http2Start: 16}},
		{"crawl", 0, 0, bounds{workers: 64, perHost: 16, adaptive: true, start: 4, http1PerHost: 4}},
		{"get", 32, 32, bounds{workers: 32, perHost: 32, start: 8}},
		{"get", 16, 0, bounds{workers: 16, perHost: 16, adaptive: true, start: 8, http1PerHost: 8, http2Start: 16}},
		{"crawl", 0, 2, bounds{workers: 64, perHost: 2, start: 4}},
	} {
		cfg := defaultConfig()
		cfg.Concurrency, cfg.PerHost = tc.concurrency, tc.per
		if got := boundsFor(tc.command, &cfg); got != tc.want {
			t.Errorf("%s -c %d --per-host %d: %+v, want %+v", tc.command, tc.concurrency, tc.per, got, tc.want)
		}
	}
}

// TestConfigValues: values the config file takes beyond what yaml would, and a list given as one
// value.
func TestConfigValues(t *testing.T) {
	cfg := defaultConfig()
	data := "refresh_after: 1d\nmax_wait: 1d12h\nidle_timeout: 90s\nsave: image/*\ninsecure: no\nrate: .5\nout: ~\n"
	if err := decodeConfig("c.yaml", []byte(data), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.RefreshAfter != 24*time.Hour || cfg.MaxWait != 36*time.Hour || cfg.IdleTimeout != 90*time.Second ||
		!reflect.DeepEqual(cfg.Save, []string{"image/*"}) || cfg.Insecure || cfg.Rate != 0.5 || cfg.Out != "" {
		t.Errorf("decoded %+v", cfg)
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"90s", 90 * time.Second, ""},
		{"0", 0, ""},
		{"1d", 24 * time.Hour, ""},
		{"1.5d", 36 * time.Hour, ""},
		{"2d3h30m", 51*time.Hour + 30*time.Minute, ""},
		{"-1d", -24 * time.Hour, ""},
		{"60", 0, "60 is not a duration (try 60s)"},
		{"d", 0, "is not a duration"},
		{"1d-2h", 0, "is not a duration"},
		{"1e9d", 0, "is not a duration"},
		{"1x", 0, `"1x" is not a duration`},
	} {
		got, err := parseDuration(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseDuration(%q) = %v, %v; want an error saying %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"concurency", "concurrency", 1}, {"retires", "retries", 1}, {"abc", "xyz", 3}, {"", "ab", 2}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestProtocolFor: a get offers HTTP/2, a crawl speaks HTTP/1.1; the flags force either.
func TestProtocolFor(t *testing.T) {
	for _, tc := range []struct {
		command        string
		http2, http1_1 bool
		want           fetcher.Protocol
	}{
		{"get", false, false, fetcher.ProtocolAuto},
		{"crawl", false, false, fetcher.ProtocolHTTP1},
		{"get", true, false, fetcher.ProtocolHTTP2},
		{"crawl", true, false, fetcher.ProtocolHTTP2},
		{"get", false, true, fetcher.ProtocolHTTP1},
	} {
		cfg := defaultConfig()
		cfg.HTTP2, cfg.HTTP11 = tc.http2, tc.http1_1
		if got := cfg.protocol(tc.command); got != tc.want {
			t.Errorf("%s --http2=%v --http1.1=%v: %q, want %q", tc.command, tc.http2, tc.http1_1, got, tc.want)
		}
	}
}
