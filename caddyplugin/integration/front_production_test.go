package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// frontBlock is a production passerelle_front block; edit replaces one of
// its lines (old → new).
func frontBlock(t *testing.T, edit ...string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalECPrivateKey(k)
	keyPath := writeFile(t, "assertion.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})))
	secretPath := writeFile(t, "front-secret", "front-secret-canary-0123456789abcdef0123456789")
	b := `passerelle_front {
		base_url https://demarches.mairie.example
		secret {file.` + secretPath + `}
		assertion_key {file.` + keyPath + `}
		franceconnect {
			issuer https://fc.example/api/v2
			client_id 0f5e7b9d1c3a5e7f9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e
			client_secret {env.PASSERELLE_TEST_FC_SECRET}
		}
		protect /espace-famille/*
	}`
	for i := 0; i+1 < len(edit); i += 2 {
		if !strings.Contains(b, edit[i]) {
			t.Fatalf("no %q in the block", edit[i])
		}
		b = strings.Replace(b, edit[i], edit[i+1], 1)
	}
	return b
}

// TestFrontProductionRules: in production mode, the front refuses plain
// HTTP, FranceConnect's integration platform, literal secrets, missing
// session secret or assertion key, and the demo app; a block with every secret as a reference loads (no call to
// FranceConnect at load: discovery waits for the first login).
func TestFrontProductionRules(t *testing.T) {
	setEnv(t)
	for name, tc := range map[string]struct{ edit []string }{
		"https is required":                             {[]string{"base_url https://", "base_url http://"}},
		"https is required for base_url and the france": {[]string{"issuer https://fc.example", "issuer http://fc.example"}},
		"a literal secret is refused in production":     {[]string{"client_secret {env.PASSERELLE_TEST_FC_SECRET}", "client_secret literal-secret"}},
		"secret: required in production mode":           {[]string{"secret {file.", "# secret {file."}},
		"assertion_key: required in production mode":    {[]string{"assertion_key {file.", "# assertion_key {file."}},
		"an integration or sandbox platform is refused": {[]string{"issuer https://fc.example/api/v2", "issuer https://fcp-low.Integ01.Dev-FranceConnect.fr/api/v2"}},
		// A session's last use is written back once a minute at most.
		"session_idle 30s: at least 1m": {[]string{"protect /espace-famille/*", "protect /espace-famille/*\n\t\tsession_idle 30s"}},
		// JSON is bounded as the Caddyfile is.
		"max_handoff_bytes": {[]string{"protect /espace-famille/*", "protect /espace-famille/*\n\t\tmax_handoff_bytes 1KiB"}},
	} {
		t.Run(name, func(t *testing.T) {
			caddytest.AssertLoadError(t, productionConfig(t, "{env.PASSERELLE_TEST_FC_SECRET}", frontBlock(t, tc.edit...)), "caddyfile", name)
		})
	}
	caddytest.AssertLoadError(t, productionConfig(t, "{env.PASSERELLE_TEST_FC_SECRET}",
		"passerelle_sandbox_demo_app {\n\t\tfront_url http://127.0.0.1:18084\n\t}"), "caddyfile", "sandbox modules refuse to run in production mode")
	tester := caddytest.NewTester(t)
	tester.InitServer(productionConfig(t, "{env.PASSERELLE_TEST_FC_SECRET}", frontBlock(t)), "caddyfile")
}

// TestFrontDatasetNeedsOnlyTheRecipient: a dataset sends the recipient
// only, so one on a route that requires another parameter (ANTS's
// registration plate) is refused at load, not answered 422 at every login.
func TestFrontDatasetNeedsOnlyTheRecipient(t *testing.T) {
	setEnv(t)
	block := frontBlock(t, "protect /espace-famille/*", `protect /espace-famille/*
		dataset vehicule /v3/ants/extrait_immatriculation_vehicule/france_connect {
			recipient 13002526500013
		}
		provider {
			reverse_proxy 127.0.0.1:9
		}`)
	caddytest.AssertLoadError(t, productionConfig(t, "{env.PASSERELLE_TEST_FC_SECRET}", block), "caddyfile",
		"needs the parameter immatriculation, which a dataset does not send")
}
