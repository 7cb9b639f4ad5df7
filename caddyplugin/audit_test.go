package caddyplugin

import (
	"bytes"
	"context"
	"encoding/json"
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

// TestG05_NewlineCannotForgeRecord: whatever the caller sends (a method
// holding a newline and a forged record, a method of 64 KiB, a token with a
// line break), a request writes at most one JSON line, of bounded size.
// Wrong methods stop at routing, before the authorization step, and write
// none (G01); the method field only ever holds a registered method.
func TestG05_NewlineCannotForgeRecord(t *testing.T) {
	f := newFixture(t)
	var out bytes.Buffer
	f.h.audit = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&out), zapcore.InfoLevel))
	forged := "GET\n{\"decision\":\"allow\",\"endpoint\":\"dss_quotient_familial_fc\"}"
	for _, rq := range []struct{ method, token string }{
		{forged, testToken},
		{strings.Repeat("A", 64<<10), testToken},
		{http.MethodPost, testToken},
		{http.MethodGet, "abc\n{\"decision\":\"allow\"}"},
		{http.MethodGet, testToken},
	} {
		f.serveMethod(t, context.Background(), rq.method, rq.token, "recipient="+testSIRET, unitBody)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	wantDecisions := []string{"deny", "allow"} // the malformed token, then the good request
	if len(lines) != len(wantDecisions) {
		t.Fatalf("%d audit lines, want %d:\n%s", len(lines), len(wantDecisions), out.String())
	}
	for i, l := range lines {
		var rec struct{ Method, Decision, Reason string }
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %d is not one JSON record: %v: %q", i, err, l)
		}
		if rec.Method != http.MethodGet || rec.Decision != wantDecisions[i] {
			t.Errorf("line %d: method %q decision %q, want GET %q", i, rec.Method, rec.Decision, wantDecisions[i])
		}
		if len(l) > 2048 {
			t.Errorf("line %d: %d bytes", i, len(l))
		}
	}
	for m, want := range map[string]string{
		http.MethodGet: "GET", http.MethodOptions: "OPTIONS", forged: "_OTHER", strings.Repeat("A", 64<<10): "_OTHER", "get": "_OTHER",
	} {
		if got := auditMethod(m); got != want {
			t.Errorf("auditMethod(%.20q) = %q, want %q", m, got, want)
		}
	}
}
