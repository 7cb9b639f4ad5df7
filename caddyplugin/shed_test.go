package caddyplugin

import (
	"context"
	"encoding/json"
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
	f := newCapFixture(t, 0)
	p := occupyProvider(t, f, DefaultProviderInFlight)
	if code := p.pastCap(t, f); code != http.StatusServiceUnavailable {
		t.Errorf("call past the cap: %d, want 503", code)
	}
	p.end(t)
	if n := shedCount(t, "CNAV", "in_flight"); n < 1 {
		t.Errorf("provider_shed_total{cause=in_flight} = %v", n)
	}
	if w := f.serveWith(t, context.Background(), testToken, p.slow); w.Code != http.StatusOK {
		t.Errorf("after the calls ended, a call: %d", w.Code)
	}
}

// TestF07_ProviderInFlightCapConfigured: an upstream's max_in_flight is
// the provider's cap once its configuration starts; a configuration that
// is loaded but never started (a refused reload), or started then stopped
// before any other (a reload whose start failed later), leaves the cap in
// force; the next one that starts brings its own, the calls in flight
// counted against it.
// req: F07
func TestF07_ProviderInFlightCapConfigured(t *testing.T) {
	freshGuards(t)
	start := func(f *fixture) {
		if err := f.h.app.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.h.app.Stop() })
	}
	f := newCapFixture(t, 3)
	start(f)
	p := occupyProvider(t, f, 3)
	if code := p.pastCap(t, f); code != http.StatusServiceUnavailable {
		t.Errorf("fourth call with max_in_flight 3: %d, want 503", code)
	}
	newCapFixture(t, 10) // provisioned, never started
	if code := p.pastCap(t, f); code != http.StatusServiceUnavailable {
		t.Errorf("a configuration that did not start changed the cap: %d, want 503", code)
	}
	aborted := newCapFixture(t, 10_000)
	start(aborted)
	if err := aborted.h.app.Stop(); err != nil {
		t.Fatal(err)
	}
	if code := p.pastCap(t, f); code != http.StatusServiceUnavailable {
		t.Errorf("a configuration started then stopped left its cap: %d, want 503", code)
	}
	start(newCapFixture(t, 4))
	p.more(t, f, 1) // 4 in flight, the 3 admitted under the old cap counted
	if code := p.pastCap(t, f); code != http.StatusServiceUnavailable {
		t.Errorf("fifth call with max_in_flight 4: %d, want 503", code)
	}
	p.end(t)
}

// TestF07_MaxInFlightBounds: an upstream's max_in_flight is 1 to 10 000,
// or unset (64), in either mode.
func TestF07_MaxInFlightBounds(t *testing.T) {
	for n, ok := range map[int64]bool{0: true, 1: true, 10_000: true, 10_001: false, -1: false} {
		for _, mode := range []string{ModeSandbox, ModeProduction} {
			a := &App{Mode: mode, Upstreams: map[string]*UpstreamConfig{"CNAV": {MaxInFlight: n}}}
			err := a.Validate()
			if refused := err != nil && strings.Contains(err.Error(), "max_in_flight"); refused == ok {
				t.Errorf("%s mode, max_in_flight %d: %v", mode, n, err)
			}
		}
	}
}

// TestMaxInFlightKeepsTheCore: a configuration that changes only an
// upstream's max_in_flight shares the running one's core (credentials,
// limiter, in-process quotas), as any reload with the same credentials.
func TestMaxInFlightKeepsTheCore(t *testing.T) {
	f := newCapFixture(t, 3)
	raw, err := json.Marshal(f.h.app)
	if err != nil {
		t.Fatal(err)
	}
	next := new(App)
	if err := json.Unmarshal(raw, next); err != nil {
		t.Fatal(err)
	}
	next.Upstreams["CNAV"].MaxInFlight = 200
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := next.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = next.Cleanup() })
	if next.core != f.h.app.core {
		t.Fatal("a new max_in_flight made a new core")
	}
	other := new(App)
	_ = json.Unmarshal(raw, other)
	other.Upstreams["CNAV"].HeaderValue = "Bearer another-key"
	if err := other.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Cleanup() })
	if other.core == f.h.app.core {
		t.Fatal("a new credential kept the core")
	}
}

// newCapFixture is a fixture whose upstream CNAV has max_in_flight n (0:
// unset), with quotas that never bite.
func newCapFixture(t *testing.T, n int64) *fixture {
	return newFixture(t, func(a *App) {
		a.Cache.MaxEntries = 2002
		a.RateLimits = RateLimitConfig{Habilitation: "1000000/s", ClientIP: "1000000/s"}
		a.Upstreams["CNAV"].MaxInFlight = n
	})
}

// heldCalls are provider calls held in flight until end.
type heldCalls struct {
	slow    caddyhttp.HandlerFunc // a provider that holds each call
	release chan struct{}
	inside  atomic.Int64
	wg      sync.WaitGroup
	codes   chan int
}

// occupyProvider caches the token's facts, then starts n calls that the
// provider holds, and returns once all n are inside.
func occupyProvider(t *testing.T, f *fixture, n int) *heldCalls {
	t.Helper()
	f.serveWith(t, context.Background(), testToken, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(unitBody))
		return nil
	})) // the token's facts in cache: the calls below only wait on the provider
	p := &heldCalls{release: make(chan struct{}), codes: make(chan int, n+16)}
	p.slow = func(w http.ResponseWriter, r *http.Request) error {
		p.inside.Add(1)
		select {
		case <-p.release:
		case <-r.Context().Done(): // a call admitted past the cap, given up
			return r.Context().Err()
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(unitBody))
		return nil
	}
	p.more(t, f, n)
	return p
}

// more starts n more held calls and waits until they are inside.
func (p *heldCalls) more(t *testing.T, f *fixture, n int) {
	t.Helper()
	want := p.inside.Load() + int64(n)
	for range n {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.codes <- f.serveWith(t, context.Background(), testToken, p.slow).Code
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); p.inside.Load() < want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			close(p.release)
			t.Fatalf("%d calls reached the provider, want %d", p.inside.Load(), want)
		}
	}
}

// pastCap makes one more call, given up after 2 s if admitted, and
// returns its status.
func (p *heldCalls) pastCap(t *testing.T, f *fixture) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return f.serveWith(t, ctx, testToken, p.slow).Code
}

// end releases the held calls and checks that each was answered 200.
func (p *heldCalls) end(t *testing.T) {
	t.Helper()
	close(p.release)
	p.wg.Wait()
	close(p.codes)
	for code := range p.codes {
		if code != http.StatusOK {
			t.Fatalf("a call in flight ended %d", code)
		}
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

// stalledWriter is a caller that reads nothing: its first Write blocks
// until unblock is closed, after telling stalled.
type stalledWriter struct {
	*httptest.ResponseRecorder
	stalled, unblock chan struct{}
	once             sync.Once
}

func (s *stalledWriter) Write(p []byte) (int, error) {
	s.once.Do(func() { close(s.stalled) })
	<-s.unblock
	return s.ResponseRecorder.Write(p)
}

// TestF07_SlowReaderHoldsNoProviderSlot: a provider's slot is given back
// once its answer is captured, before the answer is written to the caller:
// a caller that reads nothing (an HTTP/2 window of 0) holds no slot, and the
// provider's other callers are served, at a cap of one call in flight.
// req: F07
func TestF07_SlowReaderHoldsNoProviderSlot(t *testing.T) {
	freshGuards(t)
	f := newCapFixture(t, 1)
	if err := f.h.app.Start(); err != nil { // the cap applies once started
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.h.app.Stop() })
	answer := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(unitBody))
		return nil
	})
	f.serveWith(t, context.Background(), testToken, answer) // the token's facts in cache
	slow := &stalledWriter{ResponseRecorder: httptest.NewRecorder(), stalled: make(chan struct{}), unblock: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := httptest.NewRequest(http.MethodGet, "/v3/dss/quotient_familial/france_connect?recipient="+testSIRET, nil)
		r.Header.Set("Authorization", "Bearer "+testToken)
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		if err := f.h.ServeHTTP(slow, r, answer); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-slow.stalled:
	case <-time.After(5 * time.Second):
		t.Fatal("the stalled caller's answer was never written")
	}
	w := f.serveWith(t, context.Background(), testToken, answer)
	close(slow.unblock)
	<-done
	if w.Code != http.StatusOK {
		t.Fatalf("another caller while one reads nothing: %d %s, want 200", w.Code, w.Body)
	}
	if slow.Code != http.StatusOK {
		t.Fatalf("the slow reader: %d", slow.Code)
	}
}
