package caddyplugin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/passerelle-gw/passerelle/caddyplugin/pipeline"
)

// TestD06_DeclaredTrailerRefused: a GET that declares trailers (HTTP/2
// lets a client announce them) is refused before anything is checked.
func TestD06_DeclaredTrailerRefused(t *testing.T) {
	f := newFixture(t)
	r := httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/v3/dss/quotient_familial/france_connect?recipient="+testSIRET, nil)
	r.Header.Set("Authorization", "Bearer "+testToken)
	r.Trailer = http.Header{"X-Passerelle-User": nil}
	w := httptest.NewRecorder()
	if err := f.h.ServeHTTP(w, r, nil); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", w.Code)
	}
}

// TestE08_ProviderTimeoutBounds: provider_timeout is 1s to 15s, or unset
// (the pipeline's 15 s), in either mode.
func TestE08_ProviderTimeoutBounds(t *testing.T) {
	for _, tc := range []struct {
		timeout time.Duration
		ok      bool
	}{{0, true}, {time.Second, true}, {15 * time.Second, true}, {16 * time.Second, false},
		{500 * time.Millisecond, false}, {time.Minute, false}, {-time.Second, false}} {
		for _, mode := range []string{ModeSandbox, ModeProduction} {
			a := &App{Mode: mode, ProviderTimeout: caddy.Duration(tc.timeout)}
			err := a.Validate()
			if refused := err != nil && strings.Contains(err.Error(), "provider_timeout"); refused == tc.ok {
				t.Errorf("%s mode, provider_timeout %v: %v", mode, tc.timeout, err)
			}
		}
	}
	if p := pipeline.New(pipeline.Config{}, nil, 0); p.ProviderTimeout != 15*time.Second {
		t.Errorf("default provider timeout %v, want 15s", p.ProviderTimeout)
	}
}

// TestE08_CredentialFetchWithinDeadline: a platform token endpoint that
// stalls holds the call only until provider_timeout, which then answers
// 504 (the provider's timeout code); the provider is not called.
func TestE08_CredentialFetchWithinDeadline(t *testing.T) {
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(1500 * time.Millisecond):
		}
	}))
	t.Cleanup(stall.Close)
	f := newFixture(t, func(a *App) {
		a.Upstreams = map[string]*UpstreamConfig{"CNAV": {OAuth2: &OAuth2Config{
			TokenURL: stall.URL + "/token", ClientID: "passerelle", ClientSecret: "unit-oauth-secret", Scopes: []string{"read"}}}}
		a.ProviderTimeout = caddy.Duration(time.Second)
	})
	began := time.Now()
	w := f.serveWith(t, context.Background(), testToken, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		t.Error("the provider was called without its credential")
		return nil
	}))
	if took := time.Since(began); took > 1500*time.Millisecond {
		t.Errorf("answered after %v, want about provider_timeout (1s)", took)
	}
	if w.Code != http.StatusGatewayTimeout || !strings.Contains(w.Body.String(), `"code":"37002"`) {
		t.Errorf("answer %d %s, want 504 37002", w.Code, w.Body)
	}
}

// TestUpstreamNamesAProvider: an upstream block names a provider of the
// catalogue and holds a credential: a misspelled name, which would leave
// its provider without credential nor cap, or an empty block is refused
// at load.
func TestUpstreamNamesAProvider(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	for name, tc := range map[string]struct {
		upstreams map[string]*UpstreamConfig
		want      string
	}{
		"misspelled": {map[string]*UpstreamConfig{"CNAV": {HeaderName: "Authorization", HeaderValue: "k"}, "CNAVV": {HeaderName: "Authorization", HeaderValue: "k"}},
			"upstream CNAVV: not a provider of the catalogue"},
		"empty": {map[string]*UpstreamConfig{"CNAV": nil}, "upstream CNAV: a header or an oauth2 block is required"},
	} {
		a := &App{Mode: ModeSandbox, Upstreams: tc.upstreams}
		if err := a.Provision(ctx); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
