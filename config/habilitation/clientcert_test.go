package habilitation

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestC09_ClientCertificatesField: client_certificates takes SHA-256
// fingerprints in openssl's form or bare hex, in either case; a
// habilitation declaring them accepts exactly those certificates, within
// their validity dates, and one declaring none accepts any caller.
func TestC09_ClientCertificatesField(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	cert := func(der string, from, until time.Time) *x509.Certificate {
		return &x509.Certificate{Raw: []byte(der), NotBefore: from, NotAfter: until}
	}
	year := 365 * 24 * time.Hour
	certA := cert("DER of the caller's certificate", now.Add(-year), now.Add(year))
	certB := cert("DER of another party's certificate", now.Add(-year), now.Add(year))
	expiredA := cert(string(certA.Raw), now.Add(-2*year), now.Add(-time.Second))
	futureA := cert(string(certA.Raw), now.Add(time.Hour), now.Add(year))
	sumA := sha256.Sum256(certA.Raw)
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
		if !h.BindsClientCertificate() || !h.AcceptsClientCertificate(certA, now) {
			t.Errorf("%q: the declared certificate is refused", form)
		}
		if h.AcceptsClientCertificate(certB, now) || h.AcceptsClientCertificate(nil, now) {
			t.Errorf("%q: another certificate, or none, is accepted", form)
		}
		if h.AcceptsClientCertificate(expiredA, now) || h.AcceptsClientCertificate(futureA, now) {
			t.Errorf("%q: the declared certificate is accepted outside its dates", form)
		}
	}
	free := mustParse(t, sample)
	h, _ := free.ByClientID(fsClientID)
	if h.BindsClientCertificate() || !h.AcceptsClientCertificate(nil, now) || !h.AcceptsClientCertificate(certB, now) {
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

// TestC09_RefusedFileStillBindsCertificates: a registry file refused for an
// unrelated error still narrows client certificate bindings (as it still
// revokes, SECURITY.md C02): an unbound habilitation takes the file's
// certificates, a bound one keeps only those both list, one left with none
// (or with a field that does not read) is revoked; a refused file never
// unbinds nor adds a certificate to a binding.
func TestC09_RefusedFileStillBindsCertificates(t *testing.T) {
	fp := func(b byte) string { return strings.Repeat(fmt.Sprintf("%02x", b), 32) }
	certs := func(bs ...byte) string {
		var l []string
		for _, b := range bs {
			l = append(l, `"`+fp(b)+`"`)
		}
		return "[" + strings.Join(l, ", ") + "]"
	}
	base := regYAML(hab("A", nil), hab("B", map[string]string{"client_certificates": certs(1, 2)}), hab("C", nil))
	for _, tc := range []struct {
		name       string
		a, b       string // the refused file's client_certificates of A and B ("": none)
		wantA      []byte // A's binding after (nil: none)
		wantB      []byte
		revokedA   bool
		revokedB   bool
		restricted int
	}{
		{"unbound A takes the file's", certs(7), "", []byte{7}, []byte{1, 2}, false, false, 1},
		{"bound B keeps the common one", "", certs(2, 9), nil, []byte{2}, false, false, 1},
		{"bound B keeps both, the new one is not added", "", certs(1, 2, 9), nil, []byte{1, 2}, false, false, 0},
		{"nothing in common: B revoked", "", certs(9), nil, []byte{1, 2}, false, true, 1},
		{"unreadable field: revoked", `"not a list"`, `["not a fingerprint"]`, nil, []byte{1, 2}, true, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, p := startWatcher(t, base, WatchOptions{})
			set := func(v string) map[string]string {
				if v == "" {
					return nil
				}
				return map[string]string{"client_certificates": v}
			}
			// C's SIRET fails the file: it is refused as a whole.
			writeFile(t, p, regYAML(hab("A", set(tc.a)), hab("B", set(tc.b)), hab("C", badSIRET)))
			if _, err := w.Poll(); err == nil {
				t.Fatal("the file was not refused")
			}
			r := w.Current()
			for id, want := range map[string]struct {
				certs   []byte
				revoked bool
			}{"A": {tc.wantA, tc.revokedA}, "B": {tc.wantB, tc.revokedB}} {
				h, _ := r.ByID(id)
				var got []byte
				for _, c := range h.ClientCertificates {
					got = append(got, c[0])
				}
				if string(got) != string(want.certs) || h.Revoked != want.revoked {
					t.Errorf("%s: certificates %v revoked %v, want %v %v", id, got, h.Revoked, want.certs, want.revoked)
				}
			}
			checkStatus(t, w, StateRefused, tc.restricted)
		})
	}
}
