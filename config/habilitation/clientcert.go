package habilitation

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
)

// CertFingerprint is the SHA-256 of a certificate's DER encoding, as
// `openssl x509 -noout -fingerprint -sha256` prints it.
type CertFingerprint [sha256.Size]byte

// ParseCertFingerprint reads a certificate's SHA-256 fingerprint written as
// 64 hex digits, in either case, bare or in colon-separated pairs (openssl's
// form, with or without its "sha256 Fingerprint=" prefix).
func ParseCertFingerprint(s string) (CertFingerprint, bool) {
	var fp CertFingerprint
	if _, v, ok := strings.Cut(s, "="); ok && strings.HasPrefix(strings.ToLower(s), "sha256 fingerprint=") {
		s = v
	}
	if strings.Contains(s, ":") {
		pairs := strings.Split(s, ":")
		if len(pairs) != sha256.Size {
			return fp, false
		}
		for _, p := range pairs {
			if len(p) != 2 {
				return fp, false
			}
		}
		s = strings.Join(pairs, "")
	}
	if len(s) != hex.EncodedLen(sha256.Size) {
		return fp, false
	}
	if _, err := hex.Decode(fp[:], []byte(s)); err != nil {
		return CertFingerprint{}, false
	}
	return fp, true
}

// BindsClientCertificate reports whether h declares client certificates:
// its calls must then come over TLS with one of them (SECURITY.md C09).
func (h *Habilitation) BindsClientCertificate() bool {
	return h != nil && len(h.ClientCertificates) > 0
}

// AcceptsClientCertificate reports whether der, the DER encoding of the
// certificate the caller presented in its TLS handshake (nil: none), is
// one of h's client certificates. A habilitation that declares none
// accepts any caller, with or without a certificate.
func (h *Habilitation) AcceptsClientCertificate(der []byte) bool {
	if !h.BindsClientCertificate() {
		return true
	}
	if len(der) == 0 {
		return false
	}
	sum := sha256.Sum256(der)
	ok := 0
	for i := range h.ClientCertificates {
		ok |= subtle.ConstantTimeCompare(sum[:], h.ClientCertificates[i][:])
	}
	return ok == 1
}
