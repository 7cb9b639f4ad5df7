package main

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// relay forwards TCP connections from a loopback address to another one,
// and can be cut or stalled: the gateway reaches FranceConnect's checktoken
// through it (BENCH_FC_CHECKTOKEN_URL), so cutting it is a checktoken
// outage (connections refused) and stalling it a checktoken that never
// answers (connections accepted, nothing forwarded), while the provider and
// FranceConnect's JWKS, in the same upstream process, stay up.
type relay struct {
	addr, target string

	mu    sync.Mutex
	ln    net.Listener // nil while cut
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
	held  atomic.Int64 // connections held while stalled, since the start
}

// newRelay listens on addr and forwards to target.
func newRelay(addr, target string) (*relay, error) {
	r := &relay{addr: addr, target: target, conns: map[net.Conn]struct{}{}}
	return r, r.listen(false)
}

// stall ends every connection, then accepts new ones and holds them,
// forwarding nothing, until cut or restore.
func (r *relay) stall() error {
	r.cut()
	return r.listen(true)
}

// restore ends every connection (held ones included), then forwards again.
func (r *relay) restore() error {
	r.cut()
	return r.listen(false)
}

// listen accepts connections on addr: held when stalled, else forwarded.
func (r *relay) listen(stalled bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		return err
	}
	r.ln = ln
	r.wg.Add(1)
	go r.accept(ln, stalled)
	return nil
}

// cut closes the listener and every connection, relayed or held: from then
// on a connection to addr is refused, and one in use ends.
func (r *relay) cut() {
	r.mu.Lock()
	ln := r.ln
	r.ln = nil
	for c := range r.conns {
		c.Close()
	}
	clear(r.conns)
	r.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	r.wg.Wait()
}

func (r *relay) accept(ln net.Listener, stalled bool) {
	defer r.wg.Done()
	for {
		in, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		} else if err != nil {
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: no busy loop
			continue
		}
		if stalled {
			if !r.track(ln, in) {
				in.Close()
				return
			}
			r.held.Add(1)
			continue
		}
		out, err := net.Dial("tcp", r.target)
		if err != nil {
			in.Close()
			continue
		}
		if !r.track(ln, in, out) {
			in.Close()
			out.Close()
			return
		}
		r.wg.Add(2)
		go r.pipe(in, out)
		go r.pipe(out, in)
	}
}

// track registers relayed or held connections, unless ln was cut
// meanwhile.
func (r *relay) track(ln net.Listener, conns ...net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != ln {
		return false
	}
	for _, c := range conns {
		r.conns[c] = struct{}{}
	}
	return true
}

// pipe copies src to dst, then closes both.
func (r *relay) pipe(dst, src net.Conn) {
	defer r.wg.Done()
	io.Copy(dst, src) //nolint:errcheck // the end of either side ends the pair
	r.mu.Lock()
	delete(r.conns, src)
	delete(r.conns, dst)
	r.mu.Unlock()
	src.Close()
	dst.Close()
}
