package caddyplugin

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// overheadBench serves one cached-token request as the load harness sends
// it, with a reusable response writer and a provider function, either by
// the provider alone or through the handler, with the audit trail
// JSON-encoded as Caddy does to a discarding sink.
type overheadBench struct {
	f        *fixture
	base     *http.Request
	provider caddyhttp.HandlerFunc
	w        *discardWriter
}

func newOverheadBench(tb testing.TB) *overheadBench {
	tb.Helper()
	f := newFixture(tb, func(a *App) {
		// Quotas that never bite: the benchmark measures answers, not 429s.
		a.RateLimits = RateLimitConfig{Habilitation: "1000000/s", ClientIP: "1000000/s"}
	})
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	f.h.audit = zap.New(zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zap.InfoLevel)).Named("passerelle.audit")
	if err := f.h.provisionWith(f.h.app); err != nil {
		tb.Fatal(err)
	}
	base, err := http.NewRequest(http.MethodGet, "http://gw.test/v3/dss/quotient_familial/france_connect?recipient="+testSIRET, nil)
	if err != nil {
		tb.Fatal(err)
	}
	base.RemoteAddr, base.RequestURI = "192.0.2.10:40000", base.URL.RequestURI()
	base.Header.Set("Authorization", "Bearer "+testToken)
	base.Header.Set("User-Agent", "wrk")
	base = base.WithContext(context.WithValue(base.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	o := &overheadBench{f: f, base: base, w: &discardWriter{h: http.Header{}}}
	o.provider = func(w http.ResponseWriter, r *http.Request) error {
		w.Header()["Content-Type"] = []string{"application/json"}
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, unitBody)
		return nil
	}
	o.serve(tb, true) // the token's one checktoken
	return o
}

// serve answers one request, through the handler or by the provider alone.
func (o *overheadBench) serve(tb testing.TB, passerelle bool) {
	r := *o.base
	r.Header = http.Header{"Authorization": o.base.Header["Authorization"], "User-Agent": o.base.Header["User-Agent"]}
	clear(o.w.h)
	o.w.code = 0
	var err error
	if passerelle {
		err = o.f.h.ServeHTTP(o.w, &r, o.provider)
	} else {
		err = o.provider(o.w, &r)
	}
	if err != nil || o.w.code != http.StatusOK {
		tb.Fatalf("status %d, %v", o.w.code, err)
	}
}

// BenchmarkOverhead is what the cached-token path adds to a request: the
// same request, response writer and provider function, served by the
// provider alone ("provider") and through the handler ("passerelle"). The
// difference of the two is Passerelle's cost, without the network nor
// Caddy's server (deploy/bench/run.sh measures those).
func BenchmarkOverhead(b *testing.B) {
	o := newOverheadBench(b)
	for _, name := range []string{"provider", "passerelle"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				o.serve(b, name == "passerelle")
			}
		})
	}
}

// TestCachedPathAllocations bounds the allocations the cached-token path
// adds to a request (15 at this commit: the call, its request id and
// RateLimit values, the provider request, its URL query and headers, the
// audit record's time, the citizen quota's decision, and 4 for the
// deadline of the whole provider call: its context, timer and cancel
// function, and the request context's list of children). A regression
// here is GC work on every request.
func TestCachedPathAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	o := newOverheadBench(t)
	provider := testing.AllocsPerRun(200, func() { o.serve(t, false) })
	passerelle := testing.AllocsPerRun(200, func() { o.serve(t, true) })
	if added := passerelle - provider; added > 15 {
		t.Fatalf("the cached-token path allocates %.0f times per request, want at most 15", added)
	}
}

// discardWriter is a reusable http.ResponseWriter that keeps the status only.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}
