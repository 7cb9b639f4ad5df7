package pipeline

import (
	"cmp"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

func qfEndpoint(t testing.TB) *catalogue.Endpoint {
	t.Helper()
	c, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
	ep, _ := c.Lookup("/v3/dss/quotient_familial/france_connect")
	return ep
}

// TestD07_QueryAllowList: each route lists its parameters; unknown,
// repeated, person or malformed parameters are refused by name (C07, C08).
// req: C08
func TestD07_QueryAllowList(t *testing.T) {
	checkQueryCases(t, qfEndpoint(t), "00366", []queryCase{
		{"recipient=13002526500013", "", ""},
		{"recipient=13002526500013&annee=2024&mois=02", "", ""},
		{"", "recipient", "00203"},
		{"recipient=", "recipient", "00203"},
		{"recipient=13002526500014", "recipient", "00210"},
		{"recipient=1300252650001", "recipient", "00210"},
		{"recipient=130025265000130", "recipient", "00210"},
		{"recipient=13002526500013&recipient=13002526500013", "recipient", "00210"},
		{"recipient=%EF%BC%911300252650001", "recipient", "00210"},
		{"recipient=+13002526500013", "recipient", "00210"},
		{"recipient=21930048000015", "recipient", "00100"},
		{"recipient=13002526500013&nomNaissance=DUPONT", "nomNaissance", "00366"},
		{"recipient=13002526500013&prenoms%5B%5D=Jean", "prenoms[]", "00366"},
		{"recipient=13002526500013&annee=2024&annee=2023", "annee", "00366"},
		{"recipient=13002526500013&mois=13", "mois", "00366"},
		{"recipient=13002526500013&client_id=other", "client_id", "00366"},
	})
}

func TestD06_QuerySyntaxRefused(t *testing.T) {
	for _, raw := range []string{"a=%zz", "a=1;b=2", strings.Repeat("a=1&", maxQueryParams+1)} {
		if _, ok := parseQuery(raw, nil); ok {
			t.Errorf("%q accepted", raw)
		}
	}
}

// FuzzD07_QueryAllowList: whatever the query, parsing never panics, agrees
// with net/url on what it accepts, and an accepted query holds only the
// route's parameters, each once.
func FuzzD07_QueryAllowList(f *testing.F) {
	ep := qfEndpoint(f)
	hab := &habilitation.Habilitation{SIRET: "13002526500013"}
	for _, s := range []string{"recipient=13002526500013&annee=2024", "recipient=13002526500013&mois=1", "a=%zz", "x=1&x=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		params, ok := parseQuery(raw, nil)
		if !ok {
			return
		}
		if _, err := url.ParseQuery(raw); err != nil {
			t.Fatalf("accepted what net/url refuses: %v", err)
		}
		if checkQuery(params, ep, hab, time.Now()) != nil {
			return
		}
		seen := map[string]bool{}
		for _, p := range params {
			if _, known := ep.Param(p.name); !known && p.name != "recipient" {
				t.Fatalf("unknown parameter %q accepted", p.name)
			}
			if seen[p.name] {
				t.Fatalf("repeated parameter %q accepted", p.name)
			}
			seen[p.name] = true
		}
	})
}

// queryCase is one caller query, the parameter it must be refused on (""
// when it must pass) and, when it differs from the test's, the refusal code.
type queryCase struct{ raw, refused, code string }

// checkQueryCases runs checkQuery on each case and expects a refusal with
// the case's code (default: code) on the named parameter, or none.
func checkQueryCases(t *testing.T, ep *catalogue.Endpoint, code string, cases []queryCase) {
	t.Helper()
	hab := &habilitation.Habilitation{SIRET: "13002526500013"}
	for _, tc := range cases {
		params, ok := parseQuery(tc.raw, nil)
		if !ok {
			t.Fatalf("%q: parse failed", tc.raw)
		}
		want := cmp.Or(tc.code, code)
		e := checkQuery(params, ep, hab, time.Now())
		switch {
		case tc.refused == "" && e != nil:
			t.Errorf("%s %q refused: %+v", ep.Path, tc.raw, e)
		case tc.refused != "" && (e == nil || e.Code != want || e.SourceParameter != tc.refused):
			t.Errorf("%s %q: got %+v, want %s on %q", ep.Path, tc.raw, e, want, tc.refused)
		}
	}
}

// TestParamNotUTF8Refused: a value that is not UTF-8 is refused by name
// with the route's invalid_code, whatever the route's pattern: Go's regexp
// reads an invalid byte as U+FFFD, so a loose pattern of a custom catalogue
// would otherwise pass broken text to the provider.
func TestParamNotUTF8Refused(t *testing.T) {
	c, err := catalogue.Parse([]byte(`
providers: {CNAV: {error_prefix: "37"}}
endpoints:
  - id: r
    path: /v3/r/identite
    modality: identite
    operation_id: r
    provider: CNAV
    upstream_path: /v3/r/identite
    invalid_code: "00366"
    params:
      - {name: nomNaissance, required: true, normalize: name, pattern: '^.{1,100}$'}
      - {name: reference, pattern: '^.{1,20}$', identifier: reference}
    scopes:
      - {name: s, basis: doc, fields: [data.x]}
`))
	if err != nil {
		t.Fatal(err)
	}
	ep, _ := c.Lookup("/v3/r/identite")
	checkQueryCases(t, ep, "00366", []queryCase{
		{"recipient=13002526500013&nomNaissance=DUPONT&reference=A1", "", ""},
		{"recipient=13002526500013&nomNaissance=DUP%F7ONT", "nomNaissance", ""},
		{"recipient=13002526500013&nomNaissance=%F7%CD%83", "nomNaissance", ""},
		{"recipient=13002526500013&nomNaissance=DUPONT&reference=%ED%A0%80", "reference", ""},
		{"recipient=13002526500013&nomNaissance=DUPONT&reference=A%C3", "reference", ""},
	})
}

// TestCommuneByNameNeedsDepartement: a commune of birth given by name
// without its département (or its birth year) is refused by the missing
// parameter's name; the full triplet passes.
func TestCommuneByNameNeedsDepartement(t *testing.T) {
	c, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
	ep, _ := c.Lookup("/v3/dss/quotient_familial/identite")
	base := "recipient=13002526500013&nomNaissance=NDIAYE&prenoms%5B%5D=Aissatou&sexeEtatCivil=F&codeCogInseePaysNaissance=99100"
	checkQueryCases(t, ep, "00366", []queryCase{
		{base + "&anneeDateNaissance=2003&nomCommuneNaissance=Saint-Denis&codeCogInseeDepartementNaissance=93", "", ""},
		{base + "&anneeDateNaissance=2003&nomCommuneNaissance=Saint-Denis", "codeCogInseeDepartementNaissance", ""},
		{base + "&nomCommuneNaissance=Saint-Denis&codeCogInseeDepartementNaissance=93", "anneeDateNaissance", ""},
		{base + "&anneeDateNaissance=2003&codeCogInseeCommuneNaissance=93066", "", ""},
	})
}

// TestMENPerimeterExclusive: an establishment's code, a perimeter of
// départements and one of regions exclude one another (siade: 00419); one
// alone passes, and so does none (left to the provider).
func TestMENPerimeterExclusive(t *testing.T) {
	c, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
	base := "recipient=13002526500013&nomNaissance=ELOI&prenoms%5B%5D=Theo&sexeEtatCivil=M&anneeDateNaissance=2007" +
		"&moisDateNaissance=1&jourDateNaissance=9&anneeScolaire=2025"
	dep, reg, uai := "&codesBcnDepartements%5B%5D=02A", "&codesBcnRegions%5B%5D=11", "&codeEtablissement=0754321K"
	for _, path := range []string{"/v3/men/scolarites/identite", "/v4/men/scolarites/identite"} {
		ep, _ := c.Lookup(path)
		checkQueryCases(t, ep, "00419", []queryCase{
			{base + uai, "", ""},
			{base + dep + "&codesBcnDepartements%5B%5D=075", "", ""},
			{base + reg, "", ""},
			{base, "", ""},
			{base + uai + dep, "codesBcnDepartements[]", ""},
			{base + dep + reg, "codesBcnRegions[]", ""},
			{base + reg + uai, "codesBcnRegions[]", ""},
		})
	}
}

// FuzzIdentiteParams: on the identity route, whatever the caller sends,
// an accepted query holds only the route's parameters, each within its
// count and pattern once normalised, and the provider query built from it
// holds nothing else.
func FuzzIdentiteParams(f *testing.F) {
	c, err := catalogue.Default()
	if err != nil {
		f.Fatal(err)
	}
	ep, ok := c.Lookup("/v3/dss/quotient_familial/identite")
	if !ok {
		f.Fatal("identite route missing")
	}
	hab := &habilitation.Habilitation{SIRET: "13002526500013"}
	f.Add("recipient=13002526500013&nomNaissance=DUPONT&prenoms%5B%5D=Paul&prenoms%5B%5D=Louis&sexeEtatCivil=M&codeCogInseePaysNaissance=99100")
	f.Add("recipient=13002526500013&nomNaissance=DUBIN%C3%94RE&prenoms%5B%5D=Jo%C3%ABlle&sexeEtatCivil=F&codeCogInseePaysNaissance=99100&moisDateNaissance=8")
	f.Add("nomNaissance=%00&prenoms[]=x")
	f.Fuzz(func(t *testing.T, raw string) {
		params, ok := parseQuery(raw, nil)
		if !ok || checkQuery(params, ep, hab, time.Now()) != nil {
			return
		}
		for _, qp := range params {
			if qp.name == "recipient" {
				continue
			}
			p, known := ep.Param(qp.name)
			if !known {
				t.Fatalf("unknown parameter %q accepted", qp.name)
			}
			if n, _ := count(params, qp.name); n > max(p.Max, 1) {
				t.Fatalf("%q accepted %d times", qp.name, n)
			}
			if !p.Valid(p.Clean(qp.value)) {
				t.Fatalf("%q=%q accepted against its pattern", qp.name, qp.value)
			}
			if !utf8.ValidString(qp.value) {
				t.Fatalf("%q=%+q accepted: not UTF-8", qp.name, qp.value)
			}
		}
		up, err := url.ParseQuery(callerQuery(ep, params))
		if err != nil {
			t.Fatalf("provider query does not parse: %v", err)
		}
		for name := range up {
			if _, known := ep.Param(name); !known && name != "recipient" {
				t.Fatalf("provider query holds %q", name)
			}
		}
	})
}

// TestF01_LongValueRefused: a parameter value over 512 bytes is refused
// before it is normalised (422 naming it).
func TestF01_LongValueRefused(t *testing.T) {
	cat, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
	ep, _ := cat.Lookup("/v3/dss/quotient_familial/identite")
	params, _ := parseQuery("nomNaissance="+strings.Repeat("%CD%84", 200)+"&recipient=13002526500013", nil)
	if e := checkQuery(params, ep, &habilitation.Habilitation{SIRET: "13002526500013"}, time.Now()); e == nil || e.SourceParameter != "nomNaissance" {
		t.Errorf("oversized value: %v", e)
	}
}

// TestUpstreamQueryMemoisedPerEndpoint: the identity part of the provider
// query is built once per token and endpoint, and each request still adds
// its own parameters; a token used on two endpoints gets each one's query.
func TestUpstreamQueryMemoisedPerEndpoint(t *testing.T) {
	c, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
	qf, _ := c.Lookup("/v3/dss/quotient_familial/france_connect")
	f := &fcverify.Facts{Active: true, Identity: fcverify.Identity{
		Gender: "female", FamilyName: "DUBOIS", GivenName: "Angela Claire", GivenNameArray: []string{"Angela", "Claire"},
		Birthdate: "1962-08-24", Birthplace: "75107", Birthcountry: "99100",
	}}
	// Another FranceConnect endpoint whose identity mapping differs from
	// the quotient familial's, so that a memo ignoring the endpoint shows.
	qfIdentity, err := identityQuery(qf, &fcverify.Facts{Identity: f.Identity})
	if err != nil {
		t.Fatal(err)
	}
	var other *catalogue.Endpoint
	for i := range c.Endpoints {
		ep := &c.Endpoints[i]
		if ep.Modality.CallerGivesIdentity() || len(ep.Identity) == 0 || !ep.RecipientAccepted() {
			continue
		}
		if q, err := identityQuery(ep, &fcverify.Facts{Identity: f.Identity}); err == nil && q != qfIdentity {
			other = ep
			break
		}
	}
	if other == nil {
		t.Fatal("no FranceConnect endpoint with another identity mapping in the default catalogue")
	}
	params := func(raw string) []queryParam {
		ps, ok := parseQuery(raw, nil)
		if !ok {
			t.Fatalf("parseQuery(%q)", raw)
		}
		return ps
	}
	for i, tc := range []struct {
		ep  *catalogue.Endpoint
		raw string
	}{
		{qf, "recipient=13002526500013"},
		{qf, "recipient=21930048000015&annee=2024&mois=02"},
		{other, "recipient=13002526500013"},
		{qf, "recipient=13002526500013"},
	} {
		got, err := upstreamQuery(tc.ep, f, params(tc.raw))
		if err != nil {
			t.Fatal(err)
		}
		// The same query from facts that never memoised anything.
		fresh := &fcverify.Facts{Active: true, Identity: f.Identity}
		want, err := upstreamQuery(tc.ep, fresh, params(tc.raw))
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("request %d on %s: got %q, want %q", i, tc.ep.ID, got, want)
		}
		q, err := url.ParseQuery(got)
		if err != nil {
			t.Fatal(err)
		}
		if r := params(tc.raw); q.Get("recipient") != r[0].value {
			t.Fatalf("request %d: recipient %q, want this request's %q", i, q.Get("recipient"), r[0].value)
		}
	}
}
