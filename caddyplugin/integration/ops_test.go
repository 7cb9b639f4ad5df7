package integration

import (
	"strconv"
	"strings"
	"testing"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/clock"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/tokencache/redistest"
)

// TestReadinessFlipsWithRedis: /ready answers 200 while FranceConnect keys
// are held and Redis answers, 503 once Redis is stopped; /live stays 200.
func TestReadinessFlipsWithRedis(t *testing.T) {
	srv := redistest.Start(t)
	start(t, options{MaxEntries: 10001, Redis: srv.Addr})
	if a := get(t, internalPort, "/ready"); a.status != 200 || !strings.Contains(string(a.body), `"redis":"ok"`) {
		t.Fatalf("ready: status %d %s", a.status, a.body)
	}
	srv.Kill()
	a := get(t, internalPort, "/ready")
	if a.status != 503 || !strings.Contains(string(a.body), `"redis":"unavailable"`) || !strings.Contains(string(a.body), `"franceconnect_keys":"ok"`) {
		t.Fatalf("ready with Redis down: status %d %s", a.status, a.body)
	}
	if a := get(t, internalPort, "/live"); a.status != 200 {
		t.Fatalf("live: status %d", a.status)
	}
	// Requests still succeed (live checktoken); the failures are counted.
	if a := get(t, gatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...); a.status != 200 {
		t.Fatalf("with Redis down: status %d", a.status)
	}
	if m := get(t, internalPort, "/metrics"); !strings.Contains(string(m.body), `caddy_passerelle_cache_errors_total{kind="error"}`) {
		t.Error("Redis failures not counted in caddy_passerelle_cache_errors_total")
	}
}

// TestD09_NoHealthBypass (SECURITY.md §4 row 11, oauth2-proxy
// GHSA-5hvv-m4w4-gf6v): health paths on the API listener are not probes
// and skip no authentication, and a probe's User-Agent or a health-looking
// path on a data route gets no special case either.
func TestD09_NoHealthBypass(t *testing.T) {
	start(t, options{MaxEntries: 10002})
	for _, p := range []string{"/live", "/ready", "/health", "/metrics", "/api/ping",
		qfPath + "/health", qfPath + "/ping", "/ping" + qfPath} {
		a := get(t, gatewayPort, p, "User-Agent", "kube-probe/1.29")
		if a.status != 404 {
			t.Errorf("%s on the public listener: status %d", p, a.status)
		}
	}
	for _, ua := range []string{"kube-probe/1.29", "ELB-HealthChecker/2.0", "GoogleHC/1.0"} {
		if a := get(t, gatewayPort, qf("recipient="+siret), "User-Agent", ua); a.status != 401 || a.code(t) != "50004" {
			t.Errorf("a data route without a token, User-Agent %s: %d %s", ua, a.status, a.body)
		}
	}
}

// TestMetricsEndpointScraped: the metrics page lists Passerelle's series,
// with endpoint ids and codes only.
func TestMetricsEndpointScraped(t *testing.T) {
	start(t, options{MaxEntries: 10003})
	get(t, gatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...)
	get(t, gatewayPort, qf("recipient="+siret), bearer("nope")...)
	a := get(t, internalPort, "/metrics")
	if a.status != 200 {
		t.Fatalf("status %d", a.status)
	}
	body := string(a.body)
	for _, want := range []string{
		`caddy_passerelle_requests_total{code="",decision="allow",endpoint="dss_quotient_familial_fc"}`,
		`caddy_passerelle_requests_total{code="50002",decision="deny",endpoint="dss_quotient_familial_fc"}`,
		`caddy_passerelle_token_checks_total{result="active",source="checktoken"}`,
		`caddy_passerelle_provider_duration_seconds_bucket{provider="CNAV",status_class="2xx"`,
		`caddy_passerelle_mode{mode="sandbox"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics page lacks %s", want)
		}
	}
	// Caddy's own series name upstream addresses; ours name nothing of a caller.
	var ours []byte
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "caddy_passerelle_") {
			ours = append(ours, line+"\n"...)
		}
	}
	if leak := contains(ours, "cnaf_qfv2", "nope", "Georges", siret, "127.0.0.1"); leak != "" {
		t.Errorf("passerelle series hold %q", leak)
	}
}

// TestG11_ClockExported (SECURITY.md G11): the metrics page tells whether
// the kernel reports the clock synchronised, and its error bound, as the
// kernel has them; PasserelleClockNotSynchronised alerts on them
// (TestAlertRulesNameExposedMetrics checks the rule names them). The
// audit records' times are UTC (TestG01_AuditRecords).
// req: G11
func TestG11_ClockExported(t *testing.T) {
	start(t, options{MaxEntries: 10011})
	// The kernel's state read around the scrape: an NTP daemon may update
	// it in between (its maxerror back to ~0), and it grows 500 µs a second.
	before, err := clock.Read()
	a := get(t, internalPort, "/metrics")
	after, _ := clock.Read()
	values := map[string]float64{}
	for line := range strings.Lines(string(a.body)) {
		if name, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok && strings.HasPrefix(name, "caddy_passerelle_clock_") {
			values[name], _ = strconv.ParseFloat(v, 64)
		}
	}
	synced, ok := values["caddy_passerelle_clock_synchronised"]
	if err != nil {
		// A system that does not tell the state (gVisor, a seccomp filter,
		// not Linux): exported as not synchronised, with no error bound.
		if _, bound := values["caddy_passerelle_clock_max_error_seconds"]; !ok || synced != 0 || bound {
			t.Errorf("the state cannot be read (%v): exported %v", err, values)
		}
		return
	}
	if !ok || (synced == 1) != before.Synchronised && (synced == 1) != after.Synchronised {
		t.Errorf("caddy_passerelle_clock_synchronised %v (exported: %v), the kernel says %v then %v", synced, ok, before.Synchronised, after.Synchronised)
	}
	lo, hi := min(before.MaxError, after.MaxError).Seconds(), max(before.MaxError, after.MaxError).Seconds()
	if after.MaxError < before.MaxError {
		lo = 0 // updated in between
	}
	if got, ok := values["caddy_passerelle_clock_max_error_seconds"]; !ok || got < lo-0.01 || got > hi+0.01 {
		t.Errorf("caddy_passerelle_clock_max_error_seconds %v (exported: %v), the kernel says %v then %v", got, ok, before.MaxError, after.MaxError)
	}
}
