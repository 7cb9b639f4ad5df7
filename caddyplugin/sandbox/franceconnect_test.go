package sandbox

import (
	"context"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
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
