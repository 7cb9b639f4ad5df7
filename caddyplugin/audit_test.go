package caddyplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TestG05_NewlineCannotForgeRecord: whatever the caller sends (a method
// holding a newline and a forged record, a method of 64 KiB, a token with a
// line break), a request writes at most one JSON line, of bounded size.
// Wrong methods stop at routing, before the authorization step, and write
// none (G01); the method field only ever holds a registered method (package
// pipeline's TestG05_AuditMethod).
func TestG05_NewlineCannotForgeRecord(t *testing.T) {
	f := newFixture(t)
	var out bytes.Buffer
	f.h.pipe.Audit = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&out), zapcore.InfoLevel))
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
}

// TestI11_RecordsWhileRefusing (SECURITY.md I11, G09): while the audit
// trail refuses records, a request refused before any provider call writes
// none (its record would take the place of one that must be kept), and one
// whose provider call was under way when the trail started refusing writes
// its record whatever the provider answered.
func TestI11_RecordsWhileRefusing(t *testing.T) {
	f := newFixture(t)
	var out bytes.Buffer
	f.h.pipe.Audit = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&out), zapcore.InfoLevel))
	var refusing atomic.Bool
	f.h.pipe.AuditRefusing = refusing.Load
	provider := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
		refusing.Store(true) // the sink fails while the provider answers
		w.WriteHeader(http.StatusInternalServerError)
		return nil
	})
	if w := f.serveWith(t, context.Background(), testToken, provider); w.Code != http.StatusBadGateway {
		t.Fatalf("provider error: %d", w.Code)
	}
	if w := f.serve(t, context.Background(), testToken, "recipient="+testSIRET, unitBody); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("while refusing: %d", w.Code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"reason":"provider_error"`) {
		t.Fatalf("audit records: %q, want the provider call's only", lines)
	}
}
