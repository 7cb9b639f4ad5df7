package datapass

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// SignatureHeader is the header DataPass signs its webhooks in.
const SignatureHeader = "X-Hub-Signature-256"

// Sign returns the X-Hub-Signature-256 value of body under secret:
// "sha256=" and the lowercase hex HMAC-SHA256. The DataPass stand-in and the
// tests sign with it.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether header is the signature of body under one of the
// secrets (the current one and, during a rotation, the previous one). The
// header must be exactly "sha256=" and 64 lowercase hex digits, as DataPass
// writes it; every secret is tried, each comparison in constant time, so the
// time taken says nothing about which secret matched or how much of the
// signature did. Empty secrets never match.
func Verify(header string, body []byte, secrets ...[]byte) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(hexSig) != 2*sha256.Size || strings.ToLower(hexSig) != hexSig {
		return false
	}
	want, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	match := false
	for _, s := range secrets {
		if len(s) == 0 {
			continue
		}
		m := hmac.New(sha256.New, s)
		m.Write(body)
		if hmac.Equal(m.Sum(nil), want) {
			match = true
		}
	}
	return match
}
