package caddyplugin

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/passerelle-gw/passerelle/caddyplugin/pipeline"
)

// shedCount reads caddy_passerelle_provider_shed_total{provider, cause}.
func shedCount(t *testing.T, provider, cause string) float64 {
	t.Helper()
	return pipelineCounter(t, "caddy_passerelle_provider_shed_total", map[string]string{"provider": provider, "cause": cause})
}

// pipelineCounter reads the counter name of the pipeline's collectors
// whose labels include want (0 when there is none).
func pipelineCounter(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	for _, c := range pipeline.Collectors() {
		reg.MustRegister(c)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if maps.Equal(labels, want) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// freshGuards gives a test guards of its own: they live for the process,
// and an open circuit would refuse the next tests' calls.
func freshGuards(t *testing.T) {
	t.Helper()
	guards.reset()
	t.Cleanup(guards.reset)
}

// TestI06_ProviderCircuit: five consecutive provider failures (503 here)
// open the provider's circuit; the next calls are answered 503 at once,
// without reaching the provider, and counted; a 4xx or a 500 is an answer,
// not a failure (a caller's input may provoke a 500).
// req: I06
func TestI06_ProviderCircuit(t *testing.T) {
	freshGuards(t)
	f := newFixture(t, func(a *App) { a.Cache.MaxEntries = 2001 })
	var calls atomic.Int64
	status := http.StatusInternalServerError
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"errors":[]}`))
		return nil
	})
	serve := func() int {
		t.Helper()
		w := f.serveWith(t, context.Background(), testToken, next)
		return w.Code
	}
	for _, status = range []int{http.StatusNotFound, http.StatusInternalServerError} {
		for range 6 {
			serve() // answers: the circuit stays closed
		}
	}
	status = http.StatusServiceUnavailable
	for i := range 5 {
		if code := serve(); code == http.StatusServiceUnavailable {
			t.Fatalf("failure %d refused: the circuit opened early", i+1)
		}
	}
	before := calls.Load()
	shedBefore := shedCount(t, "CNAV", "circuit_open")
	for range 3 {
		w := f.serveWith(t, context.Background(), testToken, next)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), `"00503"`) {
			t.Fatalf("open circuit: %d %v %s", w.Code, w.Header(), w.Body)
		}
	}
	if n := calls.Load() - before; n != 0 {
		t.Fatalf("the provider was called %d times while its circuit was open", n)
	}
	if got := shedCount(t, "CNAV", "circuit_open") - shedBefore; got != 3 {
		t.Fatalf("provider_shed_total{cause=circuit_open} rose by %v, want 3", got)
	}
	recs := f.audit.All()
	if last := recs[len(recs)-1].ContextMap(); last["reason"] != "provider_error" || last["decision"] != "error" {
		t.Fatalf("audit record of a refused call: %v", last)
	}
}

// TestF07_ProviderInFlightCap: with the provider's calls in flight at the
// cap (64), one more call is refused at once with 503 and Retry-After, not
// queued; the calls in flight all complete.
// req: F07
func TestF07_ProviderInFlightCap(t *testing.T) {
	freshGuards(t)
	f := newFixture(t, func(a *App) {
		a.Cache.MaxEntries = 2002
		a.RateLimits = RateLimitConfig{Habilitation: "1000000/s", ClientIP: "1000000/s"}
	})
	release := make(chan struct{})
	var inside atomic.Int64
	slow := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		inside.Add(1)
		<-release
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(unitBody))
		return nil
	})
	f.serveWith(t, context.Background(), testToken, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(unitBody))
		return nil
	})) // the token's facts in cache: the calls below only wait on the provider
	var wg sync.WaitGroup
	codes := make(chan int, providerMaxInFlight)
	for range providerMaxInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- f.serveWith(t, context.Background(), testToken, slow).Code
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); inside.Load() < providerMaxInFlight; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("%d calls reached the provider", inside.Load())
		}
	}
	done := make(chan int, 1)
	go func() { done <- f.serveWith(t, context.Background(), testToken, slow).Code }()
	select {
	case code := <-done:
		if code != http.StatusServiceUnavailable {
			t.Errorf("call past the cap: %d, want 503", code)
		}
	case <-time.After(5 * time.Second):
		t.Error("the call past the cap waited for a place")
	}
	close(release)
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != http.StatusOK {
			t.Fatalf("a call in flight ended %d", code)
		}
	}
	if n := shedCount(t, "CNAV", "in_flight"); n < 1 {
		t.Errorf("provider_shed_total{cause=in_flight} = %v", n)
	}
	if w := f.serveWith(t, context.Background(), testToken, slow); w.Code != http.StatusOK {
		t.Errorf("after the calls ended, a call: %d", w.Code)
	}
}

// TestF09_I16_MemoryPressureSheds (SECURITY.md F09, I16): near the memory
// limit a data request is refused at once, once routed, 503 with
// Retry-After, before any quota, token check or provider call; readiness
// says so; once the pressure is gone, served.
func TestF09_I16_MemoryPressureSheds(t *testing.T) {
	f := newFixture(t)
	var pressure atomic.Bool
	f.h.pipe.MemoryPressure = pressure.Load
	pressure.Store(true)
	f.upstream = nil
	w := f.serve(t, context.Background(), testToken, "recipient="+testSIRET, unitBody)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || f.upstream != nil {
		t.Fatalf("under memory pressure: %d, Retry-After %q, provider called %v", w.Code, w.Header().Get("Retry-After"), f.upstream != nil)
	}
	if !strings.Contains(w.Body.String(), `"code":"00503"`) {
		t.Fatalf("body %s", w.Body)
	}
	// Routing comes first: an unknown route is still a 404.
	r := httptest.NewRequest(http.MethodGet, "/v3/unknown?recipient="+testSIRET, nil)
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	unknown := httptest.NewRecorder()
	if err := f.h.ServeHTTP(unknown, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })); err != nil || unknown.Code != http.StatusNotFound {
		t.Fatalf("an unknown route under memory pressure: %d %v", unknown.Code, err)
	}
	f.h.app.shared.MemoryPressure = pressure.Load
	if got := f.h.app.readiness(context.Background())["memory"]; got != "unavailable" {
		t.Fatalf("readiness under memory pressure: memory %q", got)
	}
	pressure.Store(false)
	if w := f.serve(t, context.Background(), testToken, "recipient="+testSIRET, unitBody); w.Code != http.StatusOK {
		t.Fatalf("after the pressure: %d", w.Code)
	}
}
