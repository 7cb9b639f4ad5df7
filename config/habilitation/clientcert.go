package habilitation

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"time"
)

// CertFingerprint is the SHA-256 of a certificate's DER encoding, as
// `openssl x509 -noout -fingerprint -sha256` prints it.
type CertFingerprint [sha256.Size]byte

// ParseCertFingerprint reads a certificate's SHA-256 fingerprint written as
// 64 hex digits, in either case, bare or in colon-separated pairs (openssl's
// form, with or without its "sha256 Fingerprint=" prefix).
func ParseCertFingerprint(s string) (CertFingerprint, bool) {
	var fp CertFingerprint
	const opensslPrefix = "sha256 Fingerprint="
	if len(s) > len(opensslPrefix) && strings.EqualFold(s[:len(opensslPrefix)], opensslPrefix) {
		s = s[len(opensslPrefix):]
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

// AcceptsClientCertificate reports whether cert, the certificate the
// caller presented in its TLS handshake (nil: none), is one of h's client
// certificates and valid at now (its own dates: a pinned certificate
// expires like any other; no chain is needed, the fingerprint pins it). A
// habilitation that declares none accepts any caller, with or without a
// certificate.
func (h *Habilitation) AcceptsClientCertificate(cert *x509.Certificate, now time.Time) bool {
	if !h.BindsClientCertificate() {
		return true
	}
	if cert == nil || now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return false
	}
	sum := sha256.Sum256(cert.Raw)
	ok := 0
	for i := range h.ClientCertificates {
		ok |= subtle.ConstantTimeCompare(sum[:], h.ClientCertificates[i][:])
	}
	return ok == 1
}
