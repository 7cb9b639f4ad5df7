package sandbox

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/datapassop"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

func init() {
	caddy.RegisterModule(DataPass{})
	httpcaddyfile.RegisterHandlerDirective("passerelle_sandbox_datapass", parseDataPass)
	httpcaddyfile.RegisterDirectiveOrder("passerelle_sandbox_datapass", httpcaddyfile.Before, "respond")
}

// DefaultDataPassRetry is how long the DataPass stand-in waits before it
// delivers a failed webhook once more.
const DefaultDataPassRetry = 10 * time.Second

// DataPass plays DataPass for a gateway (package datapassop): the API that
// Passerelle's resync reads (POST /api/v1/oauth/token with client
// credentials, GET /api/v1/habilitations, GET
// /api/v1/webhooks/{id}/attempts), and the webhooks, signed with the
// webhook secret, that a person triggers:
//
//	curl -X POST http://127.0.0.1:8083/sandbox/datapass/requests/48213/revoke
//	curl -X POST http://127.0.0.1:8083/sandbox/datapass/requests/48213/approve -d '{"scopes":["cnaf_quotient_familial"]}'
//
// Each action changes the request, delivers its webhook at once and answers
// {"event": …, "fired_at": …, "delivered_status": <the gateway's status>}.
// GET /sandbox/datapass/requests shows the state; POST
// /sandbox/datapass/ping sends DataPass's test delivery. State lives in
// memory: a configuration reload starts afresh from the configured
// requests. Other paths are passed on.
type DataPass struct {
	// Webhook is the gateway's webhook URL, e.g.
	// http://127.0.0.1:8080/datapass/webhook.
	Webhook string `json:"webhook"`
	// Secret signs the webhooks ({env.*} and {file.*} accepted).
	Secret string `json:"secret"`
	// Environment is sent as X-App-Environment (default sandbox).
	Environment string `json:"environment,omitempty"`
	// ClientID and ClientSecret are the API's one OAuth2 client
	// (ClientSecret: {env.*} and {file.*} accepted).
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	// WebhookID is the webhook's number in the attempts route (default 1).
	WebhookID string `json:"webhook_id,omitempty"`
	// RetryAfter is the pause before a failed delivery is tried once more:
	// 0 means DefaultDataPassRetry, a negative value never.
	RetryAfter caddy.Duration `json:"retry_after,omitempty"`
	// Requests are DataPass's API Particulier requests.
	Requests []DataPassRequest `json:"requests,omitempty"`
	// Habilitations, when set, is a habilitations file (the gateway's): each
	// habilitation bound to a request (datapass_id) that Requests does not
	// list becomes a request with its SIRET and scopes, active unless the
	// file revokes it. The stand-in then agrees with the file until a
	// person acts, and a resync changes nothing.
	Habilitations string `json:"habilitations,omitempty"`

	srv *datapassop.Server
}

// DataPassRequest is one request of the stand-in, with its first
// authorization.
type DataPassRequest struct {
	// ID is the request number (the habilitation's datapass_id).
	ID    string `json:"id"`
	SIRET string `json:"siret"`
	// Authorization is the authorization's number (default: ID).
	Authorization string `json:"authorization,omitempty"`
	// State is active (default) or revoked.
	State      string   `json:"state,omitempty"`
	Scopes     []string `json:"scopes"`
	Modalities []string `json:"modalities,omitempty"` // default france_connect
}

// CaddyModule returns the Caddy module information.
func (DataPass) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.passerelle_sandbox_datapass", New: func() caddy.Module { return new(DataPass) }}
}

// Provision resolves the secrets and starts the stand-in.
func (d *DataPass) Provision(ctx caddy.Context) error {
	const module = "passerelle_sandbox_datapass"
	app, err := sandboxApp(ctx, module)
	if err != nil {
		return err
	}
	resolve := func(field, v string) (string, error) {
		if app != nil {
			return app.ResolveSecret(module+": "+field, v)
		}
		return caddy.NewReplacer().ReplaceKnown(v, ""), nil
	}
	secret, err := resolve("secret", d.Secret)
	if err != nil {
		return err
	}
	clientSecret, err := resolve("client_secret", d.ClientSecret)
	if err != nil {
		return err
	}
	retry := time.Duration(d.RetryAfter)
	if retry == 0 {
		retry = DefaultDataPassRetry
	}
	cfg := datapassop.Config{WebhookURL: d.Webhook, Secret: secret, Environment: d.Environment,
		ClientID: d.ClientID, ClientSecret: clientSecret, WebhookID: d.WebhookID, RetryAfter: max(retry, 0)}
	for _, r := range d.Requests {
		cfg.Requests = append(cfg.Requests, datapassop.Request{ID: r.ID, SIRET: r.SIRET, AuthorizationID: r.Authorization,
			State: r.State, Scopes: r.Scopes, Modalities: r.Modalities})
	}
	if d.Habilitations != "" {
		reg, err := habilitation.Load(d.Habilitations)
		if err != nil {
			return fmt.Errorf("%s: habilitations: %w", module, err)
		}
		for _, h := range reg.All() {
			if h.DataPassID == "" || slices.ContainsFunc(cfg.Requests, func(r datapassop.Request) bool { return r.ID == h.DataPassID }) {
				continue
			}
			r := datapassop.Request{ID: h.DataPassID, SIRET: h.SIRET, State: "active", Scopes: h.Scopes,
				Modalities: []string{"params"}}
			if h.Revoked {
				r.State = "revoked"
			}
			if h.Allows(habilitation.ModalityFranceConnect) {
				r.Modalities = []string{habilitation.ModalityFranceConnect}
			}
			cfg.Requests = append(cfg.Requests, r)
		}
	}
	if d.srv, err = datapassop.New(cfg); err != nil {
		return fmt.Errorf("%s: %w", module, err)
	}
	return nil
}

// Cleanup stops the pending retries.
func (d *DataPass) Cleanup() error {
	if d.srv != nil {
		d.srv.Close()
	}
	return nil
}

// ServeHTTP answers the stand-in's routes and passes anything else on.
func (d *DataPass) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if d.srv.Handles(r) {
		d.srv.ServeHTTP(w, r)
		return nil
	}
	return next.ServeHTTP(w, r)
}

// parseDataPass parses:
//
//	passerelle_sandbox_datapass {
//	    webhook       <url>      # required: the gateway's webhook endpoint
//	    secret        <secret>   # required: the webhook secret ({env.*}, {file.*})
//	    environment   <name>     # X-App-Environment; default sandbox
//	    client_id     <id>       # required: the API's OAuth2 client
//	    client_secret <secret>   # required ({env.*}, {file.*})
//	    webhook_id    <number>   # the attempts route's webhook; default 1
//	    retry_after   <duration>|off  # a failed delivery is sent once more; default 10s
//	    habilitations <file>     # the requests of the file's datapass_id bindings
//	    # One line per request (its first authorization): the keywords in
//	    # any order, the lists running to the next keyword.
//	    request <number> siret <siret> [authorization <number>] [state active|revoked] [modalities <m>...] scopes <scope>...
//	    # or a block (scopes may repeat):
//	    request <number> {
//	        siret         <siret>
//	        authorization <number>
//	        state         active|revoked
//	        modalities    <modality>...
//	        scopes        <scope>...
//	    }
//	}
//
// A request's scopes are what DataPass granted: a resync makes them the
// bound habilitation's scopes (∩ the catalogue's), so list them all — or
// take them from the gateway's file. For example, for the sandbox
// habilitation of deploy/sandbox/habilitations.yaml (SIRET 13002526500013),
// once it is bound by datapass_id "48213":
//
//	passerelle_sandbox_datapass {
//	    webhook http://127.0.0.1:8080/datapass/webhook
//	    secret sandbox-datapass-secret
//	    client_id sandbox-datapass-client
//	    client_secret sandbox-datapass-client-secret
//	    habilitations deploy/sandbox/habilitations.yaml
//	}
//
// or, without the file, with the scopes written out:
//
//	request 48213 siret 13002526500013 scopes cnaf_quotient_familial cnaf_allocataires cnaf_enfants cnaf_adresse
func parseDataPass(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	d := new(DataPass)
	err := d.UnmarshalCaddyfile(h.Dispenser)
	return d, err
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler (syntax on parseDataPass).
func (d *DataPass) UnmarshalCaddyfile(disp *caddyfile.Dispenser) error {
	disp.Next()
	if disp.NextArg() {
		return disp.ArgErr()
	}
	fields := map[string]*string{
		"webhook": &d.Webhook, "secret": &d.Secret, "environment": &d.Environment,
		"client_id": &d.ClientID, "client_secret": &d.ClientSecret, "webhook_id": &d.WebhookID,
		"habilitations": &d.Habilitations,
	}
	for nesting := disp.Nesting(); disp.NextBlock(nesting); {
		switch disp.Val() {
		case "retry_after":
			var v string
			if !disp.AllArgs(&v) {
				return disp.ArgErr()
			}
			if v == "off" {
				d.RetryAfter = -1
				continue
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return disp.Errf("retry_after: a positive duration or off")
			}
			d.RetryAfter = caddy.Duration(dur)
		case "request":
			r, err := parseDataPassRequest(disp)
			if err != nil {
				return err
			}
			d.Requests = append(d.Requests, r)
		default:
			dst, ok := fields[disp.Val()]
			if !ok {
				return disp.Errf("unrecognized passerelle_sandbox_datapass option %q", disp.Val())
			}
			if !disp.AllArgs(dst) {
				return disp.ArgErr()
			}
		}
	}
	if d.Webhook == "" || d.Secret == "" || d.ClientID == "" || d.ClientSecret == "" {
		return disp.Err("passerelle_sandbox_datapass: webhook, secret, client_id and client_secret are required")
	}
	return nil
}

// dataPassRequestKeys are the keywords of a request.
var dataPassRequestKeys = []string{"siret", "authorization", "state", "modalities", "scopes"}

// parseDataPassRequest parses a request line or block (syntax on
// parseDataPass).
func parseDataPassRequest(disp *caddyfile.Dispenser) (DataPassRequest, error) {
	var r DataPassRequest
	if !disp.NextArg() {
		return r, disp.ArgErr()
	}
	r.ID = disp.Val()
	set := func(key string, vals []string) error {
		if len(vals) == 0 {
			return disp.Errf("request %s: %s needs a value", r.ID, key)
		}
		switch key {
		case "scopes":
			r.Scopes = append(r.Scopes, vals...)
		case "modalities":
			r.Modalities = append(r.Modalities, vals...)
		default:
			if len(vals) != 1 {
				return disp.Errf("request %s: %s takes one value", r.ID, key)
			}
			dst := map[string]*string{"siret": &r.SIRET, "authorization": &r.Authorization, "state": &r.State}[key]
			*dst = vals[0]
		}
		return nil
	}
	// The one-line form: keywords, each followed by its values.
	args := disp.RemainingArgs()
	for len(args) > 0 {
		key := args[0]
		if !slices.Contains(dataPassRequestKeys, key) {
			return r, disp.Errf("request %s: unknown keyword %q", r.ID, key)
		}
		end := 1
		for end < len(args) && !slices.Contains(dataPassRequestKeys, args[end]) {
			end++
		}
		if err := set(key, args[1:end]); err != nil {
			return r, err
		}
		args = args[end:]
	}
	// The block form.
	for nesting := disp.Nesting(); disp.NextBlock(nesting); {
		key := disp.Val()
		if !slices.Contains(dataPassRequestKeys, key) {
			return r, disp.Errf("request %s: unknown keyword %q", r.ID, key)
		}
		if err := set(key, disp.RemainingArgs()); err != nil {
			return r, err
		}
	}
	if r.SIRET == "" || len(r.Scopes) == 0 {
		return r, errors.New("passerelle_sandbox_datapass: request " + r.ID + ": siret and scopes are required")
	}
	return r, nil
}

// Interface guards.
var (
	_ caddyhttp.MiddlewareHandler = (*DataPass)(nil)
	_ caddy.Provisioner           = (*DataPass)(nil)
	_ caddy.CleanerUpper          = (*DataPass)(nil)
	_ caddyfile.Unmarshaler       = (*DataPass)(nil)
)
