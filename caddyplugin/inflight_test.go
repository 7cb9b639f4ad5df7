package caddyplugin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// requestsShed reads caddy_passerelle_requests_shed_total{cause}.
func requestsShed(t *testing.T, cause string) float64 {
	t.Helper()
	return pipelineCounter(t, "caddy_passerelle_requests_shed_total", map[string]string{"cause": cause})
}

// TestF07_RequestsInFlightCap (SECURITY.md F07, "overall"): with the
// instance's requests at its max_in_flight, one more is refused at once,
// 503 00503 with Retry-After, without reaching the provider (whose own cap
// is far from full), and counted; the requests in flight all complete, and
// each gives its place back, a panicking one too. When the configuration
// stops, the cap it set is undone.
// req: F07
func TestF07_RequestsInFlightCap(t *testing.T) {
	freshGuards(t)
	f := newFixture(t, func(a *App) {
		a.Cache.MaxEntries = 2003
		a.RateLimits = RateLimitConfig{Habilitation: "1000000/s", ClientIP: "1000000/s"}
		a.MaxInFlight = 3
	})
	if err := f.h.app.Start(); err != nil {
		t.Fatal(err)
	}
	p := occupyProvider(t, f, 3)
	shedBefore := requestsShed(t, "in_flight")
	w := f.serveWith(t, context.Background(), testToken, p.slow)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), `"00503"`) {
		t.Errorf("a fourth request with max_in_flight 3: %d %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if n := p.inside.Load(); n != 3 {
		t.Errorf("%d calls reached the provider, want the 3 admitted", n)
	}
	if got := requestsShed(t, "in_flight") - shedBefore; got != 1 {
		t.Errorf("requests_shed_total{cause=in_flight} rose by %v, want 1", got)
	}
	p.end(t)
	if n := requestsInFlight.InFlight(); n != 0 {
		t.Errorf("%d places still taken once every request ended", n)
	}

	panicking := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		panic(errors.New("provider panic"))
	})
	if w := f.serveWith(t, context.Background(), testToken, panicking); w.Code != http.StatusInternalServerError {
		t.Errorf("panicking provider: %d", w.Code)
	}
	if n := requestsInFlight.InFlight(); n != 0 {
		t.Errorf("a panicking request kept its place (%d taken)", n)
	}
	if w := f.serveWith(t, context.Background(), testToken, p.slow); w.Code != http.StatusOK {
		t.Errorf("after the requests ended, a request: %d", w.Code)
	}

	if err := f.h.app.Stop(); err != nil {
		t.Fatal(err)
	}
	if n := requestsInFlight.Max(); n != DefaultRequestsInFlight {
		t.Errorf("after the configuration stopped, max_in_flight %d, want the default %d back", n, DefaultRequestsInFlight)
	}
}

// TestMaxInFlightOption: the passerelle option max_in_flight is 1 to
// 100 000, or unset (4 096), in the Caddyfile and in JSON.
func TestMaxInFlightOption(t *testing.T) {
	for n, ok := range map[int64]bool{0: true, 1: true, MaxRequestsInFlight: true, MaxRequestsInFlight + 1: false, -1: false} {
		a := &App{Mode: ModeSandbox, MaxInFlight: n}
		if err := a.Validate(); (err == nil) != ok {
			t.Errorf("max_in_flight %d: %v", n, err)
		}
	}
	for in, want := range map[string]int64{"12": 12, "0": -1, "100001": -1, "many": -1} {
		app, err := parseGlobal(t, "passerelle {\n max_in_flight "+in+"\n}")
		switch {
		case want < 0 && err == nil:
			t.Errorf("max_in_flight %s accepted", in)
		case want >= 0 && (err != nil || app.MaxInFlight != want):
			t.Errorf("max_in_flight %s: %v", in, err)
		}
	}
}
