package reconcile

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/passerelle-gw/passerelle/config/catalogue"
)

var angela = Citizen{
	FamilyName: "DUBOIS", GivenName: "Angela Claire Louise", GivenNameArray: []string{"Angela", "Claire", "Louise"},
	Birthdate: "1962-08-24", Birthplace: "75107", Birthcountry: "99100", Gender: "female",
}

func account(t *testing.T, header string) Account {
	t.Helper()
	a, err := ParseAccount(header)
	if err != nil {
		t.Fatalf("ParseAccount(%q): %v", header, err)
	}
	return a
}

func TestCompare(t *testing.T) {
	// FranceConnect's own test identities (FRONT.md §2.2).
	joelle := Citizen{FamilyName: "Dubino\u0302re", GivenNameArray: []string{"Joe\u0308lle", "Franc\u0327oise"},
		Birthdate: "1992-08-15", Birthplace: "75117", Birthcountry: "99100", Gender: "female"}
	maelle := Citizen{FamilyName: "Le Goff", GivenName: "Maëlle", Birthdate: "1987-11-01", IdpBirthdate: "1987-11",
		Birthplace: "29019", Birthcountry: "99100", Gender: "female"}
	koffi := Citizen{FamilyName: "N’Guessan", GivenName: "Koffi Ange", Birthdate: "1979-01-01", IdpBirthdate: "1979",
		Birthcountry: "99326", Gender: "male"}
	anneLaure := Citizen{FamilyName: "TROIS-DUPRE", GivenNameArray: []string{"Anne-Laure"}, Birthdate: "1980-05-03",
		Birthplace: "69383", Birthcountry: "99100", Gender: "female"}
	sansPrenom := Citizen{FamilyName: "MARTIN", Birthdate: "1970-02-02", Birthplace: "13201", Birthcountry: "99100", Gender: "male"}

	cases := []struct {
		name    string
		account string
		citizen Citizen
		verdict string
		check   func(r Result) bool
	}{
		{"same identity, other case", "family_name=Dubois&given_name=angela+claire+louise&birthdate=1962-08-24&birthplace=75107&gender=F",
			angela, Match, func(r Result) bool { return r.FamilyName == Field{Exact, ReasonCase} && r.Birthplace.Result == Exact }},
		{"first given name only (the CNAF's way)", "family_name=DUBOIS&given_name=ANGELA&birthdate=1962-08-24",
			angela, Probable, func(r Result) bool { return r.GivenNames == Field{Approx, ReasonFirstGivenName} }},
		{"accents missing in the account, NFD at FranceConnect", "family_name=DUBINORE&given_name=Joelle+Francoise&birthdate=1992-08-15",
			joelle, Probable, func(r Result) bool {
				return r.FamilyName == Field{Approx, ReasonAccents} && r.GivenNames == Field{Approx, ReasonAccents}
			}},
		{"same accents, composed in the account", "family_name=Dubin%C3%B4re&given_name=Jo%C3%ABlle+Fran%C3%A7oise&birthdate=1992-08-15",
			joelle, Match, nil},
		{"hyphen vs space", "family_name=TROIS+DUPRE&given_name=Anne+Laure&birthdate=1980-05-03&birthplace=69383",
			anneLaure, Probable, func(r Result) bool {
				return r.FamilyName == Field{Approx, ReasonSeparators} && r.GivenNames == Field{Approx, ReasonSeparators}
			}},
		{"presumed day at FranceConnect", "family_name=Le+Goff&given_name=Ma%C3%ABlle&birthdate=1987-11-20",
			maelle, Probable, func(r Result) bool { return r.Birthdate == Field{Approx, ReasonPresumedDate} }},
		{"presumed day, other month", "family_name=Le+Goff&given_name=Ma%C3%ABlle&birthdate=1987-12-20",
			maelle, NoMatch, func(r Result) bool { return r.Birthdate.Result == Mismatch }},
		{"born abroad, country given", "family_name=N%27GUESSAN&given_name=Koffi+Ange&birthdate=1979-06-30&birthcountry=99326",
			koffi, Probable, func(r Result) bool {
				return r.Birthplace == Field{Exact, ReasonBornAbroad} && r.Birthdate == Field{Approx, ReasonPresumedDate} &&
					r.FamilyName.Result == Exact // ’ and ' are one apostrophe
			}},
		{"born abroad, a French commune in the account", "family_name=N%27GUESSAN&given_name=Koffi+Ange&birthdate=1979&birthplace=75107",
			koffi, Probable, func(r Result) bool { return r.Birthplace == Field{Mismatch, ReasonBornAbroad} }},
		{"born abroad, the same country in the commune's place", "family_name=N%27GUESSAN&given_name=Koffi+Ange&birthdate=1979&birthplace=99326",
			koffi, Probable, func(r Result) bool { return r.Birthplace == Field{Exact, ReasonBornAbroad} }},
		{"born abroad, a French commune beside the same country", "family_name=N%27GUESSAN&given_name=Koffi+Ange&birthdate=1979&birthplace=75107&birthcountry=99326",
			koffi, Probable, func(r Result) bool { return r.Birthplace == Field{Mismatch, ReasonBornAbroad} }},
		{"born abroad, another country", "family_name=N%27GUESSAN&given_name=Koffi+Ange&birthdate=1979&birthcountry=99352",
			koffi, Probable, func(r Result) bool { return r.Birthplace == Field{Mismatch, ReasonBornAbroad} }},
		// A namesake born the same day: the account says Algeria, no commune.
		{"the city in the account, the arrondissement at FranceConnect", "family_name=DUBOIS&given_name=Angela+Claire+Louise&birthdate=1962-08-24&birthplace=75056",
			angela, Probable, func(r Result) bool { return r.Birthplace == Field{Approx, ReasonArrondissement} }},
		{"an arrondissement in the account, the city at FranceConnect", "family_name=MARTIN&birthdate=1970-02-02&birthplace=13201",
			Citizen{FamilyName: "MARTIN", Birthdate: "1970-02-02", Birthplace: "13055", Birthcountry: "99100"}, Insufficient,
			func(r Result) bool { return r.Birthplace == Field{Approx, ReasonArrondissement} }},
		{"another arrondissement of the same city", "family_name=DUBOIS&given_name=Angela+Claire+Louise&birthdate=1962-08-24&birthplace=75108",
			angela, Probable, func(r Result) bool { return r.Birthplace == Field{Mismatch, ReasonBirthplaceChanged} }},
		{"another city's arrondissement", "family_name=DUBOIS&given_name=Angela+Claire+Louise&birthdate=1962-08-24&birthplace=69123",
			angela, Probable, func(r Result) bool { return r.Birthplace == Field{Mismatch, ReasonBirthplaceChanged} }},
		{"born in France, the account born abroad", "family_name=DUBOIS&given_name=Angela+Claire+Louise&birthdate=1962-08-24&birthcountry=99352",
			angela, Probable, func(r Result) bool { return r.Birthplace == Field{Mismatch, ReasonBornAbroad} }},
		{"born in France, the account's commune a country's code", "family_name=DUBOIS&given_name=Angela+Claire+Louise&birthdate=1962-08-24&birthplace=99352",
			angela, Probable, func(r Result) bool { return r.Birthplace == Field{Mismatch, ReasonBornAbroad} }},
		{"born in France, the account in France", "family_name=DUBOIS&given_name=Angela+Claire+Louise&birthdate=1962-08-24&birthcountry=99100",
			angela, Match, func(r Result) bool { return r.Birthplace == Field{Absent, ReasonNotInAccount} }},
		{"partial date in the account", "family_name=DUBOIS&given_name=Angela+Claire+Louise&birthdate=1962-08",
			angela, Probable, func(r Result) bool { return r.Birthdate == Field{Approx, ReasonPartialDate} }},
		{"usage name given as birth name", "family_name=MARTIN&usage_name=DUBOIS&given_name=Angela+Claire+Louise&birthdate=1962-08-24",
			angela, Probable, func(r Result) bool { return r.FamilyName == Field{Approx, ReasonUsageName} }},
		{"birthplace differs only", "family_name=DUBOIS&given_name=Angela+Claire+Louise&birthdate=1962-08-24&birthplace=92012",
			angela, Probable, func(r Result) bool { return r.Birthplace == Field{Mismatch, ReasonBirthplaceChanged} }},
		// Legacy records often drop apostrophes and spaces: FranceConnect's
		// own matcher drops every non-alphanumeric.
		{"apostrophe and space dropped in the account", "family_name=NGUESSAN&given_name=Koffi+Ange&birthdate=1979",
			koffi, Probable, func(r Result) bool { return r.FamilyName == Field{Approx, ReasonSeparators} }},
		{"a composed given name written as one", "family_name=TROIS-DUPRE&given_name=Annelaure&birthdate=1980-05-03",
			anneLaure, Probable, func(r Result) bool { return r.GivenNames == Field{Approx, ReasonSeparators} }},
		// Without idp_birthdate, a 1st of January or a 1st of the month at
		// FranceConnect may be presumed: compared on what it may know.
		{"1st of January without idp_birthdate", "family_name=DUBOIS&given_name=Angela+Claire+Louise&birthdate=1980-06-15",
			Citizen{FamilyName: "DUBOIS", GivenName: "Angela Claire Louise", Birthdate: "1980-01-01"},
			Probable, func(r Result) bool { return r.Birthdate == Field{Approx, ReasonPresumedDate} }},
		{"1st of a month without idp_birthdate", "family_name=DUBOIS&given_name=Angela+Claire+Louise&birthdate=1980-06-15",
			Citizen{FamilyName: "DUBOIS", GivenName: "Angela Claire Louise", Birthdate: "1980-06-01"},
			Probable, func(r Result) bool { return r.Birthdate == Field{Approx, ReasonPresumedDate} }},
		{"1st of a month without idp_birthdate, another month", "family_name=DUBOIS&given_name=Angela+Claire+Louise&birthdate=1980-07-15",
			Citizen{FamilyName: "DUBOIS", GivenName: "Angela Claire Louise", Birthdate: "1980-06-01"},
			NoMatch, func(r Result) bool { return r.Birthdate.Result == Mismatch }},
		{"1st of January, the account's the same", "family_name=DUBOIS&given_name=Angela+Claire+Louise&birthdate=1980-01-01",
			Citizen{FamilyName: "DUBOIS", GivenName: "Angela Claire Louise", Birthdate: "1980-01-01"},
			Match, func(r Result) bool { return r.Birthdate == Field{Exact, ""} }},
		{"another person", "family_name=DURAND&given_name=Angela&birthdate=1962-08-24",
			angela, NoMatch, func(r Result) bool { return r.FamilyName.Result == Mismatch }},
		{"another given name", "family_name=DUBOIS&given_name=Claire&birthdate=1962-08-24",
			angela, NoMatch, func(r Result) bool { return r.GivenNames.Result == Mismatch }},
		{"another gender", "family_name=DUBOIS&given_name=Angela+Claire+Louise&birthdate=1962-08-24&gender=M",
			angela, NoMatch, func(r Result) bool { return r.Gender.Result == Mismatch }},
		// A placeholder for "no given name" starts no list: it is absent,
		// whoever the citizen.
		{"a given name of separators only", "family_name=DUBOIS&given_name=-&birthdate=1962-08-24",
			angela, Insufficient, func(r Result) bool { return r.GivenNames == Field{Absent, ReasonNotInAccount} }},
		{"an apostrophe for given name", "family_name=DUBOIS&given_name=%27&birthdate=1962-08-24",
			angela, Insufficient, func(r Result) bool { return r.GivenNames == Field{Absent, ReasonNotInAccount} }},
		// A composed given name is one name (the Paris identity store):
		// Anne is not Anne-Laure's first given name, Jean Pierre is
		// Jean-Pierre Paul's.
		{"the first half of a composed given name", "family_name=TROIS-DUPRE&given_name=Anne&birthdate=1980-05-03",
			anneLaure, NoMatch, func(r Result) bool { return r.GivenNames == Field{Mismatch, ReasonDifferent} }},
		{"a composed first given name, spaced", "family_name=DUBOIS&given_name=Jean+Pierre&birthdate=1962-08-24",
			Citizen{FamilyName: "DUBOIS", GivenNameArray: []string{"Jean-Pierre", "Paul"}, Birthdate: "1962-08-24"},
			Probable, func(r Result) bool { return r.GivenNames == Field{Approx, ReasonFirstGivenName} }},
		{"all given names, FranceConnect's first only", "family_name=DUBOIS&given_name=Angela+Claire+Louise&birthdate=1962-08-24",
			Citizen{FamilyName: "DUBOIS", GivenName: "Angela", Birthdate: "1962-08-24"},
			Probable, func(r Result) bool { return r.GivenNames == Field{Approx, ReasonFirstGivenName} }},
		{"no birth date in the account", "family_name=DUBOIS&given_name=Angela",
			angela, Insufficient, func(r Result) bool { return r.Birthdate == Field{Absent, ReasonNotInAccount} }},
		{"no given name at FranceConnect", "family_name=MARTIN&given_name=Paul&birthdate=1970-02-02",
			sansPrenom, NoMatch, func(r Result) bool { return r.GivenNames == Field{Mismatch, ReasonNotFromFC} }},
		{"no given name at FranceConnect, none in the account", "family_name=MARTIN&birthdate=1970-02-02",
			sansPrenom, Insufficient, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Compare(account(t, tc.account), tc.citizen)
			b, _ := json.Marshal(r)
			if r.Verdict != tc.verdict || tc.check != nil && !tc.check(r) {
				t.Fatalf("got %s, want verdict %s", b, tc.verdict)
			}
		})
	}
}

func TestParseAccountRefused(t *testing.T) {
	for _, v := range []string{
		"family_name=A&family_name=B",             // repeated
		"nom=DUBOIS",                              // unknown field
		"birthdate=24/08/1962",                    // format
		"birthdate=1962-13-01",                    // month
		"birthdate=1962-08-32",                    // day
		"birthplace=7510",                         // COG
		"gender=X",                                // gender
		"family_name=%ff%fe",                      // not UTF-8
		"family_name=A%0d%0aSet-Cookie:+x",        // control characters
		"family_name=" + strings.Repeat("A", 401), // too long
		strings.Repeat("a", 2049),
		"family_name=%zz",
	} {
		if _, err := ParseAccount(v); err == nil {
			t.Errorf("ParseAccount(%q) accepted", v)
		} else if strings.Contains(err.Error(), "DUBOIS") {
			t.Errorf("the error quotes the value: %v", err)
		}
	}
	a := account(t, "account_ref=user-42&family_name=DUBOIS&given_name=Angela+Claire&birthdate=1962&birthplace=2a004&birthcountry=99100&gender=female")
	if a.Birthplace != "2A004" || len(a.GivenNames) != 2 || a.Gender != "female" || a.Ref != "user-42" {
		t.Fatalf("%+v", a)
	}
	if r := Compare(a, angela); r.AccountRef != "user-42" {
		t.Fatalf("account_ref not echoed: %+v", r)
	}
	if _, err := ParseAccount("account_ref=a+b"); err == nil {
		t.Fatal("an account_ref with a space was accepted")
	}
	if r := Invalid(); r.Verdict != Insufficient || r.Reason != ReasonAccountInvalid {
		t.Fatalf("%+v", r)
	}
}

// FuzzParseAccount: any header value parses or is refused without panic;
// what parses is bounded and valid UTF-8.
func FuzzParseAccount(f *testing.F) {
	f.Add("family_name=DUBOIS&given_name=Angela+Claire&birthdate=1962-08-24&birthplace=75107")
	f.Add("family_name=N%E2%80%99Guessan&birthcountry=99326&birthdate=1979")
	f.Add("gender=M&usage_name=Le+Goff")
	f.Fuzz(func(t *testing.T, v string) {
		a, err := ParseAccount(v)
		if err != nil {
			return
		}
		for _, s := range append([]string{a.FamilyName, a.UsageName, a.Birthdate, a.Birthplace, a.Birthcountry}, a.GivenNames...) {
			if !utf8.ValidString(s) || len(s) > maxNameBytes {
				t.Fatalf("accepted %q", s)
			}
		}
		_ = Compare(a, angela)
	})
}

// FuzzNormalizer: the comparison of a name with itself is exact, whatever
// its form, and Fold is idempotent: a normaliser that is not would turn
// the same person into an approximation.
func FuzzNormalizer(f *testing.F) {
	for _, s := range []string{"Dubino\u0302re", "N’Guessan", "TROIS-DUPRE", "Œdipe", "  le   goff ", "Jean--Pascal", "ı\u0308"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || len(s) > 200 {
			return
		}
		if got := compareNames(s, s).Result; got != Exact {
			t.Fatalf("%q compared with itself: %s", s, got)
		}
		n := catalogue.NormalizeName(s)
		if Fold(Fold(n)) != Fold(n) {
			t.Fatalf("Fold is not idempotent on %q", s)
		}
		if Fold(n) != Fold(catalogue.NormalizeName(strings.ToLower(s))) && strings.EqualFold(s, strings.ToUpper(s)) {
			t.Fatalf("Fold depends on case for %q", s)
		}
	})
}
