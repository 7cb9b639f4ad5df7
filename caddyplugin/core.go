package caddyplugin

import (
	"crypto"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/outbound"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/ratelimit"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/tokencache"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/upstreamauth"
)

// cores shares the expensive, stateful part of the app across config
// reloads (SECURITY.md B12): rebuilding it on every reload would empty the
// token cache, forget the FranceConnect keys and open new Redis pools. The key
// is a hash of the configuration that shapes it, resolved secrets included.
var cores = caddy.NewUsagePool()

// core is the state shared by every handler of one configuration.
type core struct {
	verifier   *fcverify.Verifier
	cache      *tokencache.Cache
	redis      redis.UniversalClient
	publicJWKS []byte
	upstreams  map[string]upstreamauth.Source
	limiter    *ratelimit.Limiter
	ipKey      []byte // HMAC key of client addresses in limiter keys
}

// Destruct closes the Redis client when the last configuration using this
// core is unloaded.
func (c *core) Destruct() error {
	if c.redis != nil {
		return c.redis.Close()
	}
	return nil
}

// sandboxKey is the process-wide ephemeral decryption key used in sandbox
// mode when none is configured. It survives reloads so that the sandbox
// FranceConnect, which fetched our JWKS once, keeps encrypting to a key we hold.
var sandboxKey = sync.OnceValues(func() (jose.JSONWebKey, error) { return fcverify.GenerateKey("ECDH-ES") })

// sandboxSecret is the process-wide cache secret used in sandbox mode when
// none is configured (memory-only cache).
var sandboxSecret = sync.OnceValue(func() []byte { return randomBytes(32) })

// sandboxPseudonymKey keys citizen pseudonyms in sandbox mode when no key
// is configured: stable for the life of the process only.
var sandboxPseudonymKey = sync.OnceValue(func() []byte { return randomBytes(32) })

// resolved holds the secrets of one configuration, resolved once.
type resolved struct {
	fcSecret    string
	keys        []jose.JSONWebKey
	cacheSecret []byte
	redisPass   string
	upstreams   map[string][2]string // provider → {static header value, oauth2 client secret}
}

func (a *App) resolveAll() (*resolved, error) {
	var (
		r    = &resolved{upstreams: map[string][2]string{}}
		errs []error
		err  error
	)
	fc := a.FranceConnect
	if fc.Issuer == "" {
		errs = append(errs, errors.New("passerelle: franceconnect issuer: required"))
	}
	if fc.ClientID == "" {
		errs = append(errs, errors.New("passerelle: franceconnect client_id: required"))
	}
	if r.fcSecret, err = a.resolveSecret("franceconnect client_secret", fc.ClientSecret); err != nil {
		errs = append(errs, err)
	} else if r.fcSecret == "" {
		errs = append(errs, errors.New("passerelle: franceconnect client_secret: required"))
	}
	for i, ref := range fc.DecryptionKeys {
		field := fmt.Sprintf("franceconnect decryption_key[%d]", i)
		data, err := a.resolveSecret(field, ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		keys, err := fcverify.LoadKeys([]byte(data))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
			continue
		}
		r.keys = append(r.keys, keys...)
	}
	if len(fc.DecryptionKeys) == 0 {
		if a.production() {
			errs = append(errs, errors.New("passerelle: franceconnect decryption_key: required in production mode"))
		} else {
			k, err := sandboxKey()
			if err != nil {
				return nil, fmt.Errorf("passerelle: generating the sandbox decryption key: %w", err)
			}
			a.logger.Warn("no decryption key configured: using an ephemeral sandbox key")
			r.keys = append(r.keys, k)
		}
	}
	secret, err := a.resolveSecret("cache secret", a.Cache.Secret)
	switch {
	case err != nil:
		errs = append(errs, err)
	case secret != "" && len(secret) < 32:
		errs = append(errs, errors.New("passerelle: cache secret: at least 32 bytes"))
	case secret != "":
		r.cacheSecret = []byte(secret)
	case a.Cache.Redis != nil:
		errs = append(errs, errors.New("passerelle: cache secret: required with redis"))
	default:
		r.cacheSecret = sandboxSecret()
	}
	if a.Cache.Redis != nil {
		if r.redisPass, err = a.resolveSecret("cache redis password", a.Cache.Redis.Password); err != nil {
			errs = append(errs, err)
		}
	}
	for name, u := range a.Upstreams {
		var v [2]string
		switch {
		case u.OAuth2 != nil && u.HeaderName != "":
			errs = append(errs, fmt.Errorf("passerelle: upstream %s: header and oauth2 are exclusive", name))
		case u.OAuth2 != nil:
			v[1], err = a.resolveSecret("upstream "+name+" oauth2 client_secret", u.OAuth2.ClientSecret)
		case u.HeaderName != "":
			v[0], err = a.resolveSecret("upstream "+name+" header value", u.HeaderValue)
		default:
			err = fmt.Errorf("passerelle: upstream %s: a header or an oauth2 block is required", name)
		}
		if err != nil {
			errs = append(errs, err)
		}
		r.upstreams[name] = v
	}
	return r, errors.Join(errs...)
}

// deriveKey derives a 32-byte key for one purpose from the cache secret.
func deriveKey(secret []byte, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, "passerelle/"+purpose+"/v1", 32)
	if err != nil {
		panic(err) // only for impossible lengths
	}
	return k
}

func (a *App) loadCore() (*core, string, error) {
	r, err := a.resolveAll()
	if err != nil {
		return nil, "", err
	}
	a.fdSecret = r.fcSecret
	a.cacheSecretSum = sha256.Sum256(r.cacheSecret)
	// The credentials only: a new cap on calls in flight (max_in_flight)
	// needs no new core, nor resets the in-process quotas.
	credentials := make(map[string]UpstreamConfig, len(a.Upstreams))
	for name, u := range a.Upstreams {
		c := *u
		c.MaxInFlight = 0
		credentials[name] = c
	}
	shape, _ := json.Marshal(struct {
		FC        FranceConnectConfig
		Cache     CacheConfig
		Upstreams map[string]UpstreamConfig
		Mode      string
	}{a.FranceConnect, a.Cache, credentials, a.Mode})
	h := sha256.New()
	h.Write(shape)
	// Secrets enter the key only through a hash, never in clear.
	for _, s := range []string{r.fcSecret, string(r.cacheSecret), r.redisPass} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	for _, name := range slices.Sorted(maps.Keys(r.upstreams)) { // map order varies: sort
		v := r.upstreams[name]
		h.Write([]byte(name + "\x00" + v[0] + "\x00" + v[1] + "\x00"))
	}
	for _, k := range r.keys {
		tp, _ := k.Thumbprint(crypto.SHA256)
		h.Write(tp)
	}
	key := "passerelle-core-" + hex.EncodeToString(h.Sum(nil))
	v, _, err := cores.LoadOrNew(key, func() (caddy.Destructor, error) { return a.newCore(r) })
	if err != nil {
		return nil, "", err
	}
	return v.(*core), key, nil
}

func (a *App) newCore(r *resolved) (*core, error) {
	fc := a.FranceConnect
	c := &core{upstreams: map[string]upstreamauth.Source{}}
	var err error
	c.verifier, err = fcverify.New(fcverify.Config{
		Issuer:              fc.Issuer,
		CheckTokenURL:       fc.CheckTokenURL,
		JWKSURL:             fc.JWKSURL,
		ClientID:            fc.ClientID,
		ClientSecret:        r.fcSecret,
		DecryptionKeys:      r.keys,
		KeyAlgorithms:       fc.KeyAlgorithms,
		SigningAlgorithms:   fc.SigningAlgorithms,
		Skew:                time.Duration(fc.Skew),
		Timeout:             time.Duration(fc.Timeout),
		JWKSRefreshCooldown: time.Duration(fc.JWKSRefreshCooldown),
	})
	if err != nil {
		return nil, fmt.Errorf("passerelle: franceconnect: %w", err)
	}
	if c.publicJWKS, err = fcverify.PublicJWKS(r.keys); err != nil {
		return nil, fmt.Errorf("passerelle: franceconnect decryption keys: %w", err)
	}
	if rc := a.Cache.Redis; rc != nil {
		opts := tokencache.RedisOptions{
			Addrs: rc.Addrs, MasterName: rc.MasterName, Username: rc.Username,
			Password: r.redisPass, DB: rc.DB,
		}
		if rc.TLS {
			opts.TLS = outbound.TLSConfig() // SECURITY.md E03
			opts.TLS.ServerName = rc.TLSServerName
		}
		routeRedisLogs()
		c.redis = tokencache.NewRedisClient(opts)
	}
	c.cache, err = tokencache.New(tokencache.Config{
		MaxEntries:  a.Cache.MaxEntries,
		TTLCap:      time.Duration(a.Cache.TTLCap),
		NegativeTTL: time.Duration(a.Cache.NegativeTTL),
		Skew:        time.Duration(fc.Skew),
		// Bound to the FranceConnect configuration: instances that share
		// a Redis and a cache secret but check tokens with another issuer
		// (the integration platform's) or as another data provider never
		// read each other's entries.
		KeySecret:   deriveKey(r.cacheSecret, "fc-cache-key|"+fc.Issuer+"|"+fc.ClientID),
		ValueSecret: deriveKey(r.cacheSecret, "fc-cache-value|"+fc.Issuer+"|"+fc.ClientID),
		Redis:       c.redis,
		Logger:      a.logger.Named("cache"),
		OnRedisError: func(kind string) {
			metricCacheErrors.WithLabelValues(kind).Inc()
		},
	})
	if err != nil {
		_ = c.Destruct()
		return nil, fmt.Errorf("passerelle: cache: %w", err)
	}
	c.ipKey = deriveKey(r.cacheSecret, "ratelimit-ip")
	c.limiter, err = ratelimit.New(ratelimit.Config{
		Redis:        c.redis,
		OnRedisError: func() { metricRateLimitRedisErrors.Inc() },
		Local:        localQuotas(),
	})
	if err != nil {
		_ = c.Destruct()
		return nil, fmt.Errorf("passerelle: rate limits: %w", err)
	}
	for name, u := range a.Upstreams {
		var src upstreamauth.Source
		if u.OAuth2 != nil {
			if a.production() && !strings.HasPrefix(u.OAuth2.TokenURL, "https://") {
				err = fmt.Errorf("passerelle: upstream %s oauth2 token_url: https is required in production", name)
			} else {
				src, err = upstreamauth.NewOAuth2(upstreamauth.OAuth2Config{
					Name: name, TokenURL: u.OAuth2.TokenURL, ClientID: u.OAuth2.ClientID,
					ClientSecret: r.upstreams[name][1], Scopes: u.OAuth2.Scopes,
					Redis: c.redis, SealSecret: deriveKey(r.cacheSecret, "upstream-token"),
					HTTPClient: &http.Client{Timeout: 5 * time.Second},
				})
			}
		} else {
			src, err = upstreamauth.NewStaticHeader(u.HeaderName, r.upstreams[name][0])
		}
		if err != nil {
			_ = c.Destruct()
			return nil, fmt.Errorf("passerelle: upstream %s: %w", name, err)
		}
		c.upstreams[name] = src
	}
	return c, nil
}
