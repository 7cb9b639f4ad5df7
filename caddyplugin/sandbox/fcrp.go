package sandbox

import (
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcop"
)

// ServiceProvider is a service allowed to log citizens in at the stand-in
// (a FranceConnect "fournisseur de service"), with its client_secret_post
// credentials and its registered URIs.
type ServiceProvider struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	// RedirectURIs are the callbacks the service may ask for, compared exactly.
	RedirectURIs []string `json:"redirect_uris"`
	// PostLogoutRedirectURIs are its logout returns, compared exactly.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
}

// provisionLogin starts the login side when service providers are
// configured: package fcop, signing with the stand-in's key, with
// FranceConnect's test identities.
func (f *FranceConnect) provisionLogin() error {
	if len(f.ServiceProviders) == 0 {
		return nil
	}
	repl := caddy.NewReplacer()
	clients := make([]fcop.Client, 0, len(f.ServiceProviders))
	for _, sp := range f.ServiceProviders {
		if sp.ClientID == "" || sp.ClientSecret == "" || len(sp.RedirectURIs) == 0 {
			return errors.New("passerelle_sandbox_fc: service_provider: a client id, a secret and a redirect_uri are required")
		}
		clients = append(clients, fcop.Client{
			ID: sp.ClientID, Secret: repl.ReplaceKnown(sp.ClientSecret, ""),
			RedirectURIs: sp.RedirectURIs, PostLogoutRedirectURIs: sp.PostLogoutRedirectURIs,
		})
	}
	f.op = fcop.New(fcop.Config{Issuer: f.Issuer, Signer: f.issuer, Clients: clients, Now: f.now,
		UserInfoLatency: time.Duration(f.UserInfoLatency)})
	return nil
}

// loginToken returns the token_introspection of an access token the login
// side issued.
func (f *FranceConnect) loginToken(token string) (map[string]any, bool) {
	if f.op == nil {
		return nil, false
	}
	return f.op.Introspect(token)
}

// parseServiceProvider parses a service_provider block (syntax on
// parseFranceConnect).
func parseServiceProvider(d *caddyfile.Dispenser) (ServiceProvider, error) {
	var sp ServiceProvider
	if !d.Args(&sp.ClientID, &sp.ClientSecret) || d.NextArg() {
		return sp, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var dst *[]string
		switch d.Val() {
		case "redirect_uri":
			dst = &sp.RedirectURIs
		case "post_logout_redirect_uri":
			dst = &sp.PostLogoutRedirectURIs
		default:
			return sp, d.Errf("unrecognized service_provider option %q", d.Val())
		}
		args := d.RemainingArgs()
		if len(args) == 0 {
			return sp, d.ArgErr()
		}
		*dst = append(*dst, args...)
	}
	if len(sp.RedirectURIs) == 0 {
		return sp, fmt.Errorf("service_provider %s: redirect_uri is required", sp.ClientID)
	}
	return sp, nil
}
