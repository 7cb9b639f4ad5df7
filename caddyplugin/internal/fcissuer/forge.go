package fcissuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// Low-level builders for negative tests and the sandbox fault injector.
// They do what they are told, including insecure things; never use them to
// verify, and never in a production path.

// SignJWS builds a compact JWS by hand so that the header can say anything:
// header is the full protected header except "alg", which is set to alg
// (header["alg"], when present, wins, to forge mismatches). key is used for
// alg's primitive: *ecdsa.PrivateKey (ES*), *rsa.PrivateKey (RS*, PS*),
// []byte (HS*); alg "none" needs no key and yields an empty signature.
func SignJWS(payload []byte, alg jose.SignatureAlgorithm, key any, header map[string]any) (string, error) {
	h := map[string]any{"alg": string(alg)}
	for k, v := range header {
		h[k] = v
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return "", errors.New("fcissuer: marshal header")
	}
	input := b64(hb) + "." + b64(payload)
	sig, err := signRaw(alg, key, []byte(input))
	if err != nil {
		return "", err
	}
	return input + "." + b64(sig), nil
}

func signRaw(alg jose.SignatureAlgorithm, key any, input []byte) ([]byte, error) {
	var hash crypto.Hash
	switch alg {
	case "none":
		return nil, nil
	case jose.HS256, jose.RS256, jose.PS256, jose.ES256:
		hash = crypto.SHA256
	case jose.HS384, jose.RS384, jose.PS384, jose.ES384:
		hash = crypto.SHA384
	case jose.HS512, jose.RS512, jose.PS512, jose.ES512:
		hash = crypto.SHA512
	default:
		return nil, errors.New("fcissuer: unsupported alg")
	}
	errKey := errors.New("fcissuer: key does not fit alg")
	switch alg[0] {
	case 'H':
		k, ok := key.([]byte)
		if !ok {
			return nil, errKey
		}
		m := hmac.New(hash.New, k)
		m.Write(input)
		return m.Sum(nil), nil
	case 'R', 'P':
		k, ok := key.(*rsa.PrivateKey)
		if !ok {
			return nil, errKey
		}
		d := digest(hash, input)
		if alg[0] == 'R' {
			return rsa.SignPKCS1v15(rand.Reader, k, hash, d)
		}
		return rsa.SignPSS(rand.Reader, k, hash, d, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	default: // ES*
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, errKey
		}
		r, s, err := ecdsa.Sign(rand.Reader, k, digest(hash, input))
		if err != nil {
			return nil, err
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out, nil
	}
}

func digest(h crypto.Hash, in []byte) []byte {
	d := h.New()
	d.Write(in)
	return d.Sum(nil)
}

// EncryptJWE encrypts plaintext in a compact JWE with go-jose, for any alg
// and enc go-jose supports, key being the recipient key (public RSA/EC key,
// or []byte for dir / AES key wrap). header members are written into the
// protected header last, so they may override alg, enc, kid or epk while the
// JWE stays authenticated; "zip": "DEF" really compresses.
func EncryptJWE(plaintext []byte, alg jose.KeyAlgorithm, enc jose.ContentEncryption, key any, header map[string]any) (string, error) {
	opts := &jose.EncrypterOptions{}
	for k, v := range header {
		if k == "zip" && v == "DEF" {
			opts.Compression = jose.DEFLATE
			continue
		}
		opts.WithHeader(jose.HeaderKey(k), v)
	}
	e, err := jose.NewEncrypter(enc, jose.Recipient{Algorithm: alg, Key: publicKey(key)}, opts)
	if err != nil {
		return "", errors.New("fcissuer: encrypter: " + err.Error())
	}
	obj, err := e.Encrypt(plaintext)
	if err != nil {
		return "", errors.New("fcissuer: encrypt")
	}
	return obj.CompactSerialize()
}

// ReplaceHeader rewrites the protected header of a compact JWS or JWE
// without re-signing or re-encrypting (the result no longer authenticates).
func ReplaceHeader(compact string, mutate func(h map[string]any)) (string, error) {
	seg, rest, _ := strings.Cut(compact, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return "", err
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		return "", err
	}
	mutate(h)
	hb, err := json.Marshal(h)
	if err != nil {
		return "", err
	}
	return b64(hb) + "." + rest, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
