package front

import (
	"strings"

	"github.com/dustin/go-humanize"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("passerelle_front", parseFront)
	// Before handle, handle_path, route and every handler that answers
	// (reverse_proxy, php_fastcgi, file_server…): a proxy inside a handle
	// block would otherwise answer requests the front never saw, their
	// X-Passerelle-* headers unstripped. After request_header: a header an
	// operator sets cannot forge the hand-off either.
	httpcaddyfile.RegisterDirectiveOrder("passerelle_front", httpcaddyfile.After, "request_header")
}

// parseFront parses one block per protected app, in the app's site; it
// runs before the site's handle, handle_path and route blocks and its
// reverse_proxy:
//
//	passerelle_front {
//	    base_url      <origin>           # required: the site's public origin (https; http on loopback in sandbox mode)
//	    service_name  <text>             # shown on the pages (default "Service en ligne")
//	    app_id        <text>             # the assertion's aud (default base_url)
//	    secret        <{file.…}|{env.…}> # sessions, ≥ 32 bytes (required in production)
//	    assertion_key <{file.…}|{env.…}> # EC P-256 private key, PEM or JWK (required in production)
//	    assertion_ttl <duration>         # default 5m
//	    max_handoff_bytes <size>         # what the hand-off adds to a request, in all (default 8KiB; e.g. 16KiB)
//	    handoff       assertion [headers] # the channels the app receives (default: the assertion only)
//	    franceconnect {                  # the service's own FranceConnect client (fournisseur de service)
//	        issuer        <url>          # e.g. https://oidc.franceconnect.gouv.fr/api/v2 (discovery)
//	        client_id     <id>
//	        client_secret <{file.…}|{env.…}>
//	        scopes        <scope>...     # openid added when missing
//	        acr           eidas1         # asked and required (eidas1, eidas2, eidas3)
//	        prompt        login consent  # default "login consent"; must contain login
//	        signing_algs  ES256 RS256    # allow-list (default both)
//	    }
//	    protect <path pattern>...        # Cas 1: paths that need a FranceConnect session (e.g. /espace-famille/*)
//	    dataset <name> <route> {         # fetched at login with the fresh access token; repeatable
//	        recipient <SIRET>            # required: the collectivité
//	        label     <text>             # what the citizen is told is transmitted
//	        remote    <base URL>         # a remote API Particulier; default: this gateway, in process
//	    }
//	    provider {                       # the hop to the data providers of in-process datasets
//	        reverse_proxy <upstream> { … }
//	    }
//	    dataset_timeout <duration>       # default 10s
//	    after_logout  <path>             # default /
//	    app_logout    <path>             # the app's logout path, intercepted (same-site navigations only; read as protect reads paths)
//	    session_idle  <duration>         # default 30m (FranceConnect's session)
//	    session_max   <duration>         # default 12h
//	    strip_header  <name>...          # more request headers deleted (X-Passerelle-* always are)
//	    login_rate    <n>/<s|m|h>        # login starts per client address (default 10/m)
//	}
func parseFront(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	f := new(Front)
	d := h.Dispenser
	d.Next()
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	strs := map[string]*string{
		"base_url": &f.BaseURL, "service_name": &f.ServiceName, "app_id": &f.AppID, "secret": &f.Secret,
		"assertion_key": &f.AssertionKey, "after_logout": &f.AfterLogout, "app_logout": &f.AppLogout,
		"login_rate": &f.LoginRate,
	}
	durations := map[string]*caddy.Duration{
		"assertion_ttl": &f.AssertionTTL, "dataset_timeout": &f.DatasetTimeout,
		"session_idle": &f.SessionIdle, "session_max": &f.SessionMax,
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if dst, ok := strs[opt]; ok {
			if !d.AllArgs(dst) {
				return nil, d.ArgErr()
			}
			continue
		}
		if dst, ok := durations[opt]; ok {
			var v string
			if !d.AllArgs(&v) {
				return nil, d.ArgErr()
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil {
				return nil, d.Errf("%s: %v", opt, err)
			}
			*dst = caddy.Duration(dur)
			continue
		}
		switch opt {
		case "franceconnect":
			if err := parseFranceConnect(d, &f.FranceConnect); err != nil {
				return nil, err
			}
		case "protect":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			f.Protect = append(f.Protect, args...)
		case "max_handoff_bytes":
			var v string
			if !d.AllArgs(&v) {
				return nil, d.ArgErr()
			}
			n, err := humanize.ParseBytes(v)
			if err != nil || n == 0 || n > maxHandoffBytes {
				return nil, d.Errf("max_handoff_bytes %q: a size from 1 to %d bytes (8KiB, 16KiB…)", v, maxHandoffBytes)
			}
			f.MaxHandoffBytes = int(n)
		case "handoff":
			f.Handoff = d.RemainingArgs()
			if len(f.Handoff) == 0 {
				return nil, d.ArgErr()
			}
		case "strip_header":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return nil, d.ArgErr()
			}
			f.StripHeaders = append(f.StripHeaders, args...)
		case "dataset":
			ds, err := parseDataset(d)
			if err != nil {
				return nil, err
			}
			f.Datasets = append(f.Datasets, ds)
		case "provider":
			handler, err := httpcaddyfile.ParseSegmentAsSubroute(h.WithDispenser(d.NewFromNextSegment()))
			if err != nil {
				return nil, err
			}
			f.ProviderRaw = caddyconfig.JSONModuleObject(handler, "handler", "subroute", nil)
		default:
			return nil, d.Errf("unrecognized passerelle_front option %q", opt)
		}
	}
	return f, nil
}

func parseFranceConnect(d *caddyfile.Dispenser, fc *FranceConnectConfig) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.ArgErr()
		}
		switch opt {
		case "issuer":
			fc.Issuer = args[0]
		case "client_id":
			fc.ClientID = args[0]
		case "client_secret":
			fc.ClientSecret = args[0]
		case "acr":
			fc.ACR = args[0]
		case "scopes":
			fc.Scopes = append(fc.Scopes, args...)
		case "prompt":
			fc.Prompt = strings.Join(args, " ")
		case "signing_algs":
			fc.SigningAlgs = append(fc.SigningAlgs, args...)
		default:
			return d.Errf("unrecognized franceconnect option %q", opt)
		}
		if len(args) > 1 && opt != "scopes" && opt != "prompt" && opt != "signing_algs" {
			return d.Errf("franceconnect %s: one value", opt)
		}
	}
	return nil
}

func parseDataset(d *caddyfile.Dispenser) (Dataset, error) {
	var ds Dataset
	if !d.Args(&ds.Name, &ds.Route) || d.NextArg() {
		return ds, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		var v string
		if !d.AllArgs(&v) {
			return ds, d.ArgErr()
		}
		switch opt {
		case "recipient":
			ds.Recipient = v
		case "label":
			ds.Label = v
		case "remote":
			ds.Remote = v
		default:
			return ds, d.Errf("unrecognized dataset option %q", opt)
		}
	}
	return ds, nil
}

// Interface guards.
var (
	_ caddyhttp.MiddlewareHandler = (*Front)(nil)
	_ caddy.Provisioner           = (*Front)(nil)
)
