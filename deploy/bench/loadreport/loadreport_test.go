package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/passerelle-gw/passerelle/config/loadreport"
)

// echoServer answers each line with the same line, until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }() //nolint:errcheck // an echo
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends a line on c and reads it back.
func roundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("through the relay: %q, %v", line, err)
	}
}

func TestRelayCutStallRestore(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	r, err := newRelay(addr, echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.cut()

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c)

	r.cut()
	// The connection in use ends, and a new one is refused: what a caller
	// of FranceConnect sees when it is down.
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a relayed connection outlived the cut: %v", err)
	}
	if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial while cut: %v, want connection refused", err)
	}

	if err := r.restore(); err != nil {
		t.Fatal(err)
	}
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	roundTrip(t, c2)

	// Stalled: the connection in use ends, a new one is accepted and
	// held, with no answer; restoring ends it and forwards again.
	if err := r.stall(); err != nil {
		t.Fatal(err)
	}
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a relayed connection outlived the stall: %v", err)
	}
	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial while stalled: %v, want accepted", err)
	}
	defer held.Close()
	for deadline := time.Now().Add(5 * time.Second); r.held.Load() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("held connections: %d, want 1", r.held.Load())
		}
	}
	io.WriteString(held, "ping\n") //nolint:errcheck // the read below tells
	held.SetDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := held.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a stalled relay answered: %v", err)
	}
	if err := r.restore(); err != nil {
		t.Fatal(err)
	}
	held.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := held.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a held connection outlived the restore: %v", err)
	}
	c3, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	roundTrip(t, c3)
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 200; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 100 * time.Millisecond}, {0.99, 198 * time.Millisecond}, {1, 200 * time.Millisecond}, {0.001, time.Millisecond}} {
		if got := percentile(d, tc.q); got != tc.want {
			t.Errorf("p%g of 1..200 ms = %s, want %s", tc.q*100, got, tc.want)
		}
	}
	if got := percentile(nil, 0.99); got != 0 {
		t.Errorf("p99 of nothing = %s", got)
	}
	if got := summarize([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond}); got != (loadreport.LatencySummary{P50: 2, P99: 3, Max: 3}) {
		t.Errorf("summary of 3, 1, 2 ms: %+v", got)
	}
}

func TestAllExpected(t *testing.T) {
	if v := allExpected("x", loadreport.Run{Requests: 10, Expected: 10}, loadreport.Run{Requests: 5, Expected: 5}); !v.Pass || v.Value != "15 of 15" {
		t.Errorf("all expected: %+v", v)
	}
	if v := allExpected("x", loadreport.Run{Requests: 10, Expected: 10}, loadreport.Run{Requests: 5, Expected: 4}); v.Pass {
		t.Errorf("one unexpected answer passed: %+v", v)
	}
	if v := allExpected("x", loadreport.Run{}); v.Pass {
		t.Error("no request at all passed")
	}
}

// soakEnd is the end of a real soak.sh output (its verdict lines).
const soakEnd = `soak: 10651 requests in 1.0 min at 181/s asked (177.3/s answered); 2xx 6556  401 4095
unexpected answers: 0, transport errors among them 0, other answers within 10s of a reload 0 (those windows: 18 % of the run): PASS
transport errors within 10s of a reload (a keep-alive connection closed by the replaced server): 0 for 1 reloads: PASS (at most 2 per reload)
checktoken calls received by the sandbox FranceConnect during the soak: 10651; distinct tokens sent: 10651 (6556 valid: 4 cached, 6552 fresh; 4095 unknown): PASS (one checktoken per token)
trend RSS MiB   before load 63.0
`

func TestParseSoak(t *testing.T) {
	s := parseSoak(soakEnd, 1, 3)
	if !s.Pass || len(s.Verdicts) != 3 || s.Minutes != 1 {
		t.Fatalf("passing soak: %+v", s)
	}
	failed := strings.Replace(soakEnd, "0 for 1 reloads: PASS", "7 for 1 reloads: FAIL", 1)
	if s := parseSoak(failed, 1, 3); s.Pass || len(s.Verdicts) != 3 {
		t.Errorf("a FAIL line passed: %+v", s)
	}
	if s := parseSoak("soak: broke before its verdicts\n", 1, 3); s.Pass {
		t.Errorf("a soak without verdicts passed: %+v", s)
	}
}

func TestErrorKind(t *testing.T) {
	a := errorKind(`Get "https://localhost:8443/v3/x?nomNaissance=DUPONT&recipient=1": read tcp 127.0.0.1:41234->127.0.0.1:8443: read: connection reset by peer`)
	b := errorKind(`Get "https://localhost:8443/v3/x?nomNaissance=MARTIN&recipient=2": read tcp 127.0.0.1:50001->127.0.0.1:8443: read: connection reset by peer`)
	if a != b || strings.ContainsAny(a, "0123456789") || strings.Contains(a, "DUPONT") || !strings.Contains(a, "/vN/x?…\"") {
		t.Errorf("the same failure on two connections: %q, %q", a, b)
	}
}
