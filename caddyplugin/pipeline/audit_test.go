package pipeline

import (
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
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
