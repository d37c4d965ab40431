package fetcher

import (
	"net"
	"sync"
)

// readAheadSize is how much one read from the socket may take. TLS asks its connection for one
// record at a time (at most 16 KiB), so a bulk transfer costs a read syscall per record; reading
// ahead up to this much turns sixteen of them into one when the socket holds that much.
const readAheadSize = 256 << 10

var readAheadPool = sync.Pool{New: func() any { b := make([]byte, readAheadSize); return &b }}

// readAheadConn is a net.Conn whose reads take whatever the socket has, up to readAheadSize,
// and hand it out in the small pieces TLS asks for.
//
// A pooled buffer is taken only for a read that is expected to find data waiting: one right after
// a read that filled its whole buffer. Any other read goes straight into the caller's buffer, so a
// connection waiting for a response — a thousand idle hosts' connections — holds no buffer while
// it blocks, and a buffer is returned as soon as its bytes are handed out. (A read right after a
// full one can still block holding a buffer — a transfer paused by flow control, or ending exactly
// at the buffer's end — at most one buffer per connection, until its next bytes arrive.)
//
// Only the reading goroutine (the transport's read loop) calls Read, as net/http guarantees.
type readAheadConn struct {
	net.Conn
	buf  *[]byte // nil when nothing is buffered
	r, w int     // unread bytes are (*buf)[r:w]
	hot  bool    // the last read of the socket filled its buffer: more is likely waiting
}

func (c *readAheadConn) Read(p []byte) (int, error) {
	if c.buf == nil {
		if !c.hot || len(p) >= readAheadSize/2 {
			n, err := c.Conn.Read(p)
			c.hot = n == len(p)
			return n, err
		}
		c.buf = readAheadPool.Get().(*[]byte)
		n, err := c.Conn.Read(*c.buf)
		c.hot = n == len(*c.buf)
		if n <= 0 {
			readAheadPool.Put(c.buf)
			c.buf = nil
			return 0, err
		}
		// An error that came with data is seen again by the next read of the socket.
		c.r, c.w = 0, n
	}
	n := copy(p, (*c.buf)[c.r:c.w])
	c.r += n
	if c.r == c.w {
		readAheadPool.Put(c.buf)
		c.buf = nil
	}
	return n, nil
}
