package integration

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Attacker is a raw HTTP/2 client connection (prior knowledge, as on a
// TLS connection after ALPN): it writes frames as it likes and reads the
// server's frames in the background.
type h2Attacker struct {
	conn   net.Conn
	mu     sync.Mutex // guards the framer's write side
	fr     *http2.Framer
	closed chan struct{} // the server sent GOAWAY or closed the connection
	goAway atomic.Bool
	pong   chan struct{} // the server acknowledged our PING
}

func dialH2(t *testing.T, port int) *h2Attacker {
	t.Helper()
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	a := &h2Attacker{conn: conn, fr: http2.NewFramer(conn, conn), closed: make(chan struct{}), pong: make(chan struct{}, 1)}
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	if err := a.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(a.closed)
		for {
			f, err := a.fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				a.goAway.Store(true)
				return
			case *http2.SettingsFrame:
				if !f.IsAck() {
					a.write(func() error { return a.fr.WriteSettingsAck() })
				}
			case *http2.PingFrame:
				if f.IsAck() {
					a.pong <- struct{}{}
				}
			}
		}
	}()
	return a
}

// write runs one frame write; false once the connection refuses it.
func (a *h2Attacker) write(w func() error) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_ = a.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return w() == nil
}

// isClosed reports whether the server ended the connection.
func (a *h2Attacker) isClosed() bool {
	select {
	case <-a.closed:
		return true
	default:
		return false
	}
}

// requestBlock is the HPACK block of a cached-token data request.
func requestBlock(extra ...hpack.HeaderField) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range append([]hpack.HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: fmt.Sprintf("127.0.0.1:%d", gatewayPort)},
		{Name: ":path", Value: qf("recipient=" + siret)},
		{Name: "authorization", Value: "Bearer cnaf_qfv2"},
	}, extra...) {
		_ = enc.WriteField(f)
	}
	return buf.Bytes()
}

// watchGoroutines samples the process's goroutine count (the gateway runs
// in this process) until stop is called, which returns the peak.
func watchGoroutines(t *testing.T) (stop func() int) {
	var peak atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			if n := int64(runtime.NumGoroutine()); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	})
	stop = sync.OnceValue(func() int {
		close(done)
		wg.Wait()
		return int(peak.Load())
	})
	t.Cleanup(func() { stop() }) // a test that stops early stops it too
	return stop
}

// normalTraffic runs cached-token requests on their own connection until
// stop is called, which returns the requests served, the failures and the
// slowest answer.
func normalTraffic(t *testing.T) (stop func() (served, failed int, slowest time.Duration)) {
	var served, failed int
	var slowest time.Duration
	stopLoop := runUntil(t, 1, func(int) {
		began := time.Now()
		if status, err := plainGet(); err == nil && status == 200 {
			served++
		} else {
			failed++
		}
		slowest = max(slowest, time.Since(began))
		time.Sleep(5 * time.Millisecond)
	})
	return func() (int, int, time.Duration) {
		stopLoop() // once; runUntil also stops it when the test ends early
		return served, failed, slowest
	}
}

// plainGet sends one cached-token data request over HTTP/1.1, from any
// goroutine.
func plainGet() (int, error) {
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", gatewayPort, qf("recipient="+siret)), nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer cnaf_qfv2")
	resp, err := timeoutClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// qfRequests sums caddy_passerelle_requests_total for the quotient
// familial FranceConnect route: the requests its handler saw.
func qfRequests(t *testing.T) float64 {
	t.Helper()
	sum := 0.0
	for l := range strings.Lines(string(get(t, internalPort, "/metrics").body)) {
		if strings.HasPrefix(l, "caddy_passerelle_requests_total{") && strings.Contains(l, `endpoint="dss_quotient_familial_fc"`) {
			f := strings.Fields(l)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatal(err)
			}
			sum += v
		}
	}
	return sum
}

// TestLoadF08_RapidReset (SECURITY.md F08, §4 row 25; CVE-2023-44487,
// CVE-2023-39325): one connection opens 20 000 data-route streams and
// cancels each at once (HEADERS then RST_STREAM). The server either ends
// the connection (GOAWAY) or handles them at most its stream concurrency
// at a time: the goroutines it holds stay bounded until it has handled
// them all (an unbounded server would start one per stream), and a normal
// client on another connection keeps being served throughout.
//
// req: F08
func TestLoadF08_RapidReset(t *testing.T) {
	start(t, options{})
	if a := get(t, gatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...); a.status != 200 {
		t.Fatalf("warm-up: %d %s", a.status, a.body)
	}
	base := runtime.NumGoroutine()
	handledBefore := qfRequests(t)
	stopWatch := watchGoroutines(t)
	stopTraffic := normalTraffic(t)

	a := dialH2(t, gatewayPort)
	block := requestBlock()
	const streams = 20_000
	sent := 0
	for i := range streams {
		id := uint32(2*i + 1)
		ok := a.write(func() error {
			if err := a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}); err != nil {
				return err
			}
			return a.fr.WriteRSTStream(id, http2.ErrCodeCancel)
		})
		if !ok || a.isClosed() {
			break
		}
		sent++
	}
	// The server reads frames in order: once it answers a PING sent after
	// the flood, it has seen every stream; then wait until it has handled
	// them (its goroutines back near where they were), the watcher on.
	if !a.isClosed() && a.write(func() error { return a.fr.WritePing(false, [8]byte{'f', '0', '8'}) }) {
		select {
		case <-a.pong:
		case <-a.closed:
		case <-time.After(30 * time.Second):
			t.Fatal("no PING acknowledgement after the flood")
		}
	}
	for deadline := time.Now().Add(30 * time.Second); runtime.NumGoroutine() > base+100; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines 30 s after the flood (%d before)", runtime.NumGoroutine(), base)
		}
	}
	served, failed, slowest := stopTraffic()
	peak := stopWatch()
	handled := qfRequests(t) - handledBefore - float64(served)
	t.Logf("%d streams opened and reset, %.0f handled before the server ended the connection (GOAWAY %v); goroutines %d → peak %d; normal client: %d served, %d failed, slowest %v",
		sent, handled, a.goAway.Load(), base, peak, served, failed, slowest)

	// Handlers in flight are capped at the stream concurrency (250), each
	// with its provider call (client and server side, in this process).
	if grew := peak - base; grew > 1000 {
		t.Errorf("the goroutines grew by %d during the reset flood: the server does not bound the streams it serves", grew)
	}
	if !a.goAway.Load() && handled < 1000 {
		t.Errorf("only %.0f of %d streams handled and no GOAWAY: the flood did not happen", handled, sent)
	}
	if failed > 0 || served == 0 || slowest > 5*time.Second {
		t.Errorf("normal traffic during the flood: %d served, %d failed, slowest %v", served, failed, slowest)
	}
	if a := get(t, gatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...); a.status != 200 {
		t.Fatalf("after the flood: %d", a.status)
	}
}

// TestLoadF08_ContinuationFlood (SECURITY.md F08; CVE-2023-45288): one
// stream's header block never ends: HEADERS without END_HEADERS, then
// CONTINUATION frames, up to 64 MiB. The server ends the connection once
// the block passes its header limit (Caddy's max_header_size, 1 MiB by
// default) instead of buffering or decoding it all; its heap does not
// grow with the flood, and a normal client keeps being served.
//
// req: F08
func TestLoadF08_ContinuationFlood(t *testing.T) {
	start(t, options{})
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	stopTraffic := normalTraffic(t)

	a := dialH2(t, gatewayPort)
	var frag bytes.Buffer
	enc := hpack.NewEncoder(&frag)
	for i := 0; frag.Len() < 15<<10; i++ {
		_ = enc.WriteField(hpack.HeaderField{Name: fmt.Sprintf("x-flood-%d", i), Value: strings.Repeat("a", 1000), Sensitive: true})
	}
	const limit = 64 << 20
	sent := 0
	if a.write(func() error {
		return a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: requestBlock(), EndStream: true})
	}) {
		for sent < limit && !a.isClosed() {
			if !a.write(func() error { return a.fr.WriteContinuation(1, false, frag.Bytes()) }) {
				break
			}
			sent += frag.Len()
		}
	}
	select {
	case <-a.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the server kept the connection open")
	}
	served, failed, slowest := stopTraffic()
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("%d KiB of CONTINUATION sent before the server ended the connection (GOAWAY %v); heap in use %+d KiB; normal client: %d served, %d failed, slowest %v",
		sent>>10, a.goAway.Load(), grew>>10, served, failed, slowest)
	if sent >= limit {
		t.Fatal("the server took 64 MiB of one header block")
	}
	if sent > 16<<20 {
		t.Errorf("the server read %d MiB of one header block before ending the connection", sent>>20)
	}
	if grew > 32<<20 {
		t.Errorf("the heap grew by %d MiB", grew>>20)
	}
	if failed > 0 || served == 0 || slowest > 5*time.Second {
		t.Errorf("normal traffic during the flood: %d served, %d failed, slowest %v", served, failed, slowest)
	}
}
