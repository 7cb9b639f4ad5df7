package catalogue

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// Param is a caller query parameter passed through to the provider.
type Param struct {
	Name     string `yaml:"name"`
	Pattern  string `yaml:"pattern"`
	Required bool   `yaml:"required"`
	// Max is how many times the parameter may appear (default 1); only a
	// name ending in "[]" (prenoms[]) may repeat. MESRI's prenoms[] takes
	// exactly one value: max 1.
	Max int `yaml:"max"`
	// Normalize is how the caller's value is rewritten before the pattern
	// is checked and the value sent: "" (as given), "name" (see
	// NormalizeName), "integer" (leading zeros dropped: 08 → 8) or "upper"
	// (upper-cased: m → M, 2a115 → 2A115).
	Normalize string `yaml:"normalize"`
	// Requires names the parameters the caller must give with this one:
	// a commune of birth given by name needs its département and the birth
	// year (nomCommuneNaissance requires codeCogInseeDepartementNaissance
	// and anneeDateNaissance). A missing one is refused by name.
	Requires []string `yaml:"requires"`
	// MaxLength bounds the value in characters (Unicode code points) after
	// normalisation; 0 means no bound beyond the pattern's. A length is a
	// check, not a counted repetition in the pattern: [\p{L}]{0,99}
	// compiles to megabytes.
	MaxLength int `yaml:"max_length"`
	// Pivot names the identity element the parameter carries, on identite
	// routes: family_name, given_names, birth_year, birth_month, birth_day
	// or birthdate (see Endpoint.Person): the audit pseudonym of the call
	// is computed from them.
	Pivot string `yaml:"pivot"`
	// Identifier names the namespace of a provider identifier the
	// parameter carries (ine, france_travail…), on identite and
	// identifiant routes: the audit pseudonym of a call giving it.
	Identifier string `yaml:"identifier"`

	re *regexp.Regexp // shared with every route using the same pattern
}

// The normalisations a parameter may declare.
var normalizers = map[string]func(string) string{
	"":        func(v string) string { return v },
	"name":    NormalizeName,
	"integer": trimLeadingZeros,
	"upper":   strings.ToUpper,
}

// Valid reports whether v is an acceptable value for the parameter: within
// MaxLength and matching the pattern.
func (p *Param) Valid(v string) bool {
	if p.MaxLength > 0 && len(v) > p.MaxLength && utf8.RuneCountInString(v) > p.MaxLength {
		return false
	}
	return p.re == nil || p.re.MatchString(v)
}

// Clean applies the parameter's normalisation to a caller's value.
func (p *Param) Clean(v string) string {
	if f, ok := normalizers[p.Normalize]; ok {
		return f(v)
	}
	return v
}

func trimLeadingZeros(v string) string {
	t := strings.TrimLeft(v, "0")
	if t == "" && v != "" {
		return "0"
	}
	return t
}
