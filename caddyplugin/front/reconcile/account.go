package reconcile

import (
	"errors"
	"net/url"
	"strings"
	"unicode/utf8"
)

// AccountHeader is the response header in which the app states the account
// in use, on the page that shows the FranceConnect button (Cas 2). The
// front removes it before the page reaches the browser and keeps it in the
// citizen's session. Its value is a form-encoded list (what PHP's
// http_build_query or Java's URLEncoder give), UTF-8:
//
//	family_name=DUBOIS&given_name=Angela+Claire&birthdate=1962-08-24&birthplace=75107
//
// Fields, each at most once: account_ref (the app's own identifier of the
// account, echoed in the result: the app checks that the data it receives
// was compared with the account in use when it arrives), family_name
// (birth name) and usage_name,
// given_name (space-separated given names), birthdate (YYYY-MM-DD, or
// YYYY-MM / YYYY when only that is known), birthplace (COG commune code),
// birthcountry (COG country code, 99100 for France), gender (M, F, male or
// female). At least family_name, given_name and birthdate make a verdict
// other than "insufficient".
const AccountHeader = "X-Passerelle-Account"

// Account is the account an app has in use.
type Account struct {
	// Ref is the app's identifier of the account (printable ASCII, at
	// most 100 characters), echoed in Result.AccountRef.
	Ref          string
	FamilyName   string
	UsageName    string
	GivenNames   []string
	Birthdate    string
	Birthplace   string
	Birthcountry string
	Gender       string // male | female
	// Invalid: the app's header could not be read (ParseAccount failed,
	// or it came twice). Compare is not run: the verdict is Invalid's.
	Invalid bool `json:",omitempty"`
}

// Limits of the account header.
const (
	maxAccountHeader = 2048
	maxNameBytes     = 400 // 100 letters of up to 4 bytes
)

// ErrAccount is returned for an account header that cannot be read. It
// says nothing of the value: the header holds personal data.
var ErrAccount = errors.New("reconcile: the account header is malformed")

// ParseAccount reads an AccountHeader value.
func ParseAccount(v string) (Account, error) {
	var a Account
	if len(v) > maxAccountHeader || strings.ContainsAny(v, "\r\n\x00") {
		return a, ErrAccount
	}
	q, err := url.ParseQuery(v)
	if err != nil {
		return a, ErrAccount
	}
	for k, vals := range q {
		if len(vals) != 1 || !utf8.ValidString(vals[0]) {
			return a, ErrAccount
		}
		val := strings.TrimSpace(vals[0])
		if strings.ContainsFunc(val, isControl) {
			return a, ErrAccount
		}
		switch k {
		case "family_name", "usage_name", "given_name":
			if len(val) > maxNameBytes {
				return a, ErrAccount
			}
			switch k {
			case "family_name":
				a.FamilyName = val
			case "usage_name":
				a.UsageName = val
			default:
				a.GivenNames = strings.Fields(val)
			}
		case "birthdate":
			if val != "" && !validDate(val) {
				return a, ErrAccount
			}
			a.Birthdate = val
		case "birthplace", "birthcountry":
			if val != "" && !isCOG(val) {
				return a, ErrAccount
			}
			if k == "birthplace" {
				a.Birthplace = strings.ToUpper(val)
			} else {
				a.Birthcountry = val
			}
		case "account_ref":
			if len(val) > 100 || strings.ContainsFunc(val, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
				return a, ErrAccount
			}
			a.Ref = val
		case "gender":
			switch strings.ToLower(val) {
			case "m", "male":
				a.Gender = "male"
			case "f", "female":
				a.Gender = "female"
			case "":
			default:
				return a, ErrAccount
			}
		default:
			return a, ErrAccount
		}
	}
	return a, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// validDate accepts YYYY, YYYY-MM and YYYY-MM-DD with a month 01–12 and a
// day 01–31.
func validDate(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) > 3 || len(parts[0]) != 4 || !digits(parts[0]) {
		return false
	}
	for i, p := range parts[1:] {
		if len(p) != 2 || !digits(p) {
			return false
		}
		n := int(p[0]-'0')*10 + int(p[1]-'0')
		if n < 1 || i == 0 && n > 12 || i == 1 && n > 31 {
			return false
		}
	}
	return true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isCOG accepts a 5-character INSEE code: digits, or 2A/2B for Corsica.
func isCOG(s string) bool {
	if len(s) != 5 {
		return false
	}
	u := strings.ToUpper(s)
	if u[0] == '2' && (u[1] == 'A' || u[1] == 'B') {
		return digits(u[2:])
	}
	return digits(u)
}
