package fetcher

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/trawl-dev/trawl/internal/testserver"
)

// BenchmarkFetchSmall fetches 16 KiB files over HTTPS loopback from parallel workers:
// the many-small-images case, where per-file overhead (not bandwidth) is the limit.
func BenchmarkFetchSmall(b *testing.B) {
	for _, proto := range []struct {
		name string
		opts []testserver.Option
	}{{"h2", nil}, {"h1", []testserver.Option{testserver.HTTP1Only()}}} {
		b.Run(proto.name, func(b *testing.B) {
			srv := testserver.New(b, append(proto.opts, testserver.Size(16<<10), testserver.Seed(1))...)
			f := newFetcher(b, srv, func(o *Options) { o.Protocol = protoOf(proto.name == "h2") })
			root, _ := newRoot(b)
			var n atomic.Int64
			b.ReportAllocs()
			b.SetBytes(16 << 10)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					name := "d" + strconv.FormatInt(i%64, 10) + "/f" + strconv.FormatInt(i, 10)
					if _, err := f.Fetch(context.Background(), root, Request{URL: srv.URL("/" + name), Path: name}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "files/s")
		})
	}
}
