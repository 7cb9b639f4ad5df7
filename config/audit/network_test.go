package audit

import (
	"slices"
	"strings"
	"testing"
)

// TestPA11ThroughProxy: metrics and probes on an internal listener are
// public all the same when a public server's reverse_proxy dials it,
// directly or through another internal server of the same Caddy; a proxy
// to a loopback port no server of this Caddy listens on reaches none.
func TestPA11ThroughProxy(t *testing.T) {
	cases := []struct {
		name string
		dial string
		app  bool // an internal app server on 127.0.0.1:8080 proxying to the metrics
		want bool
	}{
		{"the metrics listener", "127.0.0.1:9090", false, true},
		{"the metrics listener as localhost", "localhost:9090", false, true},
		{"through an internal app server", "127.0.0.1:8080", true, true},
		{"another loopback port", "127.0.0.1:8081", false, false},
		{"an internal app server not proxying to the metrics", "127.0.0.1:8080", false, false},
	}
	for _, tc := range cases {
		c := clean()
		addRoute(c, proxyTo(tc.dial, true))
		app := []any{map[string]any{"handle": []any{map[string]any{"handler": "static_response", "status_code": 204.0}}}}
		if tc.app {
			app = []any{map[string]any{"handle": []any{proxyTo("127.0.0.1:9090", true)}}}
		}
		obj(c, "apps", "http", "servers")["app"] = map[string]any{"listen": []any{"127.0.0.1:8080"}, "routes": app}
		fs := run(t, c)
		got := slices.Contains(rulesOf(fs), "PA11")
		if got != tc.want {
			t.Errorf("%s: PA11 %v, want %v (%+v)", tc.name, got, tc.want, fs)
		}
		if got && !strings.Contains(fs[0].Detail, "through the reverse_proxy at apps.http.servers.") {
			t.Errorf("%s: the proxy is not named: %+v", tc.name, fs)
		}
	}
	for dial, listen := range map[string]string{"unix//run/p/metrics.sock": "unix//run/p/metrics.sock|0220", "[::1]:9090": "tcp6/localhost:9090-9091"} {
		if !reaches(dial, listen) {
			t.Errorf("%s does not reach %s", dial, listen)
		}
	}
}
