package e2e

import (
	"net/http"
	"testing"
	"time"
)

// BenchmarkCallback measures FranceConnect's callback as the citizen's
// browser waits for it — code exchange, then userinfo and the quotient
// familial at the same time, the session, the redirect — with the sandbox
// FranceConnect's userinfo and the sandbox provider each answering after
// 200 ms. ms-added/op is the callback's time beyond those 200 ms (the
// issue's bar: 250 ms; calls made one after the other would add 200 ms at
// least):
//
//	go test -run '^$' -bench Callback -benchtime 20x ./caddyplugin/front/e2e/
func BenchmarkCallback(b *testing.B) {
	const latency = 200 * time.Millisecond
	for _, tc := range []struct {
		name    string
		latency time.Duration
	}{{"no_latency", 0}, {"userinfo_and_provider_200ms", latency}} {
		b.Run(tc.name, func(b *testing.B) {
			e := startEnv(b, envOptions{latency: tc.latency})
			var added time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				c := newCitizen(b, e)
				cb := c.choose(c.start("/espace-famille/", "login"), "angela")
				b.StartTimer()
				t0 := time.Now()
				p := c.get(cb)
				added += time.Since(t0) - tc.latency
				if p.status != http.StatusSeeOther {
					b.Fatalf("callback: %d", p.status)
				}
			}
			b.ReportMetric(float64(added.Microseconds())/1000/float64(b.N), "ms-added/op")
		})
	}
}
