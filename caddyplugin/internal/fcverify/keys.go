package fcverify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

var errKeyData = errors.New("fcverify: keys: unreadable key data")

// LoadKeys reads our private decryption keys from a JWK, a JWKS
// ({"keys":[…]}) or PEM (PKCS#8, PKCS#1 RSA, SEC1 EC; several blocks, EC
// PARAMETERS blocks skipped). A key without kid gets its RFC 7638 SHA-256
// thumbprint; a key without alg gets RSA-OAEP-256 (RSA) or ECDH-ES (EC). Use
// is set to "enc". Public-only, symmetric and other key types are refused.
// Errors never quote key material.
func LoadKeys(data []byte) ([]jose.JSONWebKey, error) {
	data = bytes.TrimSpace(data)
	var keys []jose.JSONWebKey
	switch {
	case len(data) == 0:
		return nil, errKeyData
	case data[0] == '{':
		obj, err := decodeObject(data)
		if err != nil {
			return nil, errKeyData
		}
		if obj.has("keys") {
			var raws []json.RawMessage
			if json.Unmarshal(obj["keys"], &raws) != nil {
				return nil, errKeyData
			}
			for _, raw := range raws {
				var k jose.JSONWebKey
				if k.UnmarshalJSON(raw) != nil {
					return nil, errKeyData
				}
				keys = append(keys, k)
			}
		} else {
			var k jose.JSONWebKey
			if k.UnmarshalJSON(data) != nil {
				return nil, errKeyData
			}
			keys = append(keys, k)
		}
	default:
		for rest := data; ; {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				if len(bytes.TrimSpace(rest)) != 0 {
					return nil, errKeyData
				}
				break
			}
			if block.Type == "EC PARAMETERS" {
				continue
			}
			k, err := parsePEMBlock(block)
			if err != nil {
				return nil, err
			}
			keys = append(keys, jose.JSONWebKey{Key: k})
		}
	}
	if len(keys) == 0 {
		return nil, errKeyData
	}
	for i := range keys {
		if err := completeKey(&keys[i]); err != nil {
			return nil, fmt.Errorf("fcverify: keys: key %d: %w", i, err)
		}
	}
	return keys, nil
}

func parsePEMBlock(b *pem.Block) (any, error) {
	if len(b.Headers) != 0 { // legacy encrypted PEM
		return nil, errors.New("fcverify: keys: encrypted pem is not supported")
	}
	switch b.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, errKeyData
		}
		return k, nil
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
		if err != nil {
			return nil, errKeyData
		}
		return k, nil
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(b.Bytes)
		if err != nil {
			return nil, errKeyData
		}
		return k, nil
	default:
		return nil, errors.New("fcverify: keys: unsupported pem block type")
	}
}

// completeKey checks that k is an RSA or EC private key and fills kid, alg
// and use.
func completeKey(k *jose.JSONWebKey) error {
	switch k.Key.(type) {
	case *rsa.PrivateKey:
		if k.Algorithm == "" {
			k.Algorithm = string(jose.RSA_OAEP_256)
		}
	case *ecdsa.PrivateKey:
		if k.Algorithm == "" {
			k.Algorithm = string(jose.ECDH_ES)
		}
	default:
		return errors.New("not an rsa or ec private key")
	}
	if err := fitsKeyAlgorithm(k.Key, k.Algorithm); err != nil {
		return err
	}
	if k.Use != "" && k.Use != "enc" {
		return errors.New("use must be enc")
	}
	k.Use = "enc"
	if k.KeyID == "" {
		kid, err := thumbprint(k)
		if err != nil {
			return err
		}
		k.KeyID = kid
	}
	return nil
}

func thumbprint(k *jose.JSONWebKey) (string, error) {
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", errors.New("thumbprint")
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// PublicJWKS returns {"keys":[…]} with the public half of each RSA or EC key
// (kty, n/e or crv/x/y, kid, alg, use "enc"), for our jwks_uri. Certificates
// and every other member are dropped; the output is re-parsed and refused if
// it holds any private member (SECURITY.md H08).
func PublicJWKS(keys []jose.JSONWebKey) ([]byte, error) {
	out := struct {
		Keys []jose.JSONWebKey `json:"keys"`
	}{Keys: []jose.JSONWebKey{}}
	for i, k := range keys {
		var pub any
		switch key := k.Key.(type) {
		case *rsa.PrivateKey:
			pub = &key.PublicKey
		case *rsa.PublicKey:
			pub = key
		case *ecdsa.PrivateKey:
			pub = &key.PublicKey
		case *ecdsa.PublicKey:
			pub = key
		default:
			return nil, fmt.Errorf("fcverify: jwks: key %d: not an rsa or ec key", i)
		}
		out.Keys = append(out.Keys, jose.JSONWebKey{Key: pub, KeyID: k.KeyID, Algorithm: k.Algorithm, Use: "enc"})
	}
	doc, err := json.Marshal(out)
	if err != nil {
		return nil, errors.New("fcverify: jwks: marshal")
	}
	var check struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	}
	if json.Unmarshal(doc, &check) != nil || len(check.Keys) != len(keys) {
		return nil, errors.New("fcverify: jwks: self-check")
	}
	for _, k := range check.Keys {
		for _, m := range privateMembers {
			if _, ok := k[m]; ok {
				return nil, errors.New("fcverify: jwks: private member in output")
			}
		}
	}
	return doc, nil
}

// GenerateKey makes an ephemeral decryption key for the sandbox:
// RSA-OAEP-256 or RSA-OAEP → RSA 2048, ECDH-ES → P-256. kid is the
// thumbprint, use "enc".
func GenerateKey(alg string) (jose.JSONWebKey, error) {
	var key any
	var err error
	switch jose.KeyAlgorithm(alg) {
	case jose.RSA_OAEP_256, jose.RSA_OAEP:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ECDH_ES:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return jose.JSONWebKey{}, errors.New("fcverify: keys: unsupported alg")
	}
	if err != nil {
		return jose.JSONWebKey{}, errors.New("fcverify: keys: generate")
	}
	k := jose.JSONWebKey{Key: key, Algorithm: alg, Use: "enc"}
	if k.KeyID, err = thumbprint(&k); err != nil {
		return jose.JSONWebKey{}, errors.New("fcverify: keys: thumbprint")
	}
	return k, nil
}
