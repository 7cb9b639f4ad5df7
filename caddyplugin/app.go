package caddyplugin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin/auditseal"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/pings"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/ratelimit"
	"github.com/passerelle-gw/passerelle/caddyplugin/pipeline"
	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/habilitation"

	// The passerelle_buffered log writer of the audit trail; data routes stop
	// while it refuses records (Refusing).
	"github.com/passerelle-gw/passerelle/caddyplugin/logbuffer"
)

func init() {
	caddy.RegisterModule(App{})
}

// Modes of the gateway (SECURITY.md H03).
const (
	ModeProduction = "production"
	ModeSandbox    = "sandbox"
)

// App is the `passerelle` Caddy app: the site-independent settings and the
// shared state of every passerelle handler — the FranceConnect client, the
// token cache, the habilitation registry, the endpoint catalogue and the
// provider credentials. It is configured by the `passerelle` global option
// (see caddyfile.go for the syntax).
type App struct {
	// Mode is "production" (the default) or "sandbox". Production refuses
	// literal secrets, plain-HTTP FranceConnect URLs, ephemeral keys, loose
	// time bounds and the sandbox modules.
	Mode string `json:"mode,omitempty"`
	// FranceConnect configures the checktoken client (DOMAIN.md §2).
	FranceConnect FranceConnectConfig `json:"franceconnect"`
	// Habilitations is the path of the DataPass habilitations YAML file.
	Habilitations string `json:"habilitations,omitempty"`
	// HabilitationsReload is how often the file is checked for changes
	// (default 5s, at most 5m).
	HabilitationsReload caddy.Duration `json:"habilitations_reload,omitempty"`
	// Catalogue is the path of an endpoint catalogue replacing the embedded one.
	Catalogue string `json:"catalogue,omitempty"`
	// Cache configures the checktoken cache.
	Cache CacheConfig `json:"cache,omitzero"`
	// Upstreams holds the platform credential of each provider, by the
	// provider name used in the catalogue (e.g. "CNAV").
	Upstreams map[string]*UpstreamConfig `json:"upstreams,omitempty"`
	// Audit configures the audit trail's citizen pseudonyms.
	Audit AuditConfig `json:"audit,omitzero"`
	// RateLimits sets the default quotas (SECURITY.md F03, F04).
	RateLimits RateLimitConfig `json:"rate_limits,omitzero"`
	// DataPass makes the habilitations live: webhooks and resync
	// (datapass.go).
	DataPass *DataPassConfig `json:"datapass,omitempty"`
	// ProviderTimeout bounds each whole provider call, from its
	// credential to the last byte of its answer, a retry included
	// (SECURITY.md E08): 1s to 15s, default 15s. reverse_proxy's transport
	// timeouts bound the phases within it.
	ProviderTimeout caddy.Duration `json:"provider_timeout,omitempty"`
	// MaxInFlight caps the requests this instance takes on at once
	// (SECURITY.md F07): those every passerelle handler routes to a
	// catalogue endpoint and the fronts' in-process dataset calls, not the
	// utility routes nor the fronts' own requests. 1 to 100 000, default
	// 4 096. Past it a request is refused at once, 503 with Retry-After,
	// and counted in requests_shed_total{cause="in_flight"}.
	MaxInFlight int64 `json:"max_in_flight,omitempty"`

	logger   *zap.Logger
	audit    *zap.Logger          // passerelle.audit (the audit trail: see package pipeline)
	cat      *catalogue.Catalogue // shared with configurations that loaded the same catalogue (dedup.go)
	catKey   string               // cat's key in catalogues
	pings    *pings.Tracker       // provider status, shared by configurations with the same providers
	watcher  *habilitation.Watcher
	registry *habilitation.Overlaid // the watcher's registry, overlaid by DataPass's records
	datapass *dataPassState         // nil without DataPass
	core     *core
	coreKey  string
	fdSecret string // resolved FD client secret, handed only to the sandbox
	// cacheSecretSum is the SHA-256 of the resolved cache secret, that the
	// pseudonym key must not equal (the secret itself is not kept here).
	cacheSecretSum [sha256.Size]byte
	shared         pipeline.Config // what every handler's pipeline shares
	cancel         context.CancelFunc
}

// FranceConnectConfig configures FranceConnect v2 checktoken verification.
type FranceConnectConfig struct {
	// Issuer is the exact `iss` of FranceConnect's answers, e.g.
	// https://fcp-low.integ01.dev-franceconnect.fr/api/v2.
	Issuer string `json:"issuer,omitempty"`
	// CheckTokenURL defaults to Issuer + "/checktoken".
	CheckTokenURL string `json:"checktoken_url,omitempty"`
	// JWKSURL defaults to Issuer + "/jwks".
	JWKSURL string `json:"jwks_url,omitempty"`
	// ClientID is the gateway's data-provider (FD) client id.
	ClientID string `json:"client_id,omitempty"`
	// ClientSecret is the FD client secret: {env.NAME} or {file.path}.
	ClientSecret string `json:"client_secret,omitempty"`
	// DecryptionKeys are the gateway's private keys (JWK, JWKS or PEM), each
	// a {file.path} or {env.NAME} reference. Several keys allow rotation.
	DecryptionKeys []string `json:"decryption_keys,omitempty"`
	// KeyAlgorithms restricts the JWE key algorithms (RSA-OAEP-256,
	// RSA-OAEP, ECDH-ES).
	KeyAlgorithms []string `json:"key_algorithms,omitempty"`
	// SigningAlgorithms restricts the JWS algorithms (ES256, RS256).
	SigningAlgorithms []string `json:"signing_algorithms,omitempty"`
	// Skew is the allowed clock skew (default 10s, production at most 30s).
	Skew caddy.Duration `json:"skew,omitempty"`
	// Timeout bounds one checktoken call (default 2s).
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// JWKSRefreshCooldown is the least time between two fetches of
	// FranceConnect's JWKS (default 30s, from 1s to 5m): a token signed
	// with a key the gateway does not hold triggers a fetch, at most once
	// per cooldown (SECURITY.md A17), so a rotated signing key is accepted
	// at most one cooldown after the previous fetch.
	JWKSRefreshCooldown caddy.Duration `json:"jwks_refresh_cooldown,omitempty"`
}

// CacheConfig configures the two-tier checktoken cache.
type CacheConfig struct {
	// MaxEntries bounds the in-process cache (default 100000).
	MaxEntries int `json:"max_entries,omitempty"`
	// TTLCap caps how long verified facts are reused (default 30s,
	// production at most 60s); never beyond the token's exp.
	TTLCap caddy.Duration `json:"ttl_cap,omitempty"`
	// NegativeTTL is how long an inactive token is remembered (default 5s,
	// at most 10s).
	NegativeTTL caddy.Duration `json:"negative_ttl,omitempty"`
	// Secret keys the HMAC of Redis keys and the sealing of Redis values
	// ({env.NAME} or {file.path}, at least 32 bytes). Required with Redis.
	Secret string `json:"secret,omitempty"`
	// Redis enables the shared second tier.
	Redis *RedisConfig `json:"redis,omitempty"`
}

// RedisConfig selects a single node, Sentinel (MasterName set) or Cluster
// (several Addrs) through go-redis' UniversalClient.
type RedisConfig struct {
	Addrs      []string `json:"addrs,omitempty"`
	MasterName string   `json:"master_name,omitempty"`
	Username   string   `json:"username,omitempty"`
	// Password is a {env.NAME} or {file.path} reference.
	Password string `json:"password,omitempty"`
	DB       int    `json:"db,omitempty"`
	// TLS enables TLS with certificate verification.
	TLS bool `json:"tls,omitempty"`
	// TLSServerName overrides the name checked in the server certificate.
	TLSServerName string `json:"tls_server_name,omitempty"`
}

// UpstreamConfig is the platform credential sent to one provider: either a
// static header or an OAuth2 client-credentials token; and the cap on the
// calls in flight to it.
type UpstreamConfig struct {
	// HeaderName and HeaderValue set a static credential header, e.g.
	// Authorization / "Bearer {env.CNAV_TOKEN}" (the value is a secret).
	HeaderName  string `json:"header_name,omitempty"`
	HeaderValue string `json:"header_value,omitempty"`
	// OAuth2 fetches a client-credentials token, shared through Redis.
	OAuth2 *OAuth2Config `json:"oauth2,omitempty"`
	// MaxInFlight caps this instance's calls in flight to the provider,
	// 1 to MaxProviderInFlight (0: DefaultProviderInFlight, SECURITY.md
	// F07); a call past it gets 503 at once. A provider answering in L
	// seconds serves at most MaxInFlight / L calls a second.
	MaxInFlight int64 `json:"max_in_flight,omitempty"`
}

// OAuth2Config configures a client-credentials token source.
type OAuth2Config struct {
	TokenURL     string   `json:"token_url,omitempty"`
	ClientID     string   `json:"client_id,omitempty"`
	ClientSecret string   `json:"client_secret,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
}

// RateLimitConfig sets the default quotas, written "<n>/s", "<n>/m" or
// "<n>/h". They are shared through Redis when the cache has one, enforced in
// process otherwise, and per instance while Redis is unreachable.
type RateLimitConfig struct {
	// Habilitation is the quota of each habilitation unless its own
	// rate_limit says otherwise (default "20/s", API Particulier's per-token
	// limit).
	Habilitation string `json:"habilitation,omitempty"`
	// ClientIP is the quota of each client address, checked before
	// FranceConnect is asked (default "1000/m", API Particulier's per-IP
	// limit). The address is Caddy's client IP (trusted_proxies aware),
	// aggregated to its network (ClientIPv6Prefix) and hashed before it is
	// used as a Redis key.
	ClientIP string `json:"client_ip,omitempty"`
	// FailedAuth is the quota of failed authentications of each client
	// network (default "20/m" in production mode, "off" in sandbox mode,
	// whose tests try many bad tokens; "off": none): each checktoken call
	// takes one before FranceConnect is asked and gives it back only when
	// FranceConnect accepts the token; none left, the token is refused 429,
	// so that a flood of junk tokens is never relayed to FranceConnect
	// (SECURITY.md F04). Tokens in the cache are served without it.
	FailedAuth string `json:"failed_auth,omitempty"`
	// Instances is how many gateway instances share the quotas through
	// Redis (default 1): while Redis is unreachable, each enforces 1/n of
	// every quota (rounded down, at least 1 request), so that the cluster
	// stays within it (SECURITY.md F06). With an autoscaler, its maximum.
	Instances int `json:"instances,omitempty"`
	// ClientIPv6Prefix is the length of the IPv6 prefix that shares one
	// client_ip quota, from 32 to 128 (default 64: a subscriber commonly
	// holds a whole /64). IPv4 addresses, IPv4-mapped ones included, count
	// one by one (/32).
	ClientIPv6Prefix int `json:"client_ipv6_prefix,omitempty"`
	// Citizen is the quota of one citizen within one habilitation (default
	// "30/h" in production mode, "off" in sandbox mode, whose few test
	// identities serve every test; "off": none): the FranceConnect token's citizen, or the
	// person an identite or identifiant call looks up, known by its
	// pseudonym (SECURITY.md F05). A refusal is a security alert: a caller
	// asking about the same person again and again may be enumerating.
	Citizen string `json:"citizen,omitempty"`
}

// AuditConfig configures the pseudonymous citizen key of audit records
// (SECURITY.md G02).
type AuditConfig struct {
	// PseudonymKey keys HMAC-SHA256(iss ‖ sub): {env.NAME} or {file.path},
	// at least 32 bytes, separate from every cache secret. Required in
	// production; sandbox mode draws a random one per process.
	PseudonymKey string `json:"pseudonym_key,omitempty"`
	// PseudonymKeyVersion tags records with the key that made them
	// (default "v1"): rotate yearly, keep old keys only as long as the
	// records they cover.
	PseudonymKeyVersion string `json:"pseudonym_key_version,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "passerelle", New: func() caddy.Module { return new(App) }}
}

func (a *App) production() bool { return a.Mode != ModeSandbox }

// Provision loads the catalogue and the habilitations and takes the shared
// core (verifier, caches, credentials) from the usage pool. It makes no
// network call: JWKS and tokens are fetched on first use.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	// The audit logger descends from the app's: Caddy routes a module's
	// loggers to the logs whose include/exclude match the module, so a
	// `log { include passerelle.audit }` block receives it (a logger from
	// caddy.Log() would reach the default log only).
	a.audit = countWriteErrors(a.logger.Named("audit"))
	if a.Mode == "" {
		a.Mode = ModeProduction
	}
	if a.Mode != ModeProduction && a.Mode != ModeSandbox {
		return fmt.Errorf("passerelle: mode: want %q or %q", ModeProduction, ModeSandbox)
	}
	a.logger.Info("passerelle mode", zap.String("mode", a.Mode))
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("passerelle: registering metrics: %w", err)
	}

	var err error
	if a.cat, a.catKey, err = loadCatalogue(a.Catalogue); err != nil {
		return fmt.Errorf("passerelle: loading catalogue: %w", err)
	}
	a.pings = trackerFor(a.cat)
	for name, u := range a.Upstreams {
		if _, ok := a.cat.Providers[name]; !ok {
			return fmt.Errorf("passerelle: upstream %s: not a provider of the catalogue", name)
		}
		if u == nil {
			return fmt.Errorf("passerelle: upstream %s: a header or an oauth2 block is required", name)
		}
	}

	if a.Habilitations == "" {
		return errors.New("passerelle: habilitations: a habilitations file is required")
	}
	interval := time.Duration(a.HabilitationsReload)
	if interval == 0 {
		interval = 5 * time.Second
	}
	if interval < 0 || interval > 5*time.Minute {
		return errors.New("passerelle: habilitations_reload: want a duration between 0 and 5m")
	}
	opts := habilitation.WatchOptions{Log: func(msg string, err error) {
		if err != nil {
			metricHabilitationReloads.WithLabelValues("refused").Inc()
			a.logger.Error(msg, zap.Error(err))
			return
		}
		metricHabilitationReloads.WithLabelValues("ok").Inc()
		a.logger.Info(msg)
	}}
	if a.production() {
		// The public sandbox registry (its API token is in the README)
		// never serves production, at start or on a reload.
		opts.Check = (*habilitation.Registry).CheckProduction
	}
	if a.watcher, err = habilitation.NewWatcher(a.Habilitations, interval, opts); err != nil {
		return fmt.Errorf("passerelle: loading habilitations: %w", err)
	}
	if err := registerCollector(ctx.GetMetricsRegistry(), habilitationState{a.watcher}); err != nil {
		return fmt.Errorf("passerelle: registering metrics: %w", err)
	}

	a.core, a.coreKey, err = a.loadCore()
	if err != nil {
		return err
	}
	if err := a.loadQuotas(); err != nil {
		return err
	}
	if err := a.loadPseudonymizer(); err != nil {
		return err
	}
	if err := a.loadDataPass(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	a.loadPipeline()
	return nil
}

// loadPipeline completes the configuration every handler's pipeline
// shares: loadQuotas and loadPseudonymizer set their part. Handlers set
// their own loggers.
func (a *App) loadPipeline() {
	s := &a.shared
	s.Catalogue, s.Registry = a.cat, a.Registry
	s.Cache, s.Verifier, s.Limiter = a.core.cache, a.core.verifier, a.core.limiter
	s.ClientIPKey, s.ClientIPv6Prefix = a.core.ipKey, a.RateLimits.ClientIPv6Prefix
	s.Credentials, s.Pings, s.Guards = a.core.upstreams, a.pings, guardsFor(a.cat)
	s.Retries, s.Unsent = budgetsFor(a.cat), unsentError
	s.Logger, s.Audit, s.AuditRefusing = a.logger, a.audit, logbuffer.Refusing
	s.MemoryPressure, s.InFlight = memoryGuard().Pressure, requestsInFlight
	s.Now, s.ClientIP, s.ErrorStatus = time.Now, clientIP, errorStatus
	s.ProviderTimeout = time.Duration(a.ProviderTimeout)
}

// loadQuotas parses the default quotas of the pipeline (the citizen quota
// may be "off", its default in sandbox mode) and sets the IPv6 prefix of
// client addresses (default 64).
func (a *App) loadQuotas() error {
	parse := func(field, v, def string) (ratelimit.Quota, error) {
		if v == "" {
			v = def
		}
		r, err := habilitation.ParseRate(v)
		if err != nil {
			return ratelimit.Quota{}, fmt.Errorf("passerelle: rate_limit %s: %w", field, err)
		}
		return ratelimit.Quota{Requests: r.Requests, Per: r.Per}, nil
	}
	var err error
	if a.shared.HabilitationQuota, err = parse("habilitation", a.RateLimits.Habilitation, "20/s"); err != nil {
		return err
	}
	if a.shared.ClientQuota, err = parse("client_ip", a.RateLimits.ClientIP, "1000/m"); err != nil {
		return err
	}
	failedAuth := a.RateLimits.FailedAuth
	switch {
	case failedAuth == "" && !a.production():
		failedAuth = "off"
	case failedAuth == "off" && a.production():
		// SECURITY.md F04 is a MUST: raise it for a busy caller, never
		// drop it.
		return errors.New("passerelle: rate_limit failed_auth: off is refused in production mode (raise it instead)")
	}
	if failedAuth != "off" {
		if a.shared.FailedAuthQuota, err = parse("failed_auth", failedAuth, "20/m"); err != nil {
			return err
		}
	}
	citizen := a.RateLimits.Citizen
	if citizen == "" && !a.production() {
		citizen = "off" // the sandbox's few test identities serve every test and demo
	}
	if citizen != "off" {
		if a.shared.CitizenQuota, err = parse("citizen", citizen, "30/h"); err != nil {
			return err
		}
	}
	if n := a.RateLimits.Instances; n < 0 || n > maxInstances {
		return fmt.Errorf("passerelle: rate_limit instances: want 1 to %d, got %d", maxInstances, n)
	}
	switch bits := a.RateLimits.ClientIPv6Prefix; {
	case bits == 0:
		a.RateLimits.ClientIPv6Prefix = ratelimit.DefaultClientIPv6Prefix
	case bits < ratelimit.MinClientIPv6Prefix || bits > ratelimit.MaxClientIPv6Prefix:
		return fmt.Errorf("passerelle: rate_limit client_ipv6_prefix: want %d to %d bits, got %d",
			ratelimit.MinClientIPv6Prefix, ratelimit.MaxClientIPv6Prefix, bits)
	}
	return nil
}

// maxInstances bounds rate_limit instances.
const maxInstances = 1000

// loadPseudonymizer resolves the audit pseudonym key.
func (a *App) loadPseudonymizer() error {
	key, err := a.resolveSecret("audit pseudonym_key", a.Audit.PseudonymKey)
	switch {
	case err != nil:
		return err
	case key == "" && a.production():
		return errors.New("passerelle: audit pseudonym_key: required in production mode")
	case key == "":
		key = string(sandboxPseudonymKey())
	case len(key) < 32:
		return errors.New("passerelle: audit pseudonym_key: at least 32 bytes")
	case sha256.Sum256([]byte(key)) == a.cacheSecretSum:
		// One key for both would let whoever holds the cache's secret
		// (every instance, Redis's sealed values) link audit records to
		// citizens (SECURITY.md G02).
		return errors.New("passerelle: audit pseudonym_key: must differ from the cache secret")
	case auditseal.IsSealKey([]byte(key)):
		// The auditors hold the seal key: with the pseudonym key too,
		// they could compute the pseudonym of a guessed identity and name
		// the citizen behind audit records (SECURITY.md G02). Caddy opens
		// the logs, so their sealers, before it provisions the apps.
		return errors.New("passerelle: audit pseudonym_key: must differ from the audit seal key")
	}
	a.cacheSecretSum = [sha256.Size]byte{} // compared once, not kept
	version := a.Audit.PseudonymKeyVersion
	if version == "" {
		version = "v1"
	}
	a.shared.Pseudonymizer = pipeline.NewPseudonymizer([]byte(key), version, a.FranceConnect.Issuer)
	return nil
}

// Validate checks the bounds and the production rules that Provision did
// not already enforce (SECURITY.md H02).
func (a *App) Validate() error {
	fc := a.FranceConnect
	if c := time.Duration(fc.JWKSRefreshCooldown); c != 0 && (c < time.Second || c > 5*time.Minute) {
		return errors.New("passerelle: franceconnect jwks_refresh_cooldown: want 1s to 5m")
	}
	if t := time.Duration(a.ProviderTimeout); t != 0 && (t < time.Second || t > pipeline.DefaultProviderTimeout) {
		return errors.New("passerelle: provider_timeout: want 1s to 15s")
	}
	if a.MaxInFlight < 0 || a.MaxInFlight > MaxRequestsInFlight {
		return fmt.Errorf("passerelle: max_in_flight: 1 to %d", MaxRequestsInFlight)
	}
	for name, u := range a.Upstreams {
		if u.MaxInFlight < 0 || u.MaxInFlight > MaxProviderInFlight {
			return fmt.Errorf("passerelle: upstream %s: max_in_flight: 1 to %d", name, MaxProviderInFlight)
		}
	}
	if !a.production() {
		return nil
	}
	var errs []error
	for name, u := range map[string]string{"issuer": fc.Issuer, "checktoken_url": fc.CheckTokenURL, "jwks_url": fc.JWKSURL} {
		if u != "" && !strings.HasPrefix(u, "https://") {
			errs = append(errs, fmt.Errorf("passerelle: franceconnect %s: https is required in production", name))
		}
	}
	for name, u := range map[string]string{"issuer": fc.Issuer, "checktoken_url": fc.CheckTokenURL, "jwks_url": fc.JWKSURL} {
		if u != "" && fcverify.IsTestPlatformURL(u) {
			errs = append(errs, fmt.Errorf("passerelle: franceconnect %s: an integration or sandbox platform is refused in production", name))
		}
	}
	if time.Duration(fc.Skew) > 30*time.Second {
		errs = append(errs, errors.New("passerelle: franceconnect skew: at most 30s in production"))
	}
	if time.Duration(a.Cache.TTLCap) > 60*time.Second {
		errs = append(errs, errors.New("passerelle: cache ttl_cap: at most 60s in production"))
	}
	if a.Cache.Redis != nil && !a.Cache.Redis.TLS {
		errs = append(errs, errors.New("passerelle: cache redis: tls is required in production"))
	}
	return errors.Join(errs...)
}

// Start starts the habilitations watcher, publishes the mode and applies
// the upstreams' caps on calls in flight (only a configuration that runs
// does, not one refused during its load).
func (a *App) Start() error {
	metricMode.Reset()
	metricMode.WithLabelValues(a.Mode).Set(1)
	warnUnsynchronisedClock(a.logger)
	a.applyInFlightCaps()
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go a.watcher.Run(ctx)
	a.startDataPass(ctx)
	return nil
}

// Stop stops the watcher, and puts back the caps on calls in flight that
// this configuration set if none started after it.
func (a *App) Stop() error {
	if a.cancel != nil {
		a.cancel()
	}
	a.stopDataPass()
	a.restoreInFlightCaps()
	return nil
}

// Cleanup releases the shared core; the last user closes it.
func (a *App) Cleanup() error {
	a.stopDataPass()
	if a.coreKey != "" {
		_, err := cores.Delete(a.coreKey)
		return err
	}
	return nil
}

// Catalog returns the endpoint catalogue in force.
func (a *App) Catalog() *catalogue.Catalogue { return a.cat }

// Registry returns the habilitation registry in force.
// With DataPass configured, its records overlay the file's.
func (a *App) Registry() *habilitation.Registry { return a.registry.Current() }

// Pipeline returns a decision pipeline on this configuration's shared state
// serving every endpoint of the catalogue, with the default bound on
// provider answers, logging to logger and auditing to the app's audit
// trail: for handlers of other packages that serve catalogue data in
// process (the passerelle Handler builds its own, with its restrictions).
func (a *App) Pipeline(logger *zap.Logger) *pipeline.Pipeline {
	cfg := a.shared
	cfg.Logger = logger
	return pipeline.New(cfg, nil, 0)
}

// ResolveSecret resolves a secret reference ({env.NAME} or {file.path})
// with the app's rules: a literal secret is refused in production mode, a
// secret file must be private (audit.PrivateFile). field names the
// setting in errors (never the value).
func (a *App) ResolveSecret(field, ref string) (string, error) { return a.resolveSecret(field, ref) }

// Redis returns the configuration's Redis client, nil without Redis: other
// handlers keep their shared state there (the front's sessions).
func (a *App) Redis() redis.UniversalClient { return a.core.redis }

// PublicJWKS returns the public part of the gateway's decryption keys, which
// FranceConnect fetches to encrypt its checktoken answers.
func (a *App) PublicJWKS() []byte { return a.core.publicJWKS }

// FDClientSecret returns the resolved FD client secret in sandbox mode, so
// that the sandbox FranceConnect in the same process accepts it; "" in
// production.
func (a *App) FDClientSecret() string {
	if a.production() {
		return ""
	}
	return a.fdSecret
}

// Sandbox reports whether the gateway runs in sandbox mode.
func (a *App) Sandbox() bool { return !a.production() }

// FDClientID returns the gateway's FranceConnect data-provider client id.
func (a *App) FDClientID() string { return a.FranceConnect.ClientID }

// randomBytes returns n bytes from crypto/rand.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// Interface guards.
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
