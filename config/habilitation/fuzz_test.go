package habilitation

import (
	"testing"
)

// FuzzHabilitationsYAML: Parse never panics, and an accepted registry keeps
// its invariants (valid SIRETs, non-empty scopes, unique pairing).
func FuzzHabilitationsYAML(f *testing.F) {
	for _, s := range []string{
		sample, revokedSample, "habilitations: []", "", "habilitations:", "habilitations: [1, [2], {a: b}]",
		"x: &a [*a]\nhabilitations: []",
		"habilitations:\n  - {id: \"1\", label: a, siret: \"35600000049837\", scopes: [a], valid_from: \"2025-06-01T08:00:00.5+01:00\", valid_until: 9999-12-31}",
		"habilitations:\n  - {id: \"1\", label: a, siret: 21930048000015, scopes: [a, a], france_connect_client_ids: [x, x], revoked: TRUE}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			if r != nil {
				t.Fatal("registry returned with an error")
			}
			return
		}
		seen := map[string]bool{}
		for _, h := range r.All() {
			if !ValidSIRET(h.SIRET) || len(h.Scopes) == 0 || h.ID == "" || h.Label == "" || seen[h.ID] {
				t.Fatalf("invalid habilitation accepted: %+v", h)
			}
			seen[h.ID] = true
			if got, ok := r.ByID(h.ID); !ok || got != h {
				t.Fatalf("ByID(%q)", h.ID)
			}
			for _, c := range h.FranceConnectClientIDs {
				if got, ok := r.ByClientID(c); !ok || got != h {
					t.Fatalf("client id %q not paired with %q", c, h.ID)
				}
			}
			if !h.ValidFrom.IsZero() && !h.ValidUntil.IsZero() && !h.ValidUntil.After(h.ValidFrom) {
				t.Fatalf("empty validity window accepted")
			}
		}
	})
}
