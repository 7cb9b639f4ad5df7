package integration

import (
	"slices"
	"testing"
)

// TestFranceConnectIdentityAsProvidersCompare: identities from FranceConnect
// reach the provider normalised like the identities callers give (issue 8
// §2): decomposed accents composed, upper case, spaces collapsed, a
// typographic apostrophe made ASCII; a birth date FranceConnect presumed
// (idp_birthdate) sent partial, never with an invented day 1; no commune for
// someone born abroad. Through the real runtime, the sandbox FranceConnect
// (real JWE + JWS) and the sandbox provider, whose cases match only the
// normalised identity, then a recording provider.
func TestFranceConnectIdentityAsProvidersCompare(t *testing.T) {
	rec := newRecorder(t)
	start(t, options{MaxEntries: 13001, Recorder: rec.srv.URL})
	eaje := "/v3/dss/participation_familiale_eaje/france_connect"
	cases := []struct {
		token, path string
		status      int
		code        string
		// want is the identity part of the provider query (nil: none sent).
		want map[string][]string
	}{
		{"nom_decompose", qfPath, 200, "", map[string][]string{
			"nomNaissance": {"DUBINÔRE"}, "prenoms[]": {"JOËLLE", "FRANÇOISE"}, "anneeDateNaissance": {"1992"},
			"moisDateNaissance": {"8"}, "jourDateNaissance": {"15"}, "codeCogInseeCommuneNaissance": {"75117"},
		}},
		{"date_presumee", qfPath, 200, "", map[string][]string{
			"nomNaissance": {"LE GOFF"}, "prenoms[]": {"MAËLLE"}, "anneeDateNaissance": {"1987"},
			"moisDateNaissance": {"11"}, "jourDateNaissance": nil, "codeCogInseeCommuneNaissance": {"29019"},
		}},
		{"ne_a_l_etranger", eaje, 200, "", map[string][]string{
			"nomNaissance": {"N'GUESSAN"}, "prenoms[]": {"KOFFI", "ANGE"}, "anneeDateNaissance": {"1979"},
			"moisDateNaissance": nil, "jourDateNaissance": nil, "codeCogInseePaysNaissance": {"99326"},
			"codeCogInseeCommuneNaissance": nil,
		}},
		// Legacy v2 CNOUS takes one full date (DD/MM/YYYY): a partial one
		// is refused (v2: 400 bad_request), not completed, and the provider
		// is not called.
		{"date_presumee", "/api/v2/etudiants-boursiers", 400, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.token+tc.path, func(t *testing.T) {
			target := tc.path + "?recipient=" + siret
			a := get(t, gatewayPort, target, bearer(tc.token)...)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if tc.code != "" && a.code(t) != tc.code {
				t.Fatalf("code %s, want %s", a.code(t), tc.code)
			}
			before := rec.count()
			get(t, recordPort, target, bearer(tc.token)...)
			if tc.want == nil {
				if rec.count() != before {
					t.Fatal("the provider was called with a partial date it cannot take")
				}
				return
			}
			q := rec.last(t).URL.Query()
			for k, want := range tc.want {
				if !slices.Equal(q[k], want) {
					t.Errorf("provider %s = %q, want %q (query %v)", k, q[k], want, q)
				}
			}
		})
	}
}
