package caddyplugin

import (
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// BenchmarkAuditRecord measures one audit record of an allowed request,
// JSON-encoded by zap into a discarding sink: the record's own cost.
func BenchmarkAuditRecord(b *testing.B) {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	h := &Handler{audit: zap.New(zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zapcore.InfoLevel))}
	h.app = &App{pseudo: &pseudonymizer{key: []byte("k"), version: "v1", issuer: "https://fc"}}
	ep := &catalogue.Endpoint{ID: "dss_quotient_familial_fc", ProviderName: "CNAV", Scopes: []catalogue.Scope{{Name: "cnaf_quotient_familial"}, {Name: "cnaf_enfants"}, {Name: "cnaf_adresse"}}}
	rq := &request{
		ep:    ep,
		facts: &fcverify.Facts{ClientID: testFS, ACR: "eidas1", CitizenKey: "0123456789abcdef", CitizenKeyVersion: "v1"},
		hab:   &habilitation.Habilitation{ID: "hab-42"},
		mask:  0b011,
	}
	rec := auditRecord{start: time.Now(), method: "GET", requestID: newRequestID(), endpoint: ep.ID, provider: "CNAV", providerStatus: 200, decision: "allow"}
	b.ReportAllocs()
	for b.Loop() {
		h.writeAudit(&rec, rq)
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
		if got, want := string(appendAuditTime(nil, tm)), tm.UTC().Format(auditTimeLayout); got != want {
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
