package catalogue

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestTwinPaths: a path is declared once, except the two calling
// modalities of a legacy v2 route; recipient is optional only there.
func TestTwinPaths(t *testing.T) {
	const ep = `
  - id: %s
    path: %s
    modality: %s
    api: %s
    operation_id: %s
    provider: CNAV
    upstream_path: /x
    recipient: %s
%s    scopes:
      - {name: s, basis: doc, fields: [%s]}
`
	fc := func(id, path, api, op string) string {
		field := "data.x"
		if api == "v2" {
			field = "x"
		}
		return fmt.Sprintf(ep, id, path, "france_connect", api, op, "required", "    identity:\n      - {param: nom, claim: family_name}\n", field)
	}
	caller := func(id, path, api, op, recipient string) string {
		field := "data.x"
		if api == "v2" {
			field = "x"
		}
		return fmt.Sprintf(ep, id, path, "identite", api, op, recipient, "    params:\n      - {name: nom, required: true, identifier: test}\n", field)
	}
	parse := func(eps ...string) (*Catalogue, error) {
		return Parse([]byte("providers: {CNAV: {error_prefix: \"37\"}}\nendpoints:" + strings.Join(eps, "")))
	}
	c, err := parse(caller("b", "/api/v2/r", "v2", "op", "optional"), fc("a", "/api/v2/r", "v2", "op"))
	if err != nil {
		t.Fatalf("v2 twins refused: %v", err)
	}
	if e, _ := c.Lookup("/api/v2/r"); e.ID != "a" {
		t.Errorf("Lookup = %s, want the FranceConnect endpoint", e.ID)
	}
	if e, ok := c.CallerTwin("/api/v2/r"); !ok || e.ID != "b" || !e.APIKeyHeader() {
		t.Errorf("CallerTwin = %v %v", e, ok)
	}
	for name, eps := range map[string][]string{
		"v3 twins":                 {fc("a", "/v3/r", "v3", "op"), caller("b", "/v3/r", "v3", "op2", "required")},
		"two FranceConnect":        {fc("a", "/api/v2/r", "v2", "op"), fc("b", "/api/v2/r", "v2", "op2")},
		"three on one path":        {fc("a", "/api/v2/r", "v2", "op"), caller("b", "/api/v2/r", "v2", "op", "optional"), caller("c", "/api/v2/r", "v2", "op", "optional")},
		"shared op, other path":    {fc("a", "/api/v2/r", "v2", "op"), caller("b", "/api/v2/s", "v2", "op", "optional")},
		"optional recipient on v3": {caller("b", "/v3/r", "v3", "op", "optional")},
	} {
		if _, err := parse(eps...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestReservedErrorPrefixes: a provider prefix may not collide with the
// platform's codes (00YYY) or FranceConnect token errors (5000x), which
// v2 routes answer in another shape.
func TestReservedErrorPrefixes(t *testing.T) {
	for _, prefix := range []string{"00", "50"} {
		_, err := Parse([]byte(`providers: {X: {error_prefix: "` + prefix + `"}}
endpoints:
  - {id: a, path: /v3/a, modality: identite, operation_id: a, provider: X, upstream_path: /a,
     params: [{name: n, identifier: n}], scopes: [{name: s, basis: doc, fields: [data.x]}]}
`))
		if err == nil || !strings.Contains(err.Error(), "00 and 50 are reserved") {
			t.Errorf("prefix %s: %v", prefix, err)
		}
	}
}

// TestCheckOneOf: exactly one group, whole.
func TestCheckOneOf(t *testing.T) {
	c := mustDefault(t)
	ep, ok := c.CallerTwin("/api/v2/etudiants-boursiers")
	if !ok || len(ep.OneOf) != 2 {
		t.Fatalf("v2 student twin: %v %v", ep, ok)
	}
	for _, tc := range []struct {
		given []string
		bad   string
	}{
		{[]string{"ine"}, ""},
		{[]string{"nom", "prenoms", "dateDeNaissance"}, ""},
		{[]string{"nom", "prenoms", "dateDeNaissance", "sexe", "lieuDeNaissance"}, ""},
		{nil, "ine"},
		{[]string{"sexe"}, "ine"},
		{[]string{"nom", "prenoms"}, "dateDeNaissance"},
		{[]string{"ine", "nom"}, "nom"},
		{[]string{"nom", "ine", "prenoms", "dateDeNaissance"}, "nom"},
	} {
		got := ep.CheckOneOf(func(n string) bool { return slices.Contains(tc.given, n) })
		if got != tc.bad {
			t.Errorf("%v: CheckOneOf = %q, want %q", tc.given, got, tc.bad)
		}
	}
	var none Endpoint
	if none.CheckOneOf(func(string) bool { return false }) != "" {
		t.Error("a route without one_of refused")
	}
}
