package front

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/handoff"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/rp"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/session"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/ratelimit"
	"github.com/passerelle-gw/passerelle/caddyplugin/pipeline"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// sandboxAssertionKey and sandboxSecret serve a sandbox gateway without
// configured keys: process-wide, so that a reload keeps sessions and the
// keys apps cached.
var (
	sandboxAssertionKey = sync.OnceValues(handoff.GenerateKey)
	sandboxSecret       = sync.OnceValue(func() []byte { return []byte(session.NewTicket()) })
)

// datasetName: lower-case letters, digits and "_" (an "_" becomes "-" in
// its header name: see handoff.DataHeader).
var datasetName = regexp.MustCompile(`^[a-z0-9_]{1,40}$`)

// Provision implements caddy.Provisioner.
func (f *Front) Provision(ctx caddy.Context) error {
	f.logger = ctx.Logger()
	if f.now == nil {
		f.now = time.Now
	}
	v, err := ctx.App("passerelle")
	if err != nil {
		return errf("the passerelle global option is required: %w", err)
	}
	f.app = v.(*caddyplugin.App)
	production := !f.app.Sandbox()

	if f.base, err = url.Parse(f.BaseURL); err != nil || f.base.Host == "" || f.base.Path != "" && f.base.Path != "/" ||
		f.base.Scheme != "https" && f.base.Scheme != "http" {
		return errf("base_url %q: an origin such as https://demarches.mairie.fr is required", f.BaseURL)
	}
	f.secure = f.base.Scheme == "https"
	if production && (!f.secure || !strings.HasPrefix(f.FranceConnect.Issuer, "https://")) {
		return errf("https is required for base_url and the franceconnect issuer in production mode")
	}
	if production && fcverify.IsTestPlatformURL(f.FranceConnect.Issuer) {
		return errf("franceconnect issuer: an integration or sandbox platform is refused in production mode")
	}
	if !f.secure && !loopback(f.base.Hostname()) {
		return errf("base_url: plain http is accepted on a loopback address only")
	}
	if f.ServiceName == "" {
		f.ServiceName = "Service en ligne"
	}
	if f.AppID == "" {
		f.AppID = strings.TrimSuffix(f.BaseURL, "/")
	}
	if f.AfterLogout == "" {
		f.AfterLogout = "/"
	}
	if _, ok := SafeReturnTo(f.AfterLogout); !ok {
		return errf("after_logout %q: a path of this site is required", f.AfterLogout)
	}
	if len(f.Handoff) == 0 {
		f.Handoff = []string{"assertion"}
	}
	for _, c := range f.Handoff {
		switch c {
		case "assertion":
			f.assertion = true
		case "headers":
			f.plain = true
		default:
			return errf("handoff %q: assertion or headers", c)
		}
	}
	switch {
	case f.MaxHandoffBytes == 0:
		f.MaxHandoffBytes = defaultMaxHandoffBytes
	case f.MaxHandoffBytes < minHandoffBytes || f.MaxHandoffBytes > maxHandoffBytes:
		return errf("max_handoff_bytes %d: %d to %d (the identity alone takes about 1 KiB)", f.MaxHandoffBytes, minHandoffBytes, maxHandoffBytes)
	}
	// A session's last use is written back once a minute at most: an
	// idle time under that would end sessions in use.
	if idle := time.Duration(f.SessionIdle); idle != 0 && idle < time.Minute {
		return errf("session_idle %s: at least 1m", idle)
	}
	if f.AssertionTTL <= 0 {
		f.AssertionTTL = caddy.Duration(5 * time.Minute)
	}
	if f.DatasetTimeout <= 0 {
		f.DatasetTimeout = caddy.Duration(10 * time.Second)
	}
	if u, err := url.Parse(f.FranceConnect.Issuer); err == nil && u.Host != "" {
		f.formActions = u.Scheme + "://" + u.Host
	}

	fcSecret, err := f.app.ResolveSecret("passerelle_front franceconnect client_secret", f.FranceConnect.ClientSecret)
	if err != nil {
		return errf("%w", err)
	}
	f.rp, err = rp.New(rp.Config{
		Issuer: f.FranceConnect.Issuer, ClientID: f.FranceConnect.ClientID, ClientSecret: fcSecret,
		RedirectURL: f.callbackURL(), PostLogoutRedirectURL: f.logoutReturnURL(),
		Scopes: f.FranceConnect.Scopes, ACR: f.FranceConnect.ACR, Prompt: f.FranceConnect.Prompt,
		SigningAlgs: f.FranceConnect.SigningAlgs,
	})
	if err != nil {
		return errf("%w", err)
	}
	if err := f.provisionSessions(production); err != nil {
		return err
	}
	if err := f.provisionSigner(production); err != nil {
		return err
	}
	if err := f.provisionDatasets(ctx); err != nil {
		return err
	}
	if len(f.Protect) > 0 {
		f.protect.paths = caddyhttp.MatchPath(f.Protect)
		if err := f.protect.paths.Provision(ctx); err != nil {
			return errf("protect: %w", err)
		}
	}
	if f.LoginRate == "" {
		f.LoginRate = "10/m"
	}
	rate, err := habilitation.ParseRate(f.LoginRate)
	if err != nil {
		return errf("login_rate: %w", err)
	}
	f.loginQuota = ratelimit.Quota{Requests: rate.Requests, Per: rate.Per}
	f.limiter = f.pipe.Limiter
	f.audit = f.pipe.Audit
	f.cache = &assertions{m: map[string]*handOff{}}
	f.active = new(sessionCount)
	liveFronts.Store(f, struct{}{})
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	f.warnRefusedDatasets() // once the block is known to load
	go f.sweepLoop(ctx)     // ends with the configuration
	return nil
}

func loopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

func (f *Front) provisionSessions(production bool) error {
	secret, err := f.app.ResolveSecret("passerelle_front secret", f.Secret)
	switch {
	case err != nil:
		return errf("%w", err)
	case secret == "" && production:
		return errf("secret: required in production mode ({file.…} or {env.…}, at least 32 bytes)")
	case secret == "":
		secret = string(sandboxSecret())
	case len(secret) < 32:
		return errf("secret: at least 32 bytes")
	}
	// Each app's sessions under their own prefix (fronts may share a Redis).
	sum := sha256.Sum256([]byte(f.AppID))
	prefix := "passerelle:front:" + hex.EncodeToString(sum[:6]) + ":"
	var store session.Store
	if rdb := f.app.Redis(); rdb != nil {
		store = session.NewRedis(rdb)
	} else {
		v, _, err := memoryStores.LoadOrNew(prefix, func() (caddy.Destructor, error) {
			return memoryStore{session.NewMemory(0, nil)}, nil
		})
		if err != nil {
			return errf("sessions: %w", err)
		}
		f.memoryKey, store = prefix, v.(memoryStore).Memory
	}
	f.sessions, err = session.New(session.Config{
		Store: store, Secret: []byte(secret), Prefix: prefix, Idle: time.Duration(f.SessionIdle), Max: time.Duration(f.SessionMax), Now: f.now,
	})
	if err != nil {
		return errf("%w", err)
	}
	return nil
}

// memoryStores keeps the in-process sessions and pending logins of the
// fronts without Redis, by session prefix (app_id), across configuration
// reloads: the configuration that replaces a front takes its store before
// the old one lets it go, so a reload neither logs every citizen out nor
// fails the logins under way at FranceConnect ("expired" at the callback).
// The store goes when the last front using it is cleaned up.
var memoryStores = caddy.NewUsagePool()

// memoryStore is a session.Memory in memoryStores.
type memoryStore struct{ *session.Memory }

// Destruct implements caddy.Destructor: the records go with the store.
func (memoryStore) Destruct() error { return nil }

func (f *Front) provisionSigner(production bool) error {
	data, err := f.app.ResolveSecret("passerelle_front assertion_key", f.AssertionKey)
	if err != nil {
		return errf("%w", err)
	}
	var key jose.JSONWebKey
	switch {
	case data != "":
		if key, err = parseECKey([]byte(data)); err != nil {
			return errf("assertion_key: %w", err)
		}
	case production:
		return errf("assertion_key: required in production mode (an EC P-256 private key, PEM or JWK, as {file.…})")
	default:
		if key, err = sandboxAssertionKey(); err != nil {
			return errf("assertion key: %w", err)
		}
	}
	if f.signer, err = handoff.NewSigner(key); err != nil {
		return errf("assertion_key: %w", err)
	}
	return nil
}

// parseECKey reads an EC P-256 private key as a JWK or PEM (SEC 1 or PKCS#8).
func parseECKey(data []byte) (jose.JSONWebKey, error) {
	var k jose.JSONWebKey
	if err := json.Unmarshal(data, &k); err == nil {
		return k, nil
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return k, errors.New("neither a JWK nor a PEM key")
	}
	if ec, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return jose.JSONWebKey{Key: ec}, nil
	}
	any, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if ec, ok := any.(*ecdsa.PrivateKey); err == nil && ok {
		return jose.JSONWebKey{Key: ec}, nil
	}
	return k, errors.New("not an EC private key")
}

// provisionDatasets checks the datasets and loads the provider handler of
// in-process calls.
func (f *Front) provisionDatasets(ctx caddy.Context) error {
	f.pipe = f.app.Pipeline(f.logger)
	inProcess := false
	seen := map[string]bool{}
	for i := range f.Datasets {
		d := &f.Datasets[i]
		if !datasetName.MatchString(d.Name) || seen[d.Name] {
			return errf("dataset %q: a unique name of lower-case letters, digits and _ is required", d.Name)
		}
		seen[d.Name] = true
		if d.Label == "" {
			d.Label = strings.ReplaceAll(d.Name, "_", " ")
		}
		if !habilitation.ValidSIRET(d.Recipient) {
			return errf("dataset %s: recipient: a valid SIRET is required", d.Name)
		}
		if d.Remote != "" {
			u, err := url.Parse(d.Remote)
			if err != nil || u.Host == "" || u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname())) {
				return errf("dataset %s: remote: an https base URL is required", d.Name)
			}
			continue
		}
		inProcess = true
		ep, ok := f.app.Catalog().Lookup(d.Route)
		if !ok || ep.Modality.CallerGivesIdentity() {
			return errf("dataset %s: route %q is not a FranceConnect route of the catalogue", d.Name, d.Route)
		}
		for _, p := range ep.Params {
			if p.Required { // a dataset sends the recipient only
				return errf("dataset %s: route %q needs the parameter %s, which a dataset does not send", d.Name, d.Route, p.Name)
			}
		}
		d.endpoint = ep
	}
	if !inProcess {
		return nil
	}
	if len(f.ProviderRaw) == 0 {
		return errf("in-process datasets need a provider { reverse_proxy … } block")
	}
	mod, err := ctx.LoadModule(f, "ProviderRaw")
	if err != nil {
		return errf("provider: %w", err)
	}
	mh, ok := mod.(caddyhttp.MiddlewareHandler)
	if !ok {
		return errf("provider: not an HTTP handler")
	}
	f.provider = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return mh.ServeHTTP(w, r, notFound)
	})
	return nil
}

// warnRefusedDatasets logs a warning for each in-process dataset whose
// calls are refused whatever the citizen's token (pipeline.Preflight):
// the front's FranceConnect scopes without the identity pivot or any of
// the route's scopes; no habilitation paired with its client id, an
// inactive one, one without the france_connect modality, another SIRET
// than the dataset's recipient, none of the route's scopes, or one bound
// to client certificates, which the front's in-process calls do not
// present. The configuration still loads: the habilitations may change
// without a reload (file watch, DataPass). Identifiers and the
// closed-list reason only.
func (f *Front) warnRefusedDatasets() {
	now := f.now()
	for i := range f.Datasets {
		d := &f.Datasets[i]
		if d.endpoint == nil { // a remote dataset
			continue
		}
		hab, reason := f.pipe.Preflight(d.endpoint, pipeline.PlannedCall{
			ClientID: f.FranceConnect.ClientID, Scopes: f.FranceConnect.Scopes, Recipient: d.Recipient}, now)
		if reason == "" {
			continue
		}
		id := ""
		if hab != nil {
			id = hab.ID
		}
		f.logger.Warn("passerelle_front: this dataset's calls will be refused under the habilitations in force",
			zap.String("app_id", f.AppID), zap.String("dataset", d.Name), zap.String("route", d.Route),
			zap.String("habilitation", id), zap.String("reason", reason))
	}
}

// notFound ends the provider handler chain: nothing answered.
var notFound = caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
	w.WriteHeader(http.StatusBadGateway)
	return nil
})
