package caddyplugin

import (
	"context"
	"testing"
)

// BenchmarkHandlerCachedToken measures the handler alone on the cached-token
// path (token in L1, provider answer from a function): what Passerelle adds
// to a request, without the network or Caddy's server.
func BenchmarkHandlerCachedToken(b *testing.B) {
	f := newFixture(b, func(a *App) {
		// Quotas that never bite: the benchmark measures answers, not 429s.
		a.RateLimits = RateLimitConfig{Habilitation: "1000000/s", ClientIP: "1000000/s"}
	})
	q := "recipient=" + testSIRET
	if w := f.serve(b, context.Background(), testToken, q, unitBody); w.Code != 200 {
		b.Fatalf("warm-up: %d %s", w.Code, w.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		if w := f.serve(b, context.Background(), testToken, q, unitBody); w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}
