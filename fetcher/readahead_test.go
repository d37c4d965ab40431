package fetcher

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
)

// chunkConn is a net.Conn whose reads return the given chunks, one per read, then err.
type chunkConn struct {
	net.Conn
	chunks [][]byte
	err    error
	reads  int
	onRead func()
}

func (c *chunkConn) Read(p []byte) (int, error) {
	c.reads++
	if c.onRead != nil {
		c.onRead()
	}
	if len(c.chunks) == 0 {
		return 0, c.err
	}
	n := copy(p, c.chunks[0])
	if c.chunks[0] = c.chunks[0][n:]; len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

func TestReadAheadConn(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), readAheadSize/8) // two read-aheads' worth
	boom := errors.New("connection reset")
	for _, tc := range []struct {
		name    string
		chunks  [][]byte
		err     error
		readLen int // the size of the reader's buffer, like TLS's record reads
		want    []byte
	}{
		{"small reads of one big chunk", [][]byte{big}, io.EOF, 5 + 16<<10, big},
		{"tiny reads", [][]byte{[]byte("hello"), []byte(" world")}, io.EOF, 3, []byte("hello world")},
		{"reads as large as the buffer go straight through", [][]byte{big}, io.EOF, readAheadSize, big},
		{"error after data", [][]byte{[]byte("partial")}, boom, 4, []byte("partial")},
		{"error at once", nil, boom, 4, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			under := &chunkConn{chunks: append([][]byte(nil), tc.chunks...), err: tc.err}
			c := &readAheadConn{Conn: under}
			buffered := false // a read of the socket went into the pooled buffer
			under.onRead = func() { buffered = buffered || c.buf != nil }
			var got []byte
			p := make([]byte, tc.readLen)
			var err error
			for {
				var n int
				n, err = c.Read(p)
				got = append(got, p[:n]...)
				if err != nil {
					break
				}
				if n == 0 {
					t.Fatal("Read returned 0, nil")
				}
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("error %v, want %v", err, tc.err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("read %d bytes, want %d (or different bytes)", len(got), len(tc.want))
			}
			if c.buf != nil {
				t.Error("buffer still held after everything was read")
			}
			if buffered && tc.readLen >= readAheadSize/2 {
				t.Error("a read as large as the buffer went through the buffer")
			}
		})
	}
}

// TestReadAheadConnFewerReads: the point of it — TLS-record-sized reads of a stream that the
// socket delivers in big pieces cost one read of the socket per piece, not per record.
func TestReadAheadConnFewerReads(t *testing.T) {
	data := make([]byte, 4*readAheadSize)
	under := &chunkConn{chunks: [][]byte{data}, err: io.EOF}
	c := &readAheadConn{Conn: under}
	n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{c}, make([]byte, 16<<10))
	if err != nil || n != int64(len(data)) {
		t.Fatalf("copied %d, %v", n, err)
	}
	// One record-sized read finds the socket full, then the read-aheads, then EOF.
	if under.reads > 6 {
		t.Errorf("%d reads of the socket for 4 read-aheads' worth of data, want at most 6", under.reads)
	}
}

// TestReadAheadConnIdleHoldsNoBuffer: a connection that gets small responses (or none) blocks in
// its reads without a pooled buffer, so a thousand idle connections cost nothing here.
func TestReadAheadConnIdleHoldsNoBuffer(t *testing.T) {
	under := &chunkConn{err: io.EOF}
	c := &readAheadConn{Conn: under}
	var held []bool
	under.onRead = func() { held = append(held, c.buf != nil) }
	for range 3 {
		under.chunks = append(under.chunks, make([]byte, 300)) // small responses
	}
	under.chunks = append(under.chunks, make([]byte, 64<<10), make([]byte, 100))
	p := make([]byte, 16<<10)
	for {
		if _, err := c.Read(p); err != nil {
			break
		}
	}
	// Reads 1-3: small, cold. 4: fills p (cold). 5: hot, with the buffer (takes the other
	// 48 KiB). Then cold again: the 100 bytes, and the last read, that would block, hold nothing.
	want := []bool{false, false, false, false, true, false, false}
	if fmt.Sprint(held) != fmt.Sprint(want) {
		t.Errorf("buffer held during socket reads: %v, want %v", held, want)
	}
}
