package fcverify

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"time"
)

// checkOuter checks the verified JWS payload: iss, aud, iat, exp and nbf
// when present, and the presence of a token_introspection object
// (SECURITY.md A10, A11, A12).
// It returns that object.
func (v *Verifier) checkOuter(payload []byte, now time.Time) (object, error) {
	c, err := decodeObject(payload)
	if err != nil {
		return nil, bad("claims not a json object")
	}
	if iss, _, err := c.str("iss"); err != nil || iss != v.cfg.Issuer {
		return nil, bad("iss")
	}
	if !audienceContains(c["aud"], v.cfg.ClientID) {
		return nil, bad("aud")
	}
	iat, ok, err := numericDate(c, "iat")
	if !ok || err != nil {
		return nil, bad("iat")
	}
	if iat.After(now.Add(v.cfg.Skew)) {
		return nil, bad("iat in the future")
	}
	if iat.Before(now.Add(-v.cfg.MaxIssuedAge)) {
		return nil, bad("iat too old")
	}
	// FranceConnect sends neither exp nor nbf (DOMAIN.md §2), and go-oidc
	// checks neither under SkipExpiryCheck. A signed answer that carries
	// them is bound by them (RFC 7519 §4.1.4, §4.1.5): numeric, exp not
	// past, nbf not in the future, with the same skew as iat.
	if err := notBeforeOrAfter(c, now, v.cfg.Skew); err != nil {
		return nil, err
	}
	ti, ok, err := c.obj("token_introspection")
	if !ok || err != nil {
		return nil, bad("token_introspection not an object")
	}
	return ti, nil
}

// audienceContains: aud is a string equal to want, or an array of strings
// one of which equals want. Absent, null, numeric or an empty array fail.
func audienceContains(raw json.RawMessage, want string) bool {
	if len(raw) == 0 {
		return false
	}
	switch raw[0] {
	case '"':
		var s string
		return json.Unmarshal(raw, &s) == nil && s == want
	case '[':
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) != nil {
			return false
		}
		found := false
		for _, item := range list {
			var s string
			if len(item) == 0 || item[0] != '"' || json.Unmarshal(item, &s) != nil {
				return false
			}
			found = found || s == want
		}
		return found
	}
	return false
}

// notBeforeOrAfter checks the optional exp and nbf members of o: when
// present they must be numeric dates with now < exp+skew and
// nbf <= now+skew.
func notBeforeOrAfter(o object, now time.Time, skew time.Duration) error {
	if exp, ok, err := numericDate(o, "exp"); err != nil || ok && !now.Before(exp.Add(skew)) {
		return bad("exp")
	}
	if nbf, ok, err := numericDate(o, "nbf"); err != nil || ok && nbf.After(now.Add(skew)) {
		return bad("nbf")
	}
	return nil
}

// numericDate reads a JSON number of seconds since the epoch (RFC 7519 §2).
func numericDate(o object, name string) (time.Time, bool, error) {
	raw, ok := o[name]
	if !ok {
		return time.Time{}, false, nil
	}
	var n json.Number
	if len(raw) == 0 || raw[0] == '"' || json.Unmarshal(raw, &n) != nil {
		return time.Time{}, true, errors.New("not a number")
	}
	f, err := n.Float64()
	// Bounds keep the conversion exact and reject NaN, ±Inf, negative
	// and absurd dates (year > 5138).
	if err != nil || !(f >= 0 && f < 1<<37) {
		return time.Time{}, true, errors.New("out of range")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true, nil
}

// checkIntrospection reads token_introspection (SECURITY.md A13, A14, A15).
//
//   - active must be present and a JSON boolean, else ErrBadResponse (I03:
//     a malformed answer is never read as active or inactive);
//   - active false → Facts{Active: false}, nothing else is read;
//   - active true requires exp, iat, sub, aud and scope; exp and iat are
//     numeric; now < exp+skew (else ErrTokenExpired), iat <= now+skew,
//     iat < exp; nbf, when present, is numeric and <= now+skew; aud is one non-empty string (or a one-element array of
//     it); scope is a string, possibly empty;
//   - identity claims, when present, have their documented types.
//
// jti is never read: FranceConnect sets it to the access token itself.
func (v *Verifier) checkIntrospection(ti object, now time.Time) (*Facts, error) {
	raw, ok := ti["active"]
	if !ok {
		return nil, bad("active absent")
	}
	switch string(raw) {
	case "false":
		return &Facts{Active: false}, nil
	case "true":
	default:
		return nil, bad("active not a boolean")
	}

	exp, ok, err := numericDate(ti, "exp")
	if !ok || err != nil {
		return nil, bad("introspection exp")
	}
	iat, ok, err := numericDate(ti, "iat")
	if !ok || err != nil {
		return nil, bad("introspection iat")
	}
	if !iat.Before(exp) {
		return nil, bad("introspection iat not before exp")
	}
	if iat.After(now.Add(v.cfg.Skew)) {
		return nil, bad("introspection iat in the future")
	}
	if nbf, ok, err := numericDate(ti, "nbf"); err != nil || ok && nbf.After(now.Add(v.cfg.Skew)) {
		return nil, bad("introspection nbf")
	}
	sub, _, err := ti.str("sub")
	if err != nil || sub == "" {
		return nil, bad("introspection sub")
	}
	aud, err := singleAudience(ti["aud"])
	if err != nil {
		return nil, bad("introspection aud")
	}
	scope, ok, err := ti.str("scope")
	if !ok || err != nil {
		return nil, bad("introspection scope")
	}
	acr, _, err := ti.str("acr")
	if err != nil {
		return nil, bad("introspection acr")
	}
	id, err := identity(ti)
	if err != nil {
		return nil, err
	}
	// Expiry last: the answer is well formed, only time makes it unusable.
	if !now.Before(exp.Add(v.cfg.Skew)) {
		return nil, ErrTokenExpired
	}
	return &Facts{
		Active:    true,
		ClientID:  aud,
		Sub:       sub,
		Scopes:    splitScope(scope),
		ACR:       acr,
		IssuedAt:  iat,
		ExpiresAt: exp,
		Identity:  id,
	}, nil
}

// singleAudience accepts "x" or ["x"] with x non-empty (A15).
func singleAudience(raw json.RawMessage) (string, error) {
	errAud := errors.New("aud")
	if len(raw) == 0 {
		return "", errAud
	}
	var s string
	switch raw[0] {
	case '"':
		if json.Unmarshal(raw, &s) != nil {
			return "", errAud
		}
	case '[':
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) != nil || len(list) != 1 || len(list[0]) == 0 || list[0][0] != '"' {
			return "", errAud
		}
		if json.Unmarshal(list[0], &s) != nil {
			return "", errAud
		}
	default:
		return "", errAud
	}
	if s == "" {
		return "", errAud
	}
	return s, nil
}

// splitScope splits on U+0020 and drops empty items (RFC 6749 §3.3).
func splitScope(scope string) []string {
	parts := strings.Split(scope, " ")
	return slices.DeleteFunc(parts, func(s string) bool { return s == "" })
}

func identity(ti object) (Identity, error) {
	var id Identity
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"gender", &id.Gender},
		{"family_name", &id.FamilyName},
		{"given_name", &id.GivenName},
		{"birthdate", &id.Birthdate},
		{"birthplace", &id.Birthplace},
		{"birthcountry", &id.Birthcountry},
	} {
		s, _, err := ti.str(f.name)
		if err != nil {
			return Identity{}, bad("introspection identity claim type")
		}
		*f.dst = s
	}
	// idp_birthdate is informational (the identity provider's own date):
	// read when it is a string, ignored otherwise, never a reason to refuse
	// the token.
	if s, _, err := ti.str("idp_birthdate"); err == nil {
		id.IdpBirthdate = s
	}
	if raw, ok := ti["given_name_array"]; ok {
		var list []json.RawMessage
		if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &list) != nil {
			return Identity{}, bad("introspection identity claim type")
		}
		for _, item := range list {
			var s string
			if len(item) == 0 || item[0] != '"' || json.Unmarshal(item, &s) != nil {
				return Identity{}, bad("introspection identity claim type")
			}
			id.GivenNameArray = append(id.GivenNameArray, s)
		}
	}
	return id, nil
}
