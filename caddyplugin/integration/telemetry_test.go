package integration

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestI12_TelemetryCollectorDown: with Caddy's tracing on, the gateway's
// spans reach the OTLP collector; once the collector is gone (connection
// refused), the gateway serves as before: every request answers at once,
// its spans dropped in the background, never waited for (the exporter's
// own timeout is 10 s: a request that waited on it would take that long).
// req: I12
func TestI12_TelemetryCollectorDown(t *testing.T) {
	var batches atomic.Int64
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/traces" {
			batches.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")

	cfg := config(t, options{MaxEntries: 1701})
	const site = "\thandle {\n\t\tpasserelle\n"
	if !strings.Contains(cfg, site) {
		t.Fatal("the gateway site changed: update this test")
	}
	cfg = strings.Replace(cfg, site, "\ttracing {\n\t\tspan passerelle\n\t}\n"+site, 1)
	setEnv(t)
	caddytest.NewTester(t).InitServer(cfg, "caddyfile")

	serve := func(phase string, n int) {
		t.Helper()
		for i := range n {
			start := time.Now()
			a := get(t, gatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...)
			if a.status != 200 {
				t.Fatalf("%s, request %d: status %d %s", phase, i, a.status, a.body)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("%s, request %d took %v: it waited on the collector", phase, i, d)
			}
		}
	}
	serve("collector up", 20)
	for deadline := time.Now().Add(5 * time.Second); batches.Load() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no span reached the collector: tracing is not on")
		}
	}
	collector.Close()
	// Long enough for several export attempts to fail meanwhile.
	for until := time.Now().Add(time.Second); time.Now().Before(until); {
		serve("collector down", 20)
	}
}
