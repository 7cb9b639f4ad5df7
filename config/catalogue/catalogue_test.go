package catalogue

import (
	"fmt"
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
		if !releasesKeys(s.Fields, []string{want[s.Name]}) {
			t.Errorf("scope %s releases %v, want the leaves of %s", s.Name, s.Fields, want[s.Name])
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
  "bad name!": {error_prefix: "12"}
endpoints:
  - id: ok_one
    path: /v3/a/france_connect
    modality: france_connect
    operation_id: op_a
    provider: NOPE
    not_found_provider: NOPE2
    upstream_path: /v3/a/identite
    min_acr: eidas9
    identity: [{param: nom, claim: shoe_size}]
    params: [{name: recipient}, {name: x, pattern: "("}, {name: y, pattern: "[0-9]+"}, {name: z, requires: [z, nowhere]}]
    exclusive: [x, elsewhere]
    scopes:
      - {name: s1, basis: doc, fields: ["data..x"]}
      - {name: s1, basis: doc, fields: []}
      - {name: s2, fields: [data.y]}
      - {name: s3, basis: maybe, fields: [data.identite, "data.identite.nom", "data.identite[].nom", other.x, "data[].x"]}
  - id: ok_one
    path: /v3/a/france_connect
    modality: params
    operation_id: op_a
    provider: CNAV
    upstream_path: relative
    scopes: []
  - id: no_op
    path: /v3/b/france_connect
    modality: france_connect
    provider: CNAV
    upstream_path: /v3/b/identite
    identity: [{param: nom, claim: family_name}]
    scopes: [{name: s, basis: der, fields: [data.s]}]
`
	_, err := Parse([]byte(bad))
	if err == nil {
		t.Fatal("invalid catalogue accepted")
	}
	for _, want := range []string{
		"providers.CNAV: error_prefix", `providers.bad name!: invalid provider name`,
		`endpoints[0] (id "ok_one"): provider: unknown provider "NOPE"`,
		`endpoints[0] (id "ok_one"): not_found_provider: unknown provider "NOPE2"`,
		"min_acr", `identity[0].claim: unknown claim "shoe_size"`, `params[0].name: "recipient" is reserved`,
		"params[1].pattern", "params[2].pattern: must be anchored",
		`params[3].requires: "z" is not another declared parameter`, `exclusive: "elsewhere" is not a declared parameter`, `params[3].requires: "nowhere" is not another declared parameter`, `fields: invalid path "data..x"`, `scope name "s1" listed twice`,
		"scopes[1] (s1): fields: a scope must release at least one field",
		"scopes[2] (s2): basis: want doc or der", "scopes[3] (s3): basis: want doc or der",
		`scopes[3] (s3): fields: identity block on a france_connect route: "data.identite"`,
		`scopes[3] (s3): fields: identity block on a france_connect route: "data.identite.nom"`,
		`scopes[3] (s3): fields: identity block on a france_connect route: "data.identite[].nom"`,
		`scopes[3] (s3): fields: path not rooted at data, links or meta: "other.x"`,
		`scopes[3] (s3): fields: path not rooted at data, links or meta: "data[].x"`,
		`endpoints[1] (id "ok_one"): id: duplicate`, `endpoints[1] (id "ok_one"): path: duplicate`,
		`endpoints[1] (id "ok_one"): operation_id: duplicate`,
		`endpoints[2] (id "no_op"): operation_id: want 1-128 of [a-z0-9_]`,
		"modality", "upstream_path", "scopes: a route without scopes is refused",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestIdentityBlockOnFranceConnect: on a france_connect route, validation
// refuses the citizen's identity block, the identite member of data (of the
// body's root on v2 routes), and its leaves; a member named identite deeper
// down is another thing (v2 quotient familial's adresse.identite is the
// addressee line) and is accepted, as is any identite on a caller route.
func TestIdentityBlockOnFranceConnect(t *testing.T) {
	const base = `
providers: {CNAV: {error_prefix: "37"}}
endpoints:
  - id: a
    path: /r/a
    modality: %s
    api: %s
    operation_id: op_a
    provider: CNAV
    upstream_path: /r/a
%s    scopes: [{name: s, basis: der, fields: ["%s"]}]
`
	parse := func(modality, api, field string) error {
		who := "    identity: [{param: nom, claim: family_name}]\n"
		if modality != "france_connect" {
			who = "    params: [{name: nom, required: true, identifier: test}]\n"
		}
		_, err := Parse([]byte(fmt.Sprintf(base, modality, api, who, field)))
		return err
	}
	for _, tc := range []struct {
		modality, api, field string
		refused              bool
	}{
		{"france_connect", "v3", "data.identite", true},
		{"france_connect", "v3", "data.identite.nom_naissance", true},
		{"france_connect", "v3", "data.identite[].nom", true},
		{"france_connect", "v2", "identite", true},
		{"france_connect", "v2", "identite.nom", true},
		{"france_connect", "v2", "adresse.identite", false},
		{"france_connect", "v3", "data.adresse.identite", false},
		{"france_connect", "v3", "data.a[].identite.nom", false},
		{"france_connect", "v3", "data.identite_particulier.nom", false},
		{"france_connect", "v3", "meta.identite", false},
		{"identite", "v3", "data.identite.nom", false},
		{"identite", "v2", "identite", false},
	} {
		err := parse(tc.modality, tc.api, tc.field)
		if refused := err != nil && strings.Contains(err.Error(), "identity block on a france_connect route"); refused != tc.refused || !refused && err != nil {
			t.Errorf("%s %s %s: %v, want refused %v", tc.modality, tc.api, tc.field, err, tc.refused)
		}
	}
}

// A minimal valid catalogue loads; the same with a deep path does not.
func TestValidationLimits(t *testing.T) {
	base := `
providers: {"CNAF & MSA": {error_prefix: "35"}, CNAV: {error_prefix: "37"}}
endpoints:
  - id: a
    path: /v3/a/france_connect
    modality: france_connect
    operation_id: op_a
    provider: CNAV
    not_found_provider: "CNAF & MSA"
    upstream_path: /v3/a/identite
    identity: [{param: nom, claim: family_name}]
    scopes: [{name: s, basis: der, fields: [%s]}]
`
	c, err := Parse([]byte(strings.Replace(base, "%s", "data.identite_particulier", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if p, n := c.Endpoints[0].NotFoundError(); p != "35" || n != "CNAF & MSA" {
		t.Errorf("NotFoundError = %s %s", p, n)
	}
	deep := "data" + strings.Repeat(".x", maxFieldSegments)
	if _, err := Parse([]byte(strings.Replace(base, "%s", deep, 1))); err == nil || !strings.Contains(err.Error(), "path too deep") {
		t.Errorf("deep path: %v", err)
	}
	long := "data." + strings.Repeat("x", 129)
	if _, err := Parse([]byte(strings.Replace(base, "%s", long, 1))); err == nil || !strings.Contains(err.Error(), "member too long") {
		t.Errorf("long member: %v", err)
	}
}

func TestUnknownFieldRefused(t *testing.T) {
	_, err := Parse([]byte("providers: {}\nendpoints: []\nextra: 1\n"))
	if err == nil || !strings.Contains(err.Error(), "extra") {
		t.Fatalf("unknown field accepted: %v", err)
	}
}

func TestACRLevel(t *testing.T) {
	for acr, want := range map[string]int{"eidas1": 1, "eidas2": 2, "eidas3": 3, "eidas1 eidas3": 1, "eidas3 eidas2": 2} {
		if got, ok := ACRLevel(acr); !ok || got != want {
			t.Errorf("ACRLevel(%q) = %d, %v; want %d", acr, got, ok, want)
		}
	}
	for _, acr := range []string{"", "eidas4", "EIDAS1", "substantial", "foo eidas3", "eidas2 eidas9"} {
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
	// A small valid catalogue using every feature: the fuzzer spends its
	// time minimising large seeds (default.yaml), so it is not one.
	f.Add([]byte(`providers: {CNAV: {error_prefix: "37"}, RNCPS: {error_prefix: "40"}}
endpoints:
  - id: a_fc
    path: /v3/a/france_connect
    modality: france_connect
    operation_id: op_a
    provider: CNAV
    not_found_provider: RNCPS
    upstream_path: /v3/a/identite
    identity: [{param: "prenoms[]", claim: given_names}, {param: p, claim: given_names_comma}]
    params: [{name: x, pattern: '^[A-Z]{2}$', required: true}]
    scopes:
      - {name: s, aliases: [t], basis: doc, fields: ["data.a[].b", meta.c]}
`))
	f.Add([]byte("endpoints: [{id: a}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		for i := range c.Endpoints {
			ep := &c.Endpoints[i]
			if _, ok := c.Lookup(ep.Path); !ok || len(ep.Scopes) == 0 {
				t.Fatalf("accepted catalogue is inconsistent")
			}
			if prefix, name := ep.NotFoundError(); !prefixRe.MatchString(prefix) || !providerRe.MatchString(name) {
				t.Fatalf("accepted endpoint has a bad not-found provider %q %q", prefix, name)
			}
			for _, s := range ep.Scopes {
				if s.Basis != BasisDoc && s.Basis != BasisDer {
					t.Fatalf("accepted scope without basis")
				}
				for _, f := range s.Fields {
					if checkField(f, ep.Modality, ep.API) != "" {
						t.Fatalf("accepted field %q", f)
					}
				}
			}
		}
	})
}

// TestKnowsScope: a scope name and its alias are known; an identity scope of
// FranceConnect or an invented one is not.
func TestKnowsScope(t *testing.T) {
	cat, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range cat.Endpoints {
		for _, s := range e.Scopes {
			for _, n := range s.Names() {
				if !cat.KnowsScope(n) {
					t.Fatalf("%s of %s unknown", n, e.ID)
				}
			}
		}
	}
	for _, n := range []string{"openid", "family_name", "cnaf_quotient_familial_x", ""} {
		if cat.KnowsScope(n) {
			t.Errorf("%q known", n)
		}
	}
}

// TestJointScopes: joint_scopes groups name at least two of the route's
// own scopes, by their main names; the default catalogue's MESRI v2 routes
// have their group.
func TestJointScopes(t *testing.T) {
	const base = `providers: {CNAV: {error_prefix: "37"}}
endpoints:
  - id: a
    path: /v3/a/france_connect
    modality: france_connect
    operation_id: op_a
    provider: CNAV
    upstream_path: /v3/a/identite
    identity: [{param: nom, claim: family_name}]
    joint_scopes: [%s]
    scopes:
      - {name: s1, basis: der, fields: [data.a]}
      - {name: s2, basis: der, fields: [data.b]}
      - {name: s3, basis: der, fields: [data.c]}
`
	c, err := Parse([]byte(strings.Replace(base, "%s", "[s1, s3]", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Endpoints[0].JointMasks(); len(got) != 1 || got[0] != 0b101 {
		t.Errorf("JointMasks = %b, want [101]", got)
	}
	for group, want := range map[string]string{
		"[s1, nope]": `"nope" is not a scope of the route`,
		"[s2]":       "want at least two scopes of the route",
	} {
		if _, err := Parse([]byte(strings.Replace(base, "%s", group, 1))); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("joint_scopes %s: %v, want %q", group, err, want)
		}
	}
	def, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"v2_etudiants_fc", "v2_etudiants_identite"} {
		if ep, ok := def.ByID(id); !ok || len(ep.JointMasks()) != 1 {
			t.Errorf("%s: no joint scopes", id)
		}
	}
}
