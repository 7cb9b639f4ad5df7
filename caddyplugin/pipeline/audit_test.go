package pipeline

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// BenchmarkAuditRecord measures one audit record of an allowed request,
// JSON-encoded by zap into a discarding sink: the record's own cost.
func BenchmarkAuditRecord(b *testing.B) {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	p := New(Config{
		Audit:         zap.New(zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zapcore.InfoLevel)),
		Pseudonymizer: NewPseudonymizer([]byte("k"), "v1", "https://fc"),
	}, nil, 0)
	ep := &catalogue.Endpoint{ID: "dss_quotient_familial_fc", ProviderName: "CNAV", Scopes: []catalogue.Scope{{Name: "cnaf_quotient_familial"}, {Name: "cnaf_enfants"}, {Name: "cnaf_adresse"}}}
	c := &Call{
		rec:   auditRecord{start: time.Now(), method: "GET", requestID: newRequestID(), endpoint: ep.ID, provider: "CNAV", providerStatus: 200, decision: "allow"},
		ep:    ep,
		facts: &fcverify.Facts{ClientID: "6925fb8143c76eded44d32b40c0cb1006065f7f003de52712b78985704f39950", ACR: "eidas1", CitizenKey: "0123456789abcdef", CitizenKeyVersion: "v1"},
		hab:   &habilitation.Habilitation{ID: "hab-42"},
		mask:  0b011,
	}
	b.ReportAllocs()
	for b.Loop() {
		p.writeAudit(c)
	}
}

// TestAppendAuditTime: the hand-written formatter agrees with the time
// package on the record's layout, whatever the zone and the instant.
func TestAppendAuditTime(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	check := func(tm time.Time) {
		t.Helper()
		if got, want := string(appendAuditTime(nil, tm)), tm.UTC().Format(AuditTimeLayout); got != want {
			t.Errorf("%v: got %s, want %s", tm, got, want)
		}
	}
	for _, tm := range []time.Time{
		time.Date(2026, 11, 25, 0, 30, 0, 999_999_999, paris),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 1_000_000, time.UTC),
		time.Date(2024, 2, 29, 12, 5, 9, 50_000_000, time.FixedZone("x", -9*3600-1800)),
		time.Now(),
	} {
		check(tm)
	}
	for range 10000 {
		check(time.Unix(rand.Int64N(253402300800), rand.Int64N(1e9))) // years 1970 to 9999
	}
}

// TestG05_AuditMethod: the method field only ever holds a registered
// method; any other, a forged record or 64 KiB included, is _OTHER.
func TestG05_AuditMethod(t *testing.T) {
	forged := "GET\n{\"decision\":\"allow\",\"endpoint\":\"dss_quotient_familial_fc\"}"
	for m, want := range map[string]string{
		http.MethodGet: "GET", http.MethodOptions: "OPTIONS", forged: "_OTHER", strings.Repeat("A", 64<<10): "_OTHER", "get": "_OTHER",
	} {
		if got := auditMethod(m); got != want {
			t.Errorf("auditMethod(%.20q) = %q, want %q", m, got, want)
		}
	}
}

// TestG02_CitizenKey: citizen_key is HMAC-SHA256(key, iss ‖ 0 ‖ sub) in
// hex: the same for the same subject, another for another key, issuer or
// subject, the separator keeping (iss, sub) pairs apart; a record carries
// the key version, and facts cached before a key rotation are keyed again
// with the new key.
// req: G02
func TestG02_CitizenKey(t *testing.T) {
	key := []byte("g02-unit-key-0123456789abcdef0123456789")
	p := NewPseudonymizer(key, "v7", "https://fc.example/api/v2")
	m := hmac.New(sha256.New, key)
	m.Write([]byte("https://fc.example/api/v2\x00sub-1"))
	if got, want := p.CitizenKey("sub-1"), hex.EncodeToString(m.Sum(nil)); got != want || p.CitizenKey("sub-1") != got {
		t.Fatalf("CitizenKey = %s, want %s", got, want)
	}
	others := []string{
		NewPseudonymizer([]byte("g02-unit-key-other-456789abcdef0123456789"), "v7", "https://fc.example/api/v2").CitizenKey("sub-1"),
		NewPseudonymizer(key, "v7", "https://other.example/api/v2").CitizenKey("sub-1"),
		p.CitizenKey("sub-2"),
	}
	for i, o := range others {
		if o == p.CitizenKey("sub-1") {
			t.Errorf("case %d: same pseudonym", i)
		}
	}
	if NewPseudonymizer(key, "v7", "a").CitizenKey("bc") == NewPseudonymizer(key, "v7", "ab").CitizenKey("c") {
		t.Error("(a, bc) and (ab, c) share a pseudonym")
	}
	if p.CitizenKey("") != "" || p.Version() != "v7" {
		t.Error("empty sub or version")
	}

	// A record of facts cached under v6: keyed again with v7.
	core, logs := observer.New(zap.InfoLevel)
	pipe := New(Config{Audit: zap.New(core), Pseudonymizer: p}, nil, 0)
	ep := &catalogue.Endpoint{ID: "dss_quotient_familial_fc", ProviderName: "CNAV"}
	c := &Call{rec: auditRecord{start: time.Now(), method: "GET", requestID: newRequestID(), decision: "allow"}, ep: ep,
		facts: &fcverify.Facts{Sub: "sub-1", ClientID: "fs", ACR: "eidas1", CitizenKey: "stale-v6-key", CitizenKeyVersion: "v6"}}
	pipe.writeAudit(c)
	rec := logs.All()[0].ContextMap()
	if rec["citizen_key"] != p.CitizenKey("sub-1") || rec["pseudonym_key_version"] != "v7" || rec["citizen_key_basis"] != "sub" {
		t.Fatalf("record %v", rec)
	}
}
