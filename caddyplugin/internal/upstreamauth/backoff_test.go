package upstreamauth

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// TestB11_FailingTokenEndpointPaused: a token endpoint that fails (here
// 500) is not asked once per provider request: after a failure, requests
// are answered ErrTokenUnavailable without a token request for
// FetchBackoffMin, then for twice as long after each failure in a row, up
// to FetchBackoffMax; the first success ends the pauses.
// req: B11
func TestB11_FailingTokenEndpointPaused(t *testing.T) {
	e := newTokenEndpoint(t)
	var down atomic.Bool
	down.Store(true)
	e.setHandler(func(w http.ResponseWriter, r *http.Request) bool {
		if down.Load() {
			http.Error(w, "unavailable", http.StatusInternalServerError)
			return true
		}
		return false
	})
	c := newClock()
	s := newSource(t, e, func(cfg *OAuth2Config) { cfg.Now = c.Now })
	failNow := func(what string) {
		t.Helper()
		if err := s.Apply(context.Background(), http.Header{}); !errors.Is(err, ErrTokenUnavailable) {
			t.Fatalf("%s: %v, want ErrTokenUnavailable", what, err)
		}
	}
	failNow("endpoint down")
	// One fetch may be two HTTP requests (x/oauth2 tries the other client
	// authentication style after a failure): count fetches in those.
	perFetch := e.calls.Load()
	fetches := func() int64 { return e.calls.Load() / perFetch }
	for range 19 {
		failNow("endpoint down")
	}
	if n := fetches(); n != 1 {
		t.Fatalf("20 requests within the first pause: %d token fetches, want 1", n)
	}
	// Pauses of 1, 2, 4, 8, 16, then 30 s: one token fetch at the end of
	// each.
	for i, pause := range []time.Duration{1, 2, 4, 8, 16, 30, 30} {
		c.Advance(pause*time.Second - time.Millisecond)
		failNow("within a pause")
		if n := fetches(); n != int64(i+1) {
			t.Fatalf("pause %d (%v): %d token fetches before its end, want %d", i, pause, n, i+1)
		}
		c.Advance(time.Millisecond)
		failNow("at the end of a pause, still down")
		if n := fetches(); n != int64(i+2) {
			t.Fatalf("pause %d (%v): %d token fetches at its end, want %d", i, pause, n, i+2)
		}
	}
	down.Store(false)
	c.Advance(FetchBackoffMax)
	if got := apply(t, s); got == "" {
		t.Fatal("no token once the endpoint is back")
	}
	// A failure after a success pauses for FetchBackoffMin again.
	s.Invalidate(context.Background(), http.Header{"Authorization": {apply(t, s)}})
	down.Store(true)
	before := e.calls.Load()
	failNow("down again")
	c.Advance(FetchBackoffMin)
	failNow("after the first pause of a new series")
	// The client's authentication style is known by now: one request a fetch.
	if n := e.calls.Load() - before; n != 2 {
		t.Fatalf("a new series: %d token fetches, want 2", n)
	}
}

// TestB11_SharedTokenBoundToItsTerms: the token shared in Redis is keyed
// by what it was asked with: a source with another client id, other
// scopes or another token endpoint (a reload after a leak or a narrowed
// scope, or another deployment on the same Redis and secret) asks for its
// own token, never takes the other's.
// req: B11
func TestB11_SharedTokenBoundToItsTerms(t *testing.T) {
	mr := miniredis.RunT(t)
	seal := sealSecret()
	e := newTokenEndpoint(t)
	shared := func(cfg *OAuth2Config) { cfg.Redis, cfg.SealSecret = client(t, mr), seal }
	first := apply(t, newSource(t, e, shared))
	if got := apply(t, newSource(t, e, shared)); got != first || e.calls.Load() != 1 {
		t.Fatalf("the same terms: %q, %d token requests; want the shared token", got, e.calls.Load())
	}
	other := newTokenEndpoint(t)
	for name, tc := range map[string]struct {
		mod   func(*OAuth2Config)
		asked *tokenEndpoint
	}{
		"another client id":      {func(cfg *OAuth2Config) { cfg.ClientID = "passerelle-2" }, e},
		"other scopes":           {func(cfg *OAuth2Config) { cfg.Scopes = []string{"read"} }, e},
		"another token endpoint": {func(cfg *OAuth2Config) { cfg.TokenURL = other.URL + "/token" }, other},
	} {
		before := tc.asked.calls.Load()
		// The stand-in refuses the first two terms: what matters is that
		// its token endpoint was asked, the shared token not taken.
		_ = newSource(t, e, shared, tc.mod).Apply(context.Background(), http.Header{})
		if tc.asked.calls.Load() == before {
			t.Errorf("%s: took the token shared under other terms (no token request)", name)
		}
	}
	// The scopes' order is not a term.
	before := e.calls.Load()
	if got := apply(t, newSource(t, e, shared, func(cfg *OAuth2Config) { cfg.Scopes = []string{"write", "read"} })); got != first || e.calls.Load() != before {
		t.Fatalf("the same scopes in another order: %q, %d more token requests", got, e.calls.Load()-before)
	}
}
