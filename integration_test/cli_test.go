package integration_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExitCodes: mistakes in the command line or config are usage errors (2) and an output
// directory that cannot be written is fatal (3); both say why on stderr and request nothing.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	// Nothing listens here: a run that got as far as fetching would fail with 1, not 2 or 3.
	const url = "https://127.0.0.1:1/never.bin"
	tests := []struct {
		name string
		args func(t *testing.T, dir string) []string
		exit int
		want string // in stderr
	}{
		{"unknown flag", func(_ *testing.T, dir string) []string {
			return []string{"get", "-o", dir, "--no-such-flag", url}
		}, exitUsage, "no-such-flag"},
		{"unknown command", func(*testing.T, string) []string {
			return []string{"fetch", url}
		}, exitUsage, "fetch"},
		{"get without URLs or -i", func(_ *testing.T, dir string) []string {
			return []string{"get", "-o", dir}
		}, exitUsage, "nothing to download"},
		{"unknown config key", func(t *testing.T, dir string) []string {
			cfg := filepath.Join(dir, "trawl.yaml")
			if err := os.WriteFile(cfg, []byte("concurency: 3\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{"get", "--config", cfg, "-o", dir, url}
		}, exitUsage, "concurency"},
		{"missing config file", func(_ *testing.T, dir string) []string {
			return []string{"get", "--config", filepath.Join(dir, "nope.yaml"), "-o", dir, url}
		}, exitUsage, "nope.yaml"},
		{"missing list file", func(_ *testing.T, dir string) []string {
			return []string{"get", "-i", filepath.Join(dir, "nope.txt"), "-o", dir}
		}, exitUsage, "nope.txt"},
		{"bad layout", func(_ *testing.T, dir string) []string {
			return []string{"get", "--layout", "tree", "-o", dir, url}
		}, exitUsage, "tree"},
		{"bad concurrency", func(_ *testing.T, dir string) []string {
			return []string{"get", "-c", "-1", "-o", dir, url}
		}, exitUsage, "concurrency"},
		{"output under a regular file", func(t *testing.T, dir string) []string {
			f := filepath.Join(dir, "afile")
			if err := os.WriteFile(f, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{"get", "-o", filepath.Join(f, "sub"), url}
		}, exitFatal, "afile"},
		{"read-only output directory", func(t *testing.T, dir string) []string {
			if os.Geteuid() == 0 {
				t.Skip("root writes into read-only directories; see the regular-file case")
			}
			ro := filepath.Join(dir, "ro")
			if err := os.Mkdir(ro, 0o555); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(ro, 0o755) })
			return []string{"get", "-o", ro, "--state", filepath.Join(dir, "state.db"), url}
		}, exitFatal, "not writable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runTrawl(t, tt.args(t, t.TempDir())...)
			wantExit(t, r, tt.exit)
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr does not mention %q:\n%s", tt.want, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout is not empty: %q", r.stdout)
			}
		})
	}
}
