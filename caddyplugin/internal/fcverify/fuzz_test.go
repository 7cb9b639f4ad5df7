package fcverify

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcissuer"
)

// fuzzFixture uses the fixed keys of testdata so that corpus entries
// reproduce: the answers it seeds decrypt and verify in every run.
type fuzzFixture struct {
	v       *Verifier
	encKey  jose.JSONWebKey
	fc      *fcissuer.Issuer
	genuine string // the one JWS FranceConnect "signed" (RS256: deterministic)
}

func newFuzzFixture(tb testing.TB) *fuzzFixture {
	tb.Helper()
	encPEM, err := os.ReadFile("testdata/fuzz_enc_p256.pem")
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := LoadKeys(encPEM)
	if err != nil {
		tb.Fatal(err)
	}
	sigPEM, err := os.ReadFile("testdata/fuzz_fc_sig_rsa.pem")
	if err != nil {
		tb.Fatal(err)
	}
	block, _ := pem.Decode(sigPEM)
	rsaKey, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	fc, err := fcissuer.NewWithKey(jose.JSONWebKey{Key: rsaKey, Algorithm: "RS256"})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(fc.JWKS()) }))
	tb.Cleanup(srv.Close)
	const issuer = "https://fcp-low.integ01.dev-franceconnect.fr/api/v2"
	v, err := New(Config{
		Issuer: issuer, JWKSURL: srv.URL + "/jwks", ClientID: "fd", ClientSecret: fdSecret,
		DecryptionKeys: keys, Now: func() time.Time { return t0 },
	})
	if err != nil {
		tb.Fatal(err)
	}
	// Small claims keep inputs short, which keeps minimization cheap.
	ti := map[string]any{"active": true, "aud": "fs", "sub": "s", "iat": t0.Unix() - 4, "exp": t0.Unix() + 56,
		"scope": "openid profile", "acr": "eidas1", "family_name": "D", "given_name_array": []string{"A"}}
	genuine, err := fc.Sign(fcissuer.Claims(issuer, "fd", t0, ti))
	if err != nil {
		tb.Fatal(err)
	}
	return &fuzzFixture{v: v, encKey: keys[0], fc: fc, genuine: genuine}
}

func (x *fuzzFixture) encrypt(tb testing.TB, plaintext []byte) string {
	s, err := fcissuer.EncryptJWE(plaintext, jose.ECDH_ES, jose.A256GCM, x.encKey.Key, map[string]any{"kid": x.encKey.KeyID})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// flipped returns the genuine JWS with one decoded byte of segment seg
// changed (flipping decoded bytes avoids base64 padding-bit malleability).
func (x *fuzzFixture) flipped(seg, at int) []byte {
	parts := strings.Split(x.genuine, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[seg])
	raw[at%len(raw)] ^= 0x20
	parts[seg] = base64.RawURLEncoding.EncodeToString(raw)
	return []byte(strings.Join(parts, "."))
}

// sameJWS compares decoded segments, so that base64 spellings of the same
// bytes count as the same, genuinely signed, JWS.
func sameJWS(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	if len(pa) != 3 || len(pb) != 3 {
		return false
	}
	for i := range 3 {
		da, errA := base64.RawURLEncoding.DecodeString(pa[i])
		db, errB := base64.RawURLEncoding.DecodeString(pb[i])
		if errA != nil || errB != nil || !bytes.Equal(da, db) {
			return false
		}
	}
	return true
}

// req: A05 — the whole JWE → JWS → claims pipeline on arbitrary bytes
// never panics and never accepts. With wrap=false the input is the
// checktoken body: nothing may be accepted. With wrap=true the input is
// the JWE plaintext, which the harness encrypts to our key so that the
// fuzzer reaches the JWS and claims layers: only the JWS that
// FranceConnect's key really signed may be accepted.
func FuzzA05_CheckTokenResponse(f *testing.F) {
	x := newFuzzFixture(f)
	for seg := range 3 {
		for _, at := range []int{0, 7, 40, 200} {
			f.Add([]byte(x.encrypt(f, x.flipped(seg, at))), false)
			f.Add(x.flipped(seg, at), true)
		}
	}
	claims, _ := json.Marshal(map[string]any{"iss": "x"})
	f.Add([]byte(x.genuine), true)
	f.Add([]byte(x.genuine), false)
	f.Add(claims, false)
	f.Add([]byte(x.encrypt(f, claims)), false)
	f.Add([]byte("a.b.c.d.e"), false)
	f.Add([]byte(""), false)

	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte, wrap bool) {
		body := string(data)
		if wrap {
			body = x.encrypt(t, data)
		}
		facts, err := x.v.verifyAnswer(ctx, body)
		if err != nil {
			if facts != nil {
				t.Fatal("facts with an error")
			}
			if Reason(err) == ReasonInternal {
				t.Fatalf("unclassified error: %v", err)
			}
			assertPIIFree(t, err)
			return
		}
		if !wrap || !sameJWS(string(data), x.genuine) {
			t.Fatalf("accepted a forged answer (wrap=%v): %q", wrap, data)
		}
	})
}

// The fuzz fixture's genuine answer is valid, so the fuzzer starts from the
// accepting path.
func TestA05_FuzzFixtureValid(t *testing.T) {
	x := newFuzzFixture(t)
	f, err := x.v.verifyAnswer(context.Background(), x.encrypt(t, []byte(x.genuine)))
	if err != nil || !f.Active {
		t.Fatalf("%+v %v", f, err)
	}
	_, err = x.v.verifyAnswer(context.Background(), x.encrypt(t, x.flipped(1, 40)))
	wantErr(t, err, ErrBadResponse)
}
