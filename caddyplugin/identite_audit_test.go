package caddyplugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestG01_IdentiteCitizenKeyWithoutBirthDate: the DSS identite routes make
// the birth date optional; a lookup without one still reaches personal data,
// so its audit record carries the pseudonym of the person looked up, stable
// for the same names and apart from the same names with a birth year.
// req: G01
func TestG01_IdentiteCitizenKeyWithoutBirthDate(t *testing.T) {
	const token = "pa_identite_audit_token_canary_7a8b9c"
	s := sha256.Sum256([]byte(token))
	habs := filepath.Join(t.TempDir(), "habilitations.yaml")
	if err := os.WriteFile(habs, []byte(`habilitations:
  - id: "hab-identite"
    label: "Identité"
    siret: "`+testSIRET+`"
    modalities: [identite]
    api_token_sha256: ["`+hex.EncodeToString(s[:])+`"]
    scopes: [cnaf_quotient_familial]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(a *App) { a.Habilitations = habs })
	key := func(query string) string {
		t.Helper()
		r := httptest.NewRequestWithContext(context.Background(), http.MethodGet,
			"/v3/dss/quotient_familial/identite?recipient="+testSIRET+"&sexeEtatCivil=M&codeCogInseePaysNaissance=99100&"+query, nil)
		r.Header.Set("Authorization", "Bearer "+token)
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		w := httptest.NewRecorder()
		called := false
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			called = true
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, unitBody)
			return nil
		})
		if err := f.h.ServeHTTP(w, r, next); err != nil {
			t.Fatal(err)
		}
		if !called || w.Code != http.StatusOK {
			t.Fatalf("%s: status %d, provider called %v: %s", query, w.Code, called, w.Body)
		}
		all := f.audit.All()
		rec := all[len(all)-1].ContextMap()
		k, _ := rec["citizen_key"].(string)
		if b, err := hex.DecodeString(k); err != nil || len(b) != 32 || rec["citizen_key_basis"] != "civil_status" {
			t.Fatalf("%s: citizen_key %q basis %v", query, k, rec["citizen_key_basis"])
		}
		return k
	}
	undated := key("nomNaissance=Dupont&prenoms%5B%5D=Paul")
	if again := key("nomNaissance=DUPONT&prenoms%5B%5D=paul"); again != undated {
		t.Error("one person without a birth date, two keys")
	}
	if dated := key("nomNaissance=Dupont&prenoms%5B%5D=Paul&anneeDateNaissance=1962"); dated == undated {
		t.Error("a birth year gives the key of the names alone")
	}
}
