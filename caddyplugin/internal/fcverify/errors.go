package fcverify

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package wraps exactly one of
// them (errors.Is) and carries a fixed, PII-free detail: never the token, a
// claim, a header value, a key or the client secret. Error strings leave the
// process (STYLE.md §8), so keep it that way when adding details.
var (
	// ErrUnavailable: FranceConnect could not be reached or answered 5xx or
	// 429 (transport error, checktoken deadline). Caller answers 503 (I01).
	ErrUnavailable = errors.New("fcverify: franceconnect unavailable")
	// ErrBusy: the checktoken exchanges in flight are at the cap; the
	// check was not sent. It is an ErrUnavailable.
	ErrBusy = fmt.Errorf("%w: too many checks in flight", ErrUnavailable)
	// ErrClientAuth: FranceConnect answered 400 or 401 to checktoken, which
	// means our own data-provider credentials or request are wrong. Caller
	// answers 503 and alerts (I02); never retry in a loop.
	ErrClientAuth = errors.New("fcverify: franceconnect refused our client authentication")
	// ErrBadResponse: the answer failed a group A check (I03). It is never
	// read as active or inactive and must not be cached.
	ErrBadResponse = errors.New("fcverify: bad checktoken response")
	// ErrJWKSUnavailable: the FranceConnect JWKS could not be fetched and no
	// usable key set is held (never fetched, or older than JWKSMaxStale). I04.
	ErrJWKSUnavailable = errors.New("fcverify: franceconnect jwks unavailable")
	// ErrTokenExpired: a verified, active answer whose token_introspection
	// exp is past (now >= exp + skew). Caller answers 401 50002.
	ErrTokenExpired = errors.New("fcverify: token expired")
	// ErrTokenMalformed: the token handed to CheckToken is empty, too long or
	// outside the RFC 6750 b64token grammar; nothing was sent to FranceConnect.
	ErrTokenMalformed = errors.New("fcverify: token malformed")
)

// Reason codes (SECURITY.md G04; fc_client_auth_failed is the I02 alert).
const (
	ReasonUnavailable     = "fc_unavailable"
	ReasonBadResponse     = "fc_bad_response"
	ReasonJWKSUnavailable = "jwks_unavailable"
	ReasonClientAuth      = "fc_client_auth_failed"
	ReasonTokenExpired    = "token_expired"
	ReasonTokenMalformed  = "token_malformed"
	ReasonInternal        = "internal_error"
)

// Reason maps an error returned by this package to its closed-list reason
// code for the audit record. It returns "" for nil and "internal_error" for
// an error this package does not know.
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrTokenMalformed):
		return ReasonTokenMalformed
	case errors.Is(err, ErrTokenExpired):
		return ReasonTokenExpired
	case errors.Is(err, ErrClientAuth):
		return ReasonClientAuth
	case errors.Is(err, ErrJWKSUnavailable):
		return ReasonJWKSUnavailable
	case errors.Is(err, ErrUnavailable):
		return ReasonUnavailable
	case errors.Is(err, ErrBadResponse):
		return ReasonBadResponse
	default:
		return ReasonInternal
	}
}

// bad wraps ErrBadResponse with a constant detail naming the failed check.
func bad(detail string) error {
	return fmt.Errorf("%w: %s", ErrBadResponse, detail)
}
