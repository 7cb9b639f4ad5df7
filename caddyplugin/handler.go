package caddyplugin

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/apierror"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/ratelimit"
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

// Interface guards.
var (
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddy.Provisioner           = (*Handler)(nil)
	_ http.Flusher                = (*capture)(nil)
)
