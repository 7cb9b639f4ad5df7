package fcverify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// keySet is our oidc.KeySet for the FranceConnect JWKS (SECURITY.md A08,
// A09, A17; STYLE.md §11). Unlike oidc.RemoteKeySet it is lazy, refetches
// at most once per cooldown, drops keys absent from a successful fetch,
// keeps the last good set up to maxStale when the JWKS is down, and binds
// each key to one algorithm.
type keySet struct {
	url      string
	client   *http.Client
	algs     []jose.SignatureAlgorithm
	now      func() time.Time
	cooldown time.Duration
	interval time.Duration
	maxStale time.Duration

	mu        sync.Mutex
	keys      map[string]sigKey // kid → key
	fetchedAt time.Time         // last successful fetch; zero: never
	attemptAt time.Time         // start of the last fetch attempt; zero: never
	lastErr   error             // outcome of the last attempt

	group singleflight.Group
	bg    sync.WaitGroup // background refreshes, for tests
}

// sigKey is a public verification key bound to exactly one algorithm.
type sigKey struct {
	alg jose.SignatureAlgorithm
	key any // *ecdsa.PublicKey or *rsa.PublicKey
}

// errSinkKey carries a *error through go-oidc, which flattens KeySet errors
// with %v: the verifier reads the typed error back from it.
type errSinkKey struct{}

// VerifySignature implements oidc.KeySet.
func (ks *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	payload, err := ks.verify(ctx, raw)
	if err != nil {
		if sink, ok := ctx.Value(errSinkKey{}).(*error); ok {
			*sink = err
		}
		return nil, err
	}
	return payload, nil
}

func (ks *keySet) verify(ctx context.Context, raw string) ([]byte, error) {
	if !isCompact(raw, 3) {
		return nil, bad("not a compact jws")
	}
	h, err := protectedHeader(raw)
	if err != nil {
		return nil, bad("jws header")
	}
	if h.has("crit") {
		return nil, bad("jws crit")
	}
	for _, name := range keyReferenceHeaders {
		if h.has(name) {
			return nil, bad("jws key reference header")
		}
	}
	alg, _, err := h.str("alg")
	if err != nil || !slices.Contains(ks.algs, jose.SignatureAlgorithm(alg)) {
		return nil, bad("jws alg")
	}
	kid, _, err := h.str("kid")
	if err != nil || kid == "" {
		return nil, bad("jws kid")
	}
	if typ, ok, err := h.str("typ"); err != nil || ok && !introspectionType(typ) {
		return nil, bad("jws typ")
	}
	jws, err := jose.ParseSignedCompact(raw, ks.algs)
	if err != nil || len(jws.Signatures) != 1 || jws.Signatures[0].Header.Algorithm != alg {
		return nil, bad("jws parse")
	}
	k, err := ks.key(ctx, kid)
	if err != nil {
		return nil, err
	}
	if string(k.alg) != alg {
		return nil, bad("jws alg does not fit the key")
	}
	payload, err := jws.Verify(k.key)
	if err != nil {
		return nil, bad("jws signature")
	}
	return payload, nil
}

// introspectionType accepts token-introspection+jwt, case-insensitive, with
// an optional application/ prefix (RFC 9701 §5, RFC 7515 §4.1.9).
func introspectionType(typ string) bool {
	t := strings.ToLower(typ)
	return strings.TrimPrefix(t, "application/") == "token-introspection+jwt"
}

// key returns the key named kid, fetching the JWKS if it was never fetched,
// is too old to use, or does not hold kid (cooldown permitting).
func (ks *keySet) key(ctx context.Context, kid string) (sigKey, error) {
	ks.mu.Lock()
	now := ks.now()
	usable := !ks.fetchedAt.IsZero() && now.Sub(ks.fetchedAt) <= ks.maxStale
	k, found := ks.keys[kid]
	old := usable && now.Sub(ks.fetchedAt) > ks.interval
	ks.mu.Unlock()

	if usable && found {
		if old {
			ks.refreshInBackground(ctx)
		}
		return k, nil
	}
	if err := ks.refresh(ctx); err != nil {
		return sigKey{}, err
	}

	ks.mu.Lock()
	defer ks.mu.Unlock()
	now = ks.now()
	switch k, found = ks.keys[kid]; {
	case ks.fetchedAt.IsZero() || now.Sub(ks.fetchedAt) > ks.maxStale:
		return sigKey{}, fmt.Errorf("%w: no usable key set", ErrJWKSUnavailable)
	case found:
		return k, nil
	case ks.lastErr != nil:
		// I04: unknown kid while the JWKS is unreachable.
		return sigKey{}, fmt.Errorf("%w: unknown kid and jwks unreachable", ErrJWKSUnavailable)
	default:
		return sigKey{}, bad("jws unknown kid")
	}
}

// refresh runs or joins the single in-flight fetch and waits for it, or
// for the caller's context. The fetch itself is detached from the caller.
func (ks *keySet) refresh(ctx context.Context) error {
	ch := ks.group.DoChan("jwks", func() (any, error) { return nil, ks.fetchOnce(ctx) })
	select {
	case <-ch:
		return nil // outcome recorded in ks.lastErr / ks.fetchedAt
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrJWKSUnavailable, ctx.Err())
	}
}

// refreshInBackground starts a fetch without waiting when the cooldown
// allows one. Serving continues with the current keys.
func (ks *keySet) refreshInBackground(ctx context.Context) {
	ks.mu.Lock()
	cooling := !ks.attemptAt.IsZero() && ks.now().Sub(ks.attemptAt) < ks.cooldown
	ks.mu.Unlock()
	if cooling {
		return
	}
	ks.bg.Add(1)
	go func() {
		defer ks.bg.Done()
		<-ks.group.DoChan("jwks", func() (any, error) { return nil, ks.fetchOnce(ctx) })
	}()
}

// fetchOnce fetches the JWKS unless an attempt started less than one
// cooldown ago. A successful fetch replaces the whole set; a failed one
// keeps the last good set.
func (ks *keySet) fetchOnce(ctx context.Context) error {
	ks.mu.Lock()
	now := ks.now()
	if !ks.attemptAt.IsZero() && now.Sub(ks.attemptAt) < ks.cooldown {
		ks.mu.Unlock()
		return nil
	}
	ks.attemptAt = now
	ks.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksFetchTimeout)
	defer cancel()
	keys, err := ks.fetch(ctx)

	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.lastErr = err
	switch {
	case err == nil:
		ks.keys = keys
		ks.fetchedAt = now
	case errors.Is(err, errNoUsableKey):
		// FranceConnect served its JWKS and it lists no key we may use:
		// the keys it no longer lists are withdrawn at once, as after any
		// successful fetch, not kept as if the fetch had failed (A17).
		// Verification fails closed until a usable set is served.
		ks.keys = nil
		ks.fetchedAt = time.Time{}
	}
	return err
}

func (ks *keySet) fetch(ctx context.Context) (map[string]sigKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: request", ErrJWKSUnavailable)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: transport", ErrJWKSUnavailable)
	}
	defer drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: status", ErrJWKSUnavailable)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		return nil, fmt.Errorf("%w: body", ErrJWKSUnavailable)
	}
	return parseJWKS(body, ks.algs)
}

// errNoUsableKey: a well-formed JWKS without any key this configuration may
// use. Unlike a failed fetch, it withdraws the keys held so far.
var errNoUsableKey = fmt.Errorf("%w: no usable key in jwks", ErrJWKSUnavailable)

// parseJWKS keeps only public EC P-256 (ES256) and RSA ≥ 2048 bits (RS256)
// keys with a kid, use absent or "sig", an alg absent or fitting the key,
// and an algorithm in algs. A kid present twice is ambiguous: both dropped.
func parseJWKS(body []byte, algs []jose.SignatureAlgorithm) (map[string]sigKey, error) {
	doc, err := decodeObject(body)
	if err != nil {
		return nil, fmt.Errorf("%w: not a jwks", ErrJWKSUnavailable)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(doc["keys"], &raws); err != nil {
		return nil, fmt.Errorf("%w: not a jwks", ErrJWKSUnavailable)
	}
	keys := map[string]sigKey{}
	dup := map[string]bool{}
	for _, raw := range raws {
		kid, k, ok := parseSigKey(raw, algs)
		if !ok {
			continue
		}
		if _, seen := keys[kid]; seen || dup[kid] {
			delete(keys, kid)
			dup[kid] = true
			continue
		}
		keys[kid] = k
	}
	if len(keys) == 0 {
		return nil, errNoUsableKey
	}
	return keys, nil
}

func parseSigKey(raw json.RawMessage, algs []jose.SignatureAlgorithm) (string, sigKey, bool) {
	m, err := decodeObject(raw)
	if err != nil {
		return "", sigKey{}, false
	}
	for _, private := range privateMembers {
		if m.has(private) {
			return "", sigKey{}, false
		}
	}
	kid, _, err1 := m.str("kid")
	use, hasUse, err2 := m.str("use")
	alg, hasAlg, err3 := m.str("alg")
	if err1 != nil || err2 != nil || err3 != nil || kid == "" || hasUse && use != "sig" {
		return "", sigKey{}, false
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return "", sigKey{}, false
	}
	var fit jose.SignatureAlgorithm
	switch pub := jwk.Key.(type) {
	case *ecdsa.PublicKey:
		if pub.Curve == elliptic.P256() {
			fit = jose.ES256
		}
	case *rsa.PublicKey:
		if bits := pub.N.BitLen(); bits >= 2048 && bits <= 8192 {
			fit = jose.RS256
		}
	}
	if fit == "" || hasAlg && alg != string(fit) || !slices.Contains(algs, fit) {
		return "", sigKey{}, false
	}
	return kid, sigKey{alg: fit, key: jwk.Key}, true
}

// privateMembers are the JWK members holding private or symmetric key
// material (RFC 7518 §6).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxBody))
	_ = body.Close()
}

// usable reports whether a key set was fetched and is not older than the
// staleness bound.
func (ks *keySet) usable() bool {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return !ks.fetchedAt.IsZero() && ks.now().Sub(ks.fetchedAt) <= ks.maxStale
}
