package habilitation

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

// TestC09_ClientCertificatesField: client_certificates takes SHA-256
// fingerprints in openssl's form or bare hex, in either case; a
// habilitation declaring them accepts exactly those certificates, and one
// declaring none accepts any caller.
func TestC09_ClientCertificatesField(t *testing.T) {
	certA, certB := []byte("DER of the caller's certificate"), []byte("DER of another party's certificate")
	sumA := sha256.Sum256(certA)
	bare := hex.EncodeToString(sumA[:])
	var pairs []string
	for i := 0; i < len(bare); i += 2 {
		pairs = append(pairs, strings.ToUpper(bare[i:i+2]))
	}
	openssl := "sha256 Fingerprint=" + strings.Join(pairs, ":")
	for _, form := range []string{bare, strings.ToUpper(bare), strings.Join(pairs, ":"), openssl} {
		reg := mustParse(t, fmt.Sprintf(`habilitations:
  - id: "bound"
    label: "Service lié à son certificat"
    siret: "21930048000015"
    modalities: [france_connect]
    france_connect_client_ids: ["%s"]
    scopes: [cnaf_quotient_familial]
    client_certificates: ["%s"]
`, fsClientID, form))
		h, _ := reg.ByClientID(fsClientID)
		if !h.BindsClientCertificate() || !h.AcceptsClientCertificate(certA) {
			t.Errorf("%q: the declared certificate is refused", form)
		}
		if h.AcceptsClientCertificate(certB) || h.AcceptsClientCertificate(nil) {
			t.Errorf("%q: another certificate, or none, is accepted", form)
		}
	}
	free := mustParse(t, sample)
	h, _ := free.ByClientID(fsClientID)
	if h.BindsClientCertificate() || !h.AcceptsClientCertificate(nil) || !h.AcceptsClientCertificate(certB) {
		t.Error("a habilitation without client_certificates binds its callers")
	}

	for _, bad := range []string{`[]`, `"` + bare + `"`, `["` + bare[:62] + `"]`, `["` + bare + `00"]`,
		`["` + strings.Repeat("zz", 32) + `"]`, `["` + strings.Join(pairs[:31], ":") + `"]`,
		`["` + strings.Join(pairs, ":") + `:"]`, `["A:BC` + strings.Join(pairs[2:], ":") + `"]`,
		`["` + bare + `", "` + strings.ToUpper(bare) + `"]`} {
		_, err := Parse([]byte(fmt.Sprintf(`habilitations:
  - id: "bound"
    label: "x"
    siret: "21930048000015"
    modalities: [france_connect]
    scopes: [cnaf_quotient_familial]
    client_certificates: %s
`, bad)))
		if err == nil || !strings.Contains(err.Error(), `(id "bound"): client_certificates`) {
			t.Errorf("client_certificates: %s: %v", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), bare[:16]) {
			t.Errorf("the error quotes the value: %v", err)
		}
	}
}
