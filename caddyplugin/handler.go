package caddyplugin

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/apierror"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/bearer"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/pings"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/ratelimit"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/respfilter"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/upstreamauth"
	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/habilitation"
	"github.com/passerelle-gw/passerelle/config/openapi"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is the `passerelle` HTTP handler. Placed before reverse_proxy in a
// route, it serves the catalogue endpoints of API Particulier's
// FranceConnect modality:
//
//  1. exactly one bearer token, in Authorization only (401 50004 / 50001);
//  2. the token's facts from the cache or FranceConnect checktoken
//     (401 50002 inactive or unknown, 503 when FranceConnect fails);
//  3. identity scopes and minimum acr (401 50003);
//  4. the habilitation paired with token_introspection.aud, valid today
//     (403 00100), the recipient SIRET (422 00203 / 00210, 403 when it is
//     not the habilitation's) and the other query parameters (422 00366);
//  5. effective scopes = token ∩ habilitation ∩ endpoint (403 00100 if empty);
//  6. the request is rebuilt: provider path and query from the catalogue and
//     the identity pivot, every caller header dropped, the platform
//     credential set;
//  7. the next handler (reverse_proxy) forwards; its answer is buffered, and
//     only the fields released by the effective scopes are returned
//     (404 → provider not-found code, timeout → 504, anything else → 502).
//
// On an identite or identifiant route, steps 2 and 3 are replaced by the
// habilitation's API token (401 00101 otherwise; a FranceConnect token is
// never sent anywhere), effective scopes are habilitation ∩ endpoint, and the
// provider query is the caller's validated, normalised parameters (the
// route's civility checks included). A legacy v2 path served in both
// modalities is the identite one when the request carries X-Api-Key, whose
// value is then the API token. v2 routes answer bare bodies and errors in
// the v2 shape, except FranceConnect token errors.
//
// Every answer carries X-Request-Id, Cache-Control: no-store and
// X-Content-Type-Options: nosniff. The handler never calls next for a
// refused request. It also answers the utility routes GET /api/introspect
// (introspect.go), /api/pings[/<provider>] (pings.go) and
// /api/openapi.json (openapi.go).
type Handler struct {
	// Endpoints restricts this handler to the listed catalogue endpoint
	// ids. Empty means every endpoint of the catalogue.
	Endpoints []string `json:"endpoints,omitempty"`
	// MaxResponseBytes bounds a provider answer (default 1 MiB).
	MaxResponseBytes int `json:"max_response_bytes,omitempty"`

	app     *App
	logger  *zap.Logger
	audit   *zap.Logger
	now     func() time.Time
	allowed map[*catalogue.Endpoint]bool
	openAPI []byte    // OpenAPI document of the enabled routes
	filters *sync.Map // filterKey → *respfilter.Paths
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.passerelle", New: func() caddy.Module { return new(Handler) }}
}

// Provision binds the handler to the passerelle app.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	appIface, err := ctx.App("passerelle")
	if err != nil {
		return fmt.Errorf("passerelle handler: the passerelle global option is required: %w", err)
	}
	return h.provisionWith(appIface.(*App))
}

// provisionWith binds the handler to a provisioned app.
func (h *Handler) provisionWith(app *App) error {
	h.app = app
	if h.now == nil {
		h.now = time.Now
	}
	h.filters = new(sync.Map)
	if h.MaxResponseBytes <= 0 {
		h.MaxResponseBytes = 1 << 20
	}
	if h.audit == nil {
		h.audit = app.audit
	}
	if len(h.Endpoints) > 0 {
		h.allowed = make(map[*catalogue.Endpoint]bool, len(h.Endpoints))
		for _, id := range h.Endpoints {
			ep, ok := h.app.Catalog().ByID(id)
			if !ok {
				return fmt.Errorf("passerelle handler: endpoints: unknown endpoint id %q", id)
			}
			h.allowed[ep] = true
		}
	}
	cat := h.app.Catalog()
	gen := func(version string) ([]byte, error) {
		return openapi.Generate(cat, openapi.Options{Version: version, Utility: true,
			Include: func(ep *catalogue.Endpoint) bool { return h.allowed == nil || h.allowed[ep] }})
	}
	version, err := documentVersion(gen)
	if err != nil {
		return fmt.Errorf("passerelle handler: generating the OpenAPI document: %w", err)
	}
	doc, err := gen(version)
	if err != nil {
		return fmt.Errorf("passerelle handler: generating the OpenAPI document: %w", err)
	}
	h.openAPI = doc
	for i := range cat.Endpoints {
		ep := &cat.Endpoints[i]
		if _, ok := h.app.core.upstreams[ep.ProviderName]; !ok && (h.allowed == nil || h.allowed[ep]) {
			h.logger.Warn("no upstream credential configured for provider", zap.String("provider", ep.ProviderName))
		}
	}
	return nil
}

// newRequestID returns a random UUID (version 4) for X-Request-Id.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}

// request carries the per-request decisions, for errors and later steps.
type request struct {
	ep     *catalogue.Endpoint
	facts  *fcverify.Facts
	hab    *habilitation.Habilitation
	mask   uint64
	source string
	query  []queryParam
	params [maxQueryParams]queryParam
	tracer trace.Tracer // nil when the request is not traced
	status int          // provider HTTP status; 0 when not called
	rate   ratelimit.Decision
	// person is the audit pseudonym of the citizen an identite or
	// identifiant call looks up, and personBasis what it was computed from
	// (civil_status, identifier); "" on FranceConnect routes.
	person, personBasis string
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	rec := auditRecord{start: h.now(), method: r.Method, requestID: newRequestID()}
	hdr := w.Header()
	hdr.Del("Server")
	hdr["X-Request-Id"] = []string{rec.requestID}
	rq := request{tracer: tracerFor(r.Context())}
	if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() {
		rec.traceID = sc.TraceID().String()
	}

	utility := r.URL.RawPath == "" && (r.URL.Path == introspectPath || isPingsRoute(r.URL.Path) || r.URL.Path == openAPIPath)
	var aerr *apierror.Error
	switch {
	case !utility:
		aerr = h.authorize(r, &rq)
	case r.URL.Path == introspectPath:
		aerr = h.introspect(w, r, &rq)
	case r.URL.Path == openAPIPath:
		aerr = h.serveOpenAPI(w, r, &rq)
	default:
		aerr = h.servePings(w, r, &rq)
	}
	if rq.rate.Limit > 0 {
		setRateLimitHeaders(hdr, rq.rate, rec.start)
	}
	if aerr == nil && !utility {
		aerr = h.forward(w, r, next, &rq)
	}
	switch {
	case aerr != nil && r.URL.Path == introspectPath:
		apierror.WriteV2(w, aerr) // introspect answers in the v2 shape
	case aerr != nil:
		h.refuse(w, &rq, aerr)
	}
	h.record(&rec, &rq, aerr)
	return nil
}

// record counts the request and writes its audit record. Requests that
// matched no endpoint are counted but not audited: no personal data was at
// stake.
func (h *Handler) record(rec *auditRecord, rq *request, aerr *apierror.Error) {
	rec.decision, rec.providerStatus = "allow", rq.status
	if aerr != nil {
		rec.code, rec.reason, rec.decision = aerr.Code, aerr.Reason, "deny"
		if aerr.Status >= 500 {
			rec.decision = "error"
		}
	}
	if rq.ep == nil {
		requestCounters.get(labels3{"unknown", rec.decision, rec.code}).Inc()
		return
	}
	rec.endpoint, rec.provider = rq.ep.ID, rq.ep.ProviderName
	requestCounters.get(labels3{rec.endpoint, rec.decision, rec.code}).Inc()
	h.writeAudit(rec, rq)
}

// authorize runs steps 1 to 5.
func (h *Handler) authorize(r *http.Request, rq *request) *apierror.Error {
	ep, aerr := h.route(r)
	if aerr != nil {
		return aerr
	}
	rq.ep = ep
	if aerr := h.limitClient(r, rq); aerr != nil {
		return aerr
	}

	extract := bearer.Extract
	if ep.APIKeyHeader() {
		extract = bearer.ExtractAPIKey // legacy v2 API key
	}
	token, err := extract(r)
	// The credential leaves the request at once: no handler or log line
	// after this one sees it. (Caddy's access log copied the headers
	// before any handler ran; its X-Api-Key is deleted by the log filter,
	// see Caddyfile.example.)
	delete(r.Header, bearer.APIKeyHeader)
	switch {
	case errors.Is(err, bearer.ErrMissing) && ep.Modality.CallerGivesIdentity():
		return apierror.APITokenMissing()
	case err != nil && ep.Modality.CallerGivesIdentity():
		return apierror.APITokenMalformed()
	case errors.Is(err, bearer.ErrMissing):
		return apierror.TokenMissing()
	case err != nil:
		return apierror.TokenMalformed()
	}

	if ep.Modality.CallerGivesIdentity() {
		// The caller's habilitation API token, found by its digest; a
		// FranceConnect token is unknown here and never sent anywhere.
		hab, ok := h.app.Registry().ByAPIToken(token)
		if !ok {
			return apierror.APITokenInvalid()
		}
		rq.hab = hab
	} else {
		facts, aerr := h.checkToken(r.Context(), token, rq)
		if aerr != nil {
			return aerr
		}
		rq.facts = facts
		if !coversIdentity(facts) {
			return apierror.IdentityScopesMissing()
		}
		if have, ok := catalogue.ACRLevel(facts.ACR); !ok || have < mustACR(ep.MinACR) {
			return apierror.ACRTooLow(ep.MinACR)
		}
	}

	_, sp := startSpan(r.Context(), rq.tracer, spanHabilitation, trace.SpanKindInternal, attrEndpoint.String(ep.ID))
	aerr = h.habilitation(r, rq)
	if rq.hab != nil {
		sp.SetAttributes(attrHabilitation.String(rq.hab.ID))
	}
	if aerr != nil {
		sp.SetAttributes(attrDecision.String("deny"))
		endSpan(sp, aerr.Reason)
		return aerr
	}
	sp.SetAttributes(attrDecision.String("allow"))
	endSpan(sp, "")
	return nil
}

// errAPITokenOnFCRoute: the bearer is a habilitation's API token, presented
// on a FranceConnect route.
var errAPITokenOnFCRoute = errors.New("passerelle: API token on a FranceConnect route")

// limitClient applies the per-client quota before FranceConnect is asked
// (SECURITY.md F04). The address is Caddy's client IP, which honours
// trusted_proxies only (D04), counted per network (IPv6 per
// client_ipv6_prefix, /64 by default: one subscriber holds a whole /64),
// hashed before it becomes a Redis key.
func (h *Handler) limitClient(r *http.Request, rq *request) *apierror.Error {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	if ip == "" {
		ip, _, _ = net.SplitHostPort(r.RemoteAddr)
	}
	key := h.app.core.limiter.ClientKey(h.app.core.ipKey, ip, h.app.RateLimits.ClientIPv6Prefix)
	return h.limit(r.Context(), key, h.app.ipQuota, "client_ip", rq)
}

// limit takes one request from a quota; the decision feeds the RateLimit
// headers.
func (h *Handler) limit(ctx context.Context, key string, q ratelimit.Quota, name string, rq *request) *apierror.Error {
	d, err := h.app.core.limiter.Allow(ctx, key, q)
	if err != nil {
		return apierror.Internal()
	}
	rq.rate = d
	if !d.Allowed {
		metricRateLimited.WithLabelValues(name).Inc()
		return apierror.RateLimited(int(math.Ceil(d.RetryAfter.Seconds())))
	}
	return nil
}

// setRateLimitHeaders writes API Particulier's RateLimit headers: the
// quota, what is left of it, and when it is whole again (Unix time).
func setRateLimitHeaders(h http.Header, d ratelimit.Decision, now time.Time) {
	h["Ratelimit-Limit"] = []string{strconv.Itoa(d.Limit)}
	h["Ratelimit-Remaining"] = []string{strconv.Itoa(d.Remaining)}
	h["Ratelimit-Reset"] = []string{strconv.FormatInt(now.Add(d.Reset).Unix()+1, 10)}
}

// checkToken returns the facts of a token from the cache or FranceConnect.
func (h *Handler) checkToken(ctx context.Context, token string, rq *request) (*fcverify.Facts, *apierror.Error) {
	ctx, sp := startSpan(ctx, rq.tracer, spanToken, trace.SpanKindInternal)
	core := h.app.core
	pseudo, registry := h.app.pseudo, h.app.Registry()
	facts, src, err := core.cache.Get(ctx, token, func(ctx context.Context) (*fcverify.Facts, error) {
		if _, ok := registry.ByAPIToken(token); ok {
			// A habilitation's API token is never sent to FranceConnect
			// (SECURITY.md A19). Checked on a miss only: an API token is
			// never in the cache, so the cached path stays free of crypto.
			return nil, errAPITokenOnFCRoute
		}
		f, err := core.verifier.CheckToken(ctx, token)
		if err == nil && f.Active {
			// Pseudonymise and normalise once per token, not once per request.
			f.CitizenKey, f.CitizenKeyVersion = pseudo.citizenKey(f.Sub), pseudo.version
			normalizeIdentity(&f.Identity)
		}
		return f, err
	})
	rq.source = src.String()
	result, aerr := "active", (*apierror.Error)(nil)
	switch {
	case err != nil:
		result, aerr = "error", h.tokenError(err)
		if errors.Is(err, fcverify.ErrTokenExpired) || errors.Is(err, fcverify.ErrTokenMalformed) || errors.Is(err, errAPITokenOnFCRoute) {
			result = "inactive"
		}
	case !facts.Active:
		result, aerr = "inactive", apierror.TokenNotFound()
	}
	tokenCheckCounters.get(labels2{rq.source, result}).Inc()
	sp.SetAttributes(attrCacheLevel.String(rq.source), attrTokenResult.String(result))
	if aerr != nil {
		endSpan(sp, aerr.Reason)
		return nil, aerr
	}
	endSpan(sp, "")
	return facts, nil
}

// habilitation runs step 4 and 5: habilitation, query, effective scopes.
func (h *Handler) habilitation(r *http.Request, rq *request) *apierror.Error {
	ep, facts, hab := rq.ep, rq.facts, rq.hab
	if hab == nil { // FranceConnect: the habilitation paired with the calling service
		var ok bool
		if hab, ok = h.app.Registry().ByClientID(facts.ClientID); !ok {
			return apierror.HabilitationUnknown()
		}
		rq.hab = hab
	}
	if !hab.ActiveAt(h.now()) {
		return apierror.HabilitationInactive()
	}
	if !hab.Allows(string(ep.Modality)) {
		// DataPass grants each calling modality apart: a token that only
		// introspects, or a FranceConnect pairing, opens no other route.
		return apierror.ModalityDenied()
	}
	quota := h.app.habQuota
	if !hab.RateLimit.IsZero() {
		quota = ratelimit.Quota{Requests: hab.RateLimit.Requests, Per: hab.RateLimit.Per}
	}
	if aerr := h.limit(r.Context(), hab.LimiterKey(), quota, "habilitation", rq); aerr != nil {
		return aerr
	}

	params, ok := parseQuery(r.URL.RawQuery, rq.params[:0])
	if !ok {
		return apierror.ParamInvalid(ep.InvalidCode, "")
	}
	rq.query = params
	if aerr := checkQuery(params, ep, hab, h.now()); aerr != nil {
		return aerr
	}
	if ep.Modality.CallerGivesIdentity() {
		rq.personBasis, rq.person = h.app.pseudo.personKey(ep, params)
	}

	for i := range ep.Scopes {
		// On an identite route there is no token scope: habilitation ∩ endpoint.
		if (facts == nil || hasAnyName(facts.Scopes, &ep.Scopes[i])) && habHasAny(hab, &ep.Scopes[i]) {
			rq.mask |= 1 << i
		}
	}
	if rq.mask == 0 {
		return apierror.Forbidden()
	}
	return nil
}

// maxRequestURI bounds the request target (SECURITY.md F01): the longest
// identite query, three given names and a commune name of 100 letters
// each, percent-encoded, stays well under it.
const maxRequestURI = 2048

// route finds the endpoint of the canonical request path (SECURITY.md C04,
// D06, D08).
func (h *Handler) route(r *http.Request) (*catalogue.Endpoint, *apierror.Error) {
	if len(r.RequestURI) > maxRequestURI {
		return nil, apierror.URITooLong()
	}
	if r.URL.RawPath != "" || !strings.HasPrefix(r.RequestURI, "/") || r.URL.Fragment != "" {
		return nil, apierror.BadRequest()
	}
	cat := h.app.Catalog()
	ep, ok := cat.Lookup(r.URL.Path)
	if len(r.Header[bearer.APIKeyHeader]) > 0 {
		// A legacy v2 path served in both modalities: an API key in
		// X-Api-Key selects the identite one.
		if twin, isTwin := cat.CallerTwin(r.URL.Path); isTwin {
			ep, ok = twin, true
		}
	}
	if !ok || (h.allowed != nil && !h.allowed[ep]) {
		return nil, apierror.UnknownRoute()
	}
	if r.Method != ep.Method {
		return ep, apierror.MethodNotAllowed(ep.Method)
	}
	if r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
		return ep, apierror.BadRequest()
	}
	return ep, nil
}

func (h *Handler) tokenError(err error) *apierror.Error {
	switch {
	case errors.Is(err, fcverify.ErrTokenExpired):
		return apierror.TokenExpired()
	case errors.Is(err, fcverify.ErrTokenMalformed), errors.Is(err, errAPITokenOnFCRoute):
		return apierror.TokenMalformed()
	}
	reason := fcverify.Reason(err)
	if reason == fcverify.ReasonClientAuth {
		// Our own credentials are refused: an operator must act (SECURITY.md
		// I02). The caller sees FranceConnect as unavailable.
		h.logger.Error("FranceConnect refused the gateway's client authentication", zap.String("alert", reason))
		reason = fcverify.ReasonUnavailable
	} else if c := h.logger.Check(zapcore.WarnLevel, "FranceConnect check failed"); c != nil {
		c.Write(zap.String("reason", reason))
	}
	return apierror.Unavailable(reason)
}

func mustACR(v string) int {
	l, _ := catalogue.ACRLevel(v)
	return l
}

// identityClaims are the pivot claims the token's scopes must release
// (DOMAIN.md §2 step 7), with FranceConnect's scope aliases.
var identityScopes = map[string][]string{
	"identite_pivot": {"family_name", "given_name", "birthdate", "gender", "birthplace", "birthcountry"},
	"profile":        {"family_name", "given_name", "birthdate", "gender"},
	"birth":          {"birthplace", "birthcountry"},
}

// coversIdentity reports whether the token's scopes release the whole
// identity pivot.
func coversIdentity(f *fcverify.Facts) bool {
	const all = 1<<6 - 1
	bits := 0
	for _, s := range f.Scopes {
		claims, ok := identityScopes[s]
		if !ok {
			claims = []string{s}
		}
		for _, c := range claims {
			switch c {
			case "family_name":
				bits |= 1
			case "given_name":
				bits |= 2
			case "birthdate":
				bits |= 4
			case "gender":
				bits |= 8
			case "birthplace":
				bits |= 16
			case "birthcountry":
				bits |= 32
			}
		}
		if bits == all {
			return true
		}
	}
	return false
}

func hasAnyName(scopes []string, s *catalogue.Scope) bool {
	for _, have := range scopes {
		if have == s.Name {
			return true
		}
		for _, a := range s.Aliases {
			if have == a {
				return true
			}
		}
	}
	return false
}

func habHasAny(hab *habilitation.Habilitation, s *catalogue.Scope) bool {
	if hab.HasScope(s.Name) {
		return true
	}
	for _, a := range s.Aliases {
		if hab.HasScope(a) {
			return true
		}
	}
	return false
}

type filterKey struct {
	ep   *catalogue.Endpoint
	mask uint64
}

// paths returns the compiled allow-list of the scopes in mask.
func (h *Handler) paths(ep *catalogue.Endpoint, mask uint64) (*respfilter.Paths, error) {
	key := filterKey{ep, mask}
	if p, ok := h.filters.Load(key); ok {
		return p.(*respfilter.Paths), nil
	}
	var fields []string
	for i := range ep.Scopes {
		if mask&(1<<i) != 0 {
			fields = append(fields, ep.Scopes[i].Fields...)
		}
	}
	compile := respfilter.Compile
	if ep.API == catalogue.APIv2 {
		compile = respfilter.CompileBare // v2 answers have no envelope
	}
	p, err := compile(fields)
	if err != nil {
		return nil, err
	}
	h.filters.Store(key, p)
	return p, nil
}

// forward runs steps 6 and 7. It writes the answer itself on success and
// returns the error to answer otherwise.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, rq *request) *apierror.Error {
	ep := rq.ep
	var query string
	if ep.Modality.CallerGivesIdentity() {
		query = callerQuery(ep, rq.query)
	} else {
		var err error
		if query, err = upstreamQuery(ep, rq.facts, rq.query); err != nil {
			return apierror.IdentityUnusable()
		}
	}
	paths, err := h.paths(ep, rq.mask)
	if err != nil {
		return apierror.Internal()
	}
	cred := h.app.core.upstreams[ep.ProviderName]

	// A new request: nothing of the caller's headers, Host, path or query
	// reaches the provider (SECURITY.md D01, D02, E01), and the caller's
	// request stays as Caddy logs it (its access log is routed by r.Host).
	up := providerRequest(r, ep.UpstreamPath, query, w.Header().Get("X-Request-Id"))
	if cred != nil {
		_, sp := startSpan(r.Context(), rq.tracer, spanCredential, trace.SpanKindInternal, attrProvider.String(ep.ProviderName))
		err := cred.Apply(r.Context(), up.Header)
		if err != nil {
			endSpan(sp, apierror.ReasonProviderError)
			return apierror.Unavailable(apierror.ReasonProviderError)
		}
		endSpan(sp, "")
	}

	rec := getCapture(h.MaxResponseBytes)
	defer putCapture(rec)
	err = h.callProvider(up, next, rec, rq)
	if err == nil && rec.status == http.StatusUnauthorized && cred != nil {
		// One refresh and one retry when the provider refuses our credential
		// (SECURITY.md B11). Invalidate reads the credential as sent (the
		// proxy forwarded a clone of up.Header): only that token is dropped,
		// so a late 401 about an older one keeps the fresh token.
		cred.Invalidate(r.Context(), up.Header)
		delete(up.Header, "Authorization")
		if aerr := applyAgain(up, cred); aerr != nil {
			return aerr
		}
		rec.reset(h.MaxResponseBytes)
		err = h.callProvider(up, next, rec, rq)
	}
	if aerr := providerError(ep, rec, err); aerr != nil {
		// A 200 that ends in an error was unusable (too large, not JSON).
		h.app.pings.Record(ep.ProviderName, providerOutcome(rec.status, err, rec.status == http.StatusOK))
		return aerr
	}
	out := getBuffer()
	defer putBuffer(out)
	filtered, err := respfilter.Filter((*out)[:0], rec.buf.Bytes(), paths, respfilter.Options{MaxBytes: h.MaxResponseBytes})
	if err != nil {
		h.app.pings.Record(ep.ProviderName, providerOutcome(rec.status, nil, true))
		return apierror.FilterFailed(ep.Provider.ErrorPrefix, ep.ProviderName)
	}
	h.app.pings.Record(ep.ProviderName, pings.OK)
	*out = filtered
	writeOK(w, filtered)
	return nil
}

// providerRequest returns the request handed to reverse_proxy: a shallow
// copy of the caller's r (same context, connection state and method) with
// its own URL, the provider path and query, no body, and only the headers
// set here. Its Host is empty, so the transport sends the upstream's own
// (an HTTPS upstream gets it from reverse_proxy), and a nil X-Forwarded-Host
// tells reverse_proxy to add none: the caller's Host never reaches the
// provider. Its RequestURI, which reverse_proxy's log lines print, is the
// provider path only: the caller's query may hold a civil status.
func providerRequest(r *http.Request, path, query, requestID string) *http.Request {
	up := r.WithContext(r.Context())
	up.URL = &url.URL{Scheme: r.URL.Scheme, Host: r.URL.Host, Path: path, RawQuery: query}
	up.Host, up.RequestURI = "", path
	up.Header = http.Header{"Accept": acceptJSON, "X-Request-Id": {requestID}, "X-Forwarded-Host": nil}
	up.Body, up.ContentLength, up.TransferEncoding = http.NoBody, 0, nil
	return up
}

// writeOK sends a 200 JSON answer with the headers every answer carries.
func writeOK(w http.ResponseWriter, body []byte) {
	hdr := w.Header()
	hdr["Content-Type"] = jsonContentType
	hdr["Cache-Control"] = noStore
	hdr["X-Content-Type-Options"] = noSniff
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// callProvider hands the rebuilt request to the next handler (reverse_proxy)
// under a client span, with the trace context for the provider.
func (h *Handler) callProvider(r *http.Request, next caddyhttp.Handler, rec *capture, rq *request) error {
	ctx, sp := startSpan(r.Context(), rq.tracer, spanProvider, trace.SpanKindClient, attrProvider.String(rq.ep.ProviderName))
	if rq.tracer != nil {
		injectTraceContext(ctx, r.Header)
	}
	start := time.Now()
	err := serveNext(next, rec, r)
	rq.status = rec.status
	class := statusClass(rec.status)
	if err != nil {
		class = "error"
	}
	providerDurations.get(labels2{rq.ep.ProviderName, class}).Observe(time.Since(start).Seconds())
	sp.SetAttributes(attrStatusClass.String(class))
	if err != nil || rec.status >= 400 {
		endSpan(sp, apierror.ReasonProviderError)
	} else {
		endSpan(sp, "")
	}
	return err
}

// errProviderAborted: reverse_proxy aborted the answer mid-stream (the
// provider's body was cut after its headers).
var errProviderAborted = errors.New("passerelle: provider answer aborted")

// serveNext calls the next handler, turning reverse_proxy's abort of a
// half-copied answer (a panic with http.ErrAbortHandler, as the standard
// library's proxy does) into an error: the request still gets its answer
// (502), its audit record, its metrics and its pings outcome. Any other
// panic goes on.
func serveNext(next caddyhttp.Handler, w http.ResponseWriter, r *http.Request) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler { //nolint:errorlint // the sentinel itself is the panic value
				panic(v)
			}
			err = errProviderAborted
		}
	}()
	return next.ServeHTTP(w, r)
}

func applyAgain(r *http.Request, cred upstreamauth.Source) *apierror.Error {
	if err := cred.Apply(r.Context(), r.Header); err != nil {
		return apierror.Unavailable("provider_error")
	}
	return nil
}

// providerError maps a provider answer that cannot be relayed to API
// Particulier's codes (SECURITY.md C10): nothing of its body is kept.
func providerError(ep *catalogue.Endpoint, rec *capture, err error) *apierror.Error {
	prefix, name := ep.Provider.ErrorPrefix, ep.ProviderName
	if err != nil {
		var he caddyhttp.HandlerError
		if errors.As(err, &he) && he.StatusCode == http.StatusGatewayTimeout {
			return apierror.ProviderTimeout(prefix, name)
		}
		if rec.overflow || rec.wroteHeader {
			return apierror.ProviderError(prefix, name)
		}
		return apierror.ProviderUnreachable(prefix, name)
	}
	switch {
	case rec.status == http.StatusNotFound:
		return apierror.ProviderNotFound(ep.NotFoundError())
	case rec.status != http.StatusOK, rec.overflow:
		return apierror.ProviderError(prefix, name)
	}
	if !isJSON(rec.header.Get("Content-Type")) {
		return apierror.ProviderError(prefix, name)
	}
	return nil
}

// isJSON reports whether a Content-Type is application/json, with or
// without parameters (no allocation, unlike mime.ParseMediaType).
func isJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

// refuse writes an API Particulier error answer.
func (h *Handler) refuse(w http.ResponseWriter, rq *request, e *apierror.Error) {
	if c := h.logger.Check(zapcore.DebugLevel, "request refused"); c != nil {
		endpoint := ""
		if rq.ep != nil {
			endpoint = rq.ep.ID
		}
		c.Write(zap.String("endpoint", endpoint), zap.String("code", e.Code), zap.String("reason", e.Reason))
	}
	if rq.ep != nil && rq.ep.API == catalogue.APIv2 && !apierror.IsFranceConnectToken(e) {
		// Legacy routes answer {error, reason, message}, except for a
		// rejected FranceConnect token (50001–50004), as API Particulier v2.
		apierror.WriteV2(w, e)
		return
	}
	apierror.Write(w, e)
}

// Response header values, shared (never modified) as Caddy does for Server.
var (
	jsonContentType = []string{"application/json; charset=utf-8"}
	noStore         = []string{"no-store"}
	noSniff         = []string{"nosniff"}
	acceptJSON      = []string{"application/json"}
)

// capture buffers the provider answer, up to a limit, so that nothing is
// sent to the caller before filtering succeeded (SECURITY.md C06).
type capture struct {
	header      http.Header
	status      int
	wroteHeader bool
	overflow    bool
	limit       int
	buf         bytes.Buffer
}

func (c *capture) Header() http.Header { return c.header }

func (c *capture) WriteHeader(status int) {
	if c.wroteHeader || status < 200 {
		return // 1xx informational answers are not relayed
	}
	c.status, c.wroteHeader = status, true
}

func (c *capture) Write(p []byte) (int, error) {
	if !c.wroteHeader {
		c.WriteHeader(http.StatusOK)
	}
	if c.overflow || c.buf.Len()+len(p) > c.limit {
		// Discard the rest rather than fail the write: reverse_proxy aborts
		// the caller's connection on a body copy error. Memory stays bounded
		// by the limit and the answer becomes a 502.
		c.overflow = true
		return len(p), nil
	}
	return c.buf.Write(p)
}

// Flush is a no-op: the answer is released only after filtering.
func (c *capture) Flush() {}

func (c *capture) reset(limit int) {
	clear(c.header)
	c.status, c.wroteHeader, c.overflow, c.limit = 0, false, false, limit
	c.buf.Reset()
}

var capturePool = sync.Pool{New: func() any { return &capture{header: make(http.Header)} }}

func getCapture(limit int) *capture {
	c := capturePool.Get().(*capture)
	c.reset(limit)
	return c
}

func putCapture(c *capture) {
	if c.buf.Cap() <= 64<<10 {
		capturePool.Put(c)
	}
}

var bufferPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuffer() *[]byte { return bufferPool.Get().(*[]byte) }

func putBuffer(b *[]byte) {
	if cap(*b) <= 64<<10 {
		bufferPool.Put(b)
	}
}

// Interface guards.
var (
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddy.Provisioner           = (*Handler)(nil)
	_ http.Flusher                = (*capture)(nil)
)
