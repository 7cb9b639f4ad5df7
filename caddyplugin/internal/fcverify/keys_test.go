package fcverify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func TestLoadKeys(t *testing.T) {
	testKeys(t)
	rsaKey := kRSA256.Key.(*rsa.PrivateKey)
	ecKey := kEC.Key.(*ecdsa.PrivateKey)
	pkcs8RSA, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	pkcs8EC, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	pemOf := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	thumb := func(k any) string {
		j := jose.JSONWebKey{Key: k}
		tp, _ := j.Thumbprint(crypto.SHA256)
		return base64.RawURLEncoding.EncodeToString(tp)
	}

	for name, tc := range map[string]struct {
		data string
		want []string // alg per key
	}{
		"pkcs8 rsa":    {pemOf("PRIVATE KEY", pkcs8RSA), []string{"RSA-OAEP-256"}},
		"pkcs8 ec":     {pemOf("PRIVATE KEY", pkcs8EC), []string{"ECDH-ES"}},
		"pkcs1 rsa":    {pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), []string{"RSA-OAEP-256"}},
		"sec1 ec":      {pemOf("EC PRIVATE KEY", sec1), []string{"ECDH-ES"}},
		"several pems": {pemOf("EC PARAMETERS", []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}) + pemOf("EC PRIVATE KEY", sec1) + "\n" + pemOf("PRIVATE KEY", pkcs8RSA), []string{"ECDH-ES", "RSA-OAEP-256"}},
	} {
		t.Run(name, func(t *testing.T) {
			keys, err := LoadKeys([]byte(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != len(tc.want) {
				t.Fatalf("%d keys", len(keys))
			}
			for i, k := range keys {
				if k.Algorithm != tc.want[i] || k.Use != "enc" || k.KeyID != thumb(k.Key) {
					t.Fatalf("key %d: alg %s use %s kid %s", i, k.Algorithm, k.Use, k.KeyID)
				}
			}
		})
	}
	// The openssl-generated fixture loads too.
	if data, err := os.ReadFile("testdata/fuzz_enc_p256.pem"); err != nil {
		t.Fatal(err)
	} else if _, err := LoadKeys(data); err != nil {
		t.Fatal(err)
	}

	// JWK and JWKS keep their kid and alg.
	one, _ := json.Marshal(kRSA1)
	keys, err := LoadKeys(one)
	if err != nil || len(keys) != 1 || keys[0].KeyID != kRSA1.KeyID || keys[0].Algorithm != "RSA-OAEP" {
		t.Fatalf("jwk: %v %v", keys, err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{kEC, kRSA256}})
	keys, err = LoadKeys(set)
	if err != nil || len(keys) != 2 || keys[0].KeyID != kEC.KeyID {
		t.Fatalf("jwks: %v %v", keys, err)
	}

	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pubJWK, _ := json.Marshal(jose.JSONWebKey{Key: &ecKey.PublicKey})
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p224DER, _ := x509.MarshalPKCS8PrivateKey(p224)
	ecAsRSA, _ := json.Marshal(jose.JSONWebKey{Key: ecKey, Algorithm: "RSA-OAEP"})
	sigUse, _ := json.Marshal(jose.JSONWebKey{Key: ecKey, Use: "sig"})
	for name, data := range map[string]string{
		"empty":           "",
		"garbage":         "not a key",
		"public pem":      pemOf("PUBLIC KEY", pubDER),
		"public jwk":      string(pubJWK),
		"oct jwk":         `{"kty":"oct","k":"AAAA"}`,
		"rsa 1024":        pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)),
		"p224":            pemOf("PRIVATE KEY", p224DER),
		"ec bound to rsa": string(ecAsRSA),
		"sig use":         string(sigUse),
		"broken pem":      pemOf("PRIVATE KEY", []byte("MIIEnot")),
		"trailing junk":   pemOf("EC PRIVATE KEY", sec1) + "junk",
		"encrypted pem":   string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}})),
		"duplicate json":  `{"kty":"EC","KTY":"RSA"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := LoadKeys([]byte(data))
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "MII") || !strings.HasPrefix(err.Error(), "fcverify: ") {
				t.Fatalf("error %q", err)
			}
		})
	}
}

// req: H08 — the published JWKS has public members only.
func TestH08_PublicJWKS(t *testing.T) {
	testKeys(t)
	cert, err := x509.ParseCertificate(selfSigned(t))
	if err != nil {
		t.Fatal(err)
	}
	withCert := kRSA256
	withCert.Certificates = []*x509.Certificate{cert}
	doc, err := PublicJWKS([]jose.JSONWebKey{kEC, withCert, kRSA1})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(doc), "x5c") {
		t.Fatal("certificate published")
	}
	var parsed struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(doc, &parsed); err != nil || len(parsed.Keys) != 3 {
		t.Fatalf("%s %v", doc, err)
	}
	for i, k := range parsed.Keys {
		for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
			if _, ok := k[m]; ok {
				t.Fatalf("key %d leaks %q", i, m)
			}
		}
		if k["use"] != "enc" || k["kid"] == "" || k["alg"] == "" {
			t.Fatalf("key %d: %v", i, k)
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Fatal("private key in output")
		}
	}
	if _, err := PublicJWKS([]jose.JSONWebKey{{Key: []byte("0123456789abcdef"), KeyID: "oct"}}); err == nil {
		t.Fatal("symmetric key published")
	}
}

func TestGenerateKey(t *testing.T) {
	for alg, check := range map[string]func(any) bool{
		"ECDH-ES":      func(k any) bool { e, ok := k.(*ecdsa.PrivateKey); return ok && e.Curve == elliptic.P256() },
		"RSA-OAEP-256": func(k any) bool { r, ok := k.(*rsa.PrivateKey); return ok && r.N.BitLen() == 2048 },
	} {
		k, err := GenerateKey(alg)
		if err != nil || !check(k.Key) || k.Algorithm != alg || k.Use != "enc" || k.KeyID == "" {
			t.Fatalf("%s: %+v %v", alg, k, err)
		}
	}
	for _, alg := range []string{"", "dir", "RSA1_5", "ECDH-ES+A256KW"} {
		if _, err := GenerateKey(alg); err == nil {
			t.Fatalf("%q generated", alg)
		}
	}
}

// New validates everything and does no network I/O.
func TestNewConfig(t *testing.T) {
	testKeys(t)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	base := func() Config {
		return Config{Issuer: srv.URL + "/api/v2", ClientID: "fd", ClientSecret: fdSecret, DecryptionKeys: []jose.JSONWebKey{kEC}}
	}
	v, err := New(base())
	if err != nil {
		t.Fatal(err)
	}
	if v.cfg.CheckTokenURL != srv.URL+"/api/v2/checktoken" || v.cfg.JWKSURL != srv.URL+"/api/v2/jwks" ||
		v.cfg.Skew != DefaultSkew || v.cfg.Timeout != DefaultTimeout || v.cfg.JWKSMaxStale != DefaultJWKSMaxStale {
		t.Fatalf("defaults: %+v", v.cfg)
	}
	ecPublic := kEC
	ecPublic.Key = &kEC.Key.(*ecdsa.PrivateKey).PublicKey
	noKid := kEC
	noKid.KeyID = ""
	ecAsRSA := kEC
	ecAsRSA.Algorithm = "RSA-OAEP"
	sigUse := kEC
	sigUse.Use = "sig"
	for name, mutate := range map[string]func(*Config){
		"no issuer":              func(c *Config) { c.Issuer = "" },
		"http issuer":            func(c *Config) { c.Issuer = "http://fc.example/api/v2" },
		"issuer with query":      func(c *Config) { c.Issuer += "?x=1" },
		"issuer with user":       func(c *Config) { c.Issuer = "https://u:p@fc.example" },
		"http jwks":              func(c *Config) { c.JWKSURL = "http://fc.example/jwks" },
		"no client id":           func(c *Config) { c.ClientID = "" },
		"no secret":              func(c *Config) { c.ClientSecret = "" },
		"no keys":                func(c *Config) { c.DecryptionKeys = nil },
		"public key":             func(c *Config) { c.DecryptionKeys = []jose.JSONWebKey{ecPublic} },
		"no kid":                 func(c *Config) { c.DecryptionKeys = []jose.JSONWebKey{noKid} },
		"duplicate kid":          func(c *Config) { c.DecryptionKeys = []jose.JSONWebKey{kEC, kEC} },
		"ec key bound to rsa":    func(c *Config) { c.DecryptionKeys = []jose.JSONWebKey{ecAsRSA} },
		"key alg not in subset":  func(c *Config) { c.KeyAlgorithms = []string{"RSA-OAEP"} },
		"sig use":                func(c *Config) { c.DecryptionKeys = []jose.JSONWebKey{sigUse} },
		"bad key alg":            func(c *Config) { c.KeyAlgorithms = []string{"ECDH-ES", "dir"} },
		"bad signing alg":        func(c *Config) { c.SigningAlgorithms = []string{"HS256"} },
		"none signing alg":       func(c *Config) { c.SigningAlgorithms = []string{"none"} },
		"negative skew":          func(c *Config) { c.Skew = -1 },
		"negative timeout":       func(c *Config) { c.Timeout = -1 },
		"stale below interval":   func(c *Config) { c.JWKSMaxStale = 1 },
		"negative cooldown":      func(c *Config) { c.JWKSRefreshCooldown = -1 },
		"negative max issued at": func(c *Config) { c.MaxIssuedAge = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			c := base()
			mutate(&c)
			_, err := New(c)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), fdSecret) || !strings.HasPrefix(err.Error(), "fcverify: config: ") {
				t.Fatalf("error %q", err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("New made %d requests", n)
	}
}
