// Package front is the `passerelle_front` handler: Passerelle in front of a
// legacy app whose vendor never implemented FranceConnect. It logs the
// citizen in with FranceConnect (package rp), fetches the API Particulier
// datasets the block names during the callback through the gateway's own
// decision pipeline (package pipeline, in process) or a remote API
// Particulier, keeps a server-side session (package session), and hands
// identity and data to the app on the requests proxied to it (package
// handoff): on every request of the session to protected paths (Cas 1,
// login), or once, on the return to the app's form, with the reconciliation
// of the identity with the app's account (Cas 2, during a procedure;
// package reconcile).
//
// Routes, under /.passerelle/ (see RoutePrefix):
//
//	GET  /.passerelle/connexion       the login page of protected paths (the FranceConnect button)
//	GET  /.passerelle/bouton          the button as an HTML fragment for the app (?return_to=&moment=transmit&external_id=)
//	POST /.passerelle/fc/start        starts a login (same-origin only; rate-limited per client address)
//	GET  /.passerelle/fc/callback     FranceConnect's return
//	GET  /.passerelle/fc/logout       a confirmation page; POST logs out (same-origin only)
//	GET  /.passerelle/fc/logout-callback  FranceConnect's return after logout (state checked)
//	GET  /.passerelle/jwks.json       the public keys of the assertion
//	GET  /.passerelle/donnees-indisponibles  what to do when a dataset is missing
//
// Everything else goes to the next handler (reverse_proxy to the app) with
// every X-Passerelle-* header of the client's request deleted first.
package front

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/handoff"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/rp"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/session"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/framing"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/ratelimit"
	"github.com/passerelle-gw/passerelle/caddyplugin/pipeline"
	"github.com/passerelle-gw/passerelle/config/catalogue"
)

func init() {
	caddy.RegisterModule(Front{})
}

// RoutePrefix starts every route of the front.
const RoutePrefix = "/.passerelle/"

// Routes, under RoutePrefix.
const (
	routeLogin          = "connexion"
	routeButton         = "bouton"
	routeStart          = "fc/start"
	routeCallback       = "fc/callback"
	routeLogout         = "fc/logout"
	routeLogoutCallback = "fc/logout-callback"
	routeJWKS           = "jwks.json"
	routeDatasetMissing = "donnees-indisponibles"
)

// Front is the `passerelle_front` handler (Caddyfile syntax: caddyfile.go).
type Front struct {
	// FranceConnect is the service's FranceConnect client.
	FranceConnect FranceConnectConfig `json:"franceconnect"`
	// BaseURL is the site's public origin, e.g. https://demarches.mairie.fr:
	// FranceConnect's callback and logout return are built on it, the
	// same-origin checks compare with it, and it is the assertion's iss.
	BaseURL string `json:"base_url"`
	// ServiceName is shown on the pages (default "Service en ligne").
	ServiceName string `json:"service_name,omitempty"`
	// AppID is the assertion's aud (default BaseURL).
	AppID string `json:"app_id,omitempty"`
	// Secret keys the sessions ({env.…} or {file.…}, at least 32 bytes).
	// Required in production; a sandbox gateway uses an ephemeral one.
	Secret string `json:"secret,omitempty"`
	// AssertionKey is the EC P-256 private key (PEM or JWK) that signs the
	// assertions, a {file.…} or {env.…} reference. Required in production.
	AssertionKey string `json:"assertion_key,omitempty"`
	// Handoff lists the channels the app receives: "assertion" (the signed
	// JWT, the default) and "headers" (the plain headers, for apps that
	// cannot verify a JWT: safe only when the app is reachable through the
	// front alone). An app needs one; each costs per proxied request (the
	// assertion ~3 KB with a quotient familial, the headers ~2 KB), which
	// Caddy's reverse_proxy copies and encodes for its debug log.
	Handoff []string `json:"handoff,omitempty"`
	// MaxHandoffBytes bounds what the hand-off adds to each request the app
	// receives, the assertion and the plain headers together, names
	// included (default 8 KiB: app servers refuse larger headers, and the
	// session keeps no more). At login, while the hand-off is over it, the
	// largest dataset (its data or its error) is replaced by an error 00413
	// (handoff.TooLarge), logged with its size.
	MaxHandoffBytes int `json:"max_handoff_bytes,omitempty"`
	// AssertionTTL is the lifetime of an assertion (default 5 min).
	AssertionTTL caddy.Duration `json:"assertion_ttl,omitempty"`
	// Protect lists the path patterns of the Cas 1 area (path matcher
	// syntax: /espace-famille/*): a request there needs a session.
	Protect []string `json:"protect,omitempty"`
	// Datasets are fetched during the callback.
	Datasets []Dataset `json:"datasets,omitempty"`
	// ProviderRaw is the handler that forwards in-process dataset calls to
	// the data providers (Caddyfile: a provider { reverse_proxy … } block).
	ProviderRaw json.RawMessage `json:"provider,omitempty" caddy:"namespace=http.handlers inline_key=handler"`
	// DatasetTimeout bounds each dataset call (default 10 s).
	DatasetTimeout caddy.Duration `json:"dataset_timeout,omitempty"`
	// AfterLogout is the app page a logout ends on (default "/").
	AfterLogout string `json:"after_logout,omitempty"`
	// AppLogout is an app path whose requests log the citizen out of the
	// front and FranceConnect (optional).
	AppLogout string `json:"app_logout,omitempty"`
	// SessionIdle and SessionMax are the session lifetimes (30 min, 12 h).
	SessionIdle caddy.Duration `json:"session_idle,omitempty"`
	SessionMax  caddy.Duration `json:"session_max,omitempty"`
	// StripHeaders are more request headers deleted before the app (the
	// X-Passerelle-* ones always are), e.g. Remote-User.
	StripHeaders []string `json:"strip_headers,omitempty"`
	// LoginRate is the quota of login starts per client address (default 10/m).
	LoginRate string `json:"login_rate,omitempty"`

	app         *caddyplugin.App
	pipe        *pipeline.Pipeline
	provider    pipeline.Provider
	rp          *rp.Client
	sessions    *session.Manager
	signer      *handoff.Signer
	limiter     *ratelimit.Limiter
	loginQuota  ratelimit.Quota
	protect     protectMatcher
	base        *url.URL
	secure      bool          // BaseURL is https: __Host- cookies, Secure
	assertion   bool          // hand off the assertion
	plain       bool          // hand off the plain headers
	formActions string        // FranceConnect's origin, for the pages' CSP
	cache       *assertions   // Cas 1 hand-offs, by ticket
	active      *sessionCount // the sessions gauge's last count
	memoryKey   string        // this front's reference in memoryStores, "" with Redis
	logger      *zap.Logger
	audit       *zap.Logger
	now         func() time.Time
}

// FranceConnectConfig is the service's FranceConnect client (a
// "fournisseur de service"): see package rp.
type FranceConnectConfig struct {
	Issuer       string   `json:"issuer"`
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	Scopes       []string `json:"scopes,omitempty"`
	ACR          string   `json:"acr,omitempty"`
	Prompt       string   `json:"prompt,omitempty"`
	SigningAlgs  []string `json:"signing_algs,omitempty"`
}

// Dataset is one API Particulier call made at login with the citizen's
// fresh FranceConnect access token.
type Dataset struct {
	// Name names it in the assertion and its header: lower-case letters,
	// digits and "_" (quotient_familial: X-Passerelle-Data-Quotient-Familial-B64).
	Name string `json:"name"`
	// Label is what the citizen is told will be transmitted ("votre
	// quotient familial"; default: the name).
	Label string `json:"label,omitempty"`
	// Route is the FranceConnect route, e.g. /v3/dss/quotient_familial/france_connect.
	Route string `json:"route"`
	// Recipient is the SIRET of the collectivité.
	Recipient string `json:"recipient"`
	// Remote is an API Particulier base URL (https://particulier.api.gouv.fr
	// or another Passerelle); empty, the call runs in process through this
	// gateway's pipeline.
	Remote string `json:"remote,omitempty"`

	endpoint *catalogue.Endpoint // Route's, for in-process calls (set at provisioning)
}

// CaddyModule returns the Caddy module information.
func (Front) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.passerelle_front", New: func() caddy.Module { return new(Front) }}
}

// route is the path of a front route.
func (f *Front) route(name string) string { return RoutePrefix + name }

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Always first: no header the front may set survives from the client,
	// neither as a header nor as a trailer (which some app servers merge
	// into the headers).
	handoff.Strip(r.Header, f.StripHeaders)
	handoff.Strip(r.Trailer, f.StripHeaders)
	framing.CloseIfChunked(w, r)
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &trailerGuard{ReadCloser: r.Body, r: r, extra: f.StripHeaders}
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, RoutePrefix); ok {
		return f.serveRoute(w, r, rest)
	}
	if ambiguousPath(r) {
		f.writePage(w, "bad_path", pageData{})
		return nil
	}
	if f.isAppLogout(r.URL.Path) {
		return f.appLogout(w, r, next)
	}
	return f.proxy(w, r, next)
}

// trailerGuard strips the front's headers from the request's trailers
// when the body ends, before reverse_proxy copies them: net/http fills
// the trailers only then.
type trailerGuard struct {
	io.ReadCloser
	r     *http.Request
	extra []string
}

func (g *trailerGuard) Read(p []byte) (int, error) {
	n, err := g.ReadCloser.Read(p)
	if err == io.EOF {
		handoff.Strip(g.r.Trailer, g.extra)
	}
	return n, err
}

func (f *Front) serveRoute(w http.ResponseWriter, r *http.Request, rest string) error {
	switch rest {
	case routeLogin:
		ret, ok := SafeReturnTo(r.URL.Query().Get("return_to"))
		if !ok {
			ret = "/"
		}
		f.writePage(w, "login", pageData{Button: f.button(ret, handoff.MomentLogin, "")})
	case routeButton:
		return f.serveButton(w, r)
	case routeStart:
		return f.start(w, r)
	case routeCallback:
		return f.callback(w, r)
	case routeLogout:
		return f.logout(w, r)
	case routeLogoutCallback:
		return f.logoutCallback(w, r)
	case routeJWKS:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(f.signer.JWKS())
	case routeDatasetMissing:
		f.writePage(w, "dataset_missing", pageData{})
	default:
		http.NotFound(w, r)
	}
	return nil
}

// serveButton answers the button fragment an app includes in its pages.
func (f *Front) serveButton(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	ret, ok := SafeReturnTo(q.Get("return_to"))
	if !ok {
		ret = "/"
	}
	moment := handoff.MomentLogin
	if q.Get("moment") == handoff.MomentTransmit {
		moment = handoff.MomentTransmit
	}
	externalID := q.Get("external_id")
	if !handoff.ValidExternalID(externalID) {
		externalID = ""
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(f.button(ret, moment, externalID)))
	return nil
}

// sameOrigin reports whether a state-changing request comes from this
// site: its Origin is the site's, or, without Origin, its Referer is on
// the site, or Sec-Fetch-Site says same-origin. A request with none of
// them is refused: starting a login or logging out cannot be triggered
// from another site.
//
// Origin "null" says nothing either way: a browser sends it for a form
// posted from a page of this very site under Referrer-Policy: no-referrer
// (Fetch, "append a request Origin header"), as for an opaque origin
// (sandboxed frame, another site's redirect). Only Sec-Fetch-Site, which
// no page can set, decides then; the Referer (absent under that policy)
// is not trusted for it.
func (f *Front) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o != "" && o != "null" {
		return o == f.base.Scheme+"://"+f.base.Host
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" {
		return s == "same-origin"
	}
	if o == "null" {
		return false
	}
	if ref, err := url.Parse(r.Header.Get("Referer")); err == nil && ref.Host != "" {
		return ref.Scheme == f.base.Scheme && ref.Host == f.base.Host
	}
	return false
}

// ErrNoSession is returned when a request carries no usable session.
var ErrNoSession = errors.New("front: no session")

// sessionOf returns the request's session and its ticket.
func (f *Front) sessionOf(r *http.Request) (*session.Session, string, error) {
	c, err := r.Cookie(f.cookieName())
	if err != nil || c.Value == "" {
		return nil, "", ErrNoSession
	}
	s, err := f.sessions.Get(r.Context(), c.Value)
	if err != nil {
		return nil, c.Value, err
	}
	return s, c.Value, nil
}

// cookieName is __Host-passerelle on HTTPS (bound to this host, path /,
// Secure), passerelle on a plain-HTTP loopback sandbox.
func (f *Front) cookieName() string {
	if f.secure {
		return hostPrefix + sessionCookie
	}
	return sessionCookie
}

// bindingCookie names the browser's binding of one pending login: one
// cookie per login (a second tab does not overwrite the first's). On HTTPS
// it is a __Host- cookie (this host only, Path=/): a __Secure- one may carry
// a Domain, so a sibling host (x.mairie.fr) could plant the binding of a
// login it started for mairie.fr and send its own callback to a victim's
// browser (login CSRF by cookie tossing).
func (f *Front) bindingCookie(state string) string {
	sum := sha256.Sum256([]byte(state))
	name := bindingCookiePrefix + hex.EncodeToString(sum[:8])
	if f.secure {
		return hostPrefix + name
	}
	return name
}

// setCookie sets an HttpOnly, SameSite=Lax cookie on path / (Secure on
// HTTPS), without Domain; an empty value deletes it.
func (f *Front) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: f.secure, SameSite: http.SameSiteLaxMode}
	switch {
	case value == "":
		c.MaxAge = -1
	case maxAge > 0:
		c.MaxAge = int(maxAge.Seconds())
	}
	http.SetCookie(w, c)
}

// callbackURL and logoutReturnURL are registered at FranceConnect.
func (f *Front) callbackURL() string {
	return strings.TrimSuffix(f.BaseURL, "/") + f.route(routeCallback)
}
func (f *Front) logoutReturnURL() string {
	return strings.TrimSuffix(f.BaseURL, "/") + f.route(routeLogoutCallback)
}

// context bound to the callback's datasets.
func (f *Front) datasetContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), time.Duration(f.DatasetTimeout))
}

// errf wraps a provisioning error with the directive's name.
func errf(format string, args ...any) error {
	return fmt.Errorf("passerelle_front: "+format, args...)
}
