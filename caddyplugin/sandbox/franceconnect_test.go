package sandbox

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/go-jose/go-jose/v4"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
)

// TestFranceConnectNeedsClientSecret: without a passerelle app in the
// process, the stand-in has no secret to default to: a missing one, or a
// reference that resolves to nothing, is a load error, not a stand-in that
// answers invalid_client to every checktoken.
func TestFranceConnectNeedsClientSecret(t *testing.T) {
	t.Setenv("PASSERELLE_TEST_UNSET_FD_SECRET", "")
	for name, secret := range map[string]string{"missing": "", "empty reference": "{env.PASSERELLE_TEST_UNSET_FD_SECRET}"} {
		f := &FranceConnect{Issuer: "http://127.0.0.1:1/api/v2", ClientID: "fd", ClientSecret: secret, GatewayJWKS: "http://127.0.0.1:1/jwks"}
		err := f.Provision(caddy.Context{Context: context.Background()})
		if err == nil || !strings.Contains(err.Error(), "client_secret") {
			t.Errorf("%s: %v, want a client_secret error", name, err)
		}
	}
	t.Setenv("PASSERELLE_TEST_FD_SECRET", "s3cret")
	f := &FranceConnect{Issuer: "http://127.0.0.1:1/api/v2", ClientID: "fd", ClientSecret: "{env.PASSERELLE_TEST_FD_SECRET}", GatewayJWKS: "http://127.0.0.1:1/jwks"}
	if err := f.Provision(caddy.Context{Context: context.Background()}); err != nil || f.ClientSecret != "s3cret" {
		t.Fatalf("a secret reference: %v (%q)", err, f.ClientSecret)
	}
}

// TestFranceConnectChecktokenClientSecret: checktoken answers the
// data-provider client with the right secret, and refuses invalid_client a
// wrong secret of the same length (compared in constant time).
func TestFranceConnectChecktokenClientSecret(t *testing.T) {
	enc, err := fcverify.GenerateKey("ECDH-ES")
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := fcverify.PublicJWKS([]jose.JSONWebKey{enc})
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(jwks) }))
	defer gw.Close()
	f := &FranceConnect{Issuer: "http://127.0.0.1:1/api/v2", ClientID: "fd", ClientSecret: "s3cret", GatewayJWKS: gw.URL}
	if err := f.Provision(caddy.Context{Context: context.Background()}); err != nil {
		t.Fatal(err)
	}
	for secret, want := range map[string]int{"s3cret": http.StatusOK, "s3cre7": http.StatusUnauthorized} {
		form := url.Values{"token": {"unknown-token"}, "client_id": {"fd"}, "client_secret": {secret}}
		r := httptest.NewRequest(http.MethodPost, "/api/v2/checktoken", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		if err := f.ServeHTTP(w, r, nil); err != nil {
			t.Fatalf("%s: %v", secret, err)
		}
		if w.Code != want {
			t.Errorf("secret %q: status %d, want %d: %s", secret, w.Code, want, w.Body)
		}
	}
}
