package fcverify

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestA18_ClaimsUnreadBeforeVerification: no claim decides anything before
// both layers are decrypted and verified. Claims that would each end in
// their own outcome once verified (an expired token, an inactive one, a
// foreign audience or issuer, a valid token) give the one generic
// ErrBadResponse when their signature is forged with FranceConnect's kid
// or their payload swapped under a valid signature: no facts, no
// claim-derived error, nothing of them in the message. The same claims
// signed by FranceConnect reach their own outcomes, so the test can tell.
// req: A18
func TestA18_ClaimsUnreadBeforeVerification(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	expired := e.introspection()
	expired["iat"], expired["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
	foreignAud := e.claims(nil)
	foreignAud["aud"] = "another-data-provider"
	foreignIss := e.claims(nil)
	foreignIss["iss"] = "https://attacker.example/api/v2"
	cases := []struct {
		name     string
		claims   map[string]any
		verified func(*Facts, error) bool // the outcome once verified
	}{
		{"valid", e.claims(nil), func(f *Facts, err error) bool { return err == nil && f.Active }},
		{"expired", e.claims(expired), func(_ *Facts, err error) bool { return errors.Is(err, ErrTokenExpired) }},
		{"inactive", e.claims(map[string]any{"active": false}), func(f *Facts, err error) bool { return err == nil && !f.Active }},
		{"foreign audience", foreignAud, func(_ *Facts, err error) bool { return errors.Is(err, ErrBadResponse) }},
		{"foreign issuer", foreignIss, func(_ *Facts, err error) bool { return errors.Is(err, ErrBadResponse) }},
	}
	// A genuine signature over another token's claims.
	other := e.introspection()
	other["jti"] = "another-access-token"
	genuine := signAs(t, fcES, e.claims(other), nil)
	for _, tc := range cases {
		if f, err := e.check(e.wrap(signAs(t, fcES, tc.claims, nil))); !tc.verified(f, err) {
			t.Fatalf("%s, signed by FranceConnect: %+v %v", tc.name, f, err)
		}
		forged := signAs(t, attacker, tc.claims, map[string]any{"kid": fcES.KeyID()})
		// The claims of tc under the genuine answer's signature.
		payload, _ := jsonMarshal(tc.claims)
		parts := strings.Split(genuine, ".")
		swapped := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
		for how, jws := range map[string]string{"forged signature": forged, "swapped payload": swapped} {
			f, err := e.check(e.wrap(jws))
			if f != nil {
				t.Errorf("%s, %s: facts %+v", tc.name, how, f)
			}
			if !errors.Is(err, ErrBadResponse) || errors.Is(err, ErrTokenExpired) {
				t.Errorf("%s, %s: err %v, want only ErrBadResponse", tc.name, how, err)
			}
			assertPIIFree(t, err)
			if Reason(err) == ReasonTokenExpired {
				t.Errorf("%s, %s: reason %s", tc.name, how, Reason(err))
			}
		}
	}
}
