package integration_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trawl-dev/trawl/internal/natstest"
)

// A NATS server in a process of its own, to be killed with SIGKILL: this test binary run again
// with $TRAWL_TEST_NATS set to "DIR PORT". It prints "ready URL" once it accepts connections and
// serves until its stdin closes.
const natsEnv = "TRAWL_TEST_NATS"

func init() {
	// init, not TestMain: TestMain builds trawl first, which the child must not.
	if spec := os.Getenv(natsEnv); spec != "" {
		os.Exit(natsChild(spec))
	}
}

func natsChild(spec string) int {
	dir, portText, _ := strings.Cut(spec, " ")
	port, err := strconv.Atoi(portText)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats child: port:", err)
		return 2
	}
	s, err := natstest.Start(dir, port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats child:", err)
		return 1
	}
	fmt.Println("ready", s.ClientURL())
	io.Copy(io.Discard, os.Stdin)
	s.Shutdown()
	return 0
}

// natsProc is a NATS server running in a child process.
type natsProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	url    string
	stdin  io.Closer // closing it shuts the server down gracefully
	exited chan struct{}
}

// startNATS starts a NATS server process with its JetStream store in dir, on port (-1: any).
func startNATS(t testing.TB, dir string, port int) *natsProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", natsEnv, dir, port))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nats-server: %v", err)
	}
	n := &natsProc{t: t, cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-n.exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-n.exited
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "ready ")
	if err != nil || !ok {
		t.Fatalf("nats-server did not start: %q, %v", line, err)
	}
	n.url = url
	return n
}

// port is the server's port.
func (n *natsProc) port() int {
	i := strings.LastIndexByte(n.url, ':')
	p, _ := strconv.Atoi(n.url[i+1:])
	return p
}

// stop shuts the server down gracefully, as nats-server does on SIGTERM (it tells its clients it
// is shutting down), and waits for it to be gone.
func (n *natsProc) stop() {
	n.stdin.Close()
	<-n.exited
}

// kill9 kills the server with SIGKILL and waits for it to be gone.
func (n *natsProc) kill9() {
	n.t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		n.t.Fatal(err)
	}
	<-n.exited
}
