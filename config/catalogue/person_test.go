package catalogue

import (
	"strings"
	"testing"
)

// TestPersonIsStableAcrossRoutes: the same citizen, looked up by civil
// status on any identite route of the default catalogue (v3 or v2
// parameter names), or by the same identifier on two routes, is designated
// by the same text: the audit pseudonym then follows the person, not the
// route (issue 8, defect 9).
func TestPersonIsStableAcrossRoutes(t *testing.T) {
	c := mustDefault(t)
	civil := map[string][]string{
		PivotFamilyName: {"DUPONT"}, PivotGivenNames: {"PAUL"}, PivotBirthYear: {"1962"},
		PivotBirthMonth: {"8"}, PivotBirthDay: {"24"}, PivotBirthdate: {"1962-08-24"},
	}
	want := "DUPONT\x00PAUL\x001962-08-24"
	n := 0
	for i := range c.Endpoints {
		ep := &c.Endpoints[i]
		if ep.Modality != ModalityIdentite {
			continue
		}
		values := func(name string) []string {
			if p, ok := ep.Param(name); ok {
				return civil[p.Pivot]
			}
			return nil
		}
		kind, text, ok := ep.Person(values)
		if !ok || kind != PersonCivilStatus || text != want {
			t.Errorf("%s: Person = %q %q %v, want civil_status %q", ep.ID, kind, text, ok, want)
		}
		n++
	}
	if n < 15 {
		t.Fatalf("only %d identite routes", n)
	}

	byPath := func(path string) *Endpoint {
		ep, ok := c.Lookup(path)
		if !ok {
			t.Fatalf("no route %s", path)
		}
		return ep
	}
	ident := func(path, name, value string) string {
		kind, text, ok := byPath(path).Person(func(n string) []string {
			if n == name {
				return []string{value}
			}
			return nil
		})
		if !ok || kind != PersonIdentifier {
			t.Fatalf("%s: Person = %q %v", path, kind, ok)
		}
		return text
	}
	if a, b := ident("/v4/cnous/etudiant_boursier/ine", "ine", "1234567890A"), ident("/v3/mesri/statut_etudiant/ine", "ine", "1234567890A"); a != b {
		t.Errorf("one INE, two texts: %q %q", a, b)
	}
	if a, b := ident("/v3/france_travail/statut/identifiant", "identifiant", "X1"), ident("/v3/sdh/statut_sportif/identifiant", "identifiant", "X1"); a == b {
		t.Error("France Travail and SDH identifiers share a namespace")
	}
}

// TestPersonPartialDate: a partial birth date designates a year or a
// month, padded as in YYYY-MM, a missing one the names alone; missing
// names give no designation.
func TestPersonPartialDate(t *testing.T) {
	c := mustDefault(t)
	ep, _ := c.Lookup("/v3/dss/quotient_familial/identite")
	call := func(q map[string][]string) (string, bool) {
		_, text, ok := ep.Person(func(n string) []string { return q[n] })
		return text, ok
	}
	base := func() map[string][]string {
		return map[string][]string{"nomNaissance": {"MARTIN"}, "prenoms[]": {"JEAN", "PIERRE"}, "anneeDateNaissance": {"1977"}}
	}
	if text, ok := call(base()); !ok || text != "MARTIN\x00JEAN PIERRE\x001977" {
		t.Errorf("year only: %q %v", text, ok)
	}
	q := base()
	q["moisDateNaissance"] = []string{"3"}
	if text, _ := call(q); !strings.HasSuffix(text, "\x001977-03") {
		t.Errorf("year and month: %q", text)
	}
	q = base()
	delete(q, "anneeDateNaissance")
	if text, ok := call(q); !ok || text != "MARTIN\x00JEAN PIERRE\x00" {
		t.Errorf("no birth date: %q %v", text, ok)
	}
	q = base()
	delete(q, "prenoms[]")
	if _, ok := call(q); ok {
		t.Error("no given name, yet a designation")
	}
}

// TestPersonAnnotationsValidated: unknown pivots, annotations on a
// FranceConnect route, repeated pivots, and identite or identifiant routes
// without what designates the person are refused.
func TestPersonAnnotationsValidated(t *testing.T) {
	doc := func(modality, params string) string {
		identity := ""
		if modality == "france_connect" {
			identity = "\n    identity: [{param: nomNaissance, claim: family_name}]"
		}
		return `
providers: {CNAV: {error_prefix: "37"}}
endpoints:
  - id: r
    path: /v3/r/x
    modality: ` + modality + `
    operation_id: r
    provider: CNAV
    upstream_path: /v3/r/x` + identity + `
    params: [` + params + `]
    scopes: [{name: s, basis: doc, fields: [data.x]}]
`
	}
	for _, tc := range []struct{ modality, params, want string }{
		{"identite", "{name: a, pivot: shoe_size}", `unknown pivot "shoe_size"`},
		{"france_connect", "{name: a, pivot: family_name}", "only on identite and identifiant routes"},
		{"identite", "{name: a, pivot: family_name}, {name: b, pivot: family_name}", "each pivot"},
		{"identite", "{name: a, pivot: family_name, identifier: x}", "exclusive"},
		{"identite", "{name: a, pivot: family_name}, {name: b, pivot: given_names}", "marks its birth name, given names and birth date"},
		{"identifiant", "{name: a, pivot: family_name}", "names its identifier"},
		{"identifiant", "{name: a, identifier: A}", "namespace"},
	} {
		_, err := Parse([]byte(doc(tc.modality, tc.params)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: %v, want %q", tc.modality, tc.params, err, tc.want)
		}
	}
	if _, err := Parse([]byte(doc("identite", "{name: a, pivot: family_name}, {name: b, pivot: given_names}, {name: c, pivot: birthdate}"))); err != nil {
		t.Errorf("complete civil status refused: %v", err)
	}
}

// TestF05_QuotaSubjectFolds: spellings, given names and date precisions
// of one person give one quota subject on every identite route; another
// name or birth year gives another; an identifier comes first, whatever
// its case.
func TestF05_QuotaSubjectFolds(t *testing.T) {
	c := mustDefault(t)
	subject := func(ep *Endpoint, byPivot map[string][]string) string {
		s, ok := ep.QuotaSubject(func(name string) []string {
			if p, ok := ep.Param(name); ok {
				return byPivot[p.Pivot]
			}
			return nil
		})
		if !ok {
			t.Fatalf("%s: no subject for %v", ep.Path, byPivot)
		}
		return s
	}
	n := 0
	for i := range c.Endpoints {
		ep := &c.Endpoints[i]
		if ep.Modality != ModalityIdentite {
			continue
		}
		n++
		base := subject(ep, map[string][]string{PivotFamilyName: {"DUPONT"}, PivotGivenNames: {"JEAN-PAUL"}, PivotBirthYear: {"1962"}, PivotBirthdate: {"1962-08-24"}})
		for _, same := range []map[string][]string{
			{PivotFamilyName: {"DUPÔNT"}, PivotGivenNames: {"JEAN PAUL", "LOUIS"}, PivotBirthYear: {"1962"}, PivotBirthMonth: {"8"}, PivotBirthdate: {"1962-08"}},
			{PivotFamilyName: {"DU-PONT"}, PivotGivenNames: {"JEAN"}, PivotBirthYear: {"1962"}, PivotBirthDay: {"24"}, PivotBirthdate: {"1962"}},
		} {
			if got := subject(ep, same); got != base {
				t.Errorf("%s: %v gives another subject", ep.Path, same)
			}
		}
		for _, other := range []map[string][]string{
			{PivotFamilyName: {"DURAND"}, PivotGivenNames: {"JEAN"}, PivotBirthYear: {"1962"}, PivotBirthdate: {"1962-08-24"}},
			{PivotFamilyName: {"DUPONT"}, PivotGivenNames: {"JEAN"}, PivotBirthYear: {"1963"}, PivotBirthdate: {"1963-08-24"}},
		} {
			if got := subject(ep, other); got == base {
				t.Errorf("%s: %v shares DUPONT Jean 1962's subject", ep.Path, other)
			}
		}
	}
	if n == 0 {
		t.Fatal("no identite route")
	}
	ep, ok := c.Lookup("/v3/france_travail/statut/identifiant")
	if !ok {
		t.Fatal("no France Travail identifiant route")
	}
	id := func(v string) string {
		s, ok := ep.QuotaSubject(func(name string) []string {
			if name == "identifiant" {
				return []string{v}
			}
			return nil
		})
		if !ok {
			t.Fatalf("identifier %q: no subject", v)
		}
		return s
	}
	if id("abc123") != id("ABC123") || id("ABC123") == id("ABC124") {
		t.Error("identifier subjects: case splits one, or two share one")
	}
	if foldLetters(foldLetters("Œdipe-Ærø l'Éclair")) != foldLetters("Œdipe-Ærø l'Éclair") || foldLetters("Œdipe-Ærø l'Éclair") != "OEDIPEAERØLECLAIR" {
		t.Errorf("foldLetters = %q", foldLetters("Œdipe-Ærø l'Éclair"))
	}
}
