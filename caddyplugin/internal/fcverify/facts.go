package fcverify

import "time"

// Identity is the FranceConnect identity pivot carried by a checktoken answer
// (DOMAIN.md §3). It is personal data: never log, trace or key on it.
type Identity struct {
	Gender         string   `json:"gender"`
	FamilyName     string   `json:"family_name"`
	GivenName      string   `json:"given_name"`
	GivenNameArray []string `json:"given_name_array,omitempty"`
	Birthdate      string   `json:"birthdate"`
	Birthplace     string   `json:"birthplace"`
	Birthcountry   string   `json:"birthcountry"`
	// IdpBirthdate is the identity provider's own birth date when
	// FranceConnect presumed a part of Birthdate (idp_birthdate: YYYY,
	// YYYY-MM, or with 00 parts); "" when absent.
	IdpBirthdate string `json:"idp_birthdate,omitempty"`
}

// Facts is what one verified FranceConnect checktoken answer says about an
// access token. It holds no decision: route scopes, acr minimums and
// habilitations are evaluated on every request (SECURITY.md B04).
//
// An inactive token is Facts{Active: false} with every other field empty.
type Facts struct {
	Active bool `json:"active"`
	// ClientID is token_introspection.aud: the FranceConnect client id of
	// the calling service.
	ClientID string `json:"client_id,omitempty"`
	// Sub is the pairwise subject for our data-provider client.
	Sub       string    `json:"sub,omitempty"`
	Scopes    []string  `json:"scopes,omitempty"`
	ACR       string    `json:"acr,omitempty"`
	IssuedAt  time.Time `json:"iat,omitzero"`
	ExpiresAt time.Time `json:"exp,omitzero"`
	Identity  Identity  `json:"identity,omitzero"`
	// CitizenKey is the audit pseudonym of Sub, set by the gateway once per
	// verified token (not by FranceConnect), with the version of the key
	// that made it.
	CitizenKey        string `json:"citizen_key,omitempty"`
	CitizenKeyVersion string `json:"citizen_key_version,omitempty"`
}

// HasScope reports whether the token carries scope s.
func (f *Facts) HasScope(s string) bool {
	for _, have := range f.Scopes {
		if have == s {
			return true
		}
	}
	return false
}
