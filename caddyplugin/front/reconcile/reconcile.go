// Package reconcile compares the identity FranceConnect gives with the
// account a legacy app has in use (Cas 2: "il vous appartient de vérifier
// que les données récupérées correspondent aux données du compte utilisé"),
// field by field, with the normalisation the identite modality applies
// (catalogue.NormalizeName: Unicode NFC, case, spaces, apostrophes and
// hyphens), and says how well they match. Never a bare boolean: the app
// decides what to do with a "probable".
//
// Each field is exact | approx | absent | mismatch, with a reason for the
// last three; the verdict is:
//
//	no_match      a birth name, given names, birth date or gender mismatch
//	insufficient  otherwise, the account lacks a birth name, given names or birth date
//	match         birth name, given names and birth date exact; birthplace and gender exact or absent
//	probable      anything else: approximations (accents, separators, first given
//	              name only, usage name, presumed or partial dates), a birthplace
//	              that differs (COG codes change with commune mergers: a weak signal)
//	              or born abroad on one side only
//
// Rules from FranceConnect's data-provider example (accent-folded first
// given name, birth name, full date) and the Paris identity store's given
// name rules (FRONT.md §4).
package reconcile

import (
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"github.com/passerelle-gw/passerelle/config/catalogue"
)

// Field results.
const (
	Exact    = "exact"
	Approx   = "approx"
	Absent   = "absent"
	Mismatch = "mismatch"
)

// Verdicts.
const (
	Match        = "match"
	Probable     = "probable"
	NoMatch      = "no_match"
	Insufficient = "insufficient"
)

// Reasons (a closed list).
const (
	ReasonCase              = "case" // exact, for information: only letter case or spacing differs
	ReasonAccents           = "accents"
	ReasonSeparators        = "hyphen_vs_space"
	ReasonFirstGivenName    = "first_given_name_only"
	ReasonUsageName         = "usage_name"
	ReasonPresumedDate      = "presumed_date"
	ReasonPartialDate       = "partial_date"
	ReasonBornAbroad        = "born_abroad"
	ReasonBirthplaceChanged = "birthplace_differs" // COG codes change: a weak signal
	ReasonArrondissement    = "arrondissement"     // Paris, Lyon, Marseille: the city on one side, an arrondissement on the other
	ReasonNotInAccount      = "not_in_account"
	ReasonNotFromFC         = "not_from_franceconnect"
	ReasonDifferent         = "different"
	ReasonAccountInvalid    = "account_header_invalid"
)

// Citizen is the identity FranceConnect gave (userinfo).
type Citizen struct {
	FamilyName     string
	GivenName      string   // space-separated
	GivenNameArray []string // preferred when present
	Birthdate      string   // YYYY-MM-DD
	IdpBirthdate   string   // YYYY-MM or YYYY when the day or month was presumed
	Birthplace     string   // COG commune, "" when born abroad
	Birthcountry   string   // COG country, 99100 France
	Gender         string   // male | female
}

// Field is the comparison of one field.
type Field struct {
	Result string `json:"result"`
	Reason string `json:"reason,omitempty"`
}

// Result is the comparison of an account with a citizen.
type Result struct {
	// AccountRef is the account_ref the app stated with the account the
	// identity was compared with: the app checks it is the account in use.
	AccountRef string `json:"account_ref,omitempty"`
	Verdict    string `json:"verdict"`
	// Reason is set when the verdict needs one (account_header_invalid).
	Reason     string `json:"reason,omitempty"`
	FamilyName Field  `json:"family_name"`
	GivenNames Field  `json:"given_names"`
	Birthdate  Field  `json:"birthdate"`
	Birthplace Field  `json:"birthplace"`
	Gender     Field  `json:"gender"`
}

// Invalid is the result when the app's account header could not be read.
func Invalid() Result {
	absent := Field{Result: Absent, Reason: ReasonNotInAccount}
	return Result{Verdict: Insufficient, Reason: ReasonAccountInvalid,
		FamilyName: absent, GivenNames: absent, Birthdate: absent, Birthplace: absent, Gender: absent}
}

// Compare compares an account with the citizen FranceConnect identified.
func Compare(a Account, c Citizen) Result {
	r := Result{
		AccountRef: a.Ref,
		FamilyName: familyName(a, c),
		GivenNames: givenNames(a, c),
		Birthdate:  birthdate(a, c),
		Birthplace: birthplace(a, c),
		Gender:     gender(a, c),
	}
	core := []Field{r.FamilyName, r.GivenNames, r.Birthdate}
	switch {
	case anyResult(Mismatch, append(core, r.Gender)...):
		r.Verdict = NoMatch
	case anyResult(Absent, core...):
		r.Verdict = Insufficient
	case allResult(Exact, core...) && r.Birthplace.Result != Mismatch && r.Birthplace.Result != Approx && r.Gender.Result != Approx:
		r.Verdict = Match
	default:
		r.Verdict = Probable
	}
	return r
}

func anyResult(res string, fs ...Field) bool {
	for _, f := range fs {
		if f.Result == res {
			return true
		}
	}
	return false
}

func allResult(res string, fs ...Field) bool {
	for _, f := range fs {
		if f.Result != res {
			return false
		}
	}
	return true
}

// compareNames compares two names: exact after NormalizeName (reason "case"
// when the raw strings differ), approx when they are equal once accents
// are folded (reason accents), or once hyphens, apostrophes and spaces are
// taken as one separator or dropped (reason hyphen_vs_space: many legacy
// records keep "NGUESSAN" for "N'GUESSAN", "LEGOFF" for "LE GOFF", and
// FranceConnect's own matcher drops every non-alphanumeric, FRONT.md §4).
func compareNames(account, fc string) Field {
	na, nf := catalogue.NormalizeName(account), catalogue.NormalizeName(fc)
	switch {
	case na == nf && account == fc:
		return Field{Result: Exact}
	case na == nf:
		return Field{Result: Exact, Reason: ReasonCase}
	case foldAccents(na) == foldAccents(nf):
		return Field{Result: Approx, Reason: ReasonAccents}
	case Fold(na) == Fold(nf), withoutSpaces(Fold(na)) == withoutSpaces(Fold(nf)):
		return Field{Result: Approx, Reason: ReasonSeparators}
	}
	return Field{Result: Mismatch, Reason: ReasonDifferent}
}

// withoutSpaces drops the separators Fold left (single spaces).
func withoutSpaces(s string) string { return strings.ReplaceAll(s, " ", "") }

func familyName(a Account, c Citizen) Field {
	switch {
	case a.FamilyName == "":
		return Field{Result: Absent, Reason: ReasonNotInAccount}
	case strings.TrimSpace(c.FamilyName) == "":
		return Field{Result: Absent, Reason: ReasonNotFromFC}
	}
	f := compareNames(a.FamilyName, c.FamilyName)
	if f.Result == Mismatch && a.UsageName != "" && compareNames(a.UsageName, c.FamilyName).Result != Mismatch {
		// The account's usage name is FranceConnect's birth name: the
		// account's "birth name" was probably a usage name.
		return Field{Result: Approx, Reason: ReasonUsageName}
	}
	return f
}

// givenNames compares the lists of given names. Equal lists are exact;
// the same names spelt with other accents or separators ("Jean-Pascal" and
// "Jean Pascal") are approx; when one list starts with the other's names
// (the CNAF's "ANGELA" for FranceConnect's "Angela Claire Louise"), approx
// with first_given_name_only; else mismatch. A composed given name is one
// name: "Anne" is not the first given name of "Anne-Laure" (the Paris
// identity store's rules, FRONT.md §4). A given name made of separators
// only ("-", the placeholder some apps keep for "none") is no given name.
func givenNames(a Account, c Citizen) Field {
	fc := c.GivenNameArray
	if len(fc) == 0 {
		fc = strings.Fields(c.GivenName)
	}
	account, citizen := foldedNames(a.GivenNames), foldedNames(fc)
	switch {
	case len(account) == 0:
		return Field{Result: Absent, Reason: ReasonNotInAccount}
	case len(citizen) == 0:
		// FranceConnect knows the citizen without a given name: an account
		// with one is someone else, or a record to correct.
		return Field{Result: Mismatch, Reason: ReasonNotFromFC}
	}
	f := compareNames(strings.Join(a.GivenNames, " "), strings.Join(fc, " "))
	if f.Result != Mismatch {
		return f
	}
	if leads(account, citizen) || leads(citizen, account) {
		return Field{Result: Approx, Reason: ReasonFirstGivenName}
	}
	return Field{Result: Mismatch, Reason: ReasonDifferent}
}

// foldedNames folds each given name (accents, case; hyphens, apostrophes
// and spaces as one separator), dropping those left empty.
func foldedNames(names []string) []string {
	var out []string
	for _, n := range names {
		if f := Fold(catalogue.NormalizeName(n)); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// leads reports whether the names of a, joined, are the first names of b:
// b's names joined, cut at the end of one of them.
func leads(a, b []string) bool {
	want, got := strings.Join(a, " "), ""
	for _, n := range b {
		if got != "" {
			got += " "
		}
		got += n
		if len(got) >= len(want) {
			return got == want
		}
	}
	return false
}

// birthdate compares what both sides know of the date: FranceConnect's
// presumed day or month (idp_birthdate) and a partial account date compare
// on the year, or year and month, only (approx). Without idp_birthdate
// (the service did not ask for its scope), a FranceConnect date on the
// 1st of January, or on the 1st of a month, may be presumed (RNIPP's
// unknown month or day, FRONT.md §4): when the account's date differs, it
// compares on the year, or year and month, too.
func birthdate(a Account, c Citizen) Field {
	known := catalogue.KnownBirthdate(c.Birthdate, c.IdpBirthdate)
	if c.IdpBirthdate == "" && len(known) == len("2006-01-02") && !strings.HasPrefix(known, a.Birthdate) {
		switch {
		case strings.HasSuffix(known, "-01-01"):
			known = known[:len("2006")]
		case strings.HasSuffix(known, "-01"):
			known = known[:len("2006-01")]
		}
	}
	switch {
	case a.Birthdate == "":
		return Field{Result: Absent, Reason: ReasonNotInAccount}
	case known == "":
		return Field{Result: Absent, Reason: ReasonNotFromFC}
	}
	n := min(len(a.Birthdate), len(known))
	switch {
	case a.Birthdate[:n] != known[:n]:
		return Field{Result: Mismatch, Reason: ReasonDifferent}
	case len(known) < len("2006-01-02"):
		return Field{Result: Approx, Reason: ReasonPresumedDate}
	case len(a.Birthdate) < len("2006-01-02"):
		return Field{Result: Approx, Reason: ReasonPartialDate}
	}
	return Field{Result: Exact}
}

// franceCOG is France's COG country code.
const franceCOG = "99100"

// foreign reports whether a COG code names a country other than France
// (99xxx; no commune's code starts with 99).
func foreign(code string) bool { return strings.HasPrefix(code, "99") && code != franceCOG }

// birthplace compares the commune of birth, or the country for a citizen
// born abroad (FranceConnect then sends no commune). Born abroad on one
// side and in France on the other is a mismatch (born_abroad), whichever
// side says so: an account's commune, or a country code in its place, is
// compared with FranceConnect's country of birth.
func birthplace(a Account, c Citizen) Field {
	if c.Birthplace == "" && foreign(c.Birthcountry) { // born abroad
		switch {
		case a.Birthplace != "" && !strings.EqualFold(a.Birthplace, c.Birthcountry),
			a.Birthcountry != "" && !strings.EqualFold(a.Birthcountry, c.Birthcountry):
			return Field{Result: Mismatch, Reason: ReasonBornAbroad}
		case a.Birthplace != "" || a.Birthcountry != "":
			return Field{Result: Exact, Reason: ReasonBornAbroad}
		}
		return Field{Result: Absent, Reason: ReasonNotInAccount}
	}
	bornInFrance := c.Birthplace != "" || c.Birthcountry == franceCOG
	if bornInFrance && (foreign(a.Birthcountry) || foreign(a.Birthplace)) {
		return Field{Result: Mismatch, Reason: ReasonBornAbroad}
	}
	switch {
	case a.Birthplace == "":
		return Field{Result: Absent, Reason: ReasonNotInAccount}
	case c.Birthplace == "":
		return Field{Result: Absent, Reason: ReasonNotFromFC}
	case strings.EqualFold(a.Birthplace, c.Birthplace):
		return Field{Result: Exact}
	case cityOf(a.Birthplace) != "" && cityOf(a.Birthplace) == cityOf(c.Birthplace) &&
		(cityOf(a.Birthplace) == a.Birthplace || cityOf(c.Birthplace) == c.Birthplace):
		// One side names the city, the other one of its arrondissements:
		// the same place, known to different precision.
		return Field{Result: Approx, Reason: ReasonArrondissement}
	}
	return Field{Result: Mismatch, Reason: ReasonBirthplaceChanged}
}

// cityOf returns the COG code of Paris, Lyon or Marseille for the city's
// own code or one of its municipal arrondissements (75101–75120,
// 69381–69389, 13201–13216), "" for any other code. FranceConnect gives
// the arrondissement of birth; an app's account often holds the city.
func cityOf(code string) string {
	n, err := strconv.Atoi(code)
	if err != nil || len(code) != 5 {
		return ""
	}
	switch {
	case code == "75056" || 75101 <= n && n <= 75120:
		return "75056"
	case code == "69123" || 69381 <= n && n <= 69389:
		return "69123"
	case code == "13055" || 13201 <= n && n <= 13216:
		return "13055"
	}
	return ""
}

func gender(a Account, c Citizen) Field {
	switch {
	case a.Gender == "":
		return Field{Result: Absent, Reason: ReasonNotInAccount}
	case c.Gender != "male" && c.Gender != "female":
		return Field{Result: Absent, Reason: ReasonNotFromFC}
	case a.Gender == c.Gender:
		return Field{Result: Exact}
	}
	return Field{Result: Mismatch, Reason: ReasonDifferent}
}

// foldAccents removes diacritics from a normalised (upper-case) name and
// expands the ligatures French names use: Œ → OE, Æ → AE.
func foldAccents(s string) string {
	// Marks first, then case, then ligatures: "Ǽ" loses its accent to
	// become "Æ", then "AE"; "ẗ", which has no capital, becomes "T" once
	// bare. One pass is enough: a second changes nothing.
	if out, _, err := transform.String(transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC), s); err == nil {
		s = out
	}
	s = strings.Map(func(r rune) rune { return unicode.ToUpper(unicode.ToLower(r)) }, s)
	return ligatures.Replace(s)
}

// ligatures spells out the letters that are two letters in French names.
var ligatures = strings.NewReplacer("Œ", "OE", "Æ", "AE", "ß", "SS")

// Fold reduces a NormalizeName'd name to its letters: accents folded, and
// every run of hyphens, apostrophes and spaces one space.
func Fold(s string) string {
	s = foldAccents(s)
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '\'' || unicode.IsSpace(r) }), " ")
}
