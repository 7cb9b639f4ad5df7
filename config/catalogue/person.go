package catalogue

import (
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// The identity elements a caller's parameter may carry (Param.Pivot): what
// the audit pseudonym of an identite call is computed from.
const (
	PivotFamilyName = "family_name" // birth name
	PivotGivenNames = "given_names" // one or more given names
	PivotBirthYear  = "birth_year"
	PivotBirthMonth = "birth_month"
	PivotBirthDay   = "birth_day"
	PivotBirthdate  = "birthdate" // YYYY-MM-DD
)

var knownPivots = map[string]bool{
	PivotFamilyName: true, PivotGivenNames: true, PivotBirthYear: true,
	PivotBirthMonth: true, PivotBirthDay: true, PivotBirthdate: true,
}

// The kinds of person designation Person returns.
const (
	PersonCivilStatus = "civil_status" // family name, given names, birth date
	PersonIdentifier  = "identifier"   // a provider identifier (INE…)
)

// Person returns the canonical text that designates the person a caller
// looks up on an identite or identifiant route, from the caller's
// validated and normalised parameters (values returns a parameter's
// values, in order; none when absent). It is the input of the audit
// pseudonym (SECURITY.md G02): personal data, never logged itself.
//
// When the route's identifier parameter was given, the text is the
// identifier in its namespace (two routes taking an INE give the same
// text). Otherwise it is the civil status every identite route takes —
// birth name, given names, birth date (year, year-month or full date) —
// so that the same inputs on two routes give the same text; sex and birth
// place are left out because not every route takes them. A route that
// makes the birth date optional (DSS) still designates a call without one,
// by its names and an empty date: such a lookup reaches personal data
// too, and its audit record names its person. ok is false when the route
// declares neither, or the caller gave neither names nor identifier.
func (e *Endpoint) Person(values func(name string) []string) (kind, text string, ok bool) {
	for i := range e.Params {
		if p := &e.Params[i]; p.Identifier != "" {
			if v := values(p.Name); len(v) > 0 && v[0] != "" {
				return PersonIdentifier, p.Identifier + "\x00" + v[0], true
			}
		}
	}
	var family, given, year, month, day, date string
	for i := range e.Params {
		p := &e.Params[i]
		if p.Pivot == "" {
			continue
		}
		v := values(p.Name)
		if len(v) == 0 {
			continue
		}
		switch p.Pivot {
		case PivotFamilyName:
			family = v[0]
		case PivotGivenNames:
			given = strings.Join(v, " ")
		case PivotBirthYear:
			year = v[0]
		case PivotBirthMonth:
			month = v[0]
		case PivotBirthDay:
			day = v[0]
		case PivotBirthdate:
			date = v[0]
		}
	}
	if date == "" && year != "" {
		date = year
		if month != "" {
			date += "-" + pad2(month)
			if day != "" {
				date += "-" + pad2(day)
			}
		}
	}
	if family == "" || given == "" {
		return "", "", false
	}
	return PersonCivilStatus, family + "\x00" + given + "\x00" + date, true
}

// CallModality returns the calling modality of a call to e whose person
// Person designated as kind: identifiant when the call gives a provider
// identifier, whatever the route (the legacy v2 student routes take an INE
// or a civil status under one identite route), e's own modality otherwise.
// DataPass grants a modality for what the caller gives: an identite
// habilitation looks nobody up by INE, on /ine or on v2.
func (e *Endpoint) CallModality(kind string) Modality {
	if kind == PersonIdentifier {
		return ModalityIdentifiant
	}
	return e.Modality
}

// CallModalities reports whether a call to e may need modality m: e's own
// modality, or identifiant on an identite route that takes an identifier
// (CallModality). It lets a habilitation granted neither be refused before
// its query is read.
func (e *Endpoint) CallModalities(m Modality) bool {
	if m == e.Modality {
		return true
	}
	if m != ModalityIdentifiant || e.Modality != ModalityIdentite {
		return false
	}
	for i := range e.Params {
		if e.Params[i].Identifier != "" {
			return true
		}
	}
	return false
}

// QuotaSubject returns the text one citizen's quota counts on an identite
// or identifiant route (SECURITY.md F05), from the same parameters as
// Person: the identifier in its namespace, upper case, when the call
// gives one; else the birth name and the first given name (up to a space
// or a hyphen) reduced to their letters
// (accents and case folded; hyphens, apostrophes and spaces dropped) and
// the birth year, empty when the call gives none. It is coarser than
// Person on purpose: the spellings, given names and date precisions a
// provider may match as one person count as one, and a call that leaves
// the birth date out still counts; namesakes born the same year share a
// quota. ok is false when the call names nobody. Personal data: hash it.
func (e *Endpoint) QuotaSubject(values func(name string) []string) (string, bool) {
	var family, given, year string
	for i := range e.Params {
		p := &e.Params[i]
		v := values(p.Name)
		if len(v) == 0 || v[0] == "" {
			continue
		}
		if p.Identifier != "" {
			return PersonIdentifier + "\x00" + p.Identifier + "\x00" + strings.ToUpper(v[0]), true
		}
		switch p.Pivot {
		case PivotFamilyName:
			family = foldLetters(v[0])
		case PivotGivenNames:
			// The first given name up to a space or a hyphen: Jean-Paul
			// and Jean Paul are one.
			first, _, _ := strings.Cut(strings.TrimSpace(strings.ReplaceAll(v[0], "-", " ")), " ")
			given = foldLetters(first)
		case PivotBirthYear:
			year = v[0]
		case PivotBirthdate:
			year, _, _ = strings.Cut(v[0], "-")
		}
	}
	if family == "" {
		return "", false
	}
	return PersonCivilStatus + "\x00" + family + "\x00" + given + "\x00" + year, true
}

// foldLetters keeps the letters of a name, upper case and without their
// accents (NFD, combining marks dropped), the ligatures spelt out: Œ is
// OE, Æ AE.
func foldLetters(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r) || !unicode.IsLetter(r):
		case r == 'œ' || r == 'Œ':
			b.WriteString("OE")
		case r == 'æ' || r == 'Æ':
			b.WriteString("AE")
		default:
			b.WriteRune(unicode.ToUpper(unicode.ToLower(r)))
		}
	}
	return b.String()
}

// pad2 writes a month or day with two digits, as in YYYY-MM-DD.
func pad2(v string) string {
	if len(v) == 1 {
		return "0" + v
	}
	return v
}

// checkPerson validates the pivot and identifier annotations of a route's
// parameters: known values, each at most once, only on identite and
// identifiant routes; an identifiant route names its identifier, an
// identite route its civil status (birth name, given names, birth date) or
// an identifier.
func (e *Endpoint) checkPerson() []string {
	var errs []string
	seen := map[string]bool{}
	identifier := false
	for j := range e.Params {
		p := &e.Params[j]
		if p.Pivot == "" && p.Identifier == "" {
			continue
		}
		switch {
		case !e.Modality.CallerGivesIdentity():
			errs = append(errs, fmt.Sprintf("params[%d]: pivot and identifier only on identite and identifiant routes", j))
		case p.Pivot != "" && p.Identifier != "":
			errs = append(errs, fmt.Sprintf("params[%d]: pivot and identifier are exclusive", j))
		case p.Pivot != "" && !knownPivots[p.Pivot]:
			errs = append(errs, fmt.Sprintf("params[%d].pivot: unknown pivot %q", j, p.Pivot))
		case p.Identifier != "" && !scopeRe.MatchString(p.Identifier):
			errs = append(errs, fmt.Sprintf("params[%d].identifier: want a namespace of [a-z0-9_]", j))
		case seen[p.Pivot+p.Identifier] || p.Identifier != "" && identifier:
			errs = append(errs, fmt.Sprintf("params[%d]: a route carries each pivot and at most one identifier", j))
		}
		seen[p.Pivot+p.Identifier] = true
		identifier = identifier || p.Identifier != ""
	}
	civil := seen[PivotFamilyName] && seen[PivotGivenNames] && (seen[PivotBirthdate] || seen[PivotBirthYear])
	switch {
	case e.Modality == ModalityIdentifiant && !identifier:
		errs = append(errs, "params: an identifiant route names its identifier parameter (identifier: <namespace>)")
	case e.Modality == ModalityIdentite && !identifier && !civil:
		errs = append(errs, "params: an identite route marks its birth name, given names and birth date (pivot: …)")
	}
	return errs
}
