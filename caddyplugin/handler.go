package caddyplugin

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/apierror"
	"github.com/passerelle-gw/passerelle/caddyplugin/pipeline"
	"github.com/passerelle-gw/passerelle/config/catalogue"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is the `passerelle` HTTP handler. Placed before reverse_proxy in a
// route, it serves the catalogue endpoints of API Particulier through the
// decision pipeline (package pipeline: token or API token, habilitation,
// scopes, query, provider request, response filter, audit, metrics), with
// the next handler (reverse_proxy) as the provider, which it never calls
// for a refused request.
//
// Every answer carries X-Request-Id, Cache-Control: no-store and
// X-Content-Type-Options: nosniff. The handler also answers the utility
// routes GET /api/introspect (introspect.go), /api/pings[/<provider>]
// (pings.go) and /api/openapi.json (openapi.go).
type Handler struct {
	// Endpoints restricts this handler to the listed catalogue endpoint
	// ids. Empty means every endpoint of the catalogue.
	Endpoints []string `json:"endpoints,omitempty"`
	// MaxResponseBytes bounds a provider answer (default 1 MiB).
	MaxResponseBytes int `json:"max_response_bytes,omitempty"`

	app     *App
	logger  *zap.Logger
	audit   *zap.Logger // the app's audit logger unless set before provisioning
	allowed map[*catalogue.Endpoint]bool
	openAPI *openAPIDocument // of the enabled routes
	pipe    *pipeline.Pipeline
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
	if h.MaxResponseBytes <= 0 {
		h.MaxResponseBytes = pipeline.DefaultMaxResponseBytes
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
	cfg := app.shared
	cfg.Logger, cfg.Audit = h.logger, h.audit
	h.pipe = pipeline.New(cfg, h.allowed, h.MaxResponseBytes)
	doc, err := h.openAPIDocument()
	if err != nil {
		return fmt.Errorf("passerelle handler: generating the OpenAPI document: %w", err)
	}
	h.openAPI = doc
	cat := h.app.Catalog()
	for i := range cat.Endpoints {
		ep := &cat.Endpoints[i]
		if _, ok := h.app.core.upstreams[ep.ProviderName]; !ok && (h.allowed == nil || h.allowed[ep]) {
			h.logger.Warn("no upstream credential configured for provider", zap.String("provider", ep.ProviderName))
		}
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler: the utility routes
// here, every other request through the pipeline, with next
// (reverse_proxy) as its provider.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	utility := r.URL.RawPath == "" && (r.URL.Path == introspectPath || isPingsRoute(r.URL.Path) || r.URL.Path == openAPIPath)
	if !utility {
		h.pipe.Serve(w, r, next)
		return nil
	}
	c := h.pipe.Start(w, r)
	var aerr *apierror.Error
	switch r.URL.Path {
	case introspectPath:
		aerr = h.introspect(w, r, c)
	case openAPIPath:
		aerr = h.serveOpenAPI(w, r, c)
	default:
		aerr = h.servePings(w, r, c)
	}
	c.SetRateLimitHeaders(w.Header())
	switch {
	case aerr != nil && r.URL.Path == introspectPath:
		apierror.WriteV2(w, aerr) // introspect answers in the v2 shape
	case aerr != nil:
		h.pipe.Refuse(w, c, aerr)
	}
	h.pipe.Record(c, aerr)
	return nil
}

// clientIP is the pipeline's Config.ClientIP: Caddy's client IP, which
// honours trusted_proxies only (SECURITY.md D04).
func clientIP(r *http.Request) string {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	return ip
}

// errorStatus is the pipeline's Config.ErrorStatus: the status of a
// caddyhttp.HandlerError (reverse_proxy's 504 when the provider timed out).
func errorStatus(err error) int {
	var he caddyhttp.HandlerError
	if errors.As(err, &he) {
		return he.StatusCode
	}
	return 0
}

// Interface guards.
var (
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddy.Provisioner           = (*Handler)(nil)
	_ pipeline.Provider           = caddyhttp.Handler(nil) // next is passed as is
)
