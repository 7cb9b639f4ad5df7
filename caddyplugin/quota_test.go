package caddyplugin

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestF03_QuotaPerHabilitation: over the quota, 429 00429 with Retry-After
// and the IETF fields RateLimit-Policy and RateLimit naming the quota that
// refused; every answer carries API Particulier's RateLimit headers.
func TestF03_QuotaPerHabilitation(t *testing.T) {
	f := newFixture(t)
	f.h.pipe.HabilitationQuota.Requests, f.h.pipe.HabilitationQuota.Per = 3, time.Minute
	for i := 0; i < 3; i++ {
		w := f.serve(t, context.Background(), testToken, "recipient="+testSIRET, unitBody)
		if w.Code != 200 || w.Header().Get("RateLimit-Limit") != "3" || w.Header().Get("RateLimit-Remaining") != strconv.Itoa(2-i) {
			t.Fatalf("request %d: status %d, headers %v", i, w.Code, w.Header())
		}
		if reset, _ := strconv.ParseInt(w.Header().Get("RateLimit-Reset"), 10, 64); reset < time.Now().Unix() {
			t.Fatalf("RateLimit-Reset %d is not a future Unix time", reset)
		}
		if w.Header().Get("RateLimit-Policy") != "" || w.Header().Get("RateLimit") != "" {
			t.Fatalf("request %d, served: RateLimit fields %v", i, w.Header())
		}
	}
	w := f.serve(t, context.Background(), testToken, "recipient="+testSIRET, unitBody)
	if w.Code != 429 || !strings.Contains(w.Body.String(), `"00429"`) || w.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q: %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if p, rl := w.Header().Get("RateLimit-Policy"), w.Header().Get("RateLimit"); p != `"habilitation";q=3;w=60` ||
		rl != `"habilitation";r=0;t=`+w.Header().Get("Retry-After") {
		t.Fatalf("RateLimit-Policy %q, RateLimit %q", p, rl)
	}
}

// TestF03_QuotaNotRewoundByOlderRequests: requests whose start time is
// older than the last one's (a FranceConnect round trip, a slow client)
// get no quota back: the limiter reads its own clock, not the request's.
func TestF03_QuotaNotRewoundByOlderRequests(t *testing.T) {
	f := newFixture(t)
	f.h.pipe.HabilitationQuota.Requests, f.h.pipe.HabilitationQuota.Per = 10, 10*time.Second
	n := 0
	f.h.pipe.Now = func() time.Time { // every other request started 5 s ago
		n++
		return time.Now().Add(-time.Duration(n%2) * 5 * time.Second)
	}
	ok := 0
	for range 60 {
		if f.serve(t, context.Background(), testToken, "recipient="+testSIRET, unitBody).Code == 200 {
			ok++
		}
	}
	if ok > 10 {
		t.Fatalf("%d requests answered within a 10-per-10 s quota", ok)
	}
}

// serveFrom runs one quotient familial request with token from a client
// address through the handler.
func (f *fixture) serveFrom(t testing.TB, ctx context.Context, addr, token string) *httptest.ResponseRecorder {
	t.Helper()
	return f.serveFromWith(t, ctx, addr, token, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, unitBody)
		return nil
	}))
}

// TestF04_FailedAuthBeforeFranceConnect: the review's attack, a flood of
// junk tokens from one address, each relayed to FranceConnect: once the
// address has spent its failed authentications (5 a minute here, 20 by
// default), a token the cache does not hold is refused 429 with
// Retry-After before checktoken is asked, junk or not; a token already
// checked is still served, and another address is not affected.
// req: F04
func TestF04_FailedAuthBeforeFranceConnect(t *testing.T) {
	f := newFixture(t, func(a *App) { a.RateLimits.FailedAuth = "5/m" })
	ctx := context.Background()
	const attacker, neighbour = "198.51.100.7", "203.0.113.9"
	if w := f.serveFrom(t, ctx, attacker, testToken); w.Code != 200 {
		t.Fatalf("a valid token: %d", w.Code)
	}
	codes := map[int]int{}
	for i := range 100 {
		codes[f.serveFrom(t, ctx, attacker, "junk-"+strconv.Itoa(i)).Code]++
	}
	if codes[401] != 5 || codes[429] != 95 || f.checks.Load() != 6 {
		t.Fatalf("answers %v, %d checktoken calls; want 5×401, 95×429, 6 calls (the valid token's and 5 junk ones)", codes, f.checks.Load())
	}
	w := f.serveFrom(t, ctx, attacker, "junk-again")
	if w.Code != 429 || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), `"00429"`) ||
		w.Header().Get("Ratelimit-Limit") != "5" || w.Header().Get("Ratelimit-Remaining") != "0" ||
		w.Header().Get("Ratelimit-Policy") != `"failed_auth";q=5;w=60` || !strings.HasPrefix(w.Header().Get("Ratelimit"), `"failed_auth";r=0;t=`) {
		t.Fatalf("spent: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if w := f.serveFrom(t, ctx, attacker, testToken); w.Code != 200 {
		t.Fatalf("the token checked before: %d", w.Code)
	}
	if w := f.serveFrom(t, ctx, attacker, acrTokenPrefix+"eidas2"); w.Code != 429 || f.checks.Load() != 6 {
		t.Fatalf("a new valid token from the spent address: %d, %d checktoken calls", w.Code, f.checks.Load())
	}
	if w := f.serveFrom(t, ctx, neighbour, "junk-neighbour"); w.Code != 401 || f.checks.Load() != 7 {
		t.Fatalf("another address: %d, %d checktoken calls", w.Code, f.checks.Load())
	}
}

// TestF04_FailedAuthConcurrentAndCancelled: the second review's attacks on
// the quota: 40 junk tokens at once, half of their requests hanging up
// before FranceConnect answers. The quota (5) bounds the checktoken calls
// however many arrive together, and a request that hangs up still has its
// refusal counted (the call runs on, detached): afterwards the address is
// refused, and FranceConnect saw 5 tokens.
// req: F04
func TestF04_FailedAuthConcurrentAndCancelled(t *testing.T) {
	f := newFixture(t, func(a *App) { a.RateLimits.FailedAuth = "5/m" })
	f.slowFC.Store(true)
	const attacker = "198.51.100.8"
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			ctx := context.Background()
			if i%2 == 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 20*time.Millisecond)
				defer cancel()
			}
			f.serveFrom(t, ctx, attacker, "junk-together-"+strconv.Itoa(i))
		})
	}
	wg.Wait()
	time.Sleep(400 * time.Millisecond) // the detached calls end
	if w := f.serveFrom(t, context.Background(), attacker, "junk-after"); w.Code != 429 {
		t.Fatalf("after the flood: %d", w.Code)
	}
	if n := f.checks.Load(); n != 5 {
		t.Fatalf("%d checktoken calls for a quota of 5", n)
	}
}

// TestF04_FranceConnectFailuresKeepTheirUnit: the third review's case.
// FranceConnect failing (here 502; its own 429 is the same) does not give
// the unit back: a network cannot keep relaying tokens to a FranceConnect
// that is already refusing the gateway, one answer after the other.
// req: F04
func TestF04_FranceConnectFailuresKeepTheirUnit(t *testing.T) {
	f := newFixture(t, func(a *App) { a.RateLimits.FailedAuth = "5/m" })
	f.fcDown.Store(true)
	codes := map[int]int{}
	for i := range 20 {
		codes[f.serveFrom(t, context.Background(), "198.51.100.9", "new-token-"+strconv.Itoa(i)).Code]++
	}
	if codes[503] != 5 || codes[429] != 15 || f.checks.Load() != 5 {
		t.Fatalf("answers %v, %d checktoken calls; want 5×503, 15×429, 5 calls", codes, f.checks.Load())
	}
}

// TestF04_ClientQuotaBeforeFranceConnect: junk tokens from one address are
// refused with 429 once its quota is spent: the quota is checked before the
// token, which would otherwise answer 401.
func TestF04_ClientQuotaBeforeFranceConnect(t *testing.T) {
	f := newFixture(t)
	f.h.pipe.ClientQuota.Requests, f.h.pipe.ClientQuota.Per = 5, time.Minute
	codes := map[int]int{}
	for i := 0; i < 8; i++ {
		codes[f.serve(t, context.Background(), "junk-"+strconv.Itoa(i), "recipient="+testSIRET, unitBody).Code]++
	}
	if codes[401] != 5 || codes[429] != 3 {
		t.Fatalf("answers %v, want 5×401 then 3×429", codes)
	}
}

// TestF03_QuotasOutliveANewCore: a reload that builds a new core (here a
// provider credential changed) carries on the quotas already spent, in
// process (no Redis): a habilitation past its quota is still refused
// after it. Each new core used to come with whole quotas, so a caller
// could spend its quota again at each such reload.
func TestF03_QuotasOutliveANewCore(t *testing.T) {
	quota := func(a *App) { a.RateLimits.Habilitation = "3/m" }
	f := newFixture(t, quota)
	for i := range 3 {
		if w := f.serve(t, context.Background(), testToken, "recipient="+testSIRET, unitBody); w.Code != http.StatusOK {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	g := reloadedFixture(t, quota, func(a *App) { a.Upstreams["CNAV"].HeaderValue = "Bearer another-provider-key" })
	if g.h.app.core == f.h.app.core {
		t.Fatal("the reload kept the core: the test shows nothing")
	}
	if w := g.serve(t, context.Background(), testToken, "recipient="+testSIRET, unitBody); w.Code != http.StatusTooManyRequests {
		t.Fatalf("after a reload with a new core, the habilitation past its quota got %d, want 429", w.Code)
	}
}
