package fcverify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/shed"
)

// Verifier calls FranceConnect checktoken and verifies its answers. It is
// safe for concurrent use. Share one per issuer: it holds the JWKS cache.
type Verifier struct {
	cfg     Config
	guard   *shed.Guard // the cap on exchanges in flight
	keyAlgs []jose.KeyAlgorithm
	keys    *keySet
	oidc    *oidc.IDTokenVerifier
}

// New validates cfg and builds a Verifier. It does no network I/O: the JWKS
// is fetched on first use (STYLE.md anti-patterns: eager discovery).
func New(cfg Config) (*Verifier, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	v := &Verifier{cfg: cfg, guard: shed.New(shed.Settings{Name: "franceconnect", MaxInFlight: cfg.MaxInFlight})}
	for _, a := range cfg.KeyAlgorithms {
		v.keyAlgs = append(v.keyAlgs, jose.KeyAlgorithm(a))
	}
	v.keys = &keySet{
		url:      cfg.JWKSURL,
		client:   cfg.HTTPClient,
		now:      cfg.Now,
		cooldown: cfg.JWKSRefreshCooldown,
		interval: cfg.JWKSRefreshInterval,
		maxStale: cfg.JWKSMaxStale,
	}
	for _, a := range cfg.SigningAlgorithms {
		v.keys.algs = append(v.keys.algs, jose.SignatureAlgorithm(a))
	}
	// The outer payload has no exp: go-oidc checks iss and the signature
	// (through our key set); aud, iat and shape are ours (claims.go).
	v.oidc = oidc.NewVerifier(cfg.Issuer, v.keys, &oidc.Config{
		SkipClientIDCheck:    true,
		SkipExpiryCheck:      true,
		SupportedSigningAlgs: cfg.SigningAlgorithms,
		Now:                  cfg.Now,
	})
	return v, nil
}

// CheckToken asks FranceConnect about an access token and verifies the
// answer. It returns Facts{Active: true, …} for an active token,
// Facts{Active: false} for a verified inactive answer, or an error wrapping
// one of the package sentinels (see Reason). The token never appears in a
// URL, a log or an error.
func (v *Verifier) CheckToken(ctx context.Context, token string) (*Facts, error) {
	if !validToken(token) {
		return nil, ErrTokenMalformed
	}
	ticket, err := v.guard.Enter()
	if err != nil {
		return nil, ErrBusy
	}
	body, err := func() (string, error) {
		defer ticket.Done(shed.Success) // the cap only: no circuit to report to; a panic frees the place too
		return v.exchange(ctx, token)
	}()
	if err != nil {
		return nil, err
	}
	return v.verifyAnswer(ctx, body)
}

// validToken: RFC 6750 §2.1 b64token, bounded. A second line of defence:
// the caller checks A03 before any lookup.
func validToken(t string) bool {
	if t == "" || len(t) > maxToken {
		return false
	}
	end := len(t)
	for end > 0 && t[end-1] == '=' {
		end--
	}
	if end == 0 {
		return false
	}
	for i := 0; i < end; i++ {
		c := t[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// exchange POSTs the token and returns the raw 200 body (SECURITY.md A04,
// A05, E02, F02, I01, I02).
func (v *Verifier) exchange(ctx context.Context, token string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()

	form := url.Values{
		"token":         {token},
		"client_id":     {v.cfg.ClientID},
		"client_secret": {v.cfg.ClientSecret},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.cfg.CheckTokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("%w: request", ErrUnavailable)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/token-introspection+jwt")

	resp, err := v.cfg.HTTPClient.Do(req)
	if err != nil {
		// *url.Error text holds the URL and transport details: keep only
		// the context cause, whose text is fixed.
		if ctxErr := ctx.Err(); ctxErr != nil {
			return "", fmt.Errorf("%w: checktoken: %w", ErrUnavailable, ctxErr)
		}
		return "", fmt.Errorf("%w: checktoken transport", ErrUnavailable)
	}
	defer drainClose(resp.Body)

	switch s := resp.StatusCode; {
	case s == http.StatusOK:
	case s == http.StatusBadRequest || s == http.StatusUnauthorized:
		return "", fmt.Errorf("%w: status %d", ErrClientAuth, s)
	case s >= 500 || s == http.StatusTooManyRequests:
		return "", fmt.Errorf("%w: status %d", ErrUnavailable, s)
	default: // 1xx, other 2xx, 3xx (redirects are not followed), other 4xx
		return "", bad(fmt.Sprintf("status %d", s))
	}

	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "application/token-introspection+jwt" {
		return "", bad("content type")
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return "", fmt.Errorf("%w: checktoken body: %w", ErrUnavailable, ctxErr)
		}
		return "", fmt.Errorf("%w: checktoken body", ErrUnavailable)
	}
	if len(body) > maxBody {
		return "", bad("body too large")
	}
	return strings.TrimSpace(string(body)), nil
}

// verifyAnswer runs the JOSE and claims checks on a checktoken 200 body.
func (v *Verifier) verifyAnswer(ctx context.Context, body string) (*Facts, error) {
	plain, err := v.decrypt(body)
	if err != nil {
		return nil, err
	}
	jws := string(plain)
	if !isCompact(jws, 3) {
		return nil, bad("jwe payload not a compact jws")
	}
	var keySetErr error
	tok, err := v.oidc.Verify(context.WithValue(ctx, errSinkKey{}, &keySetErr), jws)
	if err != nil {
		if keySetErr != nil {
			return nil, keySetErr
		}
		// go-oidc's own checks (parse, iss, claim types); its text
		// quotes claim values, so it is not wrapped.
		return nil, bad("jws rejected")
	}
	var payload rawPayload
	if err := tok.Claims(&payload); err != nil {
		return nil, bad("jws claims")
	}
	now := v.cfg.Now()
	ti, err := v.checkOuter(payload, now)
	if err != nil {
		return nil, err
	}
	return v.checkIntrospection(ti, now)
}

// rawPayload receives the verified payload bytes from go-oidc unchanged.
type rawPayload []byte

func (r *rawPayload) UnmarshalJSON(b []byte) error {
	if r == nil {
		return errors.New("nil")
	}
	*r = append((*r)[:0], b...)
	return nil
}

// Ready reports whether a usable FranceConnect key set is held, fetching it
// when none is (at most once per cooldown, like an unknown kid). It backs
// the gateway's readiness check: no key set, no verification.
func (v *Verifier) Ready(ctx context.Context) error {
	if v.keys.usable() {
		return nil
	}
	if err := v.keys.refresh(ctx); err != nil {
		return err
	}
	if !v.keys.usable() {
		return fmt.Errorf("%w: no usable key set", ErrJWKSUnavailable)
	}
	return nil
}
