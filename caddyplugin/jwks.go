package caddyplugin

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/framing"
)

func init() {
	caddy.RegisterModule(JWKSHandler{})
}

// JWKSHandler serves the public part of the gateway's decryption keys as a
// JWKS (`use: enc`). FranceConnect fetches it from the jwks_uri registered for
// the gateway's data-provider client to encrypt checktoken answers. Private
// members are never served (SECURITY.md H08).
type JWKSHandler struct {
	app *App
}

// CaddyModule returns the Caddy module information.
func (JWKSHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.passerelle_jwks", New: func() caddy.Module { return new(JWKSHandler) }}
}

// Provision binds the handler to the passerelle app.
func (j *JWKSHandler) Provision(ctx caddy.Context) error {
	app, err := ctx.App("passerelle")
	if err != nil {
		return fmt.Errorf("passerelle_jwks: the passerelle global option is required: %w", err)
	}
	j.app = app.(*App)
	return nil
}

// ServeHTTP answers GET and HEAD with the JWKS.
func (j *JWKSHandler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	framing.CloseIfChunked(w, r)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return nil
	}
	h := w.Header()
	h.Del("Server")
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	_, err := w.Write(j.app.PublicJWKS())
	return err
}

// Interface guards.
var (
	_ caddyhttp.MiddlewareHandler = (*JWKSHandler)(nil)
	_ caddy.Provisioner           = (*JWKSHandler)(nil)
)
