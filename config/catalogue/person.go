package catalogue

import (
	"fmt"
	"strings"
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
// place are left out because not every route takes them. ok is false when
// the route declares neither, or the caller gave neither.
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
	if family == "" || given == "" || date == "" {
		return "", "", false
	}
	return PersonCivilStatus, family + "\x00" + given + "\x00" + date, true
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
