package habilitation

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const sandboxFile = "../../deploy/sandbox/habilitations.yaml"

func TestSandboxAPITokenSHA256(t *testing.T) {
	if got := digestOf("sandbox_all_scopes"); got != SandboxAPITokenSHA256 {
		t.Fatalf("SHA-256 of the sandbox token = %s, constant %s", got, SandboxAPITokenSHA256)
	}
}

// TestSandboxClientIDsMatchPayloads: the sandbox client ids are exactly the
// token_introspection.aud of the sandbox FranceConnect token cases.
func TestSandboxClientIDsMatchPayloads(t *testing.T) {
	files, err := filepath.Glob("../sandbox/payloads/france_connect/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("sandbox payloads: %v, %d files", err, len(files))
	}
	seen := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c struct{ Payload string }
		if err := yaml.Unmarshal(data, &c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var p struct {
			TokenIntrospection struct {
				Aud string `json:"aud"`
			} `json:"token_introspection"`
		}
		if err := json.Unmarshal([]byte(c.Payload), &p); err != nil {
			t.Fatalf("%s: payload: %v", f, err)
		}
		if aud := p.TokenIntrospection.Aud; aud != "" {
			seen[aud] = true
		}
	}
	var want []string
	for aud := range seen {
		want = append(want, aud)
	}
	slices.Sort(want)
	if got := SandboxFranceConnectClientIDs(); !slices.Equal(got, want) {
		t.Fatalf("SandboxFranceConnectClientIDs = %v, payloads say %v", got, want)
	}
	got := SandboxFranceConnectClientIDs()
	got[0] = "mutated"
	if SandboxFranceConnectClientIDs()[0] == "mutated" {
		t.Error("the set can be modified through the returned slice")
	}
}

// TestCheckProductionRefusesSandboxRegistry: the sandbox registry parses
// (with every modality) but is refused in production, for its token and its
// client id, without repeating either.
func TestCheckProductionRefusesSandboxRegistry(t *testing.T) {
	r, err := Load(sandboxFile)
	if err != nil {
		t.Fatal(err)
	}
	h, ok := r.ByAPIToken("sandbox_all_scopes")
	if !ok || !h.Allows(ModalityFranceConnect) || !h.Allows(ModalityIdentite) || !h.Allows(ModalityIdentifiant) {
		t.Fatalf("sandbox habilitation %v, %v: every modality expected", h, ok)
	}
	err = r.CheckProduction()
	if err == nil {
		t.Fatal("sandbox registry accepted in production")
	}
	for _, w := range []string{
		`habilitations[0] (id "sandbox-toutes-donnees"): api_token_sha256[0]: a public sandbox API token`,
		`habilitations[0] (id "sandbox-toutes-donnees"): france_connect_client_ids[0]: a sandbox FranceConnect client id`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	for _, v := range append(SandboxFranceConnectClientIDs(), SandboxAPITokenSHA256, "sandbox_all_scopes") {
		if strings.Contains(err.Error(), v) {
			t.Errorf("error echoes %q", v)
		}
	}
}

// TestCheckProduction: a production-like registry is accepted; each entry
// holding a sandbox credential is named, wherever it is in the file.
func TestCheckProduction(t *testing.T) {
	prod := mustParse(t, `habilitations:
  - {id: p1, label: a, siret: "21930048000015", scopes: [s], modalities: [france_connect], france_connect_client_ids: [prod-client-1]}
  - {id: p2, label: b, siret: "13002526500013", scopes: [s], modalities: [identite], api_token_sha256: ["`+digestOf("pa_prod")+`"]}
`)
	if err := prod.CheckProduction(); err != nil {
		t.Fatalf("production registry refused: %v", err)
	}
	if err := mustParse(t, "habilitations: []").CheckProduction(); err != nil {
		t.Errorf("empty registry refused: %v", err)
	}
	var nilR *Registry
	if err := nilR.CheckProduction(); err != nil {
		t.Errorf("nil registry: %v", err)
	}
	mixed := mustParse(t, `habilitations:
  - {id: p1, label: a, siret: "21930048000015", scopes: [s], modalities: [france_connect], france_connect_client_ids: [prod-client-1]}
  - {id: p2, label: b, siret: "13002526500013", scopes: [s], modalities: [france_connect], france_connect_client_ids: [prod-client-2, `+otherClientID+`]}
  - {id: p3, label: c, siret: "13002526500013", scopes: [s], modalities: [identite], api_token_sha256: ["`+digestOf("pa_prod")+`", "`+SandboxAPITokenSHA256+`"]}
`)
	err := mixed.CheckProduction()
	if err == nil {
		t.Fatal("sandbox credentials accepted in production")
	}
	for _, w := range []string{
		`habilitations[1] (id "p2"): france_connect_client_ids[1]: a sandbox FranceConnect client id, refused in production`,
		`habilitations[2] (id "p3"): api_token_sha256[1]: a public sandbox API token, refused in production`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if strings.Contains(err.Error(), `"p1"`) || strings.Contains(err.Error(), otherClientID) || strings.Contains(err.Error(), SandboxAPITokenSHA256) {
		t.Errorf("error names a clean entry or echoes a value: %v", err)
	}
}

// TestPublicTokensRefused: every API token of every registry shipped in
// deploy/ for tests (sandbox, load harness) is public, since its token is
// written next to it: production refuses each of them. The production
// example (deploy/production/) holds none, and is accepted.
func TestPublicTokensRefused(t *testing.T) {
	files, err := filepath.Glob("../../deploy/*/habilitations*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no shipped registry found: %v", err)
	}
	for _, f := range files {
		if filepath.Base(filepath.Dir(f)) == "production" {
			r, err := Load(f)
			if err != nil || r.CheckProduction() != nil {
				t.Errorf("%s: the production example is refused: %v", f, err)
			}
			continue
		}
		r, err := Load(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, h := range r.All() {
			for _, d := range h.APITokenSHA256 {
				if _, ok := publicAPITokens[d]; !ok {
					t.Errorf("%s: habilitation %s: token digest %s… is not refused in production", f, h.ID, d[:8])
				}
			}
		}
		if err := r.CheckProduction(); err == nil {
			t.Errorf("%s accepted in production", f)
		}
	}
}

// TestPublicTokenNames: each refused digest is the SHA-256 of the token
// named beside it.
func TestPublicTokenNames(t *testing.T) {
	for d, tok := range publicAPITokens {
		if digestOf(tok) != d {
			t.Errorf("%s: digest mismatch", tok)
		}
	}
}
