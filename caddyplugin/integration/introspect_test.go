package integration

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// TestIntrospect: /api/introspect lists the habilitation and scopes of
// either kind of credential; an unknown one gets the v2 401.
func TestIntrospect(t *testing.T) {
	start(t, options{MaxEntries: 11001})
	api := get(t, gatewayPort, "/api/introspect", bearer("sandbox_all_scopes")...)
	if api.status != 200 {
		t.Fatalf("API token: status %d: %s", api.status, api.body)
	}
	m := api.json(t)
	scopes, _ := m["scopes"].([]any)
	if m["_id"] != "sandbox-toutes-donnees" || len(scopes) < 20 {
		t.Fatalf("API token introspection: %s", api.body)
	}
	fc := get(t, gatewayPort, "/api/introspect", bearer("cnaf_qf_partial")...)
	if fc.status != 200 {
		t.Fatalf("FranceConnect token: status %d: %s", fc.status, fc.body)
	}
	var got []string
	for _, s := range fc.json(t)["scopes"].([]any) {
		got = append(got, s.(string))
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"cnaf_enfants", "cnaf_quotient_familial"}) {
		t.Fatalf("FranceConnect token scopes %v", got)
	}
	bad := get(t, gatewayPort, "/api/introspect", bearer("nope")...)
	if bad.status != 401 || bad.json(t)["error"] != "access_denied" {
		t.Fatalf("unknown token: status %d: %s", bad.status, bad.body)
	}
}

// TestIntrospectAPIKey: /api/introspect takes a habilitation's API token
// in X-Api-Key, as API Particulier v2's callers send it, with the same
// answer as in Authorization; one credential a request: X-Api-Key next to
// Authorization, or twice, is refused, and a FranceConnect token in
// X-Api-Key is unknown there, never sent to FranceConnect.
func TestIntrospectAPIKey(t *testing.T) {
	fc := newFCCounter(t)
	start(t, options{MaxEntries: 11003, CheckTokenURL: fc.srv.URL})
	want := get(t, gatewayPort, "/api/introspect", bearer("sandbox_all_scopes")...)
	got := get(t, gatewayPort, "/api/introspect", "X-Api-Key", "sandbox_all_scopes")
	if want.status != 200 || got.status != 200 || !bytes.Equal(got.body, want.body) {
		t.Fatalf("X-Api-Key: status %d %s; Authorization: status %d %s", got.status, got.body, want.status, want.body)
	}
	for name, headers := range map[string][]string{
		"next to Authorization": append([]string{"X-Api-Key", "sandbox_all_scopes"}, bearer("sandbox_all_scopes")...),
		"twice":                 {"X-Api-Key", "sandbox_all_scopes", "X-Api-Key", "sandbox_all_scopes"},
		"a FranceConnect token": {"X-Api-Key", "cnaf_qf_partial"},
		"an unknown API token":  {"X-Api-Key", "nope"},
		"empty":                 {"X-Api-Key", ""},
	} {
		a := get(t, gatewayPort, "/api/introspect", headers...)
		if a.status != 401 || a.json(t)["error"] != "access_denied" || bytes.Contains(a.body, []byte("sandbox-toutes-donnees")) {
			t.Errorf("%s: status %d: %s", name, a.status, a.body)
		}
	}
	if n := fc.checktoken.Load(); n != 0 {
		t.Fatalf("%d checktoken calls for X-Api-Key credentials", n)
	}
}

// TestA19_APITokenNeverSentToFranceConnect: a habilitation's API token on a
// FranceConnect route is refused as a token of the wrong kind (401 50002,
// SECURITY.md §1.3) without any checktoken call; so is a minted API token
// that the registry no longer holds (rotated, revoked), on a data route
// and on introspection.
func TestA19_APITokenNeverSentToFranceConnect(t *testing.T) {
	fc := newFCCounter(t)
	start(t, options{MaxEntries: 11002, CheckTokenURL: fc.srv.URL})
	a := get(t, gatewayPort, qf("recipient="+siret), bearer("sandbox_all_scopes")...)
	if a.status != 401 || a.code(t) != "50002" {
		t.Fatalf("status %d code %s: %s", a.status, a.code(t), a.body)
	}
	rotated := "pa_" + strings.Repeat("Zm9yZ290dGVu", 4)[:43]
	if a := get(t, gatewayPort, qf("recipient="+siret), bearer(rotated)...); a.status != 401 || a.code(t) != "50002" {
		t.Fatalf("rotated API token: status %d: %s", a.status, a.body)
	}
	if a := get(t, gatewayPort, "/api/introspect", bearer(rotated)...); a.status != 401 {
		t.Fatalf("rotated API token on introspection: status %d: %s", a.status, a.body)
	}
	if n := fc.checktoken.Load(); n != 0 {
		t.Fatalf("%d checktoken calls for an API token", n)
	}
}
