// Package fcop plays FranceConnect v2 for a service provider (the
// relying-party side): discovery, authorize with a page of test identities,
// token (client_secret_post), userinfo as a signed JWT, session/end and
// token revocation, with FranceConnect's lifetimes (code 30 s, access token
// and ID token 60 s) and its refusals (unknown parameters, unregistered
// redirect URIs, replayed codes). The access tokens it issues are known to
// Introspect, so the sandbox's checktoken accepts them and a whole chain —
// login, then the data-provider calls — runs offline.
//
// It backs the sandbox FranceConnect module and the tests of the
// relying-party client. Nothing here is meant for production: state lives
// in memory and every registered client sees every test identity.
package fcop

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcissuer"
)

// Lifetimes, as FranceConnect's (FRONT.md §2.1).
const (
	CodeTTL        = 30 * time.Second
	AccessTokenTTL = 60 * time.Second
	IDTokenTTL     = 60 * time.Second
	interactionTTL = 30 * time.Minute
	// maxPending bounds each in-memory table (interactions, codes,
	// tokens); a full one evicts its oldest entry (put).
	maxPending = 10000
	// maxFormBytes bounds a form body (token, revocation, the identity
	// page's form), as the sandbox checktoken bounds its own: without it
	// Go reads up to 10 MiB of form, in memory, from anyone.
	maxFormBytes = 8 << 10
)

// Client is a registered service provider.
type Client struct {
	ID     string
	Secret string
	// RedirectURIs and PostLogoutRedirectURIs are compared exactly.
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
}

// Tamper lets negative tests change what the stand-in sends. Each hook, when
// set, receives the claims the stand-in would sign and returns what it sends
// instead.
type Tamper struct {
	// IDToken returns the id_token of the token answer.
	IDToken func(claims map[string]any) string
	// UserInfo returns the userinfo answer's Content-Type and body.
	UserInfo func(claims map[string]any) (contentType, body string)
}

// Config configures an OP.
type Config struct {
	// Issuer is the stand-in's issuer URL, e.g. http://127.0.0.1:8081/api/v2.
	Issuer string
	// Signer signs ID tokens and userinfo (ES256 or RS256).
	Signer *fcissuer.Issuer
	// Clients are the registered service providers.
	Clients []Client
	// Identities are the test citizens of the authorize page (default
	// DefaultIdentities).
	Identities []Identity
	// Now defaults to time.Now.
	Now func() time.Time
	// Tamper is for negative tests only.
	Tamper Tamper
	// UserInfoLatency delays userinfo answers (benchmarks).
	UserInfoLatency time.Duration
}

// OP is the stand-in. Its zero value is not usable: see New.
type OP struct {
	cfg      Config
	basePath string
	clients  map[string]*Client
	ids      map[string]*Identity

	mu           sync.Mutex
	interactions map[string]*grant // interaction id → pending authorization
	codes        map[string]*grant // authorization code → grant
	tokens       map[string]*grant // access token → grant
}

// grant is one authorization: who logged in, for which client and scopes.
type grant struct {
	client      *Client
	redirectURI string
	state       string
	nonce       string
	scope       string
	acr         string
	identity    *Identity
	authTime    time.Time
	expires     time.Time
	revoked     bool
}

// New returns an OP for cfg.
func New(cfg Config) *OP {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Identities == nil {
		cfg.Identities = DefaultIdentities()
	}
	o := &OP{
		cfg: cfg, clients: map[string]*Client{}, ids: map[string]*Identity{},
		interactions: map[string]*grant{}, codes: map[string]*grant{}, tokens: map[string]*grant{},
	}
	if u, err := url.Parse(cfg.Issuer); err == nil {
		o.basePath = strings.TrimSuffix(u.Path, "/")
	}
	for i := range cfg.Clients {
		o.clients[cfg.Clients[i].ID] = &cfg.Clients[i]
	}
	for i := range cfg.Identities {
		o.ids[cfg.Identities[i].Key] = &cfg.Identities[i]
	}
	return o
}

// Routes served under the issuer's path.
const (
	PathDiscovery   = "/.well-known/openid-configuration"
	PathJWKS        = "/jwks"
	PathAuthorize   = "/authorize"
	PathInteraction = "/interaction/" // + id, the identity page's form
	PathToken       = "/token"
	PathUserInfo    = "/userinfo"
	PathEndSession  = "/session/end"
	PathRevocation  = "/token/revocation"
)

// Handles reports whether the OP serves the request's path.
func (o *OP) Handles(r *http.Request) bool {
	rel, ok := strings.CutPrefix(r.URL.Path, o.basePath)
	if !ok {
		return false
	}
	switch rel {
	case PathDiscovery, PathJWKS, PathAuthorize, PathToken, PathUserInfo, PathEndSession, PathRevocation:
		return true
	}
	return strings.HasPrefix(rel, PathInteraction)
}

// ServeHTTP serves the OP's routes; any other path is a 404.
func (o *OP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rel := strings.TrimPrefix(r.URL.Path, o.basePath)
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case rel == PathDiscovery:
		o.discovery(w)
	case rel == PathJWKS:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(o.cfg.Signer.JWKS())
	case rel == PathAuthorize:
		o.authorize(w, r)
	case strings.HasPrefix(rel, PathInteraction):
		o.interaction(w, r, strings.TrimPrefix(rel, PathInteraction))
	case rel == PathToken:
		o.token(w, r)
	case rel == PathUserInfo:
		o.userinfo(w, r)
	case rel == PathEndSession:
		o.endSession(w, r)
	case rel == PathRevocation:
		o.revoke(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (o *OP) discovery(w http.ResponseWriter) {
	iss := o.cfg.Issuer
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                iss + PathAuthorize,
		"token_endpoint":                        iss + PathToken,
		"userinfo_endpoint":                     iss + PathUserInfo,
		"end_session_endpoint":                  iss + PathEndSession,
		"revocation_endpoint":                   iss + PathRevocation,
		"jwks_uri":                              iss + PathJWKS,
		"checktoken_endpoint":                   iss + "/checktoken",
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code"},
		"subject_types_supported":               []string{"pairwise"},
		"acr_values_supported":                  []string{"eidas1"},
		"prompt_values_supported":               []string{"login", "consent"},
		"scopes_supported":                      []string{"openid", "identite_pivot", "profile", "birth", "given_name", "family_name", "birthdate", "gender", "birthplace", "birthcountry", "idp_birthdate"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt"},
		"id_token_signing_alg_values_supported": []string{o.cfg.Signer.Algorithm()},
		"userinfo_signing_alg_values_supported": []string{o.cfg.Signer.Algorithm()},
	})
}

// token answers the authorization-code grant, client_secret_post only.
func (o *OP) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || parseForm(w, r) != nil {
		writeJSON(w, http.StatusBadRequest, oauthError("invalid_request", "POST form expected"))
		return
	}
	f := r.PostForm
	c := o.authenticate(f)
	if c == nil {
		writeJSON(w, http.StatusUnauthorized, oauthError("invalid_client", "client authentication failed"))
		return
	}
	if f.Get("grant_type") != "authorization_code" {
		writeJSON(w, http.StatusBadRequest, oauthError("unsupported_grant_type", "authorization_code only"))
		return
	}
	now := o.cfg.Now()
	// A code is its client's (RFC 6749 §4.1.3): another client presenting
	// it is refused and leaves it; its own client uses it once, whatever
	// follows.
	o.mu.Lock()
	g, ok := o.codes[f.Get("code")]
	ok = ok && g.client == c
	if ok {
		delete(o.codes, f.Get("code"))
	}
	o.mu.Unlock()
	if !ok || now.After(g.expires) || g.redirectURI != f.Get("redirect_uri") {
		writeJSON(w, http.StatusBadRequest, oauthError("invalid_grant", "unknown, expired or replayed code"))
		return
	}
	at := randomToken()
	tg := *g
	tg.expires = now.Add(AccessTokenTTL)
	o.put(o.tokens, at, &tg, now)

	claims := map[string]any{
		"iss": o.cfg.Issuer, "aud": c.ID, "sub": o.Sub(c.ID, g.identity),
		"iat": now.Unix(), "exp": now.Add(IDTokenTTL).Unix(), "auth_time": g.authTime.Unix(),
		"nonce": g.nonce, "acr": g.acr, "amr": []string{"pwd"}, "at_hash": atHash(at),
	}
	idToken := ""
	if o.cfg.Tamper.IDToken != nil {
		idToken = o.cfg.Tamper.IDToken(claims)
	} else {
		var err error
		if idToken, err = o.cfg.Signer.Sign(claims); err != nil {
			writeJSON(w, http.StatusInternalServerError, oauthError("server_error", "signing failed"))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": at, "token_type": "Bearer", "expires_in": int(AccessTokenTTL.Seconds()),
		"id_token": idToken, "scope": g.scope,
	})
}

// userinfo answers with the identity claims the token's scopes release, as
// a signed JWT (application/jwt), as FranceConnect v2 does.
func (o *OP) userinfo(w http.ResponseWriter, r *http.Request) {
	if d := o.cfg.UserInfoLatency; d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	g := o.activeToken(tok)
	if !ok || g == nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, oauthError("invalid_token", "unknown or expired access token"))
		return
	}
	now := o.cfg.Now()
	claims := g.identity.claims(strings.Fields(g.scope))
	claims["sub"] = o.Sub(g.client.ID, g.identity)
	claims["iss"], claims["aud"], claims["iat"], claims["exp"] = o.cfg.Issuer, g.client.ID, now.Unix(), now.Add(IDTokenTTL).Unix()
	if o.cfg.Tamper.UserInfo != nil {
		ct, body := o.cfg.Tamper.UserInfo(claims)
		w.Header().Set("Content-Type", ct)
		_, _ = w.Write([]byte(body))
		return
	}
	jwt, err := o.cfg.Signer.Sign(claims)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, oauthError("server_error", "signing failed"))
		return
	}
	w.Header().Set("Content-Type", "application/jwt")
	_, _ = w.Write([]byte(jwt))
}

// revoke implements RFC 7009 with FranceConnect's form: token, client_id,
// client_secret. Any token of the client is revoked; an unknown one is
// accepted silently, as the RFC asks.
func (o *OP) revoke(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || parseForm(w, r) != nil {
		writeJSON(w, http.StatusBadRequest, oauthError("invalid_request", "POST form expected"))
		return
	}
	c := o.authenticate(r.PostForm)
	if c == nil {
		writeJSON(w, http.StatusUnauthorized, oauthError("invalid_client", "client authentication failed"))
		return
	}
	o.mu.Lock()
	if g, ok := o.tokens[r.PostForm.Get("token")]; ok && g.client == c {
		g.revoked = true
	}
	o.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{})
}

// endSession checks the three parameters FranceConnect requires and
// redirects to the registered post-logout URI with the state.
func (o *OP) endSession(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	hint, state, back := q.Get("id_token_hint"), q.Get("state"), q.Get("post_logout_redirect_uri")
	if hint == "" || state == "" || back == "" {
		errorPage(w, http.StatusBadRequest, "Paramètres de déconnexion manquants.")
		return
	}
	c := o.clients[audienceOf(hint)]
	if c == nil || !contains(c.PostLogoutRedirectURIs, back) {
		errorPage(w, http.StatusBadRequest, "Adresse de retour après déconnexion non enregistrée.")
		return
	}
	http.Redirect(w, r, back+sep(back)+url.Values{"state": {state}}.Encode(), http.StatusFound)
}

// Introspect returns the token_introspection FranceConnect's checktoken
// gives for an access token issued here: false when the token is unknown,
// expired or revoked (checktoken then answers {"active": false}).
func (o *OP) Introspect(token string) (map[string]any, bool) {
	g := o.activeToken(token)
	if g == nil {
		return nil, false
	}
	out := g.identity.claims(strings.Fields(g.scope))
	out["active"] = true
	out["aud"] = g.client.ID
	out["sub"] = o.Sub(g.client.ID, g.identity)
	out["iat"] = g.expires.Add(-AccessTokenTTL).Unix()
	out["exp"] = g.expires.Unix()
	out["acr"] = g.acr
	out["jti"] = atHash(token)
	out["scope"] = g.scope
	return out, true
}

// Sub is the pairwise subject of an identity for a client: 64 hex digits
// and "v1", FranceConnect's format.
func (o *OP) Sub(clientID string, id *Identity) string {
	sum := sha256.Sum256([]byte(clientID + "\x00" + id.Key))
	return hex.EncodeToString(sum[:]) + "v1"
}

// Sign signs claims with the OP's key, for tests that tamper a little.
func (o *OP) Sign(claims map[string]any) (string, error) { return o.cfg.Signer.Sign(claims) }

func (o *OP) activeToken(tok string) *grant {
	if tok == "" {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	g, ok := o.tokens[tok]
	if !ok || g.revoked || !o.cfg.Now().Before(g.expires) {
		return nil
	}
	return g
}

func (o *OP) authenticate(f url.Values) *Client {
	c := o.clients[f.Get("client_id")]
	if c == nil || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(f.Get("client_secret"))) != 1 {
		return nil
	}
	return c
}

// put stores g under key in table. A full table first drops its expired
// entries, then, if still full, its oldest one (the first to expire), as
// the in-memory store of oidc-provider (FranceConnect's OP library) is an
// LRU: a flood of authorize requests pushes out the oldest pending logins,
// whose submit then says they expired, instead of silently dropping every
// new one behind a page that cannot work. A table never holds more than
// maxPending entries.
func (o *OP) put(table map[string]*grant, key string, g *grant, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(table) >= maxPending {
		var oldest string
		for k, v := range table {
			switch {
			case now.After(v.expires):
				delete(table, k)
			case oldest == "" || v.expires.Before(table[oldest].expires):
				oldest = k
			}
		}
		if len(table) >= maxPending {
			delete(table, oldest)
		}
	}
	table[key] = g
}

// audienceOf reads the aud of an ID token hint without verifying it: the
// stand-in only needs the client to find its registered URIs.
func audienceOf(jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Aud any `json:"aud"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return ""
	}
	switch a := c.Aud.(type) {
	case string:
		return a
	case []any:
		if len(a) == 1 {
			s, _ := a[0].(string)
			return s
		}
	}
	return ""
}

// atHash is OpenID Connect's at_hash for ES256/RS256: the left half of the
// SHA-256 of the token, base64url.
func atHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// randomToken returns 32 random bytes, base64url (43 characters).
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// parseForm parses a request's form, its body bounded by maxFormBytes.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	return r.ParseForm()
}

func oauthError(code, desc string) map[string]string {
	return map[string]string{"error": code, "error_description": desc}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// sep is the separator before a query appended to u.
func sep(u string) string {
	if strings.Contains(u, "?") {
		return "&"
	}
	return "?"
}
