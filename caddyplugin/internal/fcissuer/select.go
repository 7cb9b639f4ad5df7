package fcissuer

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"slices"

	"github.com/go-jose/go-jose/v4"
)

var encAlgorithms = []string{string(jose.RSA_OAEP_256), string(jose.RSA_OAEP), string(jose.ECDH_ES)}

// SelectEncryptionKey returns the first key of a data provider's JWKS with
// use "enc", a supported alg (RSA-OAEP-256, RSA-OAEP, ECDH-ES) and a public
// key of the matching type, as FranceConnect does.
func SelectEncryptionKey(jwks []byte) (jose.JSONWebKey, error) {
	return SelectEncryptionKeyFor(jwks, "")
}

// SelectEncryptionKeyFor is SelectEncryptionKey restricted to alg (the FD's
// registered checktoken_encrypted_response_alg); "" means any supported.
func SelectEncryptionKeyFor(jwks []byte, alg string) (jose.JSONWebKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &doc); err != nil {
		return jose.JSONWebKey{}, errors.New("fcissuer: not a jwks")
	}
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		if k.UnmarshalJSON(raw) != nil || k.Use != "enc" || !slices.Contains(encAlgorithms, k.Algorithm) {
			continue
		}
		if alg != "" && k.Algorithm != alg {
			continue
		}
		switch k.Key.(type) {
		case *rsa.PublicKey:
			if k.Algorithm == string(jose.ECDH_ES) {
				continue
			}
		case *ecdsa.PublicKey:
			if k.Algorithm != string(jose.ECDH_ES) {
				continue
			}
		default:
			continue
		}
		return k, nil
	}
	return jose.JSONWebKey{}, errors.New("fcissuer: no usable encryption key")
}
