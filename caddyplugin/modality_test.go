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

// TestModalityFollowsTheIdentitySource: the legacy v2 student routes take
// an INE or a civil status under one identite route; the modality a call
// needs is that of what it gives. An identite-only habilitation may not
// look a student up by INE there (it may not on /ine either), and an
// identifiant-only one may not by civil status; each may with what it was
// granted. A refused call reaches no provider.
func TestModalityFollowsTheIdentitySource(t *testing.T) {
	const identite, identifiant = "pa_identite_only_token_canary_1f2e3d", "pa_identifiant_only_token_canary_4c5b6a"
	digest := func(tok string) string { s := sha256.Sum256([]byte(tok)); return hex.EncodeToString(s[:]) }
	habs := filepath.Join(t.TempDir(), "habilitations.yaml")
	if err := os.WriteFile(habs, []byte(`habilitations:
  - id: "hab-identite"
    label: "Identité"
    siret: "`+testSIRET+`"
    modalities: [identite]
    api_token_sha256: ["`+digest(identite)+`"]
    scopes: [cnous_statut_boursier, mesri_identifiant, mesri_etablissements]
  - id: "hab-identifiant"
    label: "Identifiant"
    siret: "`+testSIRET+`"
    modalities: [identifiant]
    api_token_sha256: ["`+digest(identifiant)+`"]
    scopes: [cnous_statut_boursier, mesri_identifiant, mesri_etablissements]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(a *App) { a.Habilitations = habs })
	const (
		byINE   = "ine=1234567890A"
		byCivil = "nom=Dupont&prenoms=Paul&dateDeNaissance=2001-01-01"
	)
	for _, tc := range []struct {
		name, path, token, query string
		allowed                  bool
	}{
		{"identite token, INE", "/api/v2/etudiants-boursiers", identite, byINE, false},
		{"identite token, INE (MESRI)", "/api/v2/etudiants", identite, "ine=1234567890A", false},
		{"identite token, civil status", "/api/v2/etudiants-boursiers", identite, byCivil, true},
		{"identifiant token, INE", "/api/v2/etudiants-boursiers", identifiant, byINE, true},
		{"identifiant token, civil status", "/api/v2/etudiants-boursiers", identifiant, byCivil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.upstream = nil
			r := httptest.NewRequestWithContext(context.Background(), http.MethodGet, tc.path+"?"+tc.query, nil)
			r.Header.Set("X-Api-Key", tc.token)
			r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
			w := httptest.NewRecorder()
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				f.upstream = r.Clone(r.Context())
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"boursier":true}`)
				return nil
			})
			if err := f.h.ServeHTTP(w, r, next); err != nil {
				t.Fatal(err)
			}
			if called := f.upstream != nil; called != tc.allowed {
				t.Fatalf("provider called: %v, want %v (status %d %s)", called, tc.allowed, w.Code, w.Body)
			}
			if !tc.allowed && w.Code != http.StatusUnauthorized { // v2: insufficient rights → 401
				t.Errorf("status %d, want 401: %s", w.Code, w.Body)
			}
			if tc.allowed {
				return
			}
			last := f.audit.All()
			if rec := last[len(last)-1].ContextMap(); rec["reason"] != "modality_denied" {
				t.Errorf("audit reason %v, want modality_denied", rec["reason"])
			}
		})
	}
}
