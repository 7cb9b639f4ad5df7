package fcverify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcissuer"
)

// req: A08 — JWS alg allow-list; the key comes from the JWKS by kid only.
func TestA08_AlgMatrix(t *testing.T) {
	e := newEnv(t)
	payload, _ := json.Marshal(e.claims(nil))
	rsaKey := fcRS.SigningKey().Key.(*rsa.PrivateKey)
	ecKey := fcES.SigningKey().Key.(*ecdsa.PrivateKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	pubDER, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	jwksBytes := jwksOf(t, fcES, fcRS)
	var oneKey struct{ Keys []json.RawMessage }
	_ = json.Unmarshal(fcES.JWKS(), &oneKey)

	sign := func(alg jose.SignatureAlgorithm, key any, h map[string]any) string {
		t.Helper()
		s, err := fcissuer.SignJWS(payload, alg, key, h)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	kidES := map[string]any{"kid": fcES.KeyID()}
	kidRS := map[string]any{"kid": fcRS.KeyID()}

	accepted := map[string]string{
		"ES256": sign(jose.ES256, ecKey, kidES),
		"RS256": sign(jose.RS256, rsaKey, kidRS),
	}
	refused := map[string]string{
		"none":                       sign("none", nil, kidES),
		"NONE":                       sign("none", nil, map[string]any{"kid": fcES.KeyID(), "alg": "NONE"}),
		"HS256 keyed with jwks":      sign(jose.HS256, jwksBytes, kidES),
		"HS256 keyed with jwk":       sign(jose.HS256, []byte(oneKey.Keys[0]), kidES),
		"HS256 keyed with pem":       sign(jose.HS256, pubPEM, kidES),
		"HS256 keyed with der":       sign(jose.HS256, pubDER, kidES),
		"HS384":                      sign(jose.HS384, jwksBytes, kidES),
		"HS512":                      sign(jose.HS512, jwksBytes, kidES),
		"PS256 on rsa kid":           sign(jose.PS256, rsaKey, kidRS),
		"PS384":                      sign(jose.PS384, rsaKey, kidRS),
		"RS384":                      sign(jose.RS384, rsaKey, kidRS),
		"RS512":                      sign(jose.RS512, rsaKey, kidRS),
		"ES384":                      sign(jose.ES384, p384, kidES),
		"ES512":                      sign(jose.ES512, p521, kidES),
		"RS256 header on an EC kid":  sign(jose.RS256, rsaKey, kidES),
		"ES256 header on an RSA kid": sign(jose.ES256, ecKey, kidRS),
		"missing kid":                sign(jose.ES256, ecKey, nil),
		"empty kid":                  sign(jose.ES256, ecKey, map[string]any{"kid": ""}),
		"kid number":                 sign(jose.ES256, ecKey, map[string]any{"kid": 1}),
		"unknown kid":                sign(jose.ES256, ecKey, map[string]any{"kid": "other"}),
		"attacker key, fc kid":       signAs(t, attacker, e.claims(nil), kidES),
		"alg in lowercase":           sign(jose.ES256, ecKey, map[string]any{"kid": fcES.KeyID(), "alg": "es256"}),
		"alg ES256, duplicate ALG":   sign(jose.ES256, ecKey, map[string]any{"kid": fcES.KeyID(), "ALG": "none"}),
	}
	for name, jws := range accepted {
		if _, err := e.check(e.wrap(jws)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for name, jws := range refused {
		t.Run(name, func(t *testing.T) {
			_, err := e.check(e.wrap(jws))
			wantErr(t, err, ErrBadResponse)
		})
	}

	// Tampered signature and payload.
	good := accepted["ES256"]
	parts := strings.Split(good, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[10] ^= 1
	_, err := e.check(e.wrap(parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)))
	wantErr(t, err, ErrBadResponse)
	pl, _ := base64.RawURLEncoding.DecodeString(parts[1])
	pl[len(pl)/2] ^= 1
	_, err = e.check(e.wrap(parts[0] + "." + base64.RawURLEncoding.EncodeToString(pl) + "." + parts[2]))
	wantErr(t, err, ErrBadResponse)

	// A configured subset narrows the list.
	e2 := newEnv(t, func(c *Config) { c.SigningAlgorithms = []string{"ES256"} })
	_, err = e2.check(e2.wrap(accepted["RS256"]))
	wantErr(t, err, ErrBadResponse)
}

// req: A09 — key references in the JWS header are refused and never fetched.
func TestA09_HeaderKeysNeverUsed(t *testing.T) {
	e := newEnv(t)
	var hits atomic.Int64
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(attacker.JWKS())
	}))
	defer rec.Close()
	ak := attacker.SigningKey()
	attackerPub := ak.Public()
	for name, h := range map[string]map[string]any{
		"jku":             {"jku": rec.URL + "/jwks"},
		"jku, no kid":     {"jku": rec.URL + "/jwks", "kid": nil},
		"x5u":             {"x5u": rec.URL + "/cert"},
		"jwk":             {"jwk": attackerPub},
		"x5c":             {"x5c": []string{base64.StdEncoding.EncodeToString(selfSigned(t))}},
		"jku with fc kid": {"jku": rec.URL + "/jwks", "kid": fcES.KeyID()},
		"crit":            {"crit": []string{"b64"}, "b64": false},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.check(e.wrap(signAs(t, attacker, e.claims(nil), h)))
			wantErr(t, err, ErrBadResponse)
			// Even FranceConnect's own valid signature is refused with them.
			_, err = e.check(e.wrap(signAs(t, fcES, e.claims(nil), h)))
			wantErr(t, err, ErrBadResponse)
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("recording server saw %d requests", n)
	}
}

// newKeySet builds a bare key set against the stub's JWKS.
func newTestKeySet(s *stub, c *clock) *keySet {
	return &keySet{
		url: s.issuer + "/jwks", client: defaultHTTPClient(), now: c.Now,
		algs:     []jose.SignatureAlgorithm{jose.ES256, jose.RS256},
		cooldown: DefaultJWKSRefreshCooldown, interval: DefaultJWKSRefreshInterval, maxStale: DefaultJWKSMaxStale,
	}
}

// req: A17 — 10 000 random kids → at most one JWKS fetch per cooldown.
func TestA17_UnknownKidCooldown(t *testing.T) {
	testKeys(t)
	s := newStub(t, jwksOf(t, fcES))
	c := &clock{t: t0}
	ks := newTestKeySet(s, c)
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{}`))
	flood := func() {
		var wg sync.WaitGroup
		jobs := make(chan int)
		for range 64 {
			wg.Go(func() {
				for range jobs {
					kid := make([]byte, 12)
					_, _ = rand.Read(kid)
					h, _ := json.Marshal(map[string]string{"alg": "ES256", "kid": base64.RawURLEncoding.EncodeToString(kid)})
					raw := base64.RawURLEncoding.EncodeToString(h) + "." + payload + "." + strings.Repeat("A", 86)
					if _, err := ks.VerifySignature(context.Background(), raw); err == nil {
						t.Error("random kid accepted")
					}
				}
			})
		}
		for i := range 10000 {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
	}
	flood() // first use: the initial fetch
	if n := s.fetches.Load(); n != 1 {
		t.Fatalf("first flood: %d fetches", n)
	}
	c.Add(DefaultJWKSRefreshCooldown - time.Second)
	flood()
	if n := s.fetches.Load(); n != 1 {
		t.Fatalf("within cooldown: %d fetches", n)
	}
	c.Add(time.Second)
	flood()
	if n := s.fetches.Load(); n != 2 {
		t.Fatalf("after cooldown: %d fetches", n)
	}

	// End to end: unknown kids in real answers do not refetch either.
	e := newEnv(t)
	if _, err := e.check(e.answer(e.claims(nil))); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		_, err := e.check(e.wrap(signAs(t, attacker, e.claims(nil), map[string]any{"kid": fmt.Sprint("k", i)})))
		wantErr(t, err, ErrBadResponse)
	}
	if n := e.stub.fetches.Load(); n != 1 {
		t.Fatalf("end to end: %d fetches", n)
	}
}

// req: A17 — New does no I/O; the first fetch happens on first use.
func TestA17_LazyFirstFetch(t *testing.T) {
	e := newEnv(t)
	if n := e.stub.fetches.Load() + e.stub.checks.Load(); n != 0 {
		t.Fatalf("New did %d requests", n)
	}
	if _, err := e.check(e.answer(e.claims(nil))); err != nil {
		t.Fatal(err)
	}
	if n := e.stub.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches", n)
	}
}

// req: A17 — rotation: a new kid is fetched (after the cooldown); keys
// absent from a successful fetch are dropped at once.
func TestA17_KeyRotation(t *testing.T) {
	e := newEnv(t)
	if _, err := e.check(e.answer(e.claims(nil))); err != nil {
		t.Fatal(err)
	}
	next, _ := fcissuer.New("ES256")
	e.stub.setJWKS(jwksOf(t, next), 200)
	old := e.answer(e.claims(nil))
	e.fc = next
	rotated := e.answer(e.claims(nil))

	// Within the cooldown the new kid is not fetched yet.
	_, err := e.check(rotated)
	wantErr(t, err, ErrBadResponse)
	e.clock.Add(DefaultJWKSRefreshCooldown)
	e.fc = next
	if _, err := e.check(e.answer(e.claims(nil))); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	e.fc = fcES
	_, err = e.check(e.answer(e.claims(nil)))
	wantErr(t, err, ErrBadResponse) // old kid dropped
	_ = old
	if n := e.stub.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches", n)
	}
}

// req: A17, I04 — JWKS down: known kids keep working up to the staleness
// bound, unknown kids get 503, past the bound everything fails closed.
func TestA17_JWKSDownKeepsLastGood(t *testing.T) {
	e := newEnv(t)
	if _, err := e.check(e.answer(e.claims(nil))); err != nil {
		t.Fatal(err)
	}
	e.stub.setJWKS([]byte(`oops`), 500)

	// Past the refresh interval: still served; a background refresh fails.
	e.clock.Add(DefaultJWKSRefreshInterval + time.Second)
	if _, err := e.check(e.answer(e.claims(nil))); err != nil {
		t.Fatal(err)
	}
	e.v.keys.bg.Wait()
	if n := e.stub.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches", n)
	}

	// Unknown kid while down, once the cooldown allows a try: 503.
	e.clock.Add(DefaultJWKSRefreshCooldown)
	_, err := e.check(e.wrap(signAs(t, attacker, e.claims(nil), nil)))
	wantErr(t, err, ErrJWKSUnavailable)
	if Reason(err) != ReasonJWKSUnavailable {
		t.Fatal(Reason(err))
	}

	// Just inside the bound: still served.
	e.clock.Set(t0.Add(DefaultJWKSMaxStale))
	if _, err := e.check(e.answer(e.claims(nil))); err != nil {
		t.Fatalf("at the bound: %v", err)
	}
	e.v.keys.bg.Wait()
	// Past the bound: fails closed.
	e.clock.Set(t0.Add(DefaultJWKSMaxStale + time.Second))
	_, err = e.check(e.answer(e.claims(nil)))
	wantErr(t, err, ErrJWKSUnavailable)

	// Recovery.
	e.stub.setJWKS(jwksOf(t, fcES), 200)
	e.clock.Add(DefaultJWKSRefreshCooldown)
	if _, err := e.check(e.answer(e.claims(nil))); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

// req: I04 — JWKS never reachable: 503, at most one try per cooldown.
func TestA17_JWKSNeverFetched(t *testing.T) {
	e := newEnv(t)
	e.stub.setJWKS(nil, 503)
	for range 20 {
		_, err := e.check(e.answer(e.claims(nil)))
		wantErr(t, err, ErrJWKSUnavailable)
	}
	if n := e.stub.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches", n)
	}
}

// req: A17 — periodic refresh after the interval, in the background.
func TestA17_PeriodicRefresh(t *testing.T) {
	e := newEnv(t)
	if _, err := e.check(e.answer(e.claims(nil))); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(DefaultJWKSRefreshInterval - time.Second)
	if _, err := e.check(e.answer(e.claims(nil))); err != nil {
		t.Fatal(err)
	}
	e.v.keys.bg.Wait()
	if n := e.stub.fetches.Load(); n != 1 {
		t.Fatalf("before interval: %d fetches", n)
	}
	e.clock.Add(2 * time.Second)
	for range 10 {
		if _, err := e.check(e.answer(e.claims(nil))); err != nil {
			t.Fatal(err)
		}
	}
	e.v.keys.bg.Wait()
	if n := e.stub.fetches.Load(); n != 2 {
		t.Fatalf("after interval: %d fetches", n)
	}
}

// req: A17 — a cancelled first caller does not break the shared fetch.
func TestA17_CancelledCallerDetachedFetch(t *testing.T) {
	e := newEnv(t)
	e.stub.mu.Lock()
	e.stub.jwksDelay = 300 * time.Millisecond
	e.stub.mu.Unlock()
	ans := e.answer(e.claims(nil))
	e.stub.serve(ans)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := e.v.CheckToken(ctx, tokenCanary)
	wantErr(t, err, ErrJWKSUnavailable)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		e.v.keys.mu.Lock()
		landed := !e.v.keys.fetchedAt.IsZero()
		e.v.keys.mu.Unlock()
		if landed {
			break // the detached fetch completed after its caller left
		}
		if time.Now().After(deadline) {
			t.Fatal("detached fetch never landed")
		}
	}
	if _, err := e.v.CheckToken(context.Background(), tokenCanary); err != nil {
		t.Fatal(err)
	}
	if n := e.stub.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches", n)
	}
}

// req: A17 — only keys whose kty/alg/use fit are kept; 64 KiB limit.
func TestA17_JWKSFiltering(t *testing.T) {
	testKeys(t)
	algs := []jose.SignatureAlgorithm{jose.ES256, jose.RS256}
	esk, rsk := fcES.SigningKey(), fcRS.SigningKey()
	ecPub, rsaPub := esk.Public(), rsk.Public()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	jwk := func(k any, kid, alg, use string) json.RawMessage {
		b, err := json.Marshal(jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: alg, Use: use})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	doc := func(keys ...json.RawMessage) []byte {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return b
	}
	keys, err := parseJWKS(doc(
		jwk(ecPub.Key, "ec", "ES256", "sig"),
		jwk(rsaPub.Key, "rsa", "", ""),
		jwk(ecPub.Key, "enc-use", "ES256", "enc"),
		jwk(ecPub.Key, "wrong-alg", "RS256", "sig"),
		jwk(ecPub.Key, "es384-alg", "ES384", "sig"),
		jwk(&p384.PublicKey, "p384", "", "sig"),
		jwk(&rsa1024.PublicKey, "rsa1024", "RS256", "sig"),
		jwk(fcES.SigningKey().Key, "private", "ES256", "sig"),
		jwk(ecPub.Key, "", "ES256", "sig"),
		jwk([]byte("0123456789abcdef0123456789abcdef"), "oct", "HS256", "sig"),
		jwk(ecPub.Key, "dup", "ES256", "sig"),
		jwk(rsaPub.Key, "dup", "RS256", "sig"),
		json.RawMessage(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"ed"}`),
		json.RawMessage(`{"kty":"EC","crv":"P-256","kid":"broken"}`),
	), algs)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys["ec"].alg != jose.ES256 || keys["rsa"].alg != jose.RS256 {
		t.Fatalf("kept %v", keys)
	}
	if _, err := parseJWKS(doc(jwk(ecPub.Key, "ec", "ES256", "sig")), []jose.SignatureAlgorithm{jose.RS256}); err == nil {
		t.Fatal("ES256 key kept with RS256-only config")
	}
	for _, body := range []string{`[]`, `{"keys":{}}`, `{"keys":[]}`, `{}`, `{"keys":[1]}`, ``} {
		if _, err := parseJWKS([]byte(body), algs); err == nil {
			t.Fatalf("%q accepted", body)
		}
	}

	// Oversized JWKS: the fetch fails, the set stays empty.
	s := newStub(t, append(doc(jwk(ecPub.Key, "ec", "ES256", "sig")), make([]byte, maxBody)...))
	ks := newTestKeySet(s, &clock{t: t0})
	if _, err := ks.key(context.Background(), "ec"); err == nil {
		t.Fatal("oversized jwks used")
	}
	// Redirecting JWKS is not followed.
	s.setJWKS(nil, 302)
	ks = newTestKeySet(s, &clock{t: t0})
	if _, err := ks.key(context.Background(), "ec"); err == nil {
		t.Fatal("redirected jwks used")
	}
}

// req: A17 — a JWKS that FranceConnect serves without any key we may use
// (an empty set, or its new key of an algorithm this configuration does not
// allow) withdraws the keys it no longer lists at once, like any successful
// fetch: the old key is not kept for the staleness bound as if the fetch had
// failed. Verification then fails closed (503) until a usable set is served.
func TestA17_JWKSWithoutUsableKeyWithdrawsOldKeys(t *testing.T) {
	for name, jwks := range map[string]func(t *testing.T) []byte{
		"empty":           func(*testing.T) []byte { return []byte(`{"keys":[]}`) },
		"only disallowed": func(t *testing.T) []byte { return jwksOf(t, fcRS) },
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.SigningAlgorithms = []string{"ES256"} })
			if _, err := e.check(e.answer(e.claims(nil))); err != nil {
				t.Fatal(err)
			}
			e.stub.setJWKS(jwks(t), 200)
			// The periodic refresh fetches the new document.
			e.clock.Add(DefaultJWKSRefreshInterval + time.Second)
			_, _ = e.check(e.answer(e.claims(nil)))
			e.v.keys.bg.Wait()
			if n := e.stub.fetches.Load(); n != 2 {
				t.Fatalf("%d fetches", n)
			}
			_, err := e.check(e.answer(e.claims(nil)))
			wantErr(t, err, ErrJWKSUnavailable)
			if err := e.v.Ready(context.Background()); err == nil {
				t.Fatal("ready without a usable key set")
			}

			// FranceConnect serves its key again: used after the cooldown.
			e.stub.setJWKS(jwksOf(t, fcES), 200)
			e.clock.Add(DefaultJWKSRefreshCooldown)
			if _, err := e.check(e.answer(e.claims(nil))); err != nil {
				t.Fatalf("after recovery: %v", err)
			}
		})
	}
}
