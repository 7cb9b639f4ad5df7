package habilitation

import (
	"slices"
	"strings"
	"testing"
)

// FuzzHabilitationsYAML: Parse never panics, and an accepted registry keeps
// its invariants (valid SIRETs, non-empty scopes, unique pairing).
func FuzzHabilitationsYAML(f *testing.F) {
	for _, s := range []string{
		sample, revokedSample, "habilitations: []", "", "habilitations:", "habilitations: [1, [2], {a: b}]",
		"x: &a [*a]\nhabilitations: []",
		"habilitations:\n  - {id: \"1\", label: a, siret: \"35600000049837\", scopes: [a], modalities: [identite, identifiant], valid_from: \"2025-06-01T08:00:00.5+01:00\", valid_until: 9999-12-31}",
		"habilitations:\n  - {id: \"1\", label: a, siret: 21930048000015, scopes: [a, a], modalities: [identite, identite, x], france_connect_client_ids: [x, x], revoked: TRUE}",
		"habilitations:\n  - {id: \"1\", label: a, siret: 21930048000015, scopes: [a], modalities: [france_connect], client_certificates: [\"sha256 Fingerprint=" + strings.Repeat("AB:", 31) + "AB\", " + strings.Repeat("0", 64) + "]}",
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
			if len(h.Modalities) == 0 {
				t.Fatalf("habilitation without modalities accepted")
			}
			for k, fp := range h.ClientCertificates {
				if slices.Contains(h.ClientCertificates[:k], fp) {
					t.Fatalf("client_certificates repeats a fingerprint")
				}
			}
			for k, m := range h.Modalities {
				if m != ModalityFranceConnect && m != ModalityIdentite && m != ModalityIdentifiant || slices.Contains(h.Modalities[:k], m) {
					t.Fatalf("modalities %q accepted", h.Modalities)
				}
			}
		}
	})
}

// FuzzRefusedReload: whatever a refused file says, the registry in force is
// only narrowed: no new habilitation, client id, token, scope or modality,
// no client certificate added to a binding nor a binding dropped,
// no un-revocation, consistent indexes, and the registry in force unchanged.
func FuzzRefusedReload(f *testing.F) {
	for _, s := range []string{
		reloadBase, "", "habilitations: [", "habilitations: {}", "habilitations:\n  - {id: A, revoked: true}",
		regYAML(hab("A", map[string]string{"revoked": "true"}), hab("B", badSIRET), hab("D", nil)),
		regYAML(hab("B", map[string]string{"scopes": "[s1, s9]"}), hab("C", map[string]string{"revoked": "false"})),
		"habilitations:\n  - {id: A, id: B, revoked: yes}\nhabilitations:\n  - {id: C}",
		"habilitations:\n  - {id: B, client_certificates: [\"" + strings.Repeat("02", 32) + "\", x]}\n  - {id: A, client_certificates: 3}\n  - {id: C, siret: 1}",
	} {
		f.Add([]byte(s))
	}
	// B is bound to two client certificates (C09): a refused file may only
	// narrow that too.
	base, err := Parse([]byte(regYAML(hab("A", nil), hab("B", map[string]string{"client_certificates": `["` + strings.Repeat("01", 32) + `", "` + strings.Repeat("02", 32) + `"]`}),
		hab("C", map[string]string{"revoked": "true"}))))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, ok := readIntent(data)
		if !ok {
			return
		}
		r, ids := restrict(base, in)
		for _, h := range base.All() {
			if base.Len() != 3 || h.Revoked != (h.ID == "C") {
				t.Fatal("the registry in force was modified")
			}
		}
		if (r == base) != (len(ids) == 0) {
			t.Fatalf("changed ids %q but registry replaced: %v", ids, r != base)
		}
		clients, tokens := 0, 0
		for _, h := range r.All() {
			b, ok := base.ByID(h.ID)
			if !ok || b.Revoked && !h.Revoked || !subset(h.Scopes, b.Scopes) || !subset(h.Modalities, b.Modalities) ||
				!subset(h.FranceConnectClientIDs, b.FranceConnectClientIDs) || !subset(h.APITokenSHA256, b.APITokenSHA256) ||
				h.ValidFrom != b.ValidFrom || h.ValidUntil.IsZero() && !b.ValidUntil.IsZero() ||
				!b.ValidUntil.IsZero() && h.ValidUntil.After(b.ValidUntil) || h.LimiterKey() != b.LimiterKey() {
				t.Fatalf("habilitation %q widened or altered", h.ID)
			}
			if b.BindsClientCertificate() && (!h.BindsClientCertificate() ||
				slices.ContainsFunc(h.ClientCertificates, func(fp CertFingerprint) bool { return !slices.Contains(b.ClientCertificates, fp) })) {
				t.Fatalf("habilitation %q bound to more certificates", h.ID)
			}
			if got, _ := r.ByID(h.ID); got != h {
				t.Fatalf("ByID(%q) inconsistent", h.ID)
			}
			for _, c := range h.FranceConnectClientIDs {
				if got, _ := r.ByClientID(c); got != h {
					t.Fatalf("client id of %q inconsistent", h.ID)
				}
				clients++
			}
			tokens += len(h.APITokenSHA256)
		}
		if len(r.byClient) != clients || len(r.byAPIToken) != tokens || len(r.byID) != r.Len() {
			t.Fatal("indexes hold removed habilitations")
		}
		for _, id := range []string{"A", "B", "C"} {
			if _, ok := r.ByID(id); !ok {
				if _, ok := r.ByClientID("client-" + id); ok {
					t.Fatalf("removed %s still paired", id)
				}
				if _, ok := r.ByAPIToken("pa_token-" + id); ok {
					t.Fatalf("removed %s still found by token", id)
				}
			}
		}
	})
}

// subset reports whether every value of a is in b.
func subset(a, b []string) bool {
	return !slices.ContainsFunc(a, func(v string) bool { return !slices.Contains(b, v) })
}
