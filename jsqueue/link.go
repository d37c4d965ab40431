package jsqueue

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// link follows the connection to the engine. The calls made over one connection share a context
// that is cancelled when it drops: a call whose answer was lost with the connection (the server
// restarting, a network cut) fails at once, and do makes it again when the connection is back,
// rather than after its whole time limit.
type link struct {
	nc     *nats.Conn
	events chan nats.Status

	mu     sync.Mutex
	ctx    context.Context // the current connection's; cancelled when it drops
	cancel context.CancelFunc
	up     chan struct{} // closed while connected
	closed chan struct{} // closed once the connection is closed for good: nothing to wait for
	done   chan struct{} // closed when the watch stops

	// reconnected gets a value each time the connection comes back after it was lost (not when it
	// is first made); upAt is when it last came back.
	reconnected chan struct{}
	upAt        time.Time
	wasUp       bool
}

func newLink(nc *nats.Conn) *link {
	l := &link{nc: nc, events: nc.StatusChanged(), closed: make(chan struct{}), done: make(chan struct{}),
		reconnected: make(chan struct{}, 1)}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.up = make(chan struct{})
	l.update()
	go l.watch()
	return l
}

// watch follows the connection's status until stop.
func (l *link) watch() {
	defer close(l.done)
	for range l.events {
		l.update()
	}
}

// update takes the connection's status as it is now (events only say that it changed).
func (l *link) update() {
	status := l.nc.Status()
	connected := status == nats.CONNECTED
	l.mu.Lock()
	defer l.mu.Unlock()
	if status == nats.CLOSED {
		select {
		case <-l.closed:
		default:
			close(l.closed)
		}
	}
	select {
	case <-l.up:
		if !connected {
			l.cancel()
			l.ctx, l.cancel = context.WithCancel(context.Background())
			l.up = make(chan struct{})
		}
	default:
		if connected {
			if l.wasUp {
				l.upAt = time.Now()
				select {
				case l.reconnected <- struct{}{}:
				default:
				}
			}
			l.wasUp = true
			close(l.up)
		}
	}
}

// lastUp is when the connection last came back after it was lost; zero if it never was.
func (l *link) lastUp() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.upAt
}

// current is the context of calls made now, and a channel closed once the connection is up.
func (l *link) current() (context.Context, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ctx, l.up
}

func (l *link) stop() {
	l.nc.RemoveStatusListener(l.events)
	<-l.done
	l.mu.Lock()
	l.cancel()
	l.mu.Unlock()
}

// outageMax is how long a worker waits for the engine to answer again (a NATS server restarting,
// a network cut) before its run fails. Its fetches go on meanwhile; their outcomes are recorded
// once the engine is back.
const outageMax = 5 * time.Minute

// retryPause spaces the attempts of a call the engine, connected, did not answer (JetStream still
// starting after a restart).
const retryPause = 100 * time.Millisecond

// do makes one call to the engine, f, within the time limit of one call (q.timeout, when limit is
// true), over the current connection. A call that fails because the engine is out of reach or not
// ready is made again once it is back, for up to outageMax in all; so each f must be safe to
// repeat (its first attempt may have taken effect).
func (q *Queue) do(limit bool, f func(ctx context.Context) error) error {
	giveUp := time.Now().Add(q.outage)
	for {
		lctx, up := q.link.current()
		select {
		case <-up:
		default:
			// Not now: a request sent while the connection is down waits out its whole time limit
			// if its answer is lost.
			if !q.link.await(up, giveUp) {
				if q.nc.IsClosed() {
					return fmt.Errorf("jsqueue: %w", nats.ErrConnectionClosed)
				}
				return fmt.Errorf("jsqueue: the NATS server has not answered for %v: %w", q.outage, nats.ErrDisconnected)
			}
			continue
		}
		ctx, cancel := lctx, context.CancelFunc(func() {})
		if limit {
			ctx, cancel = context.WithTimeout(lctx, q.timeout)
		}
		err := f(ctx)
		cancel()
		if err == nil || !unreachable(err) {
			return err
		}
		if !time.Now().Before(giveUp) || q.nc.IsClosed() {
			return fmt.Errorf("%w (the NATS server has not answered for %v)", err, q.outage)
		}
		// Connected, or about to find out it is not: try again shortly.
		t := time.NewTimer(min(retryPause, time.Until(giveUp)))
		<-t.C
	}
}

// once makes one attempt of a call to the engine, if it is connected: for what must not wait
// out an outage (a heartbeat, which the keep-alive loop makes and is made again on its next
// tick; leaving the job at Close).
func (q *Queue) once(f func(ctx context.Context) error) error {
	lctx, up := q.link.current()
	select {
	case <-up:
	default:
		return nats.ErrDisconnected
	}
	ctx, cancel := context.WithTimeout(lctx, q.timeout)
	defer cancel()
	return f(ctx)
}

// await waits until up is closed, giveUp passes or the connection is closed for good, and
// reports whether up was closed.
func (l *link) await(up <-chan struct{}, giveUp time.Time) bool {
	t := time.NewTimer(max(time.Until(giveUp), 0))
	defer t.Stop()
	select {
	case <-up:
		return true
	case <-t.C:
	case <-l.closed:
	}
	return false
}

// unreachable reports an error that says the engine did not answer, or not yet: the call may
// succeed once it is reachable and ready again.
func unreachable(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, jetstream.ErrNoStreamResponse),
		// A server stopped gracefully ends pulls with these: it is going away, as in a restart.
		errors.Is(err, jetstream.ErrServerShutdown), errors.Is(err, jetstream.ErrConsumerLeadershipChanged):
		return true
	case errors.As(err, &apiErr):
		return apiErr.Code == http.StatusServiceUnavailable // JetStream not (yet) available
	}
	return false
}
