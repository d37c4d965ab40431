package fetcher

import (
	"context"
	"sync"
)

// firstRequests lets the first request to an HTTPS origin go alone when HTTP/2 is on. Until it
// has a connection (or has failed), the other requests for that origin wait, and then share it.
// Without this, every worker that starts at once dials and completes a TLS handshake of its own,
// and net/http keeps one HTTP/2 connection and closes the rest —
// wasted handshakes for both sides, and a burst of connections no polite client opens. Over
// HTTP/1.1 each concurrent request needs a connection of its own, so there is nothing to wait for.
type firstRequests struct {
	mu      sync.Mutex
	origins map[string]chan struct{} // closed once the origin's first request has its connection
}

// enter returns when a request to origin may be sent, and the func to call once it has its
// connection or its error (calling it again does nothing). It fails only if ctx ends while
// waiting.
func (g *firstRequests) enter(ctx context.Context, origin string) (done func(), err error) {
	g.mu.Lock()
	ch, ok := g.origins[origin]
	if !ok {
		if g.origins == nil {
			g.origins = map[string]chan struct{}{}
		}
		ch = make(chan struct{})
		g.origins[origin] = ch
		g.mu.Unlock()
		return sync.OnceFunc(func() { close(ch) }), nil
	}
	g.mu.Unlock()
	select {
	case <-ch:
		return func() {}, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}
