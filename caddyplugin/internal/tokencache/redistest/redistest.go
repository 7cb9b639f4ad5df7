// Package redistest gives tests a real redis-server (SECURITY.md §1.1, I
// tests; STYLE.md §13.4) and a latency-injecting TCP proxy.
//
// Addr uses $PASSERELLE_REDIS_ADDR when set, else a private redis-server.
// Start always runs a private server, for tests that kill it. When
// redis-server is not installed, both fail the test if $CI is set and skip it
// otherwise.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvAddr names the variable holding the address of an existing Redis.
const EnvAddr = "PASSERELLE_REDIS_ADDR"

// Server is a redis-server process owned by one test.
type Server struct {
	Addr string

	bin  string // redis-server, for Restart
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Addr returns the address of a Redis for t: $PASSERELLE_REDIS_ADDR when set,
// else a private redis-server stopped when t ends. Keys written through a
// shared server must be unique to the test (use random secrets).
func Addr(t testing.TB) string {
	t.Helper()
	if a := os.Getenv(EnvAddr); a != "" {
		if err := ping(a, 2*time.Second); err != nil {
			t.Fatalf("redistest: %s=%s does not answer PING: %v", EnvAddr, a, err)
		}
		return a
	}
	return Start(t).Addr
}

// Start runs a private redis-server on a free loopback port, without
// persistence, and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		const msg = "redistest: redis-server not found in PATH; install it (apt-get install redis-server) or set " + EnvAddr
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var lastErr error
	for range 3 { // a free port may be taken between probe and bind
		s, err := start(bin)
		if err == nil {
			t.Cleanup(s.Kill)
			return s
		}
		lastErr = err
	}
	t.Fatalf("redistest: cannot start redis-server: %v", lastErr)
	return nil
}

func start(bin string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return startOn(bin, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
}

// Restart starts the server again on its address, empty (it keeps no
// data), after Kill; clients reconnect to it as to a Redis back from a
// crash.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	n, err := startOn(s.bin, s.Addr)
	if err != nil {
		t.Fatalf("redistest: restarting redis-server: %v", err)
	}
	s.mu.Lock()
	s.cmd, s.done = n.cmd, n.done
	s.mu.Unlock()
}

func startOn(bin, addr string) (*Server, error) {
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin,
		"--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "yes",
		"--dir", os.TempDir(), "--loglevel", "warning")
	var stderr strings.Builder
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Addr: addr, bin: bin, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := ping(addr, 200*time.Millisecond); err == nil {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("redis-server exited: %s", strings.TrimSpace(stderr.String()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Kill()
			return nil, errors.New("redis-server did not answer PING within 5s")
		}
	}
}

// Kill stops the server (SIGKILL to this process only) and waits for it.
// It is idempotent.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ping sends an inline PING and expects +PONG.
func ping(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected PING answer %q", strings.TrimSpace(line))
	}
	return nil
}
