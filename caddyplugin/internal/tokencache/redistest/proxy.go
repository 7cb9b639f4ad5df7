package redistest

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// DelayProxy forwards TCP connections to a target and holds every chunk of
// the target's answers for a fixed delay: a slow Redis (SECURITY.md I05).
type DelayProxy struct {
	Addr string

	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewDelayProxy listens on a loopback port and forwards to target, delaying
// each answer chunk by delay. It stops when t ends.
func NewDelayProxy(t testing.TB, target string, delay time.Duration) *DelayProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: proxy listen: %v", err)
	}
	p := &DelayProxy{Addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.serve(c, target, delay) })
		}
	})
	t.Cleanup(p.Close)
	return p
}

func (p *DelayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *DelayProxy) serve(client net.Conn, target string, delay time.Duration) {
	if !p.track(client) {
		return
	}
	upstream, err := net.Dial("tcp", target)
	if err != nil {
		client.Close()
		return
	}
	if !p.track(upstream) {
		client.Close()
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = io.Copy(upstream, client)
		upstream.Close()
	})
	wg.Go(func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := upstream.Read(buf)
			if n > 0 {
				time.Sleep(delay)
				if _, werr := client.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		client.Close()
	})
	wg.Wait()
}

// Close stops accepting, closes every connection and waits for the
// forwarding goroutines.
func (p *DelayProxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
