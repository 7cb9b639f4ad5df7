package fcverify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcissuer"
)

// req: A06 — alg and enc allow-lists.
func TestA06_JWEAllowList(t *testing.T) {
	e := newEnv(t)
	jws, _ := fcES.Sign(e.claims(nil))
	sym32 := make([]byte, 32)
	sym16 := make([]byte, 16)
	ecPub := &kEC.Key.(*ecdsa.PrivateKey).PublicKey
	for _, tc := range []struct {
		name string
		alg  jose.KeyAlgorithm
		enc  jose.ContentEncryption
		key  any
	}{
		{"dir", jose.DIRECT, jose.A256GCM, sym32},
		{"A128KW", jose.A128KW, jose.A256GCM, sym16},
		{"A256GCMKW", jose.A256GCMKW, jose.A256GCM, sym32},
		{"ECDH-ES+A256KW", jose.ECDH_ES_A256KW, jose.A256GCM, ecPub},
		{"RSA1_5", jose.RSA1_5, jose.A256GCM, kRSA256.Key},
		{"enc A128CBC-HS256", jose.ECDH_ES, jose.A128CBC_HS256, ecPub},
		{"enc A256CBC-HS512", jose.RSA_OAEP_256, jose.A256CBC_HS512, kRSA256.Key},
		{"enc A128GCM", jose.ECDH_ES, jose.A128GCM, ecPub},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ans, err := fcissuer.EncryptJWE([]byte(jws), tc.alg, tc.enc, tc.key, map[string]any{"kid": kEC.KeyID})
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.check(ans)
			wantErr(t, err, ErrBadResponse)
		})
	}

	// A configured subset narrows the list.
	e2 := newEnv(t, func(c *Config) {
		c.KeyAlgorithms = []string{"ECDH-ES"}
		c.DecryptionKeys = []jose.JSONWebKey{kEC}
	})
	e2.encKey = kRSA256
	_, err := e2.check(e2.answer(e2.claims(nil)))
	wantErr(t, err, ErrBadResponse)
}

// req: A06 — any zip is refused, even a valid DEFLATE.
func TestA06_ZipRefused(t *testing.T) {
	e := newEnv(t)
	jws, _ := fcES.Sign(e.claims(nil))
	for _, k := range []jose.JSONWebKey{kEC, kRSA256} {
		ans, err := fcissuer.EncryptJWE([]byte(jws), jose.KeyAlgorithm(k.Algorithm), jose.A256GCM, k.Key,
			map[string]any{"kid": k.KeyID, "zip": "DEF"})
		if err != nil {
			t.Fatal(err)
		}
		if headerOf(t, ans)["zip"] != "DEF" {
			t.Fatal("zip not set")
		}
		_, err = e.check(ans)
		wantErr(t, err, ErrBadResponse)
	}
}

// req: A06 — crit, unknown kid, key bound to another alg, cty.
func TestA06_HeaderMatrix(t *testing.T) {
	e := newEnv(t)
	jws, _ := fcES.Sign(e.claims(nil))
	enc := func(k jose.JSONWebKey, h map[string]any) string {
		t.Helper()
		ans, err := fcissuer.EncryptJWE([]byte(jws), jose.KeyAlgorithm(k.Algorithm), jose.A256GCM, k.Key, h)
		if err != nil {
			t.Fatal(err)
		}
		return ans
	}
	refused := map[string]string{
		"crit":                       enc(kEC, map[string]any{"kid": kEC.KeyID, "crit": []string{"exp"}, "exp": 1}),
		"crit empty":                 enc(kEC, map[string]any{"kid": kEC.KeyID, "crit": []string{}}),
		"unknown kid":                enc(kEC, map[string]any{"kid": "nope"}),
		"kid not a string":           enc(kEC, map[string]any{"kid": 7}),
		"rsa key in ecdh-es header":  enc(kRSA256, map[string]any{"kid": kRSA256.KeyID, "alg": "ECDH-ES"}),
		"ec key in rsa-oaep header":  enc(kEC, map[string]any{"kid": kEC.KeyID, "alg": "RSA-OAEP-256"}),
		"rsa-oaep-256 key as oaep":   enc(kRSA256, map[string]any{"kid": kRSA256.KeyID, "alg": "RSA-OAEP"}),
		"epk on rsa alg":             enc(kRSA256, map[string]any{"kid": kRSA256.KeyID, "epk": map[string]any{"kty": "EC"}}),
		"cty JSON":                   enc(kEC, map[string]any{"kid": kEC.KeyID, "cty": "JSON"}),
		"cty number":                 enc(kEC, map[string]any{"kid": kEC.KeyID, "cty": 1}),
		"enc null":                   enc(kEC, map[string]any{"kid": kEC.KeyID, "enc": nil}),
		"duplicate member (folded)":  enc(kEC, map[string]any{"kid": kEC.KeyID, "ALG": "dir"}),
		"alg ecdh-es named by other": enc(kEC, map[string]any{"kid": kRSA1.KeyID}),
	}
	for name, ans := range refused {
		t.Run(name, func(t *testing.T) {
			_, err := e.check(ans)
			wantErr(t, err, ErrBadResponse)
		})
	}
	for _, cty := range []string{"JWT", "jwt"} {
		if _, err := e.check(enc(kEC, map[string]any{"kid": kEC.KeyID, "cty": cty})); err != nil {
			t.Fatalf("cty %s: %v", cty, err)
		}
	}
}

// req: A07 — the ECDH-ES epk is validated before key agreement.
func TestA07_InvalidCurveEPK(t *testing.T) {
	e := newEnv(t)
	jws, _ := fcES.Sign(e.claims(nil))
	b64 := base64.RawURLEncoding.EncodeToString
	coord := func(n *big.Int, size int) string { return b64(n.FillBytes(make([]byte, size))) }

	p256 := elliptic.P256().Params()
	gx, gy := p256.Gx, p256.Gy
	offY := new(big.Int).Add(gy, big.NewInt(1)) // (Gx, Gy+1) is not on P-256
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384x, _ := p384.PublicKey.Bytes()
	big33 := b64(append([]byte{1}, make([]byte, 32)...))

	for name, epk := range map[string]any{
		"off-curve point":      map[string]any{"kty": "EC", "crv": "P-256", "x": coord(gx, 32), "y": coord(offY, 32)},
		"P-384 epk":            map[string]any{"kty": "EC", "crv": "P-384", "x": b64(p384x[1:49]), "y": b64(p384x[49:])},
		"P-384 point as P-256": map[string]any{"kty": "EC", "crv": "P-256", "x": b64(p384x[1:49]), "y": b64(p384x[49:])},
		"zero coordinates":     map[string]any{"kty": "EC", "crv": "P-256", "x": coord(big.NewInt(0), 32), "y": coord(big.NewInt(0), 32)},
		"coordinate = p":       map[string]any{"kty": "EC", "crv": "P-256", "x": coord(p256.P, 32), "y": coord(gy, 32)},
		"oversized coordinate": map[string]any{"kty": "EC", "crv": "P-256", "x": big33, "y": coord(gy, 32)},
		"short coordinate":     map[string]any{"kty": "EC", "crv": "P-256", "x": coord(gx, 32)[:20], "y": coord(gy, 32)},
		"private epk":          map[string]any{"kty": "EC", "crv": "P-256", "x": coord(gx, 32), "y": coord(gy, 32), "d": b64([]byte{1})},
		"rsa epk":              map[string]any{"kty": "RSA", "n": "AQAB", "e": "AQAB"},
		"epk string":           "x",
		"epk null":             nil,
	} {
		t.Run(name, func(t *testing.T) {
			// The override lands in the authenticated header: only the
			// epk check stands between it and key agreement.
			ans, err := fcissuer.EncryptJWE([]byte(jws), jose.ECDH_ES, jose.A256GCM, kEC.Key,
				map[string]any{"kid": kEC.KeyID, "epk": epk})
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.check(ans)
			wantErr(t, err, ErrBadResponse)
			if !strings.Contains(err.Error(), "epk") {
				t.Fatalf("refused by a later check: %v", err)
			}
		})
	}
	// Missing epk.
	ans, _ := fcissuer.EncryptJWE([]byte(jws), jose.ECDH_ES, jose.A256GCM, kEC.Key, map[string]any{"kid": kEC.KeyID})
	ans, _ = fcissuer.ReplaceHeader(ans, func(h map[string]any) { delete(h, "epk") })
	_, err := e.check(ans)
	wantErr(t, err, ErrBadResponse)

	// Defence in depth: go-jose itself refuses the off-curve point.
	ans, _ = fcissuer.EncryptJWE([]byte(jws), jose.ECDH_ES, jose.A256GCM, kEC.Key, map[string]any{"epk": map[string]any{
		"kty": "EC", "crv": "P-256", "x": coord(gx, 32), "y": coord(offY, 32)}})
	if obj, err := jose.ParseEncryptedCompact(ans, []jose.KeyAlgorithm{jose.ECDH_ES}, []jose.ContentEncryption{jose.A256GCM}); err == nil {
		if _, err := obj.Decrypt(kEC.Key); err == nil {
			t.Fatal("go-jose decrypted with an off-curve epk")
		}
	}
}

// req: A07 — fuzz on the epk member: never panics; accepted ⇒ on curve.
func FuzzA07_EPK(f *testing.F) {
	p := elliptic.P256().Params()
	b64 := base64.RawURLEncoding.EncodeToString
	f.Add("EC", "P-256", b64(p.Gx.FillBytes(make([]byte, 32))), b64(p.Gy.FillBytes(make([]byte, 32))))
	f.Add("EC", "P-256", b64(make([]byte, 32)), b64(make([]byte, 32)))
	f.Add("EC", "P-384", "", "")
	f.Fuzz(func(t *testing.T, kty, crv, x, y string) {
		h := object{}
		epk, _ := jsonMarshal(map[string]string{"kty": kty, "crv": crv, "x": x, "y": y})
		h["epk"] = epk
		if checkEPK(h, elliptic.P256()) != nil {
			return
		}
		xb, _ := base64.RawURLEncoding.DecodeString(x)
		yb, _ := base64.RawURLEncoding.DecodeString(y)
		pt := append(append([]byte{4}, xb...), yb...)
		if _, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt); err != nil {
			t.Fatalf("accepted an invalid point: %v", err)
		}
	})
}

// req: A09 — jku, x5u, jwk, x5c in the JWE header: refused, never fetched.
func TestA09_HeaderKeysNeverUsedJWE(t *testing.T) {
	e := newEnv(t)
	var hits atomic.Int64
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer rec.Close()
	jws, _ := fcES.Sign(e.claims(nil))
	ecPub := &kEC.Key.(*ecdsa.PrivateKey).PublicKey
	certDER := selfSigned(t)
	for name, h := range map[string]map[string]any{
		"jku": {"jku": rec.URL + "/jwks"},
		"x5u": {"x5u": rec.URL + "/cert.pem"},
		"jwk": {"jwk": jose.JSONWebKey{Key: ecPub}},
		"x5c": {"x5c": []string{base64.StdEncoding.EncodeToString(certDER)}},
	} {
		t.Run(name, func(t *testing.T) {
			h["kid"] = kEC.KeyID
			ans, err := fcissuer.EncryptJWE([]byte(jws), jose.ECDH_ES, jose.A256GCM, kEC.Key, h)
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.check(ans)
			wantErr(t, err, ErrBadResponse)
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("recording server saw %d requests", n)
	}
}

func selfSigned(t testing.TB) []byte {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
