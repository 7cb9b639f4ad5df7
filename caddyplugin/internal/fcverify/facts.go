package fcverify

import (
	"sync/atomic"
	"time"
)

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

	// derived memoises one string computed from these facts for one key
	// (the pipeline's provider query of the last endpoint called with the
	// token): the requests that present a cached token share it. It stays
	// in process: it is never serialised.
	derived atomic.Pointer[derivedValue]
}

type derivedValue struct {
	key   any
	value string
}

// Derived returns the value memoised for key, or computes it with compute,
// memoises it (replacing the value of any other key) and returns it. An
// error of compute is returned as is and nothing is memoised. The value
// must depend only on key and on the facts, which never change once
// cached.
func (f *Facts) Derived(key any, compute func() (string, error)) (string, error) {
	if d := f.derived.Load(); d != nil && d.key == key {
		return d.value, nil
	}
	v, err := compute()
	if err != nil {
		return "", err
	}
	f.derived.Store(&derivedValue{key: key, value: v})
	return v, nil
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
