// Package natstest starts an embedded NATS server with JetStream for tests: on a loopback port,
// its store in the test's temporary directory, shut down when the test ends.
package natstest

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server starts the server and returns it once it accepts connections.
func Server(t testing.TB) *server.Server {
	t.Helper()
	s, err := Start(t.TempDir(), -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// Start starts a server keeping its JetStream store in dir, listening on 127.0.0.1:port (-1: a
// free port), and returns it once it accepts connections. The caller shuts it down. A server
// started again on the same dir and port takes up the jobs where the last one left them.
func Start(dir string, port int) (*server.Server, error) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true,
		StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		return nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats-server not ready in 10s")
	}
	return s, nil
}
