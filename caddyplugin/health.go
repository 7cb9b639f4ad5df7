package caddyplugin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/framing"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

func init() {
	caddy.RegisterModule(Health{})
	httpcaddyfile.RegisterHandlerDirective("passerelle_health", parseHealth)
	httpcaddyfile.RegisterDirectiveOrder("passerelle_health", httpcaddyfile.Before, "respond")
}

// Health answers liveness or readiness probes. Put it on an internal
// listener, never on the public one (SECURITY.md D09):
//
//	http://127.0.0.1:9090 {
//	    handle /live  { passerelle_health live }
//	    handle /ready { passerelle_health ready }
//	    metrics /metrics
//	}
//
// live is 200 while the process serves. ready is 200 only when a usable
// FranceConnect key set is held (fetched on demand, at most once per
// cooldown), when Redis is configured Redis answers PING, and the
// habilitations file has not been deleted (an empty registry serves
// nothing), and the audit trail takes records (its passerelle_buffered
// writer is not full: data routes answer 503 audit_unavailable meanwhile),
// and the process is under 90 % of its memory limit (data routes answer 503
// meanwhile); otherwise 503. The body names each check: {"status",
// "checks": {"franceconnect_keys", "redis", "habilitations", "audit",
// "memory"}}; habilitations is the
// registry's reload state: ok, refused (the file on disk was refused: the
// previous registry serves, with the revocations and removals the refused
// file carries), unreadable (the previous registry serves) or missing.
type Health struct {
	// Check is "live" or "ready".
	Check string `json:"check,omitempty"`

	app *App
}

// CaddyModule returns the Caddy module information.
func (Health) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.passerelle_health", New: func() caddy.Module { return new(Health) }}
}

// Provision binds the probe to the passerelle app.
func (p *Health) Provision(ctx caddy.Context) error {
	if p.Check != "live" && p.Check != "ready" {
		return fmt.Errorf("passerelle_health: want live or ready, got %q", p.Check)
	}
	app, err := ctx.App("passerelle")
	if err != nil {
		return fmt.Errorf("passerelle_health: the passerelle global option is required: %w", err)
	}
	p.app = app.(*App)
	return nil
}

// ServeHTTP answers the probe.
func (p *Health) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	framing.CloseIfChunked(w, r)
	status, checks := "ok", map[string]string{}
	if p.Check == "ready" {
		checks = p.app.readiness(r.Context())
		for _, v := range checks {
			if v == "unavailable" {
				status = "unavailable"
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if status != "ok" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	return json.NewEncoder(w).Encode(map[string]any{"status": status, "checks": checks})
}

// readiness runs the readiness checks, each under its own deadline.
func (a *App) readiness(ctx context.Context) map[string]string {
	checks := map[string]string{"franceconnect_keys": "ok", "redis": "not_configured",
		"habilitations": a.watcher.Status().State, "audit": "ok", "memory": "ok"}
	if a.shared.AuditRefusing() {
		checks["audit"] = "unavailable"
	}
	if a.shared.MemoryPressure() {
		checks["memory"] = "unavailable"
	}
	if checks["habilitations"] == habilitation.StateMissing {
		checks["habilitations"] = "unavailable"
	}
	kctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := a.core.verifier.Ready(kctx); err != nil {
		checks["franceconnect_keys"] = "unavailable"
	}
	if a.datapass != nil {
		// Until DataPass's records are read, the habilitations bound to
		// DataPass are refused.
		checks["datapass"] = "ok"
		if !a.datapass.store.Live().LiveReady() {
			checks["datapass"] = "unavailable"
		}
	}
	if a.core.redis != nil {
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		checks["redis"] = "ok"
		if err := a.core.redis.Ping(rctx).Err(); err != nil {
			checks["redis"] = "unavailable"
		}
	}
	return checks
}

// parseHealth parses `passerelle_health live|ready`.
func parseHealth(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	p := new(Health)
	err := p.UnmarshalCaddyfile(h.Dispenser)
	return p, err
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler.
func (p *Health) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if !d.AllArgs(&p.Check) {
		return d.ArgErr()
	}
	return nil
}

// Interface guards.
var (
	_ caddyhttp.MiddlewareHandler = (*Health)(nil)
	_ caddy.Provisioner           = (*Health)(nil)
	_ caddyfile.Unmarshaler       = (*Health)(nil)
)
