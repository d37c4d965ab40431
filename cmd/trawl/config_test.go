package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestExampleConfig loads config.example.yaml: it must parse, validate, set every option, and
// state the defaults, so the documented file can't rot.
func TestExampleConfig(t *testing.T) {
	data, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	if err := decodeConfig(data, &cfg); err != nil {
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
		{"unknown key", "concurency: 3\n", "concurency"},
		{"bad duration", "idle_timeout: soon\n", "line 1"},
		{"bad type", "retries: 1\nconcurrency: many\n", "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			err := decodeConfig([]byte(tt.yaml), &cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("decodeConfig(%q) = %v, want an error naming %q", tt.yaml, err, tt.want)
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
		{"get", 0, 0, bounds{workers: 256, perHost: 128, adaptive: true, start: 8, http1PerHost: 8}},
		{"crawl", 0, 0, bounds{workers: 64, perHost: 16, adaptive: true, start: 4, http1PerHost: 4}},
		{"get", 32, 32, bounds{workers: 32, perHost: 32, start: 8}},
		{"get", 16, 0, bounds{workers: 16, perHost: 16, adaptive: true, start: 8, http1PerHost: 8}},
		{"crawl", 0, 2, bounds{workers: 64, perHost: 2, start: 4}},
	} {
		cfg := defaultConfig()
		cfg.Concurrency, cfg.PerHost = tc.concurrency, tc.per
		if got := boundsFor(tc.command, &cfg); got != tc.want {
			t.Errorf("%s -c %d --per-host %d: %+v, want %+v", tc.command, tc.concurrency, tc.per, got, tc.want)
		}
	}
}
