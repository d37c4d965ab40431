//go:build bench && linux

package integration_test

import (
	"fmt"
	"strings"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// wanLink says what the proxies in front of the bench server do to every connection.
type wanLink struct {
	OneWayMs int64 // latency added in each direction, no jitter: the round trip is twice this
	RateKBps int64 // toxiproxy's bandwidth toxic on the server→client stream, in units of 1,000 bytes/s per connection; 0 = none
}

// wanProxies starts one toxiproxy per base (https://127.0.0.1:PORT of the bench server), in this
// process, and returns the bases to give the clients instead: https://127.0.0.1:PROXYPORT. The
// bench server's certificate names 127.0.0.1, not a port, so TLS passes through the proxies
// end to end and every client still verifies it. The proxies stop when the benchmark ends.
func wanProxies(b *testing.B, bases []string, link wanLink) []string {
	b.Helper()
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	// Toxics run in the order added. Downstream, the bandwidth cap comes before the delay: a
	// bottleneck that pushes back on the server as a slow link would, rather than a delay line
	// that reads the server's bytes as fast as they come and holds up to 1,024 chunks of each
	// connection in memory before the cap drains them.
	var toxics []string
	if link.RateKBps > 0 {
		toxics = append(toxics, fmt.Sprintf(`{"type":"bandwidth","stream":"downstream","toxicity":1,"attributes":{"rate":%d}}`, link.RateKBps))
	}
	for _, dir := range []string{"upstream", "downstream"} {
		toxics = append(toxics, fmt.Sprintf(`{"type":"latency","stream":%q,"toxicity":1,"attributes":{"latency":%d,"jitter":0}}`, dir, link.OneWayMs))
	}

	out := make([]string, len(bases))
	for i, base := range bases {
		upstream := strings.TrimPrefix(base, "https://")
		p := toxiproxy.NewProxy(api, fmt.Sprintf("wan%d", i), "127.0.0.1:0", upstream)
		for _, t := range toxics {
			if _, err := p.Toxics.AddToxicJson(strings.NewReader(t)); err != nil {
				b.Fatalf("toxic %s: %v", t, err)
			}
		}
		if err := p.Start(); err != nil {
			b.Fatalf("proxy for %s: %v", upstream, err)
		}
		b.Cleanup(p.Stop)
		out[i] = "https://" + p.Listen // Start replaced port 0 with the one it listens on
	}
	return out
}
