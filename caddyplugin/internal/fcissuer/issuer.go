// Package fcissuer mints FranceConnect v2 checktoken answers: a JWS whose
// header holds only alg and kid, inside a compact JWE (alg from the data
// provider's encryption key, enc A256GCM, kid of that key, no cty). It
// backs the sandbox FranceConnect stand-in and the tests of fcverify.
//
// forge.go adds low-level builders for negative tests (arbitrary headers,
// algorithms and keys). Nothing here verifies anything.
package fcissuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Issuer holds one signing key: ES256 on P-256 by default, or RS256.
type Issuer struct {
	key  jose.JSONWebKey // private, KeyID and Algorithm set
	jwks []byte
}

// New generates a signing key for alg ("ES256", the default when empty, or
// "RS256"); kid is its RFC 7638 SHA-256 thumbprint.
func New(alg string) (*Issuer, error) {
	var key any
	var err error
	switch jose.SignatureAlgorithm(alg) {
	case "", jose.ES256:
		alg = string(jose.ES256)
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.RS256:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, errors.New("fcissuer: unsupported signing alg")
	}
	if err != nil {
		return nil, errors.New("fcissuer: generate key")
	}
	return NewWithKey(jose.JSONWebKey{Key: key, Algorithm: alg})
}

// NewWithKey uses an existing private signing key (EC P-256 for ES256, RSA
// for RS256). A missing kid becomes the thumbprint, a missing alg is
// inferred from the key type.
func NewWithKey(k jose.JSONWebKey) (*Issuer, error) {
	switch key := k.Key.(type) {
	case *ecdsa.PrivateKey:
		if key.Curve != elliptic.P256() || k.Algorithm != "" && k.Algorithm != string(jose.ES256) {
			return nil, errors.New("fcissuer: ec signing key must be P-256 / ES256")
		}
		k.Algorithm = string(jose.ES256)
	case *rsa.PrivateKey:
		if k.Algorithm != "" && k.Algorithm != string(jose.RS256) {
			return nil, errors.New("fcissuer: rsa signing key must be RS256")
		}
		k.Algorithm = string(jose.RS256)
	default:
		return nil, errors.New("fcissuer: signing key must be an ec or rsa private key")
	}
	if k.KeyID == "" {
		tp, err := k.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, errors.New("fcissuer: thumbprint")
		}
		k.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	}
	k.Use = "sig"
	pub := k.Public()
	pub.Certificates = nil
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	if err != nil {
		return nil, errors.New("fcissuer: marshal jwks")
	}
	return &Issuer{key: k, jwks: jwks}, nil
}

// KeyID is the kid of the signing key.
func (i *Issuer) KeyID() string { return i.key.KeyID }

// Algorithm is the JWS alg of the signing key.
func (i *Issuer) Algorithm() string { return i.key.Algorithm }

// SigningKey returns the private signing key, for tests that forge answers.
func (i *Issuer) SigningKey() jose.JSONWebKey { return i.key }

// JWKS returns the public signing JWKS: {"keys":[{…,"use":"sig","alg":…}]}.
func (i *Issuer) JWKS() []byte { return append([]byte(nil), i.jwks...) }

// Sign returns the compact JWS of claims with header {alg, kid} only.
func (i *Issuer) Sign(claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", errors.New("fcissuer: marshal claims")
	}
	return SignJWS(payload, jose.SignatureAlgorithm(i.key.Algorithm), i.key.Key, map[string]any{"kid": i.key.KeyID})
}

// Answer returns a checktoken answer for claims, encrypted to encKey (the
// data provider's public or private encryption key with KeyID and
// Algorithm): exactly FranceConnect's shape.
func (i *Issuer) Answer(claims map[string]any, encKey jose.JSONWebKey) (string, error) {
	jws, err := i.Sign(claims)
	if err != nil {
		return "", err
	}
	return EncryptJWE([]byte(jws), jose.KeyAlgorithm(encKey.Algorithm), jose.A256GCM, publicKey(encKey.Key), map[string]any{"kid": encKey.KeyID})
}

// Claims builds the outer payload FranceConnect signs: iss, aud (our FD
// client_id), iat and token_introspection.
func Claims(issuer, fdClientID string, iat time.Time, introspection map[string]any) map[string]any {
	return map[string]any{
		"iss":                 issuer,
		"aud":                 fdClientID,
		"iat":                 iat.Unix(),
		"token_introspection": introspection,
	}
}

// Introspection builds an active token_introspection like FranceConnect's
// (DOMAIN.md §2) for the test identity "test", lifetime 60 s from iat.
func Introspection(fsClientID, sub string, iat time.Time, scope string) map[string]any {
	return map[string]any{
		"active":           true,
		"aud":              fsClientID,
		"sub":              sub,
		"iat":              iat.Unix(),
		"exp":              iat.Add(60 * time.Second).Unix(),
		"acr":              "eidas1",
		"jti":              "jti-is-the-access-token",
		"scope":            scope,
		"gender":           "female",
		"family_name":      "DUBOIS",
		"given_name":       "Angela Claire Louise",
		"given_name_array": []string{"Angela", "Claire", "Louise"},
		"birthdate":        "1962-08-24",
		"birthplace":       "75107",
		"birthcountry":     "99100",
	}
}

func publicKey(k any) any {
	switch key := k.(type) {
	case *ecdsa.PrivateKey:
		return &key.PublicKey
	case *rsa.PrivateKey:
		return &key.PublicKey
	}
	return k
}
