// Package sandbox holds Passerelle's sandbox modules: a FranceConnect v2
// stand-in and a data-provider stand-in, both answering from case files in
// the format of API Particulier's official sandbox (siade_staging_data). They
// refuse to run when the passerelle app is in production mode (SECURITY.md
// H03); a binary built with the `nosandbox` tag leaves them out.
package sandbox

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcissuer"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcop"
	"github.com/passerelle-gw/passerelle/config/sandbox"
)

func init() {
	caddy.RegisterModule(FranceConnect{})
	httpcaddyfile.RegisterHandlerDirective("passerelle_sandbox_fc", parseFranceConnect)
	httpcaddyfile.RegisterDirectiveOrder("passerelle_sandbox_fc", httpcaddyfile.Before, "respond")
}

// FranceConnect plays FranceConnect v2 for a data provider: discovery, JWKS
// and checktoken, answering with a real JWE(JWS) encrypted to the gateway's
// published key, for the fake tokens of the case files
// (france_connect/<name>.yml: params.token → the decoded introspection).
// `iss`, `aud`, `iat` and `exp` are rewritten to the stand-in's issuer, the
// gateway's client id, now and now + 60 s. An unknown token answers
// `{"active": false}`, as FranceConnect does. A token `<name>~<anything>`
// is a fresh token of case <name>: load tests and cache tests use as many
// distinct valid tokens as they need (`cnaf_qfv2~42`).
//
// Routes, under the issuer's path: /.well-known/openid-configuration, /jwks,
// /checktoken (POST, exactly token, client_id and client_secret); with
// service providers, the login side too (fcrp.go): /authorize and its page
// of test identities, /token, /userinfo, /session/end, /token/revocation,
// whose access tokens /checktoken knows.
type FranceConnect struct {
	// Issuer is the stand-in's issuer URL, e.g. http://127.0.0.1:8081/api/v2.
	Issuer string `json:"issuer,omitempty"`
	// ClientID and ClientSecret are the data-provider credentials it
	// accepts. They default to the passerelle app's own client id and
	// secret when the app runs in the same process.
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`
	// GatewayJWKS is the gateway's encryption JWKS URL, fetched like
	// FranceConnect fetches a data provider's jwks_uri. Empty: the keys of
	// the passerelle app in the same process.
	GatewayJWKS string `json:"gateway_jwks,omitempty"`
	// Cases is a payloads directory in the siade_staging_data layout
	// (default: the embedded cases).
	Cases string `json:"cases,omitempty"`
	// SigningAlg is ES256 (default) or RS256.
	SigningAlg string `json:"signing_alg,omitempty"`
	// ServiceProviders are the services (relying parties) that may log
	// citizens in: with at least one, the stand-in also plays
	// FranceConnect's login side (fcrp.go).
	ServiceProviders []ServiceProvider `json:"service_providers,omitempty"`
	// UserInfoLatency delays userinfo answers (benchmarks).
	UserInfoLatency caddy.Duration `json:"userinfo_latency,omitempty"`

	app      *caddyplugin.App
	cases    *sandbox.Set
	issuer   *fcissuer.Issuer
	basePath string
	logger   *zap.Logger
	client   *http.Client
	now      func() time.Time

	gwKey *keyCache
	op    *fcop.OP // the login side, when ServiceProviders are configured
}

// keyCache holds the gateway's encryption key, fetched from GatewayJWKS and
// kept for gatewayKeyTTL, as FranceConnect caches a data provider's
// jwks_uri: one fetch per checktoken made every new token cost the gateway
// a JWKS request, and failed when it came during a reload. Once a key is
// held, a stale one is refreshed in the background while it keeps serving:
// no checktoken waits for the gateway. A new configuration (a new module
// instance) fetches afresh.
type keyCache struct {
	mu         sync.Mutex
	key        jose.JSONWebKey
	at         time.Time
	ok         bool
	refreshing bool
}

// gatewayKeyTTL is how long the stand-in keeps the gateway's key.
const gatewayKeyTTL = time.Minute

// CaddyModule returns the Caddy module information.
func (FranceConnect) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.passerelle_sandbox_fc", New: func() caddy.Module { return new(FranceConnect) }}
}

// issuers keeps one signing key per algorithm for the life of the process,
// so that a config reload does not rotate it under the gateway's JWKS cache.
var (
	issuersMu sync.Mutex
	issuers   = map[string]*fcissuer.Issuer{}
)

func signingIssuer(alg string) (*fcissuer.Issuer, error) {
	issuersMu.Lock()
	defer issuersMu.Unlock()
	if i, ok := issuers[alg]; ok {
		return i, nil
	}
	i, err := fcissuer.New(alg)
	if err != nil {
		return nil, err
	}
	issuers[alg] = i
	return i, nil
}

// sandboxApp returns the passerelle app when it is configured, and refuses
// to run next to a production one.
func sandboxApp(ctx caddy.Context, module string) (*caddyplugin.App, error) {
	v, err := ctx.AppIfConfigured("passerelle")
	switch {
	case errors.Is(err, caddy.ErrNotConfigured):
		return nil, nil // a standalone sandbox has no passerelle app
	case err != nil:
		return nil, fmt.Errorf("%s: %w", module, err) // configured, but failed to load
	}
	app := v.(*caddyplugin.App)
	if !app.Sandbox() {
		return nil, fmt.Errorf("%s: sandbox modules refuse to run in production mode", module)
	}
	return app, nil
}

func loadCases(dir string) (*sandbox.Set, error) {
	if dir == "" {
		return sandbox.Embedded(), nil
	}
	return sandbox.Load(os.DirFS(dir))
}

// Provision loads the cases and the signing key.
func (f *FranceConnect) Provision(ctx caddy.Context) error {
	f.logger = ctx.Logger()
	if f.now == nil {
		f.now = time.Now
	}
	var err error
	if f.app, err = sandboxApp(ctx, "passerelle_sandbox_fc"); err != nil {
		return err
	}
	if f.Issuer == "" {
		return errors.New("passerelle_sandbox_fc: issuer is required")
	}
	f.basePath = issuerPath(f.Issuer)
	if f.ClientID == "" && f.app != nil {
		f.ClientID = f.app.FDClientID()
	}
	if f.ClientID == "" {
		return errors.New("passerelle_sandbox_fc: client_id is required without a passerelle app")
	}
	if f.ClientSecret != "" {
		f.ClientSecret = caddy.NewReplacer().ReplaceKnown(f.ClientSecret, "")
	} else if f.app != nil {
		f.ClientSecret = f.app.FDClientSecret()
	}
	if f.ClientSecret == "" {
		// Every checktoken would be refused as invalid_client.
		return errors.New("passerelle_sandbox_fc: client_secret is required without a passerelle app, and may not resolve to an empty value")
	}
	if f.GatewayJWKS == "" && f.app == nil {
		return errors.New("passerelle_sandbox_fc: gateway_jwks is required without a passerelle app")
	}
	if f.SigningAlg == "" {
		f.SigningAlg = "ES256"
	}
	if f.issuer, err = signingIssuer(f.SigningAlg); err != nil {
		return fmt.Errorf("passerelle_sandbox_fc: signing key: %w", err)
	}
	if f.cases, err = loadCases(f.Cases); err != nil {
		return fmt.Errorf("passerelle_sandbox_fc: cases: %w", err)
	}
	f.gwKey = new(keyCache)
	if err := f.provisionLogin(); err != nil {
		return err
	}
	f.client = &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return nil
}

func issuerPath(issuer string) string {
	rest := issuer
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return strings.TrimSuffix(rest[i:], "/")
	}
	return ""
}

// ServeHTTP answers the three FranceConnect routes and passes anything else on.
func (f *FranceConnect) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if f.op != nil && f.op.Handles(r) {
		f.op.ServeHTTP(w, r)
		return nil
	}
	switch strings.TrimPrefix(r.URL.Path, f.basePath) {
	case "/.well-known/openid-configuration":
		return writeJSON(w, http.StatusOK, map[string]any{
			"issuer":                      f.Issuer,
			"jwks_uri":                    f.Issuer + "/jwks",
			"checktoken_endpoint":         f.Issuer + "/checktoken",
			"id_token_signing_alg_values": []string{f.SigningAlg},
		})
	case "/jwks":
		w.Header().Set("Content-Type", "application/json")
		_, err := w.Write(f.issuer.JWKS())
		return err
	case "/checktoken":
		return f.checktoken(w, r)
	}
	return next.ServeHTTP(w, r)
}

func (f *FranceConnect) checktoken(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return writeJSON(w, http.StatusMethodNotAllowed, fcError("invalid_request", "Required parameter missing or invalid."))
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil || len(r.PostForm) != 3 || len(r.URL.RawQuery) > 0 {
		return writeJSON(w, http.StatusBadRequest, fcError("invalid_request", "Required parameter missing or invalid."))
	}
	token, id, secret := r.PostForm.Get("token"), r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if token == "" || id == "" || secret == "" {
		return writeJSON(w, http.StatusBadRequest, fcError("invalid_request", "Required parameter missing or invalid."))
	}
	// Both compared in constant time, and both always compared, as the
	// other stand-ins do: no timing tells a wrong id from a wrong secret.
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(f.ClientID)) == 1
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(f.ClientSecret)) == 1
	if !idOK || !secretOK {
		return writeJSON(w, http.StatusUnauthorized, fcError("invalid_client", "Client authentication failed."))
	}
	claims, err := f.introspection(token)
	if err != nil {
		f.logger.Error("sandbox token case unusable", zap.Error(err))
		return writeJSON(w, http.StatusInternalServerError, fcError("server_error", "The authorization server encountered an unexpected condition."))
	}
	key, err := f.gatewayKey(r)
	if err != nil {
		f.logger.Error("gateway encryption key unavailable", zap.Error(err))
		return writeJSON(w, http.StatusInternalServerError, fcError("server_error", "The authorization server encountered an unexpected condition."))
	}
	answer, err := f.issuer.Answer(claims, key)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/token-introspection+jwt")
	_, err = io.WriteString(w, answer)
	return err
}

// introspection builds the checktoken payload of a fake token.
func (f *FranceConnect) introspection(token string) (map[string]any, error) {
	now := f.now().Unix()
	claims := map[string]any{"token_introspection": map[string]any{"active": false}}
	if ti, ok := f.loginToken(token); ok {
		claims["token_introspection"] = ti
		claims["iss"], claims["aud"], claims["iat"] = f.Issuer, f.ClientID, now
		return claims, nil
	}
	c, ok := f.cases.Token(token)
	if name, _, fresh := strings.Cut(token, "~"); !ok && fresh {
		c, ok = f.cases.Token(name)
	}
	if ok {
		claims = map[string]any{}
		if err := json.Unmarshal(c.Payload, &claims); err != nil {
			return nil, fmt.Errorf("case %s: payload: %w", c.File, err)
		}
		ti, ok := claims["token_introspection"].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("case %s: token_introspection is not an object", c.File)
		}
		if ti["active"] == true {
			ti["iat"], ti["exp"] = now, now+60
		}
	}
	claims["iss"], claims["aud"], claims["iat"] = f.Issuer, f.ClientID, now
	return claims, nil
}

// gatewayKey selects the gateway's encryption key, as FranceConnect does:
// the first key with use=enc, from the passerelle app in the same process,
// or from GatewayJWKS, kept for gatewayKeyTTL (the last one is used while a
// background refresh fails).
func (f *FranceConnect) gatewayKey(r *http.Request) (jose.JSONWebKey, error) {
	if f.GatewayJWKS == "" {
		return fcissuer.SelectEncryptionKey(f.app.PublicJWKS())
	}
	c := f.gwKey
	c.mu.Lock()
	key, held, stale := c.key, c.ok, f.now().Sub(c.at) >= gatewayKeyTTL
	refresh := held && stale && !c.refreshing
	c.refreshing = c.refreshing || refresh
	c.mu.Unlock()
	if refresh {
		go f.refreshGatewayKey(context.WithoutCancel(r.Context()))
	}
	if held {
		return key, nil
	}
	k, err := f.fetchGatewayKey(r.Context())
	if err == nil {
		c.mu.Lock()
		c.key, c.at, c.ok = k, f.now(), true
		c.mu.Unlock()
	}
	return k, err
}

// refreshGatewayKey replaces the held key by a fresh one, or keeps it when
// the fetch fails.
func (f *FranceConnect) refreshGatewayKey(ctx context.Context) {
	k, err := f.fetchGatewayKey(ctx)
	c := f.gwKey
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshing = false
	if err == nil {
		c.key, c.at = k, f.now()
	}
}

// fetchGatewayKey fetches GatewayJWKS and selects its encryption key.
func (f *FranceConnect) fetchGatewayKey(ctx context.Context) (jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.GatewayJWKS, nil)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return jose.JSONWebKey{}, fmt.Errorf("gateway jwks: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	return fcissuer.SelectEncryptionKey(body)
}

func fcError(code, desc string) map[string]string {
	return map[string]string{"error": code, "error_description": desc}
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// parseFranceConnect parses:
//
//	passerelle_sandbox_fc {
//	    issuer        <url>          # required: the stand-in's own issuer URL
//	    client_id     <FD client id> # default: the passerelle app's
//	    client_secret <secret>       # default: the passerelle app's
//	    gateway_jwks  <url>          # default: the passerelle app's keys, in process
//	    cases         <dir>          # default: the embedded cases
//	    signing_alg   ES256|RS256
//	    userinfo_latency <duration>  # delays userinfo (benchmarks)
//	    # The login side (fcrp.go), once per service allowed to log citizens in:
//	    service_provider <client id> <client secret> {
//	        redirect_uri             <url>...   # compared exactly
//	        post_logout_redirect_uri <url>...
//	    }
//	}
func parseFranceConnect(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	f := new(FranceConnect)
	err := f.UnmarshalCaddyfile(h.Dispenser)
	return f, err
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler (syntax on parseFranceConnect).
func (f *FranceConnect) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	fields := map[string]*string{
		"issuer": &f.Issuer, "client_id": &f.ClientID, "client_secret": &f.ClientSecret,
		"gateway_jwks": &f.GatewayJWKS, "cases": &f.Cases, "signing_alg": &f.SigningAlg,
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if d.Val() == "userinfo_latency" {
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return d.Errf("userinfo_latency: %v", err)
			}
			f.UserInfoLatency = caddy.Duration(dur)
			continue
		}
		if d.Val() == "service_provider" {
			sp, err := parseServiceProvider(d)
			if err != nil {
				return err
			}
			f.ServiceProviders = append(f.ServiceProviders, sp)
			continue
		}
		dst, ok := fields[d.Val()]
		if !ok {
			return d.Errf("unrecognized passerelle_sandbox_fc option %q", d.Val())
		}
		if !d.AllArgs(dst) {
			return d.ArgErr()
		}
	}
	return nil
}

// Interface guards.
var (
	_ caddyhttp.MiddlewareHandler = (*FranceConnect)(nil)
	_ caddy.Provisioner           = (*FranceConnect)(nil)
	_ caddyfile.Unmarshaler       = (*FranceConnect)(nil)
)
