package caddyplugin

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/ratelimit"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("passerelle", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("passerelle", parseHandler)
	httpcaddyfile.RegisterDirectiveOrder("passerelle", httpcaddyfile.After, "forward_auth")
	httpcaddyfile.RegisterHandlerDirective("passerelle_jwks", parseJWKSHandler)
	httpcaddyfile.RegisterDirectiveOrder("passerelle_jwks", httpcaddyfile.Before, "respond")
}

// parseGlobalOption parses the `passerelle` global option into the app:
//
//	passerelle {
//	    mode production|sandbox
//	    franceconnect {
//	        issuer             <url>
//	        checktoken_url     <url>              # default <issuer>/checktoken
//	        jwks_url           <url>              # default <issuer>/jwks
//	        client_id          <FD client id>
//	        client_secret      <{env.NAME}|{file.path}>
//	        decryption_key     <{file.path}|{env.NAME}>   # repeatable; JWK, JWKS or PEM
//	        key_algorithms     <RSA-OAEP-256|RSA-OAEP|ECDH-ES...>
//	        signing_algorithms <ES256|RS256...>
//	        skew               <duration>
//	        timeout            <duration>
//	        jwks_refresh_cooldown <duration>  # 1s to 5m, default 30s
//	    }
//	    habilitations <path> [<reload interval>]
//	    catalogue     <path>
//	    cache {
//	        max_entries  <n>
//	        ttl_cap      <duration>
//	        negative_ttl <duration>
//	        secret       <{env.NAME}|{file.path}>
//	        redis {
//	            addrs       <host:port...>
//	            master_name <name>            # Sentinel
//	            username    <name>
//	            password    <{env.NAME}|{file.path}>
//	            db          <n>
//	            tls         [<server name>]
//	        }
//	    }
//	    rate_limit {
//	        habilitation       <n>/s|m|h   # default 20/s; a habilitation's rate_limit overrides it
//	        client_ip          <n>/s|m|h   # default 1000/m per client network: an IPv4 address, an IPv6 prefix
//	        client_ipv6_prefix <bits>      # length of that IPv6 prefix, 32 to 128 (default 64)
//	        failed_auth        <n>/s|m|h|off # failed authentications per client network, default 20/m (sandbox mode: off);
//	                                       # once spent, a token not in the cache gets 429 before FranceConnect is asked
//	        instances          <n>         # gateways sharing the quotas through Redis (default 1): while Redis is
//	                                       # unreachable, each enforces 1/n of every quota (autoscaled: the maximum)
//	        citizen            <n>/s|m|h|off # per citizen and habilitation, default 30/h (sandbox mode: off); a refusal is a security alert
//	    }
//	    audit {
//	        pseudonym_key         <{env.NAME}|{file.path}>
//	        pseudonym_key_version <version>
//	    }
//	    datapass { … }                 # live habilitations: DataPass webhooks and resync (datapass.go)
//	    provider_timeout <duration>    # each whole provider call, a retry included: 1s to 15s (the default)
//	    max_in_flight <n>              # this instance's data requests at once, fronts' dataset calls included:
//	                                   # 1 to 100000 (default 4096); past it, 503 at once
//	    upstream <provider> {          # a provider name of the catalogue; quote names with spaces ("France Travail")
//	        header <name> <{env.NAME}|{file.path}>
//	        oauth2 {
//	            token_url     <url>
//	            client_id     <id>
//	            client_secret <{env.NAME}|{file.path}>
//	            scopes        <scope...>
//	        }
//	        max_in_flight <n>          # this instance's calls in flight to the provider, 1 to 10000 (default 64); past it, 503 at once
//	    }
//	}
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	app := new(App)
	if existing != nil {
		return nil, d.Err("passerelle: the global option may appear only once")
	}
	d.Next() // the option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "mode":
			err = oneArg(d, &app.Mode)
		case "franceconnect":
			err = parseFranceConnect(d, &app.FranceConnect)
		case "habilitations":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return nil, d.ArgErr()
			}
			app.Habilitations = args[0]
			if len(args) == 2 {
				dur, err := caddy.ParseDuration(args[1])
				if err != nil {
					return nil, d.Errf("habilitations reload interval: %v", err)
				}
				app.HabilitationsReload = caddy.Duration(dur)
			}
		case "catalogue":
			err = oneArg(d, &app.Catalogue)
		case "provider_timeout":
			err = durationArg(d, &app.ProviderTimeout)
		case "max_in_flight":
			var n int
			if err = intArg(d, &n); err == nil && (n < 1 || n > MaxRequestsInFlight) {
				err = d.Errf("max_in_flight: 1 to %d", MaxRequestsInFlight)
			}
			app.MaxInFlight = int64(n)
		case "cache":
			err = parseCache(d, &app.Cache)
		case "rate_limit":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			rl := &app.RateLimits
			for n2 := d.Nesting(); d.NextBlock(n2); {
				switch d.Val() {
				case "habilitation":
					err = oneArg(d, &rl.Habilitation)
				case "client_ip":
					err = oneArg(d, &rl.ClientIP)
				case "citizen":
					err = oneArg(d, &rl.Citizen)
				case "failed_auth":
					err = oneArg(d, &rl.FailedAuth)
				case "instances":
					if err = intArg(d, &rl.Instances); err == nil && (rl.Instances < 1 || rl.Instances > maxInstances) {
						err = d.Errf("instances: want 1 to %d, got %d", maxInstances, rl.Instances)
					}
				case "client_ipv6_prefix":
					if err = intArg(d, &rl.ClientIPv6Prefix); err == nil &&
						(rl.ClientIPv6Prefix < ratelimit.MinClientIPv6Prefix || rl.ClientIPv6Prefix > ratelimit.MaxClientIPv6Prefix) {
						err = d.Errf("client_ipv6_prefix: want %d to %d bits, got %d",
							ratelimit.MinClientIPv6Prefix, ratelimit.MaxClientIPv6Prefix, rl.ClientIPv6Prefix)
					}
				default:
					err = d.Errf("unrecognized rate_limit option %q", d.Val())
				}
				if err != nil {
					return nil, err
				}
			}
		case "audit":
			err = parseFields(d, map[string]*string{
				"pseudonym_key": &app.Audit.PseudonymKey, "pseudonym_key_version": &app.Audit.PseudonymKeyVersion})
		case "datapass":
			app.DataPass, err = parseDataPass(d)
		case "upstream":
			var name string
			if err := oneArgKeepBlock(d, &name); err != nil {
				return nil, err
			}
			if app.Upstreams == nil {
				app.Upstreams = map[string]*UpstreamConfig{}
			}
			if app.Upstreams[name] != nil {
				return nil, d.Errf("upstream %s: declared twice", name)
			}
			u := new(UpstreamConfig)
			app.Upstreams[name] = u
			err = parseUpstream(d, u)
		default:
			return nil, d.Errf("unrecognized passerelle option %q", d.Val())
		}
		if err != nil {
			return nil, err
		}
	}
	return httpcaddyfile.App{Name: "passerelle", Value: caddyconfig.JSON(app, nil)}, nil
}

func parseFranceConnect(d *caddyfile.Dispenser, fc *FranceConnectConfig) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "issuer":
			err = oneArg(d, &fc.Issuer)
		case "checktoken_url":
			err = oneArg(d, &fc.CheckTokenURL)
		case "jwks_url":
			err = oneArg(d, &fc.JWKSURL)
		case "client_id":
			err = oneArg(d, &fc.ClientID)
		case "client_secret":
			err = oneArg(d, &fc.ClientSecret)
		case "decryption_key":
			var k string
			err = oneArg(d, &k)
			fc.DecryptionKeys = append(fc.DecryptionKeys, k)
		case "key_algorithms":
			err = someArgs(d, &fc.KeyAlgorithms)
		case "signing_algorithms":
			err = someArgs(d, &fc.SigningAlgorithms)
		case "skew":
			err = durationArg(d, &fc.Skew)
		case "timeout":
			err = durationArg(d, &fc.Timeout)
		case "jwks_refresh_cooldown":
			err = durationArg(d, &fc.JWKSRefreshCooldown)
		default:
			return d.Errf("unrecognized franceconnect option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func parseCache(d *caddyfile.Dispenser, c *CacheConfig) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "max_entries":
			err = intArg(d, &c.MaxEntries)
		case "ttl_cap":
			err = durationArg(d, &c.TTLCap)
		case "negative_ttl":
			err = durationArg(d, &c.NegativeTTL)
		case "secret":
			err = oneArg(d, &c.Secret)
		case "redis":
			if d.NextArg() {
				return d.ArgErr()
			}
			c.Redis = new(RedisConfig)
			err = parseRedis(d, c.Redis)
		default:
			return d.Errf("unrecognized cache option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func parseRedis(d *caddyfile.Dispenser, rc *RedisConfig) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "addrs":
			err = someArgs(d, &rc.Addrs)
		case "master_name":
			err = oneArg(d, &rc.MasterName)
		case "username":
			err = oneArg(d, &rc.Username)
		case "password":
			err = oneArg(d, &rc.Password)
		case "db":
			err = intArg(d, &rc.DB)
		case "tls":
			rc.TLS = true
			args := d.RemainingArgs()
			if len(args) > 1 {
				return d.ArgErr()
			}
			if len(args) == 1 {
				rc.TLSServerName = args[0]
			}
		default:
			return d.Errf("unrecognized redis option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func parseUpstream(d *caddyfile.Dispenser, u *UpstreamConfig) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "header":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.ArgErr()
			}
			u.HeaderName, u.HeaderValue = args[0], args[1]
		case "max_in_flight":
			var n int
			if err := intArg(d, &n); err != nil {
				return err
			}
			if n < 1 || n > MaxProviderInFlight {
				return d.Errf("max_in_flight: 1 to %d", MaxProviderInFlight)
			}
			u.MaxInFlight = int64(n)
		case "oauth2":
			if d.NextArg() {
				return d.ArgErr()
			}
			o := new(OAuth2Config)
			u.OAuth2 = o
			for n2 := d.Nesting(); d.NextBlock(n2); {
				var err error
				switch d.Val() {
				case "token_url":
					err = oneArg(d, &o.TokenURL)
				case "client_id":
					err = oneArg(d, &o.ClientID)
				case "client_secret":
					err = oneArg(d, &o.ClientSecret)
				case "scopes":
					err = someArgs(d, &o.Scopes)
				default:
					return d.Errf("unrecognized oauth2 option %q", d.Val())
				}
				if err != nil {
					return err
				}
			}
		default:
			return d.Errf("unrecognized upstream option %q", d.Val())
		}
	}
	return nil
}

// parseHandler parses the `passerelle` directive:
//
//	passerelle [<endpoint id...>] {
//	    endpoints          <endpoint id...>
//	    max_response_bytes <n>
//	}
//
// Without endpoint ids the handler serves every endpoint of the catalogue,
// matched exactly on the request path.
func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler (syntax on parseHandler).
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	h.Endpoints = append(h.Endpoints, d.RemainingArgs()...)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "endpoints":
			var ids []string
			err = someArgs(d, &ids)
			h.Endpoints = append(h.Endpoints, ids...)
		case "max_response_bytes":
			err = intArg(d, &h.MaxResponseBytes)
		default:
			return d.Errf("unrecognized passerelle subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// parseJWKSHandler parses the `passerelle_jwks` directive, which takes no
// argument and serves the gateway's public encryption JWKS:
//
//	handle /.well-known/jwks.json {
//	    passerelle_jwks
//	}
func parseJWKSHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	j := new(JWKSHandler)
	err := j.UnmarshalCaddyfile(h.Dispenser)
	return j, err
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler.
func (j *JWKSHandler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return parseNoArgs(d, "passerelle_jwks")
}

// parseNoArgs reads a directive that takes no argument and no block.
func parseNoArgs(d *caddyfile.Dispenser, name string) error {
	d.Next()
	if d.NextArg() || d.NextBlock(d.Nesting()) {
		return d.Errf("%s takes no argument and no block", name)
	}
	return nil
}

// parseFields reads a block of one-argument options.
func parseFields(d *caddyfile.Dispenser, fields map[string]*string) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		dst, ok := fields[d.Val()]
		if !ok {
			return d.Errf("unrecognized option %q", d.Val())
		}
		if err := oneArg(d, dst); err != nil {
			return err
		}
	}
	return nil
}

func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// oneArgKeepBlock reads one argument that a block follows.
func oneArgKeepBlock(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func someArgs(d *caddyfile.Dispenser, dst *[]string) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	*dst = append(*dst, args...)
	return nil
}

func intArg(d *caddyfile.Dispenser, dst *int) error {
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return d.Errf("want a non-negative integer, got %q", s)
	}
	*dst = n
	return nil
}

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("want a duration: %v", err)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// Interface guards.
var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*JWKSHandler)(nil)
)
