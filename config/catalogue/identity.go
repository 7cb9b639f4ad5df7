package catalogue

import (
	"errors"
	"strings"
)

// Pivot is the identity pivot of one citizen, as FranceConnect states it
// (DOMAIN.md §3). It is personal data: never log it.
type Pivot struct {
	FamilyName   string
	GivenName    string // space-separated given names
	Gender       string // male | female
	Birthdate    string // YYYY-MM-DD, or presumed YYYY-MM / YYYY
	Birthplace   string // COG commune code, "" when born abroad
	Birthcountry string // COG country code, France = 99100
	// IdpBirthdate is FranceConnect's idp_birthdate claim, when present:
	// the identity provider's own birth date (YYYY, YYYY-MM, or with 00
	// parts), where Birthdate may hold a day or month presumed as 01.
	IdpBirthdate string
}

// Normalized returns the pivot as civil-status providers compare
// identities, the way the gateway sends callers' identities: names through
// NormalizeName (Unicode NFC — an identity provider may send "DUBINO" +
// U+0302 + "RE" —, spaces, apostrophes, hyphens, upper case), and a
// presumed birth date reduced to what is known (see KnownBirthdate).
func (p Pivot) Normalized() Pivot {
	p.FamilyName = NormalizeName(p.FamilyName)
	p.GivenName = NormalizeName(p.GivenName)
	p.Birthdate = KnownBirthdate(p.Birthdate, p.IdpBirthdate)
	return p
}

// KnownBirthdate returns the part of a FranceConnect birth date that is
// known. FranceConnect presumes an unknown day or month as 01 (RNIPP's
// 1987-11 becomes 1987-11-01, 1979 becomes 1979-01-01) and puts the
// identity provider's original in idp_birthdate: when idp lacks the month
// (absent or 00) and birthdate is YYYY-01-01 of the same year, the year
// alone is known; when idp lacks the day and birthdate is the 1st of the
// same month, the year and month. Otherwise, or without idp, birthdate is
// returned as is: a partial date is sent, never an invented day 1, and a
// date RNIPP corrected is never degraded.
func KnownBirthdate(birthdate, idp string) string {
	y, m, d, ok := splitDate(birthdate)
	if !ok || m == "" || d == "" || idp == "" {
		return birthdate
	}
	iy, im, id, ok := splitDate(idp)
	if !ok || iy != y {
		return birthdate
	}
	switch {
	case (im == "" || im == "00") && m == "01" && d == "01":
		return y
	case im == m && (id == "" || id == "00") && d == "01":
		return y + "-" + m
	}
	return birthdate
}

// Claim names a value derived from the identity pivot. The list is closed:
// each one is a small, tested transformation.
type Claim string

// The derived values an identity mapping may use.
const (
	ClaimFamilyName      Claim = "family_name"       // as given
	ClaimGivenName       Claim = "given_name"        // space-joined, as given
	ClaimGivenNames      Claim = "given_names"       // one value per given name (split on spaces)
	ClaimGivenNamesComma Claim = "given_names_comma" // given names joined with ", " (CNOUS)
	ClaimFirstGivenName  Claim = "first_given_name"  // the first given name only (MESRI)
	ClaimBirthdate       Claim = "birthdate"         // YYYY-MM-DD (full dates only)
	ClaimBirthdateFR     Claim = "birthdate_fr"      // DD/MM/YYYY (full dates only)
	ClaimBirthYear       Claim = "birth_year"        // 1962
	ClaimBirthMonth      Claim = "birth_month"       // 8; omitted when unknown
	ClaimBirthDay        Claim = "birth_day"         // 24; omitted when unknown
	ClaimGender          Claim = "gender"            // male | female
	ClaimGenderMF        Claim = "gender_mf"         // M | F
	ClaimBirthcountry    Claim = "birthcountry"      // 99100
	ClaimBirthplace      Claim = "birthplace"        // as given, omitted when empty
	ClaimBirthplaceFR    Claim = "birthplace_fr"     // commune, only when born in France (99100)
)

var knownClaims = map[Claim]bool{
	ClaimFamilyName: true, ClaimGivenName: true, ClaimGivenNames: true, ClaimGivenNamesComma: true,
	ClaimFirstGivenName: true, ClaimBirthdate: true, ClaimBirthdateFR: true, ClaimBirthYear: true,
	ClaimBirthMonth: true, ClaimBirthDay: true, ClaimGender: true, ClaimGenderMF: true,
	ClaimBirthcountry: true, ClaimBirthplace: true, ClaimBirthplaceFR: true,
}

func (c Claim) valid() bool { return knownClaims[c] }

// ErrUnusableIdentity reports an identity pivot that cannot be sent to a
// provider (missing name, unparsable birth date, unknown gender). The message
// never quotes the value.
var ErrUnusableIdentity = errors.New("catalogue: identity pivot unusable")

// france is the COG code of France.
const france = "99100"

// AppendValues appends the values of claim c for pivot p to dst. A claim may
// yield no value (unknown birth month, born abroad) or several (given names).
func (c Claim) AppendValues(dst []string, p *Pivot) ([]string, error) {
	switch c {
	case ClaimFamilyName:
		return appendRequired(dst, p.FamilyName)
	case ClaimGivenName:
		return appendRequired(dst, strings.Join(strings.Fields(p.GivenName), " "))
	case ClaimGivenNames:
		names := strings.Fields(p.GivenName)
		if len(names) == 0 {
			return dst, ErrUnusableIdentity
		}
		return append(dst, names...), nil
	case ClaimGivenNamesComma:
		return appendRequired(dst, strings.Join(strings.Fields(p.GivenName), ", "))
	case ClaimFirstGivenName:
		names := strings.Fields(p.GivenName)
		if len(names) == 0 {
			return dst, ErrUnusableIdentity
		}
		return append(dst, names[0]), nil
	case ClaimBirthdate:
		// A provider taking one date field takes a full date: a partial
		// one is refused, never completed with an invented day.
		if _, m, d, ok := splitDate(p.Birthdate); !ok || m == "" || d == "" {
			return dst, ErrUnusableIdentity
		}
		return append(dst, p.Birthdate), nil
	case ClaimBirthdateFR:
		y, m, d, ok := splitDate(p.Birthdate)
		if !ok || m == "" || d == "" {
			return dst, ErrUnusableIdentity
		}
		return append(dst, d+"/"+m+"/"+y), nil
	case ClaimBirthYear, ClaimBirthMonth, ClaimBirthDay:
		y, m, d, ok := splitDate(p.Birthdate)
		if !ok {
			return dst, ErrUnusableIdentity
		}
		part := y
		switch c {
		case ClaimBirthMonth:
			part = m
		case ClaimBirthDay:
			part = d
		}
		if part = strings.TrimLeft(part, "0"); part == "" {
			return dst, nil // unknown part: omitted, as siade does
		}
		return append(dst, part), nil
	case ClaimGender:
		if p.Gender != "male" && p.Gender != "female" {
			return dst, ErrUnusableIdentity
		}
		return append(dst, p.Gender), nil
	case ClaimGenderMF:
		switch p.Gender {
		case "male":
			return append(dst, "M"), nil
		case "female":
			return append(dst, "F"), nil
		}
		// siade maps anything but male to F; we refuse rather than guess.
		return dst, ErrUnusableIdentity
	case ClaimBirthcountry:
		if !isCOG(p.Birthcountry) {
			return dst, ErrUnusableIdentity
		}
		return append(dst, p.Birthcountry), nil
	case ClaimBirthplace:
		if p.Birthplace == "" {
			return dst, nil
		}
		if !isCOG(p.Birthplace) {
			return dst, ErrUnusableIdentity
		}
		return append(dst, p.Birthplace), nil
	case ClaimBirthplaceFR:
		if p.Birthcountry != france {
			return dst, nil
		}
		if !isCOG(p.Birthplace) {
			return dst, ErrUnusableIdentity
		}
		return append(dst, p.Birthplace), nil
	}
	return dst, ErrUnusableIdentity
}

func appendRequired(dst []string, v string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return dst, ErrUnusableIdentity
	}
	return append(dst, v), nil
}

// splitDate splits YYYY-MM-DD, YYYY-MM or YYYY into its parts ("" when absent).
func splitDate(s string) (y, m, d string, ok bool) {
	y, rest, hasMonth := strings.Cut(s, "-")
	if !digits(y, 4) {
		return "", "", "", false
	}
	if hasMonth {
		var hasDay bool
		if m, d, hasDay = strings.Cut(rest, "-"); !digits(m, 2) || m > "12" {
			return "", "", "", false
		}
		if hasDay && (!digits(d, 2) || d > "31") {
			return "", "", "", false
		}
	}
	return y, m, d, true
}

func digits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isCOG reports whether s looks like a COG code: five ASCII letters or digits
// (Corsican communes such as 2A115 contain letters).
func isCOG(s string) bool {
	if len(s) != 5 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
