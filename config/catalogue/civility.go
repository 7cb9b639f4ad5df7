package catalogue

import (
	"strings"
	"time"
	_ "time/tzdata" // Europe/Paris must resolve on hosts without a zoneinfo database
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Civility holds the cross-parameter checks of an identite route, on top of
// each parameter's own pattern:
//
//	civility:
//	  birth_date: [anneeDateNaissance, moisDateNaissance, jourDateNaissance]
//	  birth_country: codeCogInseePaysNaissance
//	  birth_place_in_france: [codeCogInseeCommuneNaissance, nomCommuneNaissance]
//
// birth_date names the year, month and day parameters: a day needs a month,
// a month needs a year, the date must exist in the calendar, not lie in the
// future, and the year be 1900 or later (a partial date, year or year and
// month, is accepted when the route makes the parts optional). It may
// instead name one parameter holding the whole date, YYYY-MM-DD (the legacy
// v2 student routes' dateDeNaissance), under the same rules:
//
//	civility:
//	  birth_date: [dateDeNaissance]
//
// birth_country names the country parameter: when it is given and is not
// France (99100), the birth_place_in_france parameters are refused (born
// abroad: no commune). Every name must be a declared parameter.
type Civility struct {
	BirthDate          []string `yaml:"birth_date"`
	BirthCountry       string   `yaml:"birth_country"`
	BirthPlaceInFrance []string `yaml:"birth_place_in_france"`
}

func (c *Civility) names() []string {
	n := append([]string{}, c.BirthDate...)
	if c.BirthCountry != "" {
		n = append(n, c.BirthCountry)
	}
	return append(n, c.BirthPlaceInFrance...)
}

// paris is the time zone of civil dates.
var paris = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic("catalogue: Europe/Paris: " + err.Error()) // cannot happen with time/tzdata
	}
	return loc
}()

// minBirthYear is the earliest birth year accepted.
const minBirthYear = 1900

// Check applies the checks to the caller's normalised values (value returns
// "" for an absent parameter) and returns the name of the first offending
// parameter, or "" when the identity is coherent. now is the current time.
func (c *Civility) Check(value func(name string) string, now time.Time) string {
	if c == nil {
		return ""
	}
	if len(c.BirthDate) > 0 {
		if bad := checkBirthDate(c.BirthDate, value, now); bad != "" {
			return bad
		}
	}
	if c.BirthCountry != "" {
		if country := value(c.BirthCountry); country != "" && country != france {
			for _, p := range c.BirthPlaceInFrance {
				if value(p) != "" {
					return p
				}
			}
		}
	}
	return ""
}

// checkBirthDate checks the birth date of names (year, month and day
// parameters, or one YYYY-MM-DD parameter) and returns the parameter at
// fault, or "".
func checkBirthDate(names []string, value func(string) string, now time.Time) string {
	var ys, ms, ds string
	if len(names) == 1 {
		whole := value(names[0])
		if whole == "" {
			return ""
		}
		var ok bool
		if ys, ms, ds, ok = splitISODate(whole); !ok {
			return names[0]
		}
		names = []string{names[0], names[0], names[0]} // every part is that parameter's
	} else {
		ys, ms, ds = value(names[0]), value(names[1]), value(names[2])
	}
	switch {
	case ds != "" && ms == "":
		return names[2]
	case ms != "" && ys == "":
		return names[1]
	case ys == "":
		return ""
	}
	// Dates are civil dates: "today" is today in France, whatever the
	// host's time zone.
	ty, tm, td := now.In(paris).Date()
	today := time.Date(ty, tm, td, 0, 0, 0, 0, time.UTC)
	y, ok := decimal(ys)
	if !ok || y < minBirthYear || y > ty {
		return names[0]
	}
	if ms == "" {
		return ""
	}
	m, ok := decimal(ms)
	if !ok || m < 1 || m > 12 || y == ty && time.Month(m) > tm {
		return names[1]
	}
	if ds == "" {
		return ""
	}
	d, ok := decimal(ds)
	if !ok || d < 1 {
		return names[2]
	}
	date := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if date.Day() != d || date.After(today) {
		return names[2]
	}
	return ""
}

// splitISODate splits YYYY-MM-DD into its year, month and day digits.
func splitISODate(v string) (y, m, d string, ok bool) {
	if len(v) != len("2006-01-02") || v[4] != '-' || v[7] != '-' {
		return "", "", "", false
	}
	return v[:4], v[5:7], v[8:], true
}

// decimal parses 1 to 4 ASCII digits (no sign, no space).
func decimal(s string) (int, bool) {
	if len(s) == 0 || len(s) > 4 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// NormalizeName rewrites a name the way civil-status providers compare
// them: Unicode NFC (a decomposed "e" + U+0301 becomes "é"), typographic
// apostrophes (’ ‘ ʼ ´ `) become ', Unicode dashes become -, spaces are
// trimmed, inner runs collapsed to one and removed around hyphens
// ("TROIS - DUPRE" → "TROIS-DUPRE"), and letters upper-cased with their
// accents kept ("Joëlle" → "JOËLLE"). Anything else (digits, symbols) is
// kept so that the route's pattern refuses it by name.
func NormalizeName(v string) string {
	// Invalid bytes become U+FFFD before NFC, not after: a combining mark
	// behind an invalid byte would otherwise be composed only on a second
	// pass, and the normalisation would not be idempotent.
	v = norm.NFC.String(strings.ToValidUTF8(v, "\uFFFD"))
	var b strings.Builder
	b.Grow(len(v))
	space := false
	for _, r := range v {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case r == '’' || r == '‘' || r == 'ʼ' || r == '´' || r == '`':
			r = '\''
		case r >= '‐' && r <= '―' || r == '−':
			r = '-'
		}
		if space && r != '-' && !strings.HasSuffix(b.String(), "-") {
			b.WriteByte(' ')
		}
		space = false
		// Upper case through lower case: a letter with two capitals (ϴ and
		// Θ, lower θ) gets one, so that a name's case never changes it.
		b.WriteRune(unicode.ToUpper(unicode.ToLower(r)))
	}
	// Upper-casing can make a composable pair ("ı" + U+0308 → "I" + U+0308
	// → "Ï"): compose again so that a second pass changes nothing.
	return norm.NFC.String(b.String())
}
