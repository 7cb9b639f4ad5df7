package rp

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// Identity is the citizen's identity pivot as FranceConnect's userinfo
// gives it (RNIPP data). Birthdate is YYYY-MM-DD, with a presumed day or
// month 01 when IdpBirthdate is YYYY-MM or YYYY.
type Identity struct {
	Sub            string   `json:"sub"`
	GivenName      string   `json:"given_name"`
	GivenNameArray []string `json:"given_name_array"`
	FamilyName     string   `json:"family_name"`
	Gender         string   `json:"gender"`
	Birthdate      string   `json:"birthdate"`
	IdpBirthdate   string   `json:"idp_birthdate"`
	Birthplace     string   `json:"birthplace"`
	Birthcountry   string   `json:"birthcountry"`
}

// maxUserInfo bounds the userinfo answer.
const maxUserInfo = 64 << 10

// UserInfo fetches the identity with the access token, as a signed JWT
// (Accept: application/jwt), and verifies it: an allow-listed signature by
// FranceConnect's keys, iss, aud = our client id, exp when present, and sub
// equal to the ID token's (sub). An unsigned JSON answer is refused, though
// OpenID Connect allows it: FranceConnect v2 always signs (go-oidc's own
// UserInfo would accept it).
func (c *Client) UserInfo(ctx context.Context, accessToken, sub string) (*Identity, error) {
	d, err := c.discover(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.userinfoURL, nil)
	if err != nil {
		return nil, fail(ReasonConfiguration, err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/jwt")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fail(ReasonUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUserInfo+1))
	switch {
	case err != nil:
		return nil, fail(ReasonUnavailable, err)
	case resp.StatusCode >= 500:
		return nil, fail(ReasonUnavailable, fmt.Errorf("status %d", resp.StatusCode))
	case resp.StatusCode != http.StatusOK:
		return nil, fail(ReasonUserInfo, fmt.Errorf("status %d", resp.StatusCode))
	case len(body) > maxUserInfo:
		return nil, fail(ReasonUserInfo, errors.New("answer too large"))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/jwt" {
		return nil, fail(ReasonUserInfo, errors.New("answer is not a signed JWT"))
	}
	tok, err := d.userinfo.Verify(ctx, strings.TrimSpace(string(body)))
	if err != nil {
		return nil, fail(ReasonUserInfo, err)
	}
	if !tok.Expiry.IsZero() && !c.cfg.Now().Before(tok.Expiry) {
		return nil, fail(ReasonUserInfo, errors.New("expired"))
	}
	if tok.Subject == "" || !equal(tok.Subject, sub) {
		return nil, fail(ReasonSubject, nil)
	}
	var id Identity
	if err := tok.Claims(&id); err != nil {
		return nil, fail(ReasonUserInfo, err)
	}
	return &id, nil
}

// CallbackError is an error FranceConnect sent back to the callback
// (?error=…): the citizen cancelled, or FranceConnect refused the request.
type CallbackError struct {
	// Code is FranceConnect's error, or "unknown" for a code not listed.
	Code string
	// Kind says what the citizen is told: KindCancelled, KindConfiguration,
	// KindUnavailable.
	Kind string
}

// Kinds of CallbackError (FRONT.md §2.1, FranceConnect's partner
// documentation "technique-erreurs").
const (
	// KindCancelled: the citizen cancelled, or FranceConnect could not
	// establish the identity (access_denied). Retry or use another way.
	KindCancelled = "cancelled"
	// KindConfiguration: the service's request was refused (invalid_scope,
	// invalid_request, unknown codes): an operator must act; the citizen
	// uses another way.
	KindConfiguration = "configuration"
	// KindUnavailable: FranceConnect failed (server_error,
	// temporarily_unavailable): retry later.
	KindUnavailable = "unavailable"
)

// ParseCallbackError returns the callback's error, or nil when the callback
// carries none. The error_description is ignored: it is free text that may
// quote the request.
func ParseCallbackError(code string) *CallbackError {
	switch code {
	case "":
		return nil
	case "access_denied":
		return &CallbackError{Code: code, Kind: KindCancelled}
	case "invalid_scope", "invalid_request", "unauthorized_client", "unsupported_response_type":
		return &CallbackError{Code: code, Kind: KindConfiguration}
	case "server_error", "temporarily_unavailable":
		return &CallbackError{Code: code, Kind: KindUnavailable}
	}
	return &CallbackError{Code: "unknown", Kind: KindConfiguration}
}

// Error implements error.
func (e *CallbackError) Error() string { return "franceconnect callback: " + e.Code }

// equal compares two secrets in constant time.
func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// drain reads what is left of a small answer, so the connection is reused.
func drain(resp *http.Response) { _, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) }
