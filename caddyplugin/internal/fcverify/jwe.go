package fcverify

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// keyReferenceHeaders name keys or certificates by value or by URL. They are
// refused in both layers, never followed (SECURITY.md A09).
var keyReferenceHeaders = []string{"jku", "x5u", "jwk", "x5c"}

// isCompact reports whether s has exactly parts base64url segments
// separated by dots. It runs before any parser (A03, A05; go-jose
// CVE-2025-27144).
func isCompact(s string, parts int) bool {
	if strings.Count(s, ".") != parts-1 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// protectedHeader decodes the first segment of a compact serialization.
func protectedHeader(compact string) (object, error) {
	seg, _, _ := strings.Cut(compact, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, err
	}
	return decodeObject(raw)
}

// decrypt checks the JWE protected header, selects our key and returns the
// plaintext (SECURITY.md A05, A06, A07, A09, A10).
func (v *Verifier) decrypt(body string) ([]byte, error) {
	if !isCompact(body, 5) {
		return nil, bad("not a compact jwe")
	}
	h, err := protectedHeader(body)
	if err != nil {
		return nil, bad("jwe header")
	}
	if h.has("zip") {
		return nil, bad("jwe zip")
	}
	if h.has("crit") {
		return nil, bad("jwe crit")
	}
	for _, name := range keyReferenceHeaders {
		if h.has(name) {
			return nil, bad("jwe key reference header")
		}
	}
	alg, ok, err := h.str("alg")
	if !ok || err != nil || !slices.Contains(v.cfg.KeyAlgorithms, alg) {
		return nil, bad("jwe alg")
	}
	if enc, _, err := h.str("enc"); err != nil || enc != string(jose.A256GCM) {
		return nil, bad("jwe enc")
	}
	if cty, ok, err := h.str("cty"); err != nil || ok && !strings.EqualFold(cty, "JWT") {
		return nil, bad("jwe cty")
	}
	kid, hasKid, err := h.str("kid")
	if err != nil {
		return nil, bad("jwe kid")
	}

	var candidates []jose.JSONWebKey
	for _, k := range v.cfg.DecryptionKeys {
		if hasKid && k.KeyID != kid {
			continue
		}
		if k.Algorithm != alg {
			if hasKid {
				// One key, one algorithm: an RSA key named in an
				// ECDH-ES header (or the reverse) is refused.
				return nil, bad("jwe alg does not fit the named key")
			}
			continue
		}
		candidates = append(candidates, k)
	}
	if len(candidates) == 0 {
		return nil, bad("jwe key not found")
	}

	if alg == string(jose.ECDH_ES) {
		var fit []jose.JSONWebKey
		for _, k := range candidates {
			if err = checkEPK(h, k.Key.(*ecdsa.PrivateKey).Curve); err == nil {
				fit = append(fit, k)
			}
		}
		if len(fit) == 0 {
			return nil, err
		}
		candidates = fit
	} else if h.has("epk") {
		return nil, bad("jwe epk without ecdh")
	}

	jwe, err := jose.ParseEncryptedCompact(body, v.keyAlgs, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		return nil, bad("jwe parse")
	}
	for _, k := range candidates {
		if plain, err := jwe.Decrypt(k.Key); err == nil {
			return plain, nil
		}
	}
	return nil, bad("jwe decrypt")
}

// checkEPK validates the ephemeral public key before any key agreement: an
// EC key on our key's curve, coordinates of the exact field size, a valid
// non-identity point (SECURITY.md A07; go-jose CVE-2016-9121). go-jose
// checks the point again.
func checkEPK(h object, curve elliptic.Curve) error {
	epk, ok, err := h.obj("epk")
	if !ok || err != nil {
		return bad("jwe epk")
	}
	if epk.has("d") {
		return bad("jwe epk")
	}
	kty, _, err1 := epk.str("kty")
	crv, _, err2 := epk.str("crv")
	x, _, err3 := epk.str("x")
	y, _, err4 := epk.str("y")
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || kty != "EC" || crv != curve.Params().Name {
		return bad("jwe epk curve")
	}
	size := (curve.Params().BitSize + 7) / 8
	xb, errX := base64.RawURLEncoding.DecodeString(x)
	yb, errY := base64.RawURLEncoding.DecodeString(y)
	if errX != nil || errY != nil || len(xb) != size || len(yb) != size {
		return bad("jwe epk coordinates")
	}
	var ec ecdh.Curve
	switch curve {
	case elliptic.P256():
		ec = ecdh.P256()
	case elliptic.P384():
		ec = ecdh.P384()
	case elliptic.P521():
		ec = ecdh.P521()
	default:
		return bad("jwe epk curve")
	}
	point := append(append([]byte{4}, xb...), yb...)
	if _, err := ec.NewPublicKey(point); err != nil {
		return bad("jwe epk not on curve")
	}
	return nil
}
