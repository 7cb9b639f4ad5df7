package caddyplugin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// TestD01_ProviderRequestCarriesNothingOfTheCaller: the request handed to
// reverse_proxy holds the provider path and query and the headers set by
// the gateway only: no caller Host, header, declared trailer or parsed form;
// and the caller's request is left as Caddy logs it (its Host routes the
// access log).
func TestD01_ProviderRequestCarriesNothingOfTheCaller(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "http://caller.example/v3/x/identite?nomNaissance=DUPONT", nil)
	r.Header.Set("X-Injected", "1")
	r.Trailer = http.Header{"X-Passerelle-User": nil}
	r.Form = url.Values{"nomNaissance": {"DUPONT"}}
	up := providerRequest(r, "/v3/x/identite", "nomNaissance=DUPONT", "rid")
	switch {
	case up.Host != "" || up.URL.Path != "/v3/x/identite" || up.URL.RawQuery != "nomNaissance=DUPONT" || up.RequestURI != "/v3/x/identite":
		t.Errorf("provider request target: host %q url %v requestURI %q", up.Host, up.URL, up.RequestURI)
	case up.Trailer != nil || up.Form != nil || up.Body != http.NoBody || up.ContentLength != 0:
		t.Errorf("caller's trailer, form or body carried over: %v %v", up.Trailer, up.Form)
	case len(up.Header) != 3 || up.Header.Get("X-Request-Id") != "rid" || up.Header["X-Forwarded-Host"] != nil:
		t.Errorf("provider headers %v", up.Header)
	}
	if _, ok := up.Header["X-Forwarded-Host"]; !ok {
		t.Error("no nil X-Forwarded-Host: reverse_proxy would add the caller's Host")
	}
	if r.Host != "caller.example" || r.URL.RawQuery != "nomNaissance=DUPONT" || r.Header.Get("X-Injected") != "1" {
		t.Error("the caller's request was modified")
	}
}

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
