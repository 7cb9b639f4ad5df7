package integration

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// collector is a TCP log collector: the audit trail's off-host sink.
type collector struct {
	ln    net.Listener
	mu    sync.Mutex
	lines []string
}

// listen starts the collector on addr.
func (c *collector) listen(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.ln = ln
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				sc := bufio.NewScanner(conn)
				sc.Buffer(make([]byte, 64<<10), 1<<20)
				for sc.Scan() {
					c.mu.Lock()
					c.lines = append(c.lines, sc.Text())
					c.mu.Unlock()
				}
			}()
		}
	}()
}

// received returns the lines received so far.
func (c *collector) received() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

// TestI11_AuditSinkDown (SECURITY.md I11, G09): the audit trail's
// collector is down. The gateway keeps the records (passerelle_buffered,
// max_pending 5) and serves; once the buffer is full, data routes answer
// 503 audit_unavailable without calling the provider (their own records
// are counted, not written: they would take the place of records that
// must be kept), and readiness and the metrics say why. When the collector
// is back, the buffered records reach it — every request that got data has
// its record there, none was lost — and data routes serve again.
// req: G09
func TestI11_AuditSinkDown(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	_ = free.Close() // the collector is down
	rec := newRecorder(t)
	start(t, options{LogDir: logDir(t), Recorder: rec.srv.URL, AuditMaxPending: 5,
		AuditOutput: "net " + addr + " {\n\t\t\t\tsoft_start\n\t\t\t\tdial_timeout 1s\n\t\t\t}"})

	lostBefore := linesLost(t)
	var served []string // X-Request-Id of the answers that carried data
	refusedAt := -1
	for i := range 12 {
		before := rec.count()
		a := get(t, recordPort, qf("recipient="+siret), bearer("cnaf_qfv2")...)
		called := rec.count() != before
		switch a.status {
		case 200:
			served = append(served, a.header.Get("X-Request-Id"))
			if !called {
				t.Fatal("a 200 without a provider call")
			}
		case 503:
			if refusedAt < 0 {
				refusedAt = i
			}
			if a.code(t) != "00503" || a.header.Get("Retry-After") == "" || called {
				t.Fatalf("refusal %d: code %s, Retry-After %q, provider called %v", i, a.code(t), a.header.Get("Retry-After"), called)
			}
		default:
			t.Fatalf("request %d: status %d %s", i, a.status, a.body)
		}
		time.Sleep(60 * time.Millisecond) // a flush interval: the sink is tried, and refuses
	}
	if refusedAt != 5 {
		t.Fatalf("first refusal at request %d, want at the 6th (max_pending 5)", refusedAt)
	}
	ready := get(t, internalPort, "/ready")
	if ready.status != 503 || !strings.Contains(string(ready.body), `"audit":"unavailable"`) {
		t.Fatalf("readiness with the audit trail refusing: %d %s", ready.status, ready.body)
	}
	if m := get(t, internalPort, "/metrics"); !strings.Contains(string(m.body), "caddy_passerelle_audit_refusing 1") ||
		!strings.Contains(string(m.body), `caddy_passerelle_requests_total{code="00503",decision="error",endpoint="dss_quotient_familial_fc"}`) {
		t.Fatal("the metrics do not show the refusals")
	}

	// The collector is back: Caddy's net writer dials again within 10 s.
	var c collector
	c.listen(t, addr)
	deadline := time.Now().Add(25 * time.Second)
	for {
		a := get(t, recordPort, qf("recipient="+siret), bearer("cnaf_qfv2")...)
		if a.status == 200 {
			served = append(served, a.header.Get("X-Request-Id"))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d once the collector is back", a.status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if ready := get(t, internalPort, "/ready"); strings.Contains(string(ready.body), `"audit":"unavailable"`) {
		t.Fatalf("readiness once the collector is back: %s", ready.body)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, missing := c.received(), ""
		for _, id := range served {
			if !strings.Contains(got, fmt.Sprintf(`"request_id":%q`, id)) {
				missing = id
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %s got data and its audit record never reached the collector", missing)
		}
	}
	if lost := linesLost(t) - lostBefore; lost != 0 {
		t.Errorf("%v audit records lost", lost)
	}
}

// linesLost reads caddy_passerelle_log_lines_lost_total (process-wide).
func linesLost(t *testing.T) float64 {
	t.Helper()
	m := get(t, internalPort, "/metrics")
	for l := range strings.Lines(string(m.body)) {
		if v, ok := strings.CutPrefix(l, "caddy_passerelle_log_lines_lost_total "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatal("no caddy_passerelle_log_lines_lost_total on the metrics page")
	return 0
}
