package integration

import (
	"net/url"
	"testing"
)

// TestV2_CompositionFamiliale: API Particulier's legacy v2 quotient
// familial route with a FranceConnect token answers the v2 camelCase body,
// its errors in the v2 shape, except a rejected FranceConnect token, which
// keeps the errors[] shape with 50002 as API Particulier v2 does.
func TestV2_CompositionFamiliale(t *testing.T) {
	start(t, options{MaxEntries: 12010})
	const path = "/api/v2/composition-familiale-v2"

	a := get(t, gatewayPort, path+"?recipient="+siret, bearer("cnaf_qfv2")...)
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	body := a.json(t)
	for _, k := range []string{"quotientFamilial", "annee", "mois", "allocataires", "enfants", "adresse"} {
		if _, ok := body[k]; !ok {
			t.Errorf("%s missing: %s", k, a.body)
		}
	}
	for _, k := range []string{"data", "regime"} {
		if _, ok := body[k]; ok {
			t.Errorf("%s present: %s", k, a.body)
		}
	}

	// cnaf_qf_partial: quotient familial and children only.
	a = get(t, gatewayPort, path+"?recipient="+siret, bearer("cnaf_qf_partial")...)
	if a.status != 200 {
		t.Fatalf("cnaf_qf_partial: status %d: %s", a.status, a.body)
	}
	if got := a.json(t); len(got) != 4 || got["quotientFamilial"] == nil || got["enfants"] == nil || got["annee"] == nil || got["mois"] == nil {
		t.Errorf("cnaf_qf_partial: want quotientFamilial, annee, mois, enfants only: %s", a.body)
	}

	for _, tc := range []struct {
		name, query, token string
		status             int
		v2Error            string // "" for the errors[] shape
		code               string
	}{
		{"unknown token", "recipient=" + siret, "nope-not-a-token", 401, "", "50002"},
		{"inactive token", "recipient=" + siret, "inactive", 401, "", "50002"},
		{"no recipient", "", "cnaf_qfv2", 400, "bad_request", ""},
		{"recipient failing Luhn", "recipient=13002526500014", "cnaf_qfv2", 400, "bad_request", ""},
		{"identity parameter refused", "recipient=" + siret + "&nomNaissance=DUPONT", "cnaf_qfv2", 400, "bad_request", ""},
		{"unpaired service", "recipient=" + siret, "unpaired_service", 401, "access_denied", ""},
		{"provider error", "recipient=" + siret, "provider_error", 503, "provider_unknown_error", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := get(t, gatewayPort, path+"?"+tc.query, bearer(tc.token)...)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if tc.v2Error == "" {
				if a.code(t) != tc.code {
					t.Errorf("code %s, want %s: %s", a.code(t), tc.code, a.body)
				}
				return
			}
			b := a.json(t)
			if b["error"] != tc.v2Error || b["reason"] == nil || b["message"] == nil || b["errors"] != nil {
				t.Errorf("want v2 error %s: %s", tc.v2Error, a.body)
			}
		})
	}
}

// TestV2_APIKeyModality: the same legacy v2 path with an API key in
// X-Api-Key is the identite modality: the caller's civil status (v2
// parameter names) reaches the provider, recipient is optional, and a
// second credential is refused.
func TestV2_APIKeyModality(t *testing.T) {
	start(t, options{MaxEntries: 12011})
	const path = "/api/v2/composition-familiale-v2"
	georges := url.Values{"nomNaissance": {"cnaf"}, "prenoms[]": {"georges"}, "anneeDateDeNaissance": {"2002"},
		"moisDateDeNaissance": {"01"}, "jourDateDeNaissance": {"1"}, "sexe": {"m"}, "codePaysLieuDeNaissance": {"99100"},
		"codeInseeLieuDeNaissance": {"75002"}}
	key := []string{"X-Api-Key", "sandbox_all_scopes"}

	a := get(t, gatewayPort, path+"?"+georges.Encode(), key...)
	if a.status != 200 || a.json(t)["quotientFamilial"] == nil {
		t.Fatalf("no recipient: status %d: %s", a.status, a.body)
	}
	withRecipient := url.Values{"recipient": {siret}}
	for k, v := range georges {
		withRecipient[k] = v
	}
	if a := get(t, gatewayPort, path+"?"+withRecipient.Encode(), key...); a.status != 200 {
		t.Fatalf("with recipient: status %d: %s", a.status, a.body)
	}

	for _, tc := range []struct {
		name    string
		mutate  func(url.Values)
		header  []string
		status  int
		v2Error string
	}{
		{"unknown API key", nil, []string{"X-Api-Key", "not_a_key"}, 401, "access_denied"},
		{"FranceConnect token as API key", nil, []string{"X-Api-Key", "cnaf_qfv2"}, 401, "access_denied"},
		{"API key and Authorization", nil, append(bearer("cnaf_qfv2"), key...), 401, "access_denied"},
		{"malformed sex", func(q url.Values) { q.Set("sexe", "X") }, key, 400, "bad_request"},
		{"born abroad with a commune", func(q url.Values) { q.Set("codePaysLieuDeNaissance", "99352") }, key, 400, "bad_request"},
		{"another SIRET", func(q url.Values) { q.Set("recipient", "21930048000015") }, key, 401, "access_denied"},
		{"unknown civil status", func(q url.Values) { q.Set("nomNaissance", "INCONNU") }, key, 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{}
			for k, v := range georges {
				q[k] = v
			}
			if tc.mutate != nil {
				tc.mutate(q)
			}
			a := get(t, gatewayPort, path+"?"+q.Encode(), tc.header...)
			if a.status != tc.status || a.json(t)["error"] != tc.v2Error {
				t.Errorf("status %d, want %d %s: %s", a.status, tc.status, tc.v2Error, a.body)
			}
		})
	}
}
