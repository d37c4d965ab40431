package integration_test

import (
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trawl-dev/trawl/internal/natstest"
	"github.com/trawl-dev/trawl/internal/proxytest"
	"github.com/trawl-dev/trawl/internal/testserver"
)

// TestSharedJobClientOptions: a worker of a shared job (--queue) is a fetcher like any other: it
// sends the loaded cookies and the .netrc login, goes through --proxy, and saves its own jar.
func TestSharedJobClientOptions(t *testing.T) {
	t.Parallel()
	nats := natstest.Server(t).ClientURL()
	s, ca := server(t)
	s.Handle("/login.bin", testserver.Size(100), testserver.Header("Set-Cookie", "set=bySrv; Path=/"))
	proxy := proxytest.NewHTTP(t, proxytest.Hosts{"origin.example.com": "127.0.0.1"}, "", false)
	_, port, _ := net.SplitHostPort(s.Addr())
	dir := t.TempDir()
	netrc, in, saved := filepath.Join(dir, "netrc"), filepath.Join(dir, "in.txt"), filepath.Join(dir, "saved.txt")
	if err := os.WriteFile(netrc, []byte("machine origin.example.com login w password pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, []byte("origin.example.com\tFALSE\t/\tFALSE\t0\tloaded\tyes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runTrawl(t, "get", "-o", filepath.Join(dir, "out"), "--ca-cert", ca, "--queue", nats, "--job", "client",
		"--proxy", proxy.URL(""), "--netrc-file", netrc, "--load-cookies", in, "--save-cookies", saved,
		"https://origin.example.com:"+port+"/login.bin")
	wantExit(t, r, exitOK)
	if len(proxy.Requests()) == 0 {
		t.Error("the worker did not go through --proxy")
	}
	req := s.RequestsFor("/login.bin")[0]
	if got := req.Header.Get("Authorization"); got != "Basic "+base64.StdEncoding.EncodeToString([]byte("w:pw")) {
		t.Errorf("Authorization %q, want the .netrc login", got)
	}
	if got := req.Header.Values("Cookie"); !slices.Equal(got, []string{"loaded=yes"}) {
		t.Errorf("cookies %q, want the loaded one", got)
	}
	data, err := os.ReadFile(saved)
	if err != nil || !strings.Contains(string(data), "\tset\tbySrv\n") || !strings.Contains(string(data), "\tloaded\tyes\n") {
		t.Errorf("saved cookies (%v):\n%s", err, data)
	}
}
