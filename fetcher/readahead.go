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
// and hand it out in the small pieces TLS asks for. The buffer is held only while it has unread
// bytes: an idle connection holds none, so thousands of warm connections cost no memory here.
//
// Only the reading goroutine (the transport's read loop) calls Read, as net/http guarantees.
type readAheadConn struct {
	net.Conn
	buf  *[]byte // nil when nothing is buffered
	r, w int     // unread bytes are (*buf)[r:w]
}

func (c *readAheadConn) Read(p []byte) (int, error) {
	if c.buf == nil {
		if len(p) >= readAheadSize/2 {
			return c.Conn.Read(p) // as large as ours: no gain in copying
		}
		c.buf = readAheadPool.Get().(*[]byte)
		n, err := c.Conn.Read(*c.buf)
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
