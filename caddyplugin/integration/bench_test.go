package integration

import (
	"fmt"
	"io"
	"net/http"
	"testing"
)

// plainTarget is what the gateway sends upstream for the cnaf_qfv2 token:
// the baseline route asks the same sandbox provider for it through a plain
// reverse_proxy, so both sides do the same upstream work.
const plainTarget = "/v3/dss/quotient_familial/identite?nomNaissance=CNAF&prenoms%5B%5D=Georges&anneeDateNaissance=2002&moisDateNaissance=1&jourDateNaissance=1&sexeEtatCivil=M&codeCogInseePaysNaissance=99100&codeCogInseeCommuneNaissance=75002&recipient=" + siret

// BenchmarkCachedToken compares, in one run on one machine, Caddy's plain
// reverse_proxy to the sandbox provider with the same request through
// Passerelle carrying a cached FranceConnect token. The ratio of the two
// ns/op figures is the cost of Passerelle on its hot path:
//
//	go test -run '^$' -bench CachedToken -benchtime 5s ./caddyplugin/integration/
func BenchmarkCachedToken(b *testing.B) {
	start(b, options{MaxEntries: 3001})
	warm := get(b, gatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...)
	if warm.status != 200 {
		b.Fatalf("warm-up: status %d: %s", warm.status, warm.body)
	}
	if a := get(b, plainPort, plainTarget); a.status != 200 {
		b.Fatalf("baseline: status %d: %s", a.status, a.body)
	}
	run := func(b *testing.B, port int, target string, auth string) {
		tr := &http.Transport{MaxIdleConnsPerHost: 256}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		url := fmt.Sprintf("http://127.0.0.1:%d%s", port, target)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			for pb.Next() {
				resp, err := c.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	b.Run("reverse_proxy", func(b *testing.B) { run(b, plainPort, plainTarget, "") })
	b.Run("passerelle_cached", func(b *testing.B) { run(b, gatewayPort, qf("recipient="+siret), "Bearer cnaf_qfv2") })
}
