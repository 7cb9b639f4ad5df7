package integration

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// faultProxy is a TCP proxy on a fixed loopback address in front of a
// service (FranceConnect, a provider, Redis), whose faults a test turns on
// and off: down (the port refuses connections), a delay on every chunk the
// service answers (a slow service), and a new target (a service restarted
// elsewhere).
type faultProxy struct {
	addr   string
	target atomic.Pointer[string]
	delay  atomic.Int64 // time.Duration

	mu    sync.Mutex
	ln    net.Listener // nil while down
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.target.Store(&target)
	p.serve(ln)
	t.Cleanup(func() {
		p.setDown(t, true)
		p.wg.Wait()
	})
	return p
}

func (p *faultProxy) serve(ln net.Listener) {
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.forward(c)
			}()
		}
	}()
}

// setDown closes the port (connections are refused and those open are
// cut) or opens it again on the same address.
func (p *faultProxy) setDown(t *testing.T, down bool) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case down && p.ln != nil:
		_ = p.ln.Close()
		p.ln = nil
		p.closeConns()
	case !down && p.ln == nil:
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			t.Fatalf("reopening %s: %v", p.addr, err)
		}
		p.serve(ln)
	}
}

// setDelay holds every chunk the service answers for d (0: none).
func (p *faultProxy) setDelay(d time.Duration) { p.delay.Store(int64(d)) }

// setTarget sends new connections to addr and cuts the open ones, as a
// restarted service does.
func (p *faultProxy) setTarget(addr string) {
	p.target.Store(&addr)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeConns()
}

func (p *faultProxy) closeConns() {
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

func (p *faultProxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !add {
		delete(p.conns, c)
		return true
	}
	if p.ln == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *faultProxy) forward(client net.Conn) {
	defer client.Close()
	server, err := net.DialTimeout("tcp", *p.target.Load(), time.Second)
	if err != nil {
		return
	}
	defer server.Close()
	if !p.track(client, true) || !p.track(server, true) {
		return
	}
	defer p.track(client, false)
	defer p.track(server, false)
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(server, client)
		done <- struct{}{}
	}()
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				if d := time.Duration(p.delay.Load()); d > 0 {
					time.Sleep(d)
				}
				if _, werr := client.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}()
	<-done
}
