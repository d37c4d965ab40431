package proxytest

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
)

// SOCKSConn is one CONNECT a SOCKS5 server received.
type SOCKSConn struct {
	Target string // host:port as the client sent it
	Name   bool   // the client sent a host name (socks5h), not an address
	Auth   string // "user:password" of username/password authentication, or ""
}

// SOCKS is a running SOCKS5 server (RFC 1928: CONNECT only; RFC 1929 username/password
// authentication).
type SOCKS struct {
	ln    net.Listener
	hosts Hosts
	auth  string // required "user:password"; "" = none

	mu    sync.Mutex
	log   []SOCKSConn
	conns conns
	wg    sync.WaitGroup
}

// NewSOCKS starts a SOCKS5 server that resolves names through hosts; with auth
// ("user:password") it accepts only clients that authenticate with those credentials.
func NewSOCKS(tb testing.TB, hosts Hosts, auth string) *SOCKS {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &SOCKS{ln: ln, hosts: hosts, auth: auth}
	s.wg.Add(1)
	go s.accept()
	tb.Cleanup(func() {
		ln.Close()
		s.conns.closeAll()
		s.wg.Wait()
	})
	return s
}

// Addr is the server's host:port.
func (s *SOCKS) Addr() string { return s.ln.Addr().String() }

// Conns returns every CONNECT the server received so far.
func (s *SOCKS) Conns() []SOCKSConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SOCKSConn(nil), s.log...)
}

func (s *SOCKS) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if !s.conns.add(c) {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.conns.remove(c)
			s.serve(c)
		}()
	}
}

// SOCKS5 protocol values.
const (
	socksVersion  = 5
	methodNone    = 0x00
	methodUserPW  = 0x02
	methodRefused = 0xff
	cmdConnect    = 1
	atypIPv4      = 1
	atypName      = 3
	atypIPv6      = 4
	repOK         = 0
	repNotAllowed = 2
	repRefused    = 5
	repCommand    = 7
)

var errSOCKS = errors.New("malformed SOCKS5 message")

func (s *SOCKS) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	auth, err := s.handshake(r, c)
	if err != nil {
		return
	}
	rec, err := readConnect(r)
	rec.Auth = auth
	if err != nil {
		c.Write([]byte{socksVersion, repCommand, 0, atypIPv4, 0, 0, 0, 0, 0, 0})
		return
	}
	s.mu.Lock()
	s.log = append(s.log, rec)
	s.mu.Unlock()
	origin, err := s.hosts.dial(context.Background(), rec.Target)
	if err != nil {
		c.Write([]byte{socksVersion, repRefused, 0, atypIPv4, 0, 0, 0, 0, 0, 0})
		return
	}
	if _, err := c.Write([]byte{socksVersion, repOK, 0, atypIPv4, 0, 0, 0, 0, 0, 0}); err != nil {
		origin.Close()
		return
	}
	if n := r.Buffered(); n > 0 {
		b, _ := r.Peek(n)
		origin.Write(b)
	}
	if !s.conns.add(origin) {
		return
	}
	pipe(c, origin)
	s.conns.remove(origin)
}

// handshake chooses the method and, for username/password, checks the credentials; it returns
// the credentials the client gave.
func (s *SOCKS) handshake(r *bufio.Reader, w io.Writer) (string, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil || hdr[0] != socksVersion {
		return "", errSOCKS
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return "", errSOCKS
	}
	offered := func(m byte) bool {
		for _, x := range methods {
			if x == m {
				return true
			}
		}
		return false
	}
	switch {
	case s.auth == "" && offered(methodNone):
		_, err := w.Write([]byte{socksVersion, methodNone})
		return "", err
	case !offered(methodUserPW):
		w.Write([]byte{socksVersion, methodRefused})
		return "", errSOCKS
	}
	if _, err := w.Write([]byte{socksVersion, methodUserPW}); err != nil {
		return "", err
	}
	// RFC 1929: VER=1 ULEN UNAME PLEN PASSWD.
	ver, err := r.ReadByte()
	if err != nil || ver != 1 {
		return "", errSOCKS
	}
	user, err := readShort(r)
	if err != nil {
		return "", err
	}
	pw, err := readShort(r)
	if err != nil {
		return "", err
	}
	got := user + ":" + pw
	if s.auth != "" && got != s.auth {
		w.Write([]byte{1, repNotAllowed})
		return got, errors.New("wrong credentials")
	}
	_, err = w.Write([]byte{1, repOK})
	return got, err
}

// readConnect reads a request: VER CMD RSV ATYP DST.ADDR DST.PORT; only CONNECT is served.
func readConnect(r *bufio.Reader) (SOCKSConn, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil || hdr[0] != socksVersion || hdr[1] != cmdConnect {
		return SOCKSConn{}, errSOCKS
	}
	var host string
	var rec SOCKSConn
	switch hdr[3] {
	case atypIPv4, atypIPv6:
		b := make([]byte, 4)
		if hdr[3] == atypIPv6 {
			b = make([]byte, 16)
		}
		if _, err := io.ReadFull(r, b); err != nil {
			return SOCKSConn{}, errSOCKS
		}
		ip, _ := netip.AddrFromSlice(b)
		host = ip.String()
	case atypName:
		name, err := readShort(r)
		if err != nil {
			return SOCKSConn{}, err
		}
		host, rec.Name = name, true
	default:
		return SOCKSConn{}, errSOCKS
	}
	var port [2]byte
	if _, err := io.ReadFull(r, port[:]); err != nil {
		return SOCKSConn{}, errSOCKS
	}
	rec.Target = net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port[:]))))
	return rec, nil
}

// readShort reads a length byte and that many bytes.
func readShort(r *bufio.Reader) (string, error) {
	n, err := r.ReadByte()
	if err != nil {
		return "", errSOCKS
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", errSOCKS
	}
	return string(b), nil
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
