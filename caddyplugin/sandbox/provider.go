package sandbox

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/sandbox"
)

func init() {
	caddy.RegisterModule(Provider{})
	httpcaddyfile.RegisterHandlerDirective("passerelle_sandbox_provider", parseProvider)
	httpcaddyfile.RegisterDirectiveOrder("passerelle_sandbox_provider", httpcaddyfile.Before, "respond")
}

// Provider plays the data providers behind the catalogue: a request on an
// endpoint's upstream_path is answered from the case files of the endpoints
// sharing that path (their operation_id folders), matched as API
// Particulier's sandbox does: exact equality of the lower-cased parameters,
// `recipient`, `annee` and `mois` left out. No match answers the folder's 404
// case. The payload is returned verbatim, unfiltered, like the official
// sandbox: filtering is the gateway's job.
type Provider struct {
	// Cases is a payloads directory in the siade_staging_data layout
	// (default: the embedded cases).
	Cases string `json:"cases,omitempty"`
	// RequireAuthorization, when set, is the exact Authorization value the
	// stand-in demands (the platform credential); anything else gets 401.
	// It may be a {env.NAME} or {file.path} reference.
	RequireAuthorization string `json:"require_authorization,omitempty"`
	// Latency delays every answer (benchmarks: a provider's real latency).
	Latency caddy.Duration `json:"latency,omitempty"`

	cases      *sandbox.Set
	operations map[string][]string // upstream path → operation ids
	auth       string
}

// ignoredParams are request parameters the case matching leaves out, as
// siade's mocking parameters do.
var ignoredParams = []string{"recipient", "annee", "mois"}

// CaddyModule returns the Caddy module information.
func (Provider) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.passerelle_sandbox_provider", New: func() caddy.Module { return new(Provider) }}
}

// Provision loads the cases and maps upstream paths to case folders.
func (p *Provider) Provision(ctx caddy.Context) error {
	app, err := sandboxApp(ctx, "passerelle_sandbox_provider")
	if err != nil {
		return err
	}
	cat := (*catalogue.Catalogue)(nil)
	if app != nil {
		cat = app.Catalog()
	} else if cat, err = catalogue.Default(); err != nil {
		return err
	}
	p.operations = map[string][]string{}
	for _, ep := range cat.Endpoints {
		p.operations[ep.UpstreamPath] = append(p.operations[ep.UpstreamPath], ep.OperationID)
	}
	if p.cases, err = loadCases(p.Cases); err != nil {
		return fmt.Errorf("passerelle_sandbox_provider: cases: %w", err)
	}
	if p.RequireAuthorization != "" {
		p.auth = caddy.NewReplacer().ReplaceKnown(p.RequireAuthorization, "")
		if p.auth == "" {
			return errors.New("passerelle_sandbox_provider: require_authorization resolves to an empty value")
		}
	}
	return nil
}

// ServeHTTP answers provider paths from the cases and passes anything else on.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	ops, ok := p.operations[r.URL.Path]
	if !ok {
		return next.ServeHTTP(w, r)
	}
	if p.Latency > 0 {
		select {
		case <-time.After(time.Duration(p.Latency)):
		case <-r.Context().Done():
			return r.Context().Err()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if p.auth != "" && (len(r.Header.Values("Authorization")) != 1 || r.Header.Get("Authorization") != p.auth) {
		w.WriteHeader(http.StatusUnauthorized)
		_, err := w.Write([]byte(`{"errors":[{"code":"00101","title":"Interdit","detail":"Jeton d'accès du fournisseur invalide.","source":null,"meta":{}}]}`))
		return err
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return nil
	}
	c, ok := p.cases.Match(ops, query, ignoredParams)
	if !ok {
		for _, op := range ops {
			if c, ok = p.cases.NotFound(op); ok {
				break
			}
		}
	}
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		_, err := w.Write([]byte(`{"errors":[{"code":"00404","title":"Dossier absent","detail":"Aucun cas de test ne correspond.","source":null,"meta":{}}]}`))
		return err
	}
	w.WriteHeader(c.Status)
	_, err = w.Write(c.Payload)
	return err
}

// parseProvider parses:
//
//	passerelle_sandbox_provider {
//	    cases                 <dir>     # default: the embedded cases
//	    require_authorization <value>   # e.g. "Bearer {env.SANDBOX_PROVIDER_KEY}"
//	    latency               <duration> # delays every answer (benchmarks)
//	}
func parseProvider(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	p := new(Provider)
	err := p.UnmarshalCaddyfile(h.Dispenser)
	return p, err
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler (syntax on parseProvider).
func (p *Provider) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "cases":
			if !d.AllArgs(&p.Cases) {
				return d.ArgErr()
			}
		case "require_authorization":
			if !d.AllArgs(&p.RequireAuthorization) {
				return d.ArgErr()
			}
		case "latency":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return d.Errf("latency: %v", err)
			}
			p.Latency = caddy.Duration(dur)
		default:
			return d.Errf("unrecognized passerelle_sandbox_provider option %q", d.Val())
		}
	}
	return nil
}

// Interface guards.
var (
	_ caddyhttp.MiddlewareHandler = (*Provider)(nil)
	_ caddy.Provisioner           = (*Provider)(nil)
	_ caddyfile.Unmarshaler       = (*Provider)(nil)
)
