package fcverify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/outbound"
	"github.com/passerelle-gw/passerelle/config/urlhost"
)

// Shipped defaults (SECURITY.md A12, A17, E08).
const (
	DefaultSkew                = 10 * time.Second
	DefaultMaxIssuedAge        = 60 * time.Second
	DefaultTimeout             = 2 * time.Second
	DefaultJWKSRefreshCooldown = 30 * time.Second
	DefaultJWKSRefreshInterval = 10 * time.Minute
	DefaultJWKSMaxStale        = 24 * time.Hour

	// jwksFetchTimeout bounds one JWKS fetch, detached from any caller (E08).
	jwksFetchTimeout = 5 * time.Second
	// maxBody bounds the checktoken answer and the JWKS document (F02).
	maxBody = 64 << 10
	// maxToken bounds the access token we agree to send (A03 allows 1 KiB
	// for the whole header; this is a second, looser guard).
	maxToken = 4 << 10
)

// Allowed algorithms (SECURITY.md A06, A08). Configuration may narrow them.
var (
	allKeyAlgorithms     = []string{string(jose.RSA_OAEP_256), string(jose.RSA_OAEP), string(jose.ECDH_ES)}
	allSigningAlgorithms = []string{string(jose.ES256), string(jose.RS256)}
)

// Config configures a Verifier. Zero durations take the defaults above;
// negative ones are refused.
type Config struct {
	// Issuer is the exact expected outer iss, e.g.
	// https://fcp-low.integ01.dev-franceconnect.fr/api/v2.
	Issuer string
	// CheckTokenURL defaults to Issuer+"/checktoken".
	CheckTokenURL string
	// JWKSURL defaults to Issuer+"/jwks".
	JWKSURL string
	// ClientID is our data-provider client_id: the expected outer aud.
	ClientID     string
	ClientSecret string
	// DecryptionKeys are our private keys, each with a unique KeyID and
	// bound to one Algorithm (RSA-OAEP-256, RSA-OAEP or ECDH-ES).
	DecryptionKeys []jose.JSONWebKey
	// KeyAlgorithms is the allowed JWE alg subset; default all three.
	KeyAlgorithms []string
	// SigningAlgorithms is the allowed JWS alg subset of {ES256, RS256};
	// default both.
	SigningAlgorithms []string
	// Skew is the clock tolerance on iat and exp (default 10 s).
	Skew time.Duration
	// MaxIssuedAge: the outer iat must be >= now-MaxIssuedAge (default 60 s).
	MaxIssuedAge time.Duration
	// Timeout bounds one checktoken exchange, body included (default 2 s).
	Timeout time.Duration
	// MaxInFlight caps the checktoken exchanges in flight (default 32,
	// SECURITY.md F07): past it a check fails at once with ErrBusy
	// instead of queueing behind a stalled FranceConnect.
	MaxInFlight int64
	// JWKSRefreshCooldown: at most one JWKS fetch per cooldown (default 30 s).
	JWKSRefreshCooldown time.Duration
	// JWKSRefreshInterval: keys older than this are refreshed in the
	// background on next use (default 10 min).
	JWKSRefreshInterval time.Duration
	// JWKSMaxStale: keys older than this are not used (default 24 h).
	JWKSMaxStale time.Duration
	// HTTPClient is used for checktoken and JWKS. It is copied and its
	// CheckRedirect replaced: redirects are never followed (E02). Default: a
	// client with E03/E08 TLS settings and timeouts.
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// DefaultMaxInFlight is the default cap on checktoken exchanges in flight.
const DefaultMaxInFlight = 32

// withDefaults returns a copy of c with defaults applied and every problem
// found, joined. Messages name fields, never values.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf("fcverify: config: "+format, a...)) }

	if c.Issuer == "" {
		fail("issuer is required")
	} else if err := checkURL(c.Issuer); err != nil {
		fail("issuer: %v", err)
	}
	if c.CheckTokenURL == "" {
		c.CheckTokenURL = strings.TrimSuffix(c.Issuer, "/") + "/checktoken"
	} else if err := checkURL(c.CheckTokenURL); err != nil {
		fail("checktoken url: %v", err)
	}
	if c.JWKSURL == "" {
		c.JWKSURL = strings.TrimSuffix(c.Issuer, "/") + "/jwks"
	} else if err := checkURL(c.JWKSURL); err != nil {
		fail("jwks url: %v", err)
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.ClientID == "" {
		fail("client_id is required")
	}
	if c.ClientSecret == "" {
		fail("client_secret is required")
	}

	c.KeyAlgorithms = subset(c.KeyAlgorithms, allKeyAlgorithms, "key algorithm", fail)
	c.SigningAlgorithms = subset(c.SigningAlgorithms, allSigningAlgorithms, "signing algorithm", fail)

	if len(c.DecryptionKeys) == 0 {
		fail("at least one decryption key is required")
	}
	seen := map[string]bool{}
	for i, k := range c.DecryptionKeys {
		if k.KeyID == "" {
			fail("decryption key %d: kid is required", i)
		} else if seen[k.KeyID] {
			fail("decryption key %d: duplicate kid", i)
		}
		seen[k.KeyID] = true
		if !slices.Contains(c.KeyAlgorithms, k.Algorithm) {
			fail("decryption key %d: alg not allowed", i)
		} else if err := fitsKeyAlgorithm(k.Key, k.Algorithm); err != nil {
			fail("decryption key %d: %v", i, err)
		}
		if k.Use != "" && k.Use != "enc" {
			fail("decryption key %d: use must be enc", i)
		}
	}

	durations := []struct {
		name string
		d    *time.Duration
		def  time.Duration
	}{
		{"skew", &c.Skew, DefaultSkew},
		{"max_issued_age", &c.MaxIssuedAge, DefaultMaxIssuedAge},
		{"timeout", &c.Timeout, DefaultTimeout},
		{"jwks_refresh_cooldown", &c.JWKSRefreshCooldown, DefaultJWKSRefreshCooldown},
		{"jwks_refresh_interval", &c.JWKSRefreshInterval, DefaultJWKSRefreshInterval},
		{"jwks_max_stale", &c.JWKSMaxStale, DefaultJWKSMaxStale},
	}
	for _, d := range durations {
		switch {
		case *d.d < 0:
			fail("%s must not be negative", d.name)
		case *d.d == 0:
			*d.d = d.def
		}
	}
	if c.JWKSMaxStale < c.JWKSRefreshInterval {
		fail("jwks_max_stale must be at least jwks_refresh_interval")
	}

	if c.HTTPClient == nil {
		c.HTTPClient = defaultHTTPClient()
	} else {
		cl := *c.HTTPClient
		cl.Jar = nil // no cookie of FranceConnect's goes back with the next calls
		c.HTTPClient = &cl
	}
	c.HTTPClient.CheckRedirect = noRedirect
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, errors.Join(errs...)
}

// checkURL accepts https, or http to a loopback host (tests and the local
// sandbox stand-in), without user info or fragment.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("not a URL")
	case u.Host == "" || u.User != nil || u.Fragment != "" || u.RawQuery != "":
		return errors.New("must be an absolute URL without user info, query or fragment")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	default:
		return errors.New("must use https")
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func subset(have, all []string, what string, fail func(string, ...any)) []string {
	if len(have) == 0 {
		return slices.Clone(all)
	}
	for _, a := range have {
		if !slices.Contains(all, a) {
			fail("%s not allowed", what)
		}
	}
	return slices.Clone(have)
}

// fitsKeyAlgorithm checks that a private decryption key can serve alg.
func fitsKeyAlgorithm(key any, alg string) error {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if alg != string(jose.RSA_OAEP) && alg != string(jose.RSA_OAEP_256) {
			return errors.New("rsa key bound to a non-rsa alg")
		}
		if k.N.BitLen() < 2048 {
			return errors.New("rsa key shorter than 2048 bits")
		}
		return nil
	case *ecdsa.PrivateKey:
		if alg != string(jose.ECDH_ES) {
			return errors.New("ec key bound to a non-ecdh alg")
		}
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return errors.New("unsupported ec curve")
	default:
		return errors.New("must be an rsa or ec private key")
	}
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// defaultHTTPClient follows SECURITY.md E03 and E08 (internal/outbound).
// Per-call deadlines come from contexts (checktoken Timeout, 5 s JWKS).
func defaultHTTPClient() *http.Client {
	hc := outbound.Client(0)
	hc.Transport.(*http.Transport).MaxIdleConnsPerHost = 32
	return hc
}

// IsTestPlatformURL reports whether a URL is one of FranceConnect's
// integration or sandbox platforms (hosts under dev-franceconnect.fr, or
// with a .sbx. label), whatever its case: production mode refuses them.
func IsTestPlatformURL(raw string) bool {
	host, ok := urlhost.Of(raw)
	if !ok {
		return true // not a URL production can use either
	}
	return host == "dev-franceconnect.fr" || strings.HasSuffix(host, ".dev-franceconnect.fr") ||
		strings.Contains("."+host+".", ".sbx.")
}
