package fcverify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
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

// Canary values: they must never appear in an error string (A18, G03).
const (
	fdClientID   = "fd-client-id-canary"
	fdSecret     = "SECRET-canary-7f3a"
	fsClientID   = "b2f0c1a9fs-client"
	tokenCanary  = "AT-canary-0123456789abcdefghij"
	subCanary    = "4d327dd1e427daf4d50296ab71d11f3fc18a8bd7ff90cd4f6e2ad4c1d2c6f2d5v1"
	familyCanary = "DUBOIS"
	defaultScope = "openid identite_pivot cnaf_quotient_familial"
)

// t0 matches the DOMAIN.md §2 example answer.
var t0 = time.Unix(1704965332, 0).UTC()

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// Keys are expensive: make them once per test binary.
var (
	keysOnce sync.Once
	kEC      jose.JSONWebKey // ECDH-ES P-256 decryption key
	kRSA256  jose.JSONWebKey // RSA-OAEP-256
	kRSA1    jose.JSONWebKey // RSA-OAEP
	fcES     *fcissuer.Issuer
	fcRS     *fcissuer.Issuer
	attacker *fcissuer.Issuer // a key FranceConnect never published
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		must := func(k jose.JSONWebKey, err error) jose.JSONWebKey {
			if err != nil {
				panic(err)
			}
			return k
		}
		kEC = must(GenerateKey("ECDH-ES"))
		kRSA256 = must(GenerateKey("RSA-OAEP-256"))
		kRSA1 = must(GenerateKey("RSA-OAEP"))
		var err error
		if fcES, err = fcissuer.New("ES256"); err != nil {
			panic(err)
		}
		if fcRS, err = fcissuer.New("RS256"); err != nil {
			panic(err)
		}
		if attacker, err = fcissuer.New("ES256"); err != nil {
			panic(err)
		}
	})
}

// jwksOf merges the public JWKS of several issuers.
func jwksOf(t testing.TB, issuers ...*fcissuer.Issuer) []byte {
	t.Helper()
	var all []json.RawMessage
	for _, is := range issuers {
		var doc struct{ Keys []json.RawMessage }
		if err := json.Unmarshal(is.JWKS(), &doc); err != nil {
			t.Fatal(err)
		}
		all = append(all, doc.Keys...)
	}
	b, _ := json.Marshal(map[string]any{"keys": all})
	return b
}

// stub is the FranceConnect stand-in: checktoken and JWKS over httptest,
// real JOSE crypto from fcissuer.
type stub struct {
	srv     *httptest.Server
	issuer  string // iss value: srv.URL + "/api/v2"
	checks  atomic.Int64
	fetches atomic.Int64

	mu         sync.Mutex
	jwks       []byte
	jwksStatus int
	jwksDelay  time.Duration
	answer     func(w http.ResponseWriter, r *http.Request)
}

func newStub(t testing.TB, jwks []byte) *stub {
	s := &stub{jwks: jwks, jwksStatus: 200}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v2/jwks", func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		body, status, delay := s.jwks, s.jwksStatus, s.jwksDelay
		s.mu.Unlock()
		if delay > 0 {
			time.Sleep(delay)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	})
	mux.HandleFunc("/api/v2/checktoken", func(w http.ResponseWriter, r *http.Request) {
		s.checks.Add(1)
		s.mu.Lock()
		a := s.answer
		s.mu.Unlock()
		if a == nil {
			http.Error(w, "no answer", 500)
			return
		}
		a(w, r)
	})
	s.srv = httptest.NewServer(mux)
	s.issuer = s.srv.URL + "/api/v2"
	t.Cleanup(s.srv.Close)
	return s
}

func (s *stub) setJWKS(b []byte, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jwks, s.jwksStatus = b, status
}

func (s *stub) setAnswer(f func(w http.ResponseWriter, r *http.Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = f
}

// serve makes checktoken answer 200 with FranceConnect's content type.
func (s *stub) serve(body string) {
	s.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/token-introspection+jwt")
		_, _ = io.WriteString(w, body)
	})
}

type env struct {
	t      testing.TB
	stub   *stub
	clock  *clock
	v      *Verifier
	encKey jose.JSONWebKey // key the stub encrypts to
	fc     *fcissuer.Issuer
}

type envOpt func(*Config)

// newEnv: ECDH-ES P-256 decryption (core-fcp-low) and ES256 signing, plus
// the RSA keys, with a JWKS holding both FranceConnect keys.
func newEnv(t testing.TB, opts ...envOpt) *env {
	t.Helper()
	testKeys(t)
	s := newStub(t, jwksOf(t, fcES, fcRS))
	c := &clock{t: t0}
	cfg := Config{
		Issuer:         s.issuer,
		ClientID:       fdClientID,
		ClientSecret:   fdSecret,
		DecryptionKeys: []jose.JSONWebKey{kEC, kRSA256, kRSA1},
		Now:            c.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, stub: s, clock: c, v: v, encKey: kEC, fc: fcES}
}

// introspection is an active token_introspection at the clock's time.
func (e *env) introspection() map[string]any {
	ti := fcissuer.Introspection(fsClientID, subCanary, e.clock.Now().Add(-4*time.Second), defaultScope)
	return ti
}

// claims is a valid outer payload around ti (default: introspection()).
func (e *env) claims(ti map[string]any) map[string]any {
	if ti == nil {
		ti = e.introspection()
	}
	return fcissuer.Claims(e.stub.issuer, fdClientID, e.clock.Now(), ti)
}

// answer signs claims with e.fc and encrypts to e.encKey.
func (e *env) answer(claims map[string]any) string {
	e.t.Helper()
	a, err := e.fc.Answer(claims, e.encKey)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// wrap encrypts an arbitrary plaintext exactly like FranceConnect does.
func (e *env) wrap(plaintext string) string {
	e.t.Helper()
	s, err := fcissuer.EncryptJWE([]byte(plaintext), jose.KeyAlgorithm(e.encKey.Algorithm), jose.A256GCM, e.encKey.Key,
		map[string]any{"kid": e.encKey.KeyID})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// signAs signs a payload with an issuer's key and an arbitrary header.
func signAs(t testing.TB, is *fcissuer.Issuer, payload any, header map[string]any) string {
	t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	k := is.SigningKey()
	h := map[string]any{"kid": k.KeyID}
	for name, v := range header {
		h[name] = v
	}
	s, err := fcissuer.SignJWS(b, jose.SignatureAlgorithm(k.Algorithm), k.Key, h)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// check serves body and runs CheckToken.
func (e *env) check(body string) (*Facts, error) {
	e.stub.serve(body)
	return e.v.CheckToken(context.Background(), tokenCanary)
}

func wantErr(t testing.TB, err, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("err = %v, want %v", err, sentinel)
	}
	assertPIIFree(t, err)
}

// assertPIIFree: no token, secret, claim value or identity in the message.
func assertPIIFree(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, c := range []string{tokenCanary, fdSecret, fdClientID, fsClientID, subCanary, familyCanary, "jti-is-the-access-token", "127.0.0.1"} {
		if strings.Contains(msg, c) {
			t.Fatalf("error %q leaks %q", msg, c)
		}
	}
	if !strings.HasPrefix(msg, "fcverify: ") {
		t.Fatalf("error %q is not namespaced", msg)
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
