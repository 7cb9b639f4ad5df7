package catalogue

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// TestNormalizeName_FranceConnectTestIdentities: the names of
// FranceConnect's test identities (DOMAIN.md §3), as a caller may type them,
// become what the providers compare.
func TestNormalizeName_FranceConnectTestIdentities(t *testing.T) {
	for in, want := range map[string]string{
		"DUBOIS":                      "DUBOIS",
		"Angela Claire Louise":        "ANGELA CLAIRE LOUISE",
		"  angela   claire  louise  ": "ANGELA CLAIRE LOUISE",
		"DUBINÔRE":                    "DUBINÔRE",
		"Dubinôre":                    "DUBINÔRE",
		"Dubino\u0302re":              "DUBINÔRE", // decomposed circumflex (NFD)
		"Joëlle Françoise":            "JOËLLE FRANÇOISE",
		"Joe\u0308lle":                "JOËLLE",
		"TROIS-DUPRE":                 "TROIS-DUPRE",
		"trois - dupre":               "TROIS-DUPRE",
		"Trois–Dupré":                 "TROIS-DUPRÉ", // en dash
		"Anne-Laure":                  "ANNE-LAURE",
		"Anne -  Laure":               "ANNE-LAURE",
		"d’Artagnan":                  "D'ARTAGNAN",
		"Melissandre\tJuliette":       "MELISSANDRE JULIETTE",
		"DELALALALANDE":               "DELALALALANDE",
		"Emmanuel Alexandre Nicolas":  "EMMANUEL ALEXANDRE NICOLAS",
		"":                            "",
		"   ":                         "",
		"\xf7\u0343":                  "\ufffd\u0313", // invalid byte, then a mark NFC rewrites
		"Hélo\u0131\u0308se":          "HÉLOÏSE",      // dotless i + diaeresis composes once upper-cased
	} {
		if got := NormalizeName(in); got != want {
			t.Errorf("NormalizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNameParamOfIdentiteRoutes: on every identite route of the default
// catalogue, the names of the FranceConnect test identities pass once
// normalised, and hostile or malformed values are refused.
func TestNameParamOfIdentiteRoutes(t *testing.T) {
	c := mustDefault(t)
	good := []string{"DUBOIS", "Angela", "Dubinôre", "Joëlle", "TROIS - DUPRE", "Anne-Laure", "d’Artagnan", "Dubino\u0302re"}
	bad := []string{"", " ", "DUPONT1", "-DUPONT", "<script>", "DUPONT\x00", "'", "Jean;DROP", "%41"}
	n := 0
	for i := range c.Endpoints {
		ep := &c.Endpoints[i]
		p, ok := ep.Param("nomNaissance")
		if !ok || ep.Modality != ModalityIdentite {
			continue
		}
		n++
		for _, v := range good {
			if !p.Valid(p.Clean(v)) {
				t.Errorf("%s: nomNaissance %q refused (normalised %q)", ep.ID, v, p.Clean(v))
			}
		}
		for _, v := range bad {
			if p.Valid(p.Clean(v)) {
				t.Errorf("%s: nomNaissance %q accepted", ep.ID, v)
			}
		}
	}
	if n == 0 {
		t.Fatal("no identite route with nomNaissance")
	}
}

func TestTrimLeadingZeros(t *testing.T) {
	for in, want := range map[string]string{"08": "8", "8": "8", "0": "0", "00": "0", "": "", "10": "10", "007": "7"} {
		if got := trimLeadingZeros(in); got != want {
			t.Errorf("trimLeadingZeros(%q) = %q, want %q", in, got, want)
		}
	}
}

var dssCivility = &Civility{
	BirthDate:          []string{"anneeDateNaissance", "moisDateNaissance", "jourDateNaissance"},
	BirthCountry:       "codeCogInseePaysNaissance",
	BirthPlaceInFrance: []string{"codeCogInseeCommuneNaissance", "nomCommuneNaissance"},
}

// TestCivilityCheck: partial birth dates, calendar dates, dates in the
// future and communes of people born abroad.
func TestCivilityCheck(t *testing.T) {
	now := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		q    map[string]string
		bad  string
	}{
		{"full date, born in France", map[string]string{"anneeDateNaissance": "1962", "moisDateNaissance": "8", "jourDateNaissance": "24", "codeCogInseePaysNaissance": "99100", "codeCogInseeCommuneNaissance": "75107"}, ""},
		{"year only", map[string]string{"anneeDateNaissance": "1962"}, ""},
		{"year and month", map[string]string{"anneeDateNaissance": "1962", "moisDateNaissance": "8"}, ""},
		{"no date at all", map[string]string{}, ""},
		{"day without month", map[string]string{"anneeDateNaissance": "1962", "jourDateNaissance": "24"}, "jourDateNaissance"},
		{"month without year", map[string]string{"moisDateNaissance": "8"}, "moisDateNaissance"},
		{"29 February of a leap year", map[string]string{"anneeDateNaissance": "1992", "moisDateNaissance": "2", "jourDateNaissance": "29"}, ""},
		{"29 February of another year", map[string]string{"anneeDateNaissance": "1991", "moisDateNaissance": "2", "jourDateNaissance": "29"}, "jourDateNaissance"},
		{"31 April", map[string]string{"anneeDateNaissance": "1991", "moisDateNaissance": "4", "jourDateNaissance": "31"}, "jourDateNaissance"},
		{"day 0", map[string]string{"anneeDateNaissance": "1991", "moisDateNaissance": "4", "jourDateNaissance": "0"}, "jourDateNaissance"},
		{"month 13", map[string]string{"anneeDateNaissance": "1991", "moisDateNaissance": "13"}, "moisDateNaissance"},
		{"year before 1900", map[string]string{"anneeDateNaissance": "1899"}, "anneeDateNaissance"},
		{"next year", map[string]string{"anneeDateNaissance": "2027"}, "anneeDateNaissance"},
		{"next month", map[string]string{"anneeDateNaissance": "2026", "moisDateNaissance": "12"}, "moisDateNaissance"},
		{"tomorrow", map[string]string{"anneeDateNaissance": "2026", "moisDateNaissance": "11", "jourDateNaissance": "26"}, "jourDateNaissance"},
		{"today", map[string]string{"anneeDateNaissance": "2026", "moisDateNaissance": "11", "jourDateNaissance": "25"}, ""},
		{"born in Algeria, no commune", map[string]string{"anneeDateNaissance": "1963", "codeCogInseePaysNaissance": "99352"}, ""},
		{"born in Algeria with a commune code", map[string]string{"codeCogInseePaysNaissance": "99352", "codeCogInseeCommuneNaissance": "75107"}, "codeCogInseeCommuneNaissance"},
		{"born in Algeria with a commune name", map[string]string{"codeCogInseePaysNaissance": "99352", "nomCommuneNaissance": "ALGER"}, "nomCommuneNaissance"},
		{"commune without country", map[string]string{"codeCogInseeCommuneNaissance": "75107"}, ""},
	}
	for _, tc := range cases {
		got := dssCivility.Check(func(n string) string { return tc.q[n] }, now)
		if got != tc.bad {
			t.Errorf("%s: Check = %q, want %q", tc.name, got, tc.bad)
		}
	}
	// Just after midnight in Paris, it is still yesterday in UTC: a birth
	// today (Paris) is accepted.
	lateUTC := time.Date(2026, 11, 24, 23, 30, 0, 0, time.UTC)
	q := map[string]string{"anneeDateNaissance": "2026", "moisDateNaissance": "11", "jourDateNaissance": "25"}
	if got := dssCivility.Check(func(n string) string { return q[n] }, lateUTC); got != "" {
		t.Errorf("born today in Paris, refused at 00:30 Paris time: %q", got)
	}
	var none *Civility
	if none.Check(func(string) string { return "x" }, now) != "" {
		t.Error("a nil Civility refused something")
	}
}

// TestCivilityWholeDate: the legacy v2 student routes give the birth date
// as one YYYY-MM-DD parameter, checked as the v3 routes' three parts are:
// a date that exists in the calendar, not in the future, 1900 or later.
// The default catalogue declares it on both routes.
func TestCivilityWholeDate(t *testing.T) {
	now := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)
	cat := mustDefault(t)
	for _, path := range []string{"/api/v2/etudiants", "/api/v2/etudiants-boursiers"} {
		var ep *Endpoint
		for i := range cat.Endpoints {
			if e := &cat.Endpoints[i]; e.Path == path && e.Modality == ModalityIdentite {
				ep = e
			}
		}
		if ep == nil || ep.Civility == nil {
			t.Fatalf("%s: no identite route with civility checks", path)
		}
		for date, want := range map[string]string{
			"2001-02-28": "", "2000-02-29": "", "2026-11-25": "", "": "",
			"2001-02-29": "dateDeNaissance", "2001-02-31": "dateDeNaissance", "2001-04-31": "dateDeNaissance",
			"2001-00-10": "dateDeNaissance", "2001-10-00": "dateDeNaissance", "2026-11-26": "dateDeNaissance",
			"2027-01-01": "dateDeNaissance", "1899-12-31": "dateDeNaissance", "2001-2-3": "dateDeNaissance",
			"20010203": "dateDeNaissance",
		} {
			got := ep.Civility.Check(func(n string) string {
				if n == "dateDeNaissance" {
					return date
				}
				return ""
			}, now)
			if got != want {
				t.Errorf("%s: dateDeNaissance=%q: Check = %q, want %q", path, date, got, want)
			}
		}
	}
}

// TestCivilityValidation: civility names must be declared parameters of an
// identite route.
func TestCivilityValidation(t *testing.T) {
	const base = `
providers: {CNAV: {error_prefix: "37"}}
endpoints:
  - id: r
    path: /v3/r/identite
    modality: %s
    operation_id: r
    provider: CNAV
    upstream_path: /v3/r/identite
    params:
      - {name: anneeDateNaissance}
      - {name: moisDateNaissance, normalize: integer}
      - {name: jourDateNaissance, normalize: integer}
      - {name: numero, identifier: test}
    civility:
      birth_date: [anneeDateNaissance, moisDateNaissance, %s]
    scopes:
      - {name: s, basis: doc, fields: [data.x]}
`
	_, err := Parse(fmt.Appendf(nil, base, "identite", "jourNaissance"))
	if err == nil || !strings.Contains(err.Error(), `civility: "jourNaissance" is not a declared parameter`) {
		t.Errorf("undeclared civility parameter: %v", err)
	}
	if _, err := Parse(fmt.Appendf(nil, base, "identite", "jourDateNaissance")); err != nil {
		t.Fatalf("valid civility refused: %v", err)
	}
	_, err = Parse(fmt.Appendf(nil, base, "identifiant", "jourDateNaissance"))
	if err == nil || !strings.Contains(err.Error(), "civility: only identite") {
		t.Errorf("civility on an identifiant route: %v", err)
	}
}

// FuzzCivility: whatever the caller's values, the name normalisation is
// idempotent and yields no control character nor stray space, and an
// accepted birth date is a real, past date after 1900.
func FuzzCivility(f *testing.F) {
	f.Add("Dubinôre", "1992", "8", "15", "99100", "75117")
	f.Add(" trois - dupre ", "1962", "02", "29", "99352", "")
	f.Add("d’Artagnan", "0", "", "24", "", "x")
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, name, y, m, d, country, commune string) {
		n := NormalizeName(name)
		if NormalizeName(n) != n {
			t.Fatalf("not idempotent: %+q → %+q → %+q", name, n, NormalizeName(n))
		}
		if utf8.ValidString(name) {
			if strings.HasPrefix(n, " ") || strings.HasSuffix(n, " ") || strings.Contains(n, "  ") || strings.Contains(n, " -") || strings.Contains(n, "- ") {
				t.Fatalf("stray space in %q", n)
			}
			for _, r := range n {
				if unicode.IsSpace(r) && r != ' ' {
					t.Fatalf("whitespace %U kept in %q", r, n)
				}
			}
		}
		q := map[string]string{
			"anneeDateNaissance": y, "moisDateNaissance": trimLeadingZeros(m), "jourDateNaissance": trimLeadingZeros(d),
			"codeCogInseePaysNaissance": country, "codeCogInseeCommuneNaissance": commune,
		}
		if dssCivility.Check(func(k string) string { return q[k] }, now) != "" {
			return
		}
		if country != "" && country != "99100" && commune != "" {
			t.Fatalf("commune %q accepted for country %q", commune, country)
		}
		if y == "" {
			if m != "" || d != "" {
				t.Fatalf("month or day accepted without a year: %q %q", m, d)
			}
			return
		}
		yy, mm, dd := atoi(t, y), 1, 1
		if m != "" {
			mm = atoi(t, q["moisDateNaissance"])
		}
		if d != "" {
			dd = atoi(t, q["jourDateNaissance"])
		}
		date := time.Date(yy, time.Month(mm), dd, 0, 0, 0, 0, time.UTC)
		if yy < minBirthYear || date.After(now) || date.Year() != yy || int(date.Month()) != mm || date.Day() != dd {
			t.Fatalf("birth date %q-%q-%q accepted", y, m, d)
		}
	})
}

func atoi(t *testing.T, s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("non-decimal %q accepted", s)
		}
		n = n*10 + int(c-'0')
		if n > 1e6 {
			t.Fatalf("huge number %q accepted", s)
		}
	}
	return n
}

// TestCommuneByNameRequiresDepartement: wherever a route takes the commune
// of birth by name, the département comes with it (and, on v3/v4, the
// birth year): the official documentation of every such parameter says so,
// the commune's COG code is found from the three.
func TestCommuneByNameRequiresDepartement(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	routes := 0
	for i := range c.Endpoints {
		ep := &c.Endpoints[i]
		p, ok := ep.Param("nomCommuneNaissance")
		if !ok {
			continue
		}
		routes++
		want := []string{"codeCogInseeDepartementNaissance", "anneeDateNaissance"}
		if ep.API == APIv2 {
			want = []string{"codeInseeDepartementNaissance"}
		}
		if !slices.Equal(p.Requires, want) {
			t.Errorf("%s: nomCommuneNaissance requires %v, want %v", ep.ID, p.Requires, want)
		}
	}
	if routes != 17 {
		t.Errorf("%d routes take nomCommuneNaissance, want 17 (11 v3/v4, 6 v2)", routes)
	}
}
