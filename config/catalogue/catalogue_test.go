package catalogue

import (
	"slices"
	"strings"
	"testing"
)

func TestDefaultCatalogueLoads(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	ep, ok := c.Lookup("/v3/dss/quotient_familial/france_connect")
	if !ok {
		t.Fatal("quotient familial route missing")
	}
	if ep.Provider.ErrorPrefix != "37" || ep.UpstreamPath != "/v3/dss/quotient_familial/identite" || !ep.RecipientRequired() {
		t.Fatalf("unexpected endpoint: %+v", ep)
	}
	want := map[string]string{"cnaf_quotient_familial": "data.quotient_familial", "cnaf_allocataires": "data.allocataires",
		"cnaf_enfants": "data.enfants", "cnaf_adresse": "data.adresse"}
	if len(ep.Scopes) != len(want) {
		t.Fatalf("%d scopes, want %d", len(ep.Scopes), len(want))
	}
	for _, s := range ep.Scopes {
		if !slices.Equal(s.Fields, []string{want[s.Name]}) {
			t.Errorf("scope %s releases %v, want %s", s.Name, s.Fields, want[s.Name])
		}
	}
}

// TestC04_ExactRouteMatchOnly: lookups are exact on the canonical path, no
// prefix, suffix, case or trailing-slash variant matches.
func TestC04_ExactRouteMatchOnly(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		"/v3/dss/quotient_familial/france_connect/", "/v3/dss/quotient_familial/france_connectx",
		"/v3/dss/quotient_familial", "/V3/dss/quotient_familial/france_connect", "v3/dss/quotient_familial/france_connect",
		"/v3/dss/quotient_familial/france_connect?x", "/v3/dss/quotient_familial/france_connect#x", "",
	} {
		if _, ok := c.Lookup(p); ok {
			t.Errorf("%q matched", p)
		}
	}
}

func TestValidationNamesEntryAndField(t *testing.T) {
	bad := `
providers:
  CNAV: {error_prefix: "3"}
endpoints:
  - id: ok_one
    path: /v3/a/france_connect
    modality: france_connect
    provider: NOPE
    upstream_path: /v3/a/identite
    min_acr: eidas9
    identity: [{param: nom, claim: shoe_size}]
    params: [{name: recipient}, {name: x, pattern: "("}]
    scopes:
      - {name: s1, fields: ["data..x"]}
      - {name: s1, fields: []}
  - id: ok_one
    path: /v3/a/france_connect
    modality: params
    provider: CNAV
    upstream_path: relative
    scopes: []
`
	_, err := Parse([]byte(bad))
	if err == nil {
		t.Fatal("invalid catalogue accepted")
	}
	for _, want := range []string{
		"providers.CNAV: error_prefix", `endpoints[0] (id "ok_one"): provider: unknown provider "NOPE"`,
		"min_acr", `identity[0].claim: unknown claim "shoe_size"`, `params[0].name: "recipient" is reserved`,
		"params[1].pattern", `fields: invalid path "data..x"`, `scope name "s1" listed twice`,
		"scopes[1] (s1): fields: a scope must release at least one field",
		`endpoints[1] (id "ok_one"): id: duplicate`, `endpoints[1] (id "ok_one"): path: duplicate`,
		"modality", "upstream_path", "scopes: a route without scopes is refused",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestUnknownFieldRefused(t *testing.T) {
	_, err := Parse([]byte("providers: {}\nendpoints: []\nextra: 1\n"))
	if err == nil || !strings.Contains(err.Error(), "extra") {
		t.Fatalf("unknown field accepted: %v", err)
	}
}

func TestACRLevel(t *testing.T) {
	for acr, want := range map[string]int{"eidas1": 1, "eidas2": 2, "eidas3": 3, "eidas1 eidas2": 2, "foo eidas3": 3} {
		if got, ok := ACRLevel(acr); !ok || got != want {
			t.Errorf("ACRLevel(%q) = %d, %v; want %d", acr, got, ok, want)
		}
	}
	for _, acr := range []string{"", "eidas4", "EIDAS1", "substantial"} {
		if _, ok := ACRLevel(acr); ok {
			t.Errorf("ACRLevel(%q) known", acr)
		}
	}
}

// TestIdentityMapping uses FranceConnect's test identities (DOMAIN.md §3).
func TestIdentityMapping(t *testing.T) {
	angela := Pivot{FamilyName: "DUBOIS", GivenName: "Angela Claire Louise", Gender: "female",
		Birthdate: "1962-08-24", Birthplace: "75107", Birthcountry: "99100"}
	vincent := Pivot{FamilyName: "MARTIN", GivenName: "Vincent Guillaume", Gender: "male",
		Birthdate: "1963-12-05", Birthplace: "", Birthcountry: "99352"}
	presumed := Pivot{FamilyName: "DUPONT", GivenName: "Jean", Gender: "male", Birthdate: "1970-00-00", Birthcountry: "99100", Birthplace: "2A115"}
	joelle := Pivot{FamilyName: "DUBINÔRE", GivenName: "Joëlle  Françoise", Gender: "female", Birthdate: "1992-08", Birthplace: "75117", Birthcountry: "99100"}
	cases := []struct {
		p     Pivot
		claim Claim
		want  []string
	}{
		{angela, ClaimGivenNames, []string{"Angela", "Claire", "Louise"}},
		{angela, ClaimGivenNamesComma, []string{"Angela, Claire, Louise"}},
		{angela, ClaimFirstGivenName, []string{"Angela"}},
		{angela, ClaimBirthYear, []string{"1962"}},
		{angela, ClaimBirthMonth, []string{"8"}},
		{angela, ClaimBirthDay, []string{"24"}},
		{angela, ClaimBirthdateFR, []string{"24/08/1962"}},
		{angela, ClaimGenderMF, []string{"F"}},
		{angela, ClaimBirthplaceFR, []string{"75107"}},
		{vincent, ClaimBirthplaceFR, nil},
		{vincent, ClaimBirthplace, nil},
		{vincent, ClaimBirthcountry, []string{"99352"}},
		{vincent, ClaimGenderMF, []string{"M"}},
		{presumed, ClaimBirthMonth, nil},
		{presumed, ClaimBirthDay, nil},
		{presumed, ClaimBirthYear, []string{"1970"}},
		{presumed, ClaimBirthplaceFR, []string{"2A115"}},
		{joelle, ClaimFamilyName, []string{"DUBINÔRE"}},
		{joelle, ClaimGivenNames, []string{"Joëlle", "Françoise"}},
		{joelle, ClaimGivenName, []string{"Joëlle Françoise"}},
		{joelle, ClaimBirthMonth, []string{"8"}},
		{joelle, ClaimBirthDay, nil},
	}
	for _, tc := range cases {
		got, err := tc.claim.AppendValues(nil, &tc.p)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s(%s) = %q, %v; want %q", tc.claim, tc.p.FamilyName, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		p     Pivot
		claim Claim
	}{
		{Pivot{Gender: "unspecified"}, ClaimGenderMF},
		{Pivot{Birthdate: "24/08/1962"}, ClaimBirthYear},
		{Pivot{Birthdate: "1962-13-01"}, ClaimBirthMonth},
		{Pivot{Birthdate: "1962-08-24"}, ClaimBirthdateFR + "x"},
		{Pivot{Birthdate: "1962-08"}, ClaimBirthdateFR},
		{Pivot{FamilyName: "  "}, ClaimFamilyName},
		{Pivot{GivenName: ""}, ClaimGivenNames},
		{Pivot{Birthcountry: "99100", Birthplace: "75 07"}, ClaimBirthplaceFR},
		{Pivot{Birthcountry: "France"}, ClaimBirthcountry},
	} {
		if _, err := tc.claim.AppendValues(nil, &tc.p); err == nil {
			t.Errorf("%s accepted %+v", tc.claim, tc.p)
		}
	}
}

func FuzzCatalogueYAML(f *testing.F) {
	f.Add(defaultYAML)
	f.Add([]byte("endpoints: [{id: a}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		for i := range c.Endpoints {
			if _, ok := c.Lookup(c.Endpoints[i].Path); !ok || len(c.Endpoints[i].Scopes) == 0 {
				t.Fatalf("accepted catalogue is inconsistent")
			}
		}
	})
}
