package fcissuer_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcissuer"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
)

func header(t *testing.T, compact string) map[string]any {
	t.Helper()
	seg, _, _ := strings.Cut(compact, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func names(h map[string]any) []string {
	var out []string
	for k := range h {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestNewAndJWKS(t *testing.T) {
	for _, alg := range []string{"", "ES256", "RS256"} {
		is, err := fcissuer.New(alg)
		if err != nil {
			t.Fatal(err)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(is.JWKS(), &set); err != nil || len(set.Keys) != 1 {
			t.Fatalf("%s", is.JWKS())
		}
		k := set.Keys[0]
		tp, _ := k.Thumbprint(crypto.SHA256)
		if !k.IsPublic() || k.Use != "sig" || k.Algorithm != is.Algorithm() || k.KeyID != is.KeyID() ||
			k.KeyID != base64.RawURLEncoding.EncodeToString(tp) {
			t.Fatalf("%s: %+v", alg, k)
		}
		if strings.Contains(string(is.JWKS()), `"d"`) {
			t.Fatal("private member in jwks")
		}
		if alg == "" && is.Algorithm() != "ES256" {
			t.Fatal("default is not ES256")
		}
	}
	for _, alg := range []string{"HS256", "none", "ES384", "PS256"} {
		if _, err := fcissuer.New(alg); err == nil {
			t.Fatalf("%s accepted", alg)
		}
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, k := range map[string]jose.JSONWebKey{
		"p384":         {Key: p384},
		"rsa as ES256": {Key: rsaKey, Algorithm: "ES256"},
		"public":       {Key: &rsaKey.PublicKey},
		"oct":          {Key: []byte("secret")},
	} {
		if _, err := fcissuer.NewWithKey(k); err == nil {
			t.Fatalf("%s accepted", name)
		}
	}
}

// Answer has FranceConnect's exact shape and round-trips through go-jose.
func TestAnswerShape(t *testing.T) {
	now := time.Unix(1704965332, 0)
	claims := fcissuer.Claims("https://fc.example/api/v2", "fd", now, fcissuer.Introspection("fs", "sub", now, "openid"))
	for _, tc := range []struct {
		sig, enc string
		jweHdr   []string
	}{
		{"ES256", "ECDH-ES", []string{"alg", "enc", "epk", "kid"}},
		{"RS256", "RSA-OAEP-256", []string{"alg", "enc", "kid"}},
		{"ES256", "RSA-OAEP", []string{"alg", "enc", "kid"}},
	} {
		is, _ := fcissuer.New(tc.sig)
		encKey, err := fcverify.GenerateKey(tc.enc)
		if err != nil {
			t.Fatal(err)
		}
		pub := encKey.Public()
		ans, err := is.Answer(claims, pub)
		if err != nil {
			t.Fatal(err)
		}
		h := header(t, ans)
		if got := names(h); !slices.Equal(got, tc.jweHdr) || h["enc"] != "A256GCM" || h["alg"] != tc.enc || h["kid"] != encKey.KeyID {
			t.Fatalf("jwe header %v", h)
		}
		obj, err := jose.ParseEncryptedCompact(ans, []jose.KeyAlgorithm{jose.KeyAlgorithm(tc.enc)}, []jose.ContentEncryption{jose.A256GCM})
		if err != nil {
			t.Fatal(err)
		}
		jws, err := obj.Decrypt(encKey.Key)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(header(t, string(jws))); !slices.Equal(got, []string{"alg", "kid"}) {
			t.Fatalf("jws header %v", got)
		}
		var set jose.JSONWebKeySet
		_ = json.Unmarshal(is.JWKS(), &set)
		sig, err := jose.ParseSignedCompact(string(jws), []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tc.sig)})
		if err != nil {
			t.Fatal(err)
		}
		payload, err := sig.Verify(set.Keys[0].Key)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		_ = json.Unmarshal(payload, &got)
		if got["iss"] != "https://fc.example/api/v2" || got["aud"] != "fd" || got["iat"] != float64(now.Unix()) {
			t.Fatalf("payload %v", got)
		}
	}
}

func TestSelectEncryptionKey(t *testing.T) {
	ec, _ := fcverify.GenerateKey("ECDH-ES")
	rsa1, _ := fcverify.GenerateKey("RSA-OAEP")
	rsa256, _ := fcverify.GenerateKey("RSA-OAEP-256")
	sigKey, _ := fcissuer.New("ES256")
	pub := func(k jose.JSONWebKey, alg, use string) json.RawMessage {
		p := k.Public()
		p.Algorithm, p.Use = alg, use
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var sigSet struct{ Keys []json.RawMessage }
	_ = json.Unmarshal(sigKey.JWKS(), &sigSet)
	doc, _ := json.Marshal(map[string]any{"keys": []json.RawMessage{
		sigSet.Keys[0],
		pub(rsa1, "RSA1_5", "enc"),
		pub(ec, "RSA-OAEP", "enc"), // type does not fit alg
		pub(rsa1, "RSA-OAEP", ""),  // no use
		pub(rsa256, "RSA-OAEP-256", "enc"),
		pub(ec, "ECDH-ES", "enc"),
	}})
	k, err := fcissuer.SelectEncryptionKey(doc)
	if err != nil || k.KeyID != rsa256.KeyID || !k.IsPublic() {
		t.Fatalf("%+v %v", k, err)
	}
	k, err = fcissuer.SelectEncryptionKeyFor(doc, "ECDH-ES")
	if err != nil || k.KeyID != ec.KeyID {
		t.Fatalf("%+v %v", k, err)
	}
	if _, err := fcissuer.SelectEncryptionKeyFor(doc, "RSA-OAEP"); err == nil {
		t.Fatal("RSA-OAEP key without use selected")
	}
	// Our own published JWKS works as FranceConnect would read it.
	published, err := fcverify.PublicJWKS([]jose.JSONWebKey{ec, rsa1})
	if err != nil {
		t.Fatal(err)
	}
	if k, err := fcissuer.SelectEncryptionKey(published); err != nil || k.KeyID != ec.KeyID {
		t.Fatalf("%+v %v", k, err)
	}
	for _, bad := range []string{``, `{}`, `{"keys":[]}`, string(sigKey.JWKS())} {
		if _, err := fcissuer.SelectEncryptionKey([]byte(bad)); err == nil {
			t.Fatalf("%q: key selected", bad)
		}
	}
}

func TestForgeHelpers(t *testing.T) {
	none, err := fcissuer.SignJWS([]byte(`{}`), "none", nil, map[string]any{"kid": "k"})
	if err != nil || !strings.HasSuffix(none, ".") || header(t, none)["alg"] != "none" {
		t.Fatalf("%q %v", none, err)
	}
	hs, err := fcissuer.SignJWS([]byte(`{}`), jose.HS256, []byte("0123456789abcdef0123456789abcdef"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jose.ParseSignedCompact(hs, []jose.SignatureAlgorithm{jose.HS256}); err != nil {
		t.Fatal(err)
	}
	if _, err := fcissuer.SignJWS([]byte(`{}`), jose.ES256, []byte("k"), nil); err == nil {
		t.Fatal("key type not checked")
	}
	ec, _ := fcverify.GenerateKey("ECDH-ES")
	z, err := fcissuer.EncryptJWE([]byte("hello hello hello"), jose.ECDH_ES, jose.A256GCM, ec.Key, map[string]any{"zip": "DEF", "x": 1})
	if err != nil {
		t.Fatal(err)
	}
	if h := header(t, z); h["zip"] != "DEF" || h["x"] != float64(1) {
		t.Fatalf("%v", h)
	}
	r, err := fcissuer.ReplaceHeader(z, func(h map[string]any) { h["kid"] = "other" })
	if err != nil || header(t, r)["kid"] != "other" || strings.SplitN(r, ".", 2)[1] != strings.SplitN(z, ".", 2)[1] {
		t.Fatalf("%v", err)
	}
}
