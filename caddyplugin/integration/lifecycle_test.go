package integration

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// TestI01_FCDownFailsClosed: FranceConnect unreachable → 503 with
// Retry-After for a token not in cache, never an allow.
func TestI01_FCDownFailsClosed(t *testing.T) {
	down := httptest.NewServer(nil)
	down.Close() // a loopback port nobody listens on any more
	start(t, options{MaxEntries: 4001, CheckTokenURL: down.URL})
	a := get(t, gatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...)
	if a.status != 503 || a.code(t) != "00503" || a.header.Get("Retry-After") == "" {
		t.Fatalf("status %d code %s Retry-After %q: %s", a.status, a.code(t), a.header.Get("Retry-After"), a.body)
	}
}

// TestI14_InvalidConfigKeepsServing: a refused configuration leaves the
// previous one serving.
func TestI14_InvalidConfigKeepsServing(t *testing.T) {
	start(t, options{MaxEntries: 4002})
	bad := strings.Replace(config(t, options{MaxEntries: 4003}), "mode sandbox", "mode production", 1)
	caddytest.AssertLoadError(t, bad, "caddyfile", "refused in production")
	if a := get(t, gatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...); a.status != 200 {
		t.Fatalf("status %d after a refused reload: %s", a.status, a.body)
	}
}

// productionHabilitations is a registry a production gateway accepts: no
// sandbox API token, no sandbox FranceConnect service.
const productionHabilitations = `habilitations:
  - id: "dp-2026-0042"
    label: "Mairie de test — portail famille"
    siret: "21930048000015"
    france_connect_client_ids: ["0f5e7b9d1c3a5e7f9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e"]
    modalities: [france_connect]
    scopes: [cnaf_quotient_familial]
`

// writeFile writes data to a new file of the test's temporary directory.
func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// productionConfig is a production-mode configuration with every secret
// given as a reference; extra is appended inside the site block.
func productionConfig(t *testing.T, clientSecret, extraSite string) string {
	t.Helper()
	return productionConfigWith(t, clientSecret, extraSite, writeFile(t, "habilitations.yaml", productionHabilitations))
}

// productionConfigWith is productionConfig with a given habilitations file.
func productionConfigWith(t *testing.T, clientSecret, extraSite, habilitations string) string {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "enc.jwk")
	// A throwaway key, written with owner-only permissions.
	k, err := fcverify.GenerateKey("ECDH-ES")
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return `{
	admin localhost:2999
	auto_https off
	passerelle {
		franceconnect {
			issuer https://fc.example/api/v2
			client_id ` + fdClientID + `
			client_secret ` + clientSecret + `
			decryption_key {file.` + key + `}
		}
		habilitations ` + habilitations + `
		audit {
			pseudonym_key {env.PASSERELLE_TEST_PSEUDO_KEY}
		}
	}
}
http://127.0.0.1:18084 {
	bind 127.0.0.1
	` + extraSite + `
	respond 404
}
`
}

// TestH01_LiteralSecretRefusedInProduction: a literal secret is a load
// error in production; a reference is accepted.
func TestH01_LiteralSecretRefusedInProduction(t *testing.T) {
	setEnv(t)
	caddytest.AssertLoadError(t, productionConfig(t, "a-literal-secret", ""), "caddyfile",
		"franceconnect client_secret: a literal secret is refused in production mode")
	tester := caddytest.NewTester(t)
	tester.InitServer(productionConfig(t, "{env.PASSERELLE_TEST_FC_SECRET}", ""), "caddyfile")
}

// TestH03_SandboxRefusedInProduction: the sandbox modules refuse to load
// next to a production app.
func TestH03_SandboxRefusedInProduction(t *testing.T) {
	setEnv(t)
	for _, module := range []string{"passerelle_sandbox_fc {\n\t\tissuer http://127.0.0.1:18084/api/v2\n\t}", "passerelle_sandbox_provider"} {
		caddytest.AssertLoadError(t, productionConfig(t, "{env.PASSERELLE_TEST_FC_SECRET}", module), "caddyfile",
			"sandbox modules refuse to run in production mode")
	}
}

// TestIssue8_SandboxRegistryRefusedInProduction: production mode refuses
// the shipped sandbox registry, and any habilitation holding the public
// sandbox API token (sandbox_all_scopes, printed in the README) or paired
// with a sandbox FranceConnect service (issue 8, defect 5).
func TestIssue8_SandboxRegistryRefusedInProduction(t *testing.T) {
	setEnv(t)
	sandboxFile, err := filepath.Abs("../../deploy/sandbox/habilitations.yaml")
	if err != nil {
		t.Fatal(err)
	}
	caddytest.AssertLoadError(t, productionConfigWith(t, "{env.PASSERELLE_TEST_FC_SECRET}", "", sandboxFile), "caddyfile", "sandbox")
	withToken := strings.Replace(productionHabilitations, "    modalities: [france_connect]\n",
		"    modalities: [france_connect, identite]\n    api_token_sha256: [\""+habilitation.SandboxAPITokenSHA256+"\"]\n", 1)
	caddytest.AssertLoadError(t, productionConfigWith(t, "{env.PASSERELLE_TEST_FC_SECRET}", "",
		writeFile(t, "h.yaml", withToken)), "caddyfile", "sandbox")
	// The same registry without the public token loads.
	tester := caddytest.NewTester(t)
	tester.InitServer(productionConfig(t, "{env.PASSERELLE_TEST_FC_SECRET}", ""), "caddyfile")
}

// req: C13
// TestH02_ProductionRulesRefused: plain-HTTP FranceConnect URLs, loose
// bounds, DataPass records held in process only and DataPass's test
// platforms are load errors in production.
func TestH02_ProductionRulesRefused(t *testing.T) {
	setEnv(t)
	setDataPassEnv(t)
	cfg := productionConfig(t, "{env.PASSERELLE_TEST_FC_SECRET}", "")
	for name, c := range map[string]struct{ from, to, want string }{
		"http issuer":  {"issuer https://fc.example/api/v2", "issuer http://fc.example/api/v2", "issuer: must use https"},
		"integ issuer": {"issuer https://fc.example/api/v2", "issuer https://fcp-low.integ01.dev-franceconnect.fr/api/v2", "issuer: an integration or sandbox platform"},
		"integ checktoken": {"decryption_key", "checktoken_url https://FCP-LOW.INTEG01.DEV-FRANCECONNECT.FR/api/v2/checktoken\n\t\t\tdecryption_key",
			"checktoken_url: an integration or sandbox platform"},
		"failed_auth off": {"habilitations ", "rate_limit {\n\t\t\tfailed_auth off\n\t\t}\n\t\thabilitations ", "failed_auth: off is refused in production"},
		"skew":            {"decryption_key", "skew 45s\n\t\t\tdecryption_key", "skew: at most 30s"},
		"cache cap":       {"habilitations ", "cache {\n\t\t\tttl_cap 90s\n\t\t}\n\t\thabilitations ", "ttl cap must be in (0, 1m0s]"},
		"redis no tls":    {"habilitations ", "cache {\n\t\t\tsecret {env.PASSERELLE_TEST_CACHE_SECRET}\n\t\t\tredis {\n\t\t\t\taddrs 127.0.0.1:1\n\t\t\t}\n\t\t}\n\t\thabilitations ", "tls is required in production"},
		"no decrypt key":  {"decryption_key", "#", "decryption_key: required in production mode"},
		// Held in process only, a revocation is forgotten at the next
		// start, and an old approve delivered again applies.
		"datapass in memory": {"habilitations ", "datapass {\n\t\t\tsecret {env.PASSERELLE_TEST_DATAPASS_SECRET}\n\t\t}\n\t\thabilitations ",
			"production mode needs redis or an api block"},
		// A staging or sandbox DataPass's approvals would widen production
		// habilitations.
		"datapass staging events": {"habilitations ", "datapass {\n\t\t\tsecret {env.PASSERELLE_TEST_DATAPASS_SECRET}\n\t\t\tenvironment staging\n\t\t}\n\t\thabilitations ",
			"datapass environment: production mode accepts DataPass's production only"},
		"datapass sandbox api": {"habilitations ", "datapass {\n\t\t\tsecret {env.PASSERELLE_TEST_DATAPASS_SECRET}\n\t\t\tapi https://SANDBOX.datapass.api.gouv.fr {\n\t\t\t\tclient_id passerelle\n\t\t\t\tclient_secret {env.PASSERELLE_TEST_DATAPASS_SECRET}\n\t\t\t}\n\t\t}\n\t\thabilitations ",
			"datapass api: production mode refuses DataPass's staging and sandbox platforms"},
	} {
		t.Run(name, func(t *testing.T) {
			bad := strings.Replace(cfg, c.from, c.to, 1)
			if bad == cfg {
				t.Fatal("substitution did not apply")
			}
			caddytest.AssertLoadError(t, bad, "caddyfile", c.want)
		})
	}
}

// TestH08_PublishedJWKSIsPublic: the served encryption JWKS holds public
// members only, each key marked for encryption.
func TestH08_PublishedJWKSIsPublic(t *testing.T) {
	start(t, options{MaxEntries: 4004})
	a := get(t, gatewayPort, "/.well-known/passerelle/jwks.json")
	if a.status != 200 {
		t.Fatalf("status %d", a.status)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(a.body, &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("not a JWKS: %v: %s", err, a.body)
	}
	for _, k := range set.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
			if _, ok := k[private]; ok {
				t.Fatalf("private member %q served", private)
			}
		}
		if k["use"] != "enc" || k["kid"] == "" {
			t.Fatalf("key without use=enc or kid: %v", k)
		}
	}
}

// TestC02_RevocationAppliesWithinDelay: revoking the habilitation in the
// file refuses the next requests within the reload interval, cached token
// or not; an invalid file keeps the previous registry.
func TestC02_RevocationAppliesWithinDelay(t *testing.T) {
	habs := writeHabilitations(t)
	start(t, options{MaxEntries: 4005, Habilitations: habs})
	if a := get(t, gatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...); a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	orig, _ := os.ReadFile(habs)
	if err := os.WriteFile(habs, []byte("habilitations: [ {id: broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	if a := get(t, gatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...); a.status != 200 {
		t.Fatalf("an invalid update changed the registry: status %d", a.status)
	}
	revoked := strings.Replace(string(orig), "revoked: false", "revoked: true", 1)
	if err := os.WriteFile(habs, []byte(revoked), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := get(t, gatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...)
		if a.status == 403 && a.code(t) == "00100" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("revocation not applied after 10s: status %d", a.status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestOfficialSandboxDirectory: pointed at API Particulier's official
// payloads directory, read unchanged, the sandbox serves its tokens and
// cases. Skipped when ../shared is absent (a fresh clone).
func TestOfficialSandboxDirectory(t *testing.T) {
	dir, err := filepath.Abs("../../../shared/reference/siade_staging_data/payloads")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("official sandbox data not present at %s", dir)
	}
	cfg := strings.Replace(config(t, options{MaxEntries: 4006}), "gateway_jwks", "cases "+dir+"\n\t\tgateway_jwks", 1)
	cfg = strings.Replace(cfg, "passerelle_sandbox_provider {", "passerelle_sandbox_provider {\n\t\tcases "+dir, 1)
	setEnv(t)
	caddytest.NewTester(t).InitServer(cfg, "caddyfile")
	// The official cnaf_qfv2 token verifies; its identity has no exact case
	// in the official folder (DOMAIN.md §7), so the folder's 404 answers.
	a := get(t, gatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...)
	if a.status != 404 || a.code(t) != "37003" {
		t.Fatalf("status %d code %s: %s", a.status, a.code(t), a.body)
	}
	// Our own tokens do not exist there: 401.
	if a := get(t, gatewayPort, qf("recipient="+siret), bearer("cnaf_qf_partial")...); a.status != 401 {
		t.Fatalf("status %d for a token absent from the official data", a.status)
	}
}

// TestF03_QuotaEndToEnd: through the real runtime, answers carry the
// RateLimit headers, and past the habilitation's quota the gateway answers
// 429 00429 with Retry-After.
func TestF03_QuotaEndToEnd(t *testing.T) {
	start(t, options{MaxEntries: 4007, HabQuota: "3/m"})
	for i := 0; i < 3; i++ {
		a := get(t, gatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...)
		if a.status != 200 || a.header.Get("RateLimit-Limit") != "3" || a.header.Get("RateLimit-Remaining") != fmt.Sprint(2-i) || a.header.Get("RateLimit-Reset") == "" {
			t.Fatalf("request %d: status %d headers %v", i, a.status, a.header)
		}
	}
	a := get(t, gatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...)
	if a.status != 429 || a.code(t) != "00429" || a.header.Get("Retry-After") == "" || a.header.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("status %d code %s headers %v", a.status, a.code(t), a.header)
	}
}
