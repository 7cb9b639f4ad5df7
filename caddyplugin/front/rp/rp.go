// Package rp is Passerelle's FranceConnect v2 relying-party client, for the
// front that logs citizens in on behalf of a legacy app (FRONT.md §2): the
// authorization URL with exactly FranceConnect's parameters, the code
// exchange with client_secret_post, the ID token checks (allow-listed
// algorithm, iss, aud, exp, nonce, at_hash, acr at least the one asked),
// userinfo fetched as application/jwt and verified (signature, iss, aud,
// the ID token's sub), token revocation (RFC 7009) and the session/end URL.
//
// FranceConnect's discovery document is fetched on first use and kept; a
// failed discovery is retried at most once per RetryAfter, so a gateway
// starts while FranceConnect is down and a login then answers "unavailable".
//
// Errors carry a closed-list Reason and never a token, a claim value or an
// upstream error text: they may be logged and counted as they are.
package rp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/outbound"
)

// Config configures a Client.
type Config struct {
	// Issuer is FranceConnect's issuer, e.g.
	// https://oidc.franceconnect.gouv.fr/api/v2; discovery is at
	// Issuer + "/.well-known/openid-configuration".
	Issuer string
	// ClientID and ClientSecret are the service's FranceConnect credentials
	// (client_secret_post).
	ClientID     string
	ClientSecret string
	// RedirectURL is the callback registered at FranceConnect.
	RedirectURL string
	// PostLogoutRedirectURL is the logout return registered at FranceConnect.
	PostLogoutRedirectURL string
	// Scopes are asked at login; "openid" is added first when missing.
	Scopes []string
	// ACR is the eIDAS level asked (acr_values) and required in the ID
	// token: eidas1 (default), eidas2 or eidas3.
	ACR string
	// Prompt is sent as is: "login consent" (default) or "login"; it must
	// contain login.
	Prompt string
	// SigningAlgs allow-lists the ID token and userinfo signatures: ES256
	// and RS256 only (default both).
	SigningAlgs []string
	// HTTPClient makes the calls to FranceConnect (default: 10 s timeout).
	HTTPClient *http.Client
	// RetryAfter spaces two discovery attempts after a failure (default 10 s).
	RetryAfter time.Duration
	// Now is the clock of the expiry checks (default time.Now).
	Now func() time.Time
}

// Reasons of Error: a closed list, for logs, metrics and audit records.
const (
	ReasonUnavailable = "franceconnect_unavailable" // discovery, network, 5xx
	ReasonExchange    = "code_exchange_refused"     // the token endpoint refused the code
	ReasonIDToken     = "id_token_invalid"          // signature, alg, iss, aud, exp, at_hash
	ReasonNonce       = "nonce_mismatch"
	// ReasonAuthTime: with prompt=login, the ID token's auth_time is
	// missing, before the login started (an earlier FranceConnect session
	// reused), or ahead of this clock.
	ReasonAuthTime      = "auth_time"
	ReasonACR           = "acr_too_low"
	ReasonUserInfo      = "userinfo_invalid" // unsigned, badly signed, wrong iss/aud, expired
	ReasonSubject       = "userinfo_subject_mismatch"
	ReasonRevocation    = "revocation_refused"
	ReasonConfiguration = "configuration"
)

// Error is a failure of one step, with its closed-list reason.
type Error struct {
	Reason string
	err    error
}

// Error returns the reason only: wrapped errors may quote upstream text.
func (e *Error) Error() string { return "franceconnect: " + e.Reason }

// Unwrap gives the cause to errors.Is and errors.As (for tests; never logged).
func (e *Error) Unwrap() error { return e.err }

func fail(reason string, err error) *Error { return &Error{Reason: reason, err: err} }

// ReasonOf returns the reason of an error of this package, or
// ReasonUnavailable for any other error.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ReasonUnavailable
}

// Client is a FranceConnect v2 relying-party client. It is safe for
// concurrent use.
type Client struct {
	cfg Config

	mu       sync.Mutex
	disc     *discovered
	failedAt time.Time
}

// discovered is what discovery gives.
type discovered struct {
	provider      *oidc.Provider
	oauth         oauth2.Config
	verifier      *oidc.IDTokenVerifier // ID tokens
	userinfo      *oidc.IDTokenVerifier // userinfo JWTs: same keys, iss and aud; exp checked apart
	userinfoURL   string
	endSessionURL string
	revocationURL string
}

// allowedAlgs are the only signature algorithms a configuration may allow.
var allowedAlgs = []string{oidc.ES256, oidc.RS256}

// New checks cfg and returns a Client. No network call is made.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.Issuer == "" || cfg.ClientID == "" || cfg.ClientSecret == "" || cfg.RedirectURL == "":
		return nil, errors.New("rp: issuer, client_id, client_secret and redirect_url are required")
	case cfg.ACR == "":
		cfg.ACR = "eidas1"
	}
	if _, ok := acrLevel(cfg.ACR); !ok {
		return nil, fmt.Errorf("rp: acr %q: eidas1, eidas2 or eidas3", cfg.ACR)
	}
	if cfg.Prompt == "" {
		cfg.Prompt = "login consent"
	}
	for _, p := range strings.Fields(cfg.Prompt) {
		if p != "login" && p != "consent" {
			return nil, fmt.Errorf("rp: prompt %q: login and consent only", cfg.Prompt)
		}
	}
	// Without login, the ID token's auth_time is not checked against the
	// start of the login (Exchange), so an earlier FranceConnect session
	// could be reused: the next person at a shared computer logged in as
	// the last one, who did not log out.
	if !slices.Contains(strings.Fields(cfg.Prompt), "login") {
		return nil, fmt.Errorf("rp: prompt %q: must contain login", cfg.Prompt)
	}
	if len(cfg.SigningAlgs) == 0 {
		cfg.SigningAlgs = slices.Clone(allowedAlgs)
	}
	for _, a := range cfg.SigningAlgs {
		if !slices.Contains(allowedAlgs, a) {
			return nil, fmt.Errorf("rp: signing algorithm %q: ES256 or RS256 only", a)
		}
	}
	if !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		cfg.Scopes = append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	}
	if cfg.HTTPClient == nil {
		// No redirect is followed: a 307 from the token endpoint would
		// post the code and the client secret elsewhere.
		cfg.HTTPClient = outbound.Client(10 * time.Second) // SECURITY.md E03, E08
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg}, nil
}

// ACR is the level the client asks and requires.
func (c *Client) ACR() string { return c.cfg.ACR }

func (c *Client) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, c.cfg.HTTPClient) // also read by x/oauth2
}

// discoveryTimeout bounds a discovery, which its caller's cancellation
// does not interrupt.
const discoveryTimeout = 10 * time.Second

// discover returns the discovered endpoints, fetching them once.
func (c *Client) discover(ctx context.Context) (*discovered, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.disc != nil {
		return c.disc, nil
	}
	if !c.failedAt.IsZero() && c.cfg.Now().Sub(c.failedAt) < c.cfg.RetryAfter {
		return nil, fail(ReasonUnavailable, errors.New("discovery failed recently"))
	}
	// The discovery serves every login to come, not only this caller's:
	// a caller who hangs up must not make it fail (and lock the logins
	// out for RetryAfter), so it runs on its own deadline.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), discoveryTimeout)
	defer cancel()
	p, err := oidc.NewProvider(c.ctx(dctx), c.cfg.Issuer)
	if err != nil {
		c.failedAt = c.cfg.Now()
		return nil, fail(ReasonUnavailable, err)
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
		Revocation string `json:"revocation_endpoint"`
	}
	if err := p.Claims(&extra); err != nil {
		c.failedAt = c.cfg.Now()
		return nil, fail(ReasonUnavailable, err)
	}
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInParams // client_secret_post
	d := &discovered{
		provider: p,
		oauth: oauth2.Config{
			ClientID: c.cfg.ClientID, ClientSecret: c.cfg.ClientSecret,
			Endpoint: ep, RedirectURL: c.cfg.RedirectURL, Scopes: c.cfg.Scopes,
		},
		verifier: p.Verifier(&oidc.Config{ClientID: c.cfg.ClientID, SupportedSigningAlgs: c.cfg.SigningAlgs, Now: c.cfg.Now}),
		userinfo: p.Verifier(&oidc.Config{ClientID: c.cfg.ClientID, SupportedSigningAlgs: c.cfg.SigningAlgs,
			SkipExpiryCheck: true}),
		userinfoURL: p.UserInfoEndpoint(), endSessionURL: extra.EndSession, revocationURL: extra.Revocation,
	}
	c.disc, c.failedAt = d, time.Time{}
	return d, nil
}

// AuthCodeURL returns FranceConnect's authorization URL: response_type,
// client_id, redirect_uri, scope, state, nonce, acr_values and prompt, and
// nothing else (FranceConnect refuses unknown parameters).
func (c *Client) AuthCodeURL(ctx context.Context, state, nonce string) (string, error) {
	d, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	return d.oauth.AuthCodeURL(state,
		oauth2.SetAuthURLParam("nonce", nonce),
		oauth2.SetAuthURLParam("acr_values", c.cfg.ACR),
		oauth2.SetAuthURLParam("prompt", c.cfg.Prompt)), nil
}

// Login is the outcome of a verified code exchange.
type Login struct {
	// AccessToken lives 60 s at FranceConnect: use it at once (userinfo,
	// data providers), then revoke it.
	AccessToken  string
	AccessExpiry time.Time
	// IDToken is the raw ID token, kept for session/end's id_token_hint.
	IDToken  string
	Subject  string
	ACR      string
	AMR      []string
	AuthTime time.Time
}

// AuthTimeSkew is the clock difference with FranceConnect allowed on the
// ID token's auth_time.
const AuthTimeSkew = time.Minute

// Exchange trades the callback's code for tokens and verifies the ID token:
// signature with an allow-listed algorithm and FranceConnect's keys, iss,
// aud (and azp with several audiences), exp, at_hash (required), the nonce
// of the browser's pending login, an acr at least the one asked and, when
// prompt asks for a fresh login, an auth_time no earlier than started (when
// the login began, AuthTimeSkew allowed) and not in the future.
func (c *Client) Exchange(ctx context.Context, code, nonce string, started time.Time) (*Login, error) {
	d, err := c.discover(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := d.oauth.Exchange(c.ctx(ctx), code)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return nil, fail(ReasonExchange, err)
		}
		return nil, fail(ReasonUnavailable, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" || tok.AccessToken == "" {
		return nil, fail(ReasonExchange, errors.New("token answer without id_token or access_token"))
	}
	idt, err := d.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fail(ReasonIDToken, err)
	}
	if idt.Nonce == "" || nonce == "" || !equal(idt.Nonce, nonce) {
		return nil, fail(ReasonNonce, nil)
	}
	if idt.Subject == "" {
		return nil, fail(ReasonIDToken, errors.New("no sub"))
	}
	// FranceConnect v2 always binds the access token to the ID token.
	if idt.AccessTokenHash == "" {
		return nil, fail(ReasonIDToken, errors.New("no at_hash"))
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		return nil, fail(ReasonIDToken, err)
	}
	var claims struct {
		ACR      string   `json:"acr"`
		AMR      []string `json:"amr"`
		AuthTime int64    `json:"auth_time"`
		AZP      string   `json:"azp"`
	}
	if err := idt.Claims(&claims); err != nil {
		return nil, fail(ReasonIDToken, err)
	}
	// With several audiences, the token must have been issued to us
	// (OpenID Connect Core 3.1.3.7, points 4 and 5).
	if (len(idt.Audience) > 1 || claims.AZP != "") && claims.AZP != c.cfg.ClientID {
		return nil, fail(ReasonIDToken, errors.New("azp is not this client"))
	}
	if have, ok := acrLevel(claims.ACR); !ok || have < mustLevel(c.cfg.ACR) {
		return nil, fail(ReasonACR, nil)
	}
	if slices.Contains(strings.Fields(c.cfg.Prompt), "login") {
		at := time.Unix(claims.AuthTime, 0)
		switch {
		case claims.AuthTime <= 0:
			return nil, fail(ReasonAuthTime, errors.New("no auth_time"))
		case at.Before(started.Add(-AuthTimeSkew)):
			return nil, fail(ReasonAuthTime, errors.New("authenticated before the login started"))
		case at.After(c.cfg.Now().Add(AuthTimeSkew)):
			return nil, fail(ReasonAuthTime, errors.New("auth_time in the future"))
		}
	}
	l := &Login{
		AccessToken: tok.AccessToken, AccessExpiry: tok.Expiry, IDToken: raw,
		Subject: idt.Subject, ACR: claims.ACR, AMR: claims.AMR,
	}
	if claims.AuthTime > 0 {
		l.AuthTime = time.Unix(claims.AuthTime, 0)
	}
	return l, nil
}

// acrLevel orders FranceConnect's eIDAS levels.
func acrLevel(acr string) (int, bool) {
	switch acr {
	case "eidas1":
		return 1, true
	case "eidas2":
		return 2, true
	case "eidas3":
		return 3, true
	}
	return 0, false
}

func mustLevel(acr string) int { l, _ := acrLevel(acr); return l }

// Revoke revokes an access token (RFC 7009) with exactly the form
// FranceConnect expects: token, client_id, client_secret.
func (c *Client) Revoke(ctx context.Context, accessToken string) error {
	d, err := c.discover(ctx)
	if err != nil {
		return err
	}
	if d.revocationURL == "" {
		return fail(ReasonConfiguration, errors.New("no revocation_endpoint"))
	}
	form := url.Values{"token": {accessToken}, "client_id": {c.cfg.ClientID}, "client_secret": {c.cfg.ClientSecret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.revocationURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fail(ReasonConfiguration, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return fail(ReasonUnavailable, err)
	}
	defer resp.Body.Close()
	drain(resp)
	if resp.StatusCode != http.StatusOK {
		return fail(ReasonRevocation, fmt.Errorf("status %d", resp.StatusCode))
	}
	return nil
}

// EndSessionURL returns FranceConnect's logout URL: id_token_hint, state
// and post_logout_redirect_uri, URL-encoded.
func (c *Client) EndSessionURL(ctx context.Context, idTokenHint, state string) (string, error) {
	d, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	if d.endSessionURL == "" || c.cfg.PostLogoutRedirectURL == "" {
		return "", fail(ReasonConfiguration, errors.New("no end_session_endpoint or post-logout URL"))
	}
	q := url.Values{"id_token_hint": {idTokenHint}, "state": {state}, "post_logout_redirect_uri": {c.cfg.PostLogoutRedirectURL}}
	return d.endSessionURL + separator(d.endSessionURL) + q.Encode(), nil
}

func separator(u string) string {
	if strings.Contains(u, "?") {
		return "&"
	}
	return "?"
}
