package caddyplugin

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/passerelle-gw/passerelle/caddyplugin/auditseal"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcissuer"
)

const (
	testFS      = "6925fb8143c76eded44d32b40c0cb1006065f7f003de52712b78985704f39950"
	testFD      = "423dcbdc5a15ece61ed00ff5989d72379c26d9ed4c8e4e05a87cffae019586e0"
	testSIRET   = "13002526500013"
	testToken   = "unit-token-canary-5d1f"
	testSub     = "5e1c0d0e0a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324v1"
	testProvKey = "Bearer provider-key-canary-77"
)

// canaries are values that must never reach a span, a metric or an audit
// record: the token, the sub, the identity, the credential.
// acrTokenPrefix: the fixture's FranceConnect answers a token
// acrTokenPrefix+v like testToken, with acr v.
const acrTokenPrefix = "unit-acr-"

var canaries = []string{testToken, testSub, "DUBOIS", "Angela", "1962-08-24", "75107", "provider-key-canary", "CANARYDATA"}

// fixture is a provisioned app and handler in sandbox mode, in front of a
// FranceConnect stand-in with real JOSE (fcissuer) and a provider function.
type fixture struct {
	h        *Handler
	jwksDown atomic.Bool
	checks   atomic.Int64 // checktoken calls
	slowFC   atomic.Bool  // checktoken answers after 200 ms
	fcDown   atomic.Bool  // checktoken answers 502
	audit    *observer.ObservedLogs
	upstream *http.Request
}

// newFixture builds the fixture; opts adjust the app before it is
// provisioned. The in-process quotas, the process's, start unspent.
func newFixture(t testing.TB, opts ...func(*App)) *fixture {
	t.Helper()
	localQuotas().Purge()
	return reloadedFixture(t, opts...)
}

// reloadedFixture is newFixture with the quotas spent so far, as a
// configuration reload finds them.
func reloadedFixture(t testing.TB, opts ...func(*App)) *fixture {
	t.Helper()
	iss, err := fcissuer.New("ES256")
	if err != nil {
		t.Fatal(err)
	}
	var app *App
	f := new(fixture)
	fc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/jwks") && f.jwksDown.Load():
			w.WriteHeader(http.StatusBadGateway)
		case strings.HasSuffix(r.URL.Path, "/jwks"):
			_, _ = w.Write(iss.JWKS())
		case strings.HasSuffix(r.URL.Path, "/checktoken"):
			f.checks.Add(1)
			if f.slowFC.Load() {
				time.Sleep(200 * time.Millisecond)
			}
			if f.fcDown.Load() {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			_ = r.ParseForm()
			now := time.Now()
			ti := map[string]any{"active": false}
			tok := r.PostForm.Get("token")
			if acr, ok := strings.CutPrefix(tok, acrTokenPrefix); ok || tok == testToken {
				ti = fcissuer.Introspection(testFS, testSub, now, "openid identite_pivot cnaf_quotient_familial cnaf_enfants")
				if ok {
					ti["acr"] = acr
				}
			}
			key, err := fcissuer.SelectEncryptionKey(app.PublicJWKS())
			if err != nil {
				t.Error(err)
				return
			}
			answer, err := iss.Answer(fcissuer.Claims(srvURL(r)+"/api/v2", testFD, now, ti), key)
			if err != nil {
				t.Error(err)
				return
			}
			w.Header().Set("Content-Type", "application/token-introspection+jwt")
			_, _ = io.WriteString(w, answer)
		}
	}))
	t.Cleanup(fc.Close)

	habs := filepath.Join(t.TempDir(), "habilitations.yaml")
	if err := os.WriteFile(habs, []byte(`habilitations:
  - id: "hab-42"
    label: "Test"
    siret: "`+testSIRET+`"
    modalities: [france_connect, identite, identifiant]
    france_connect_client_ids: ["`+testFS+`"]
    scopes: [cnaf_quotient_familial, cnaf_enfants, cnaf_adresse]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	app = &App{
		Mode:          ModeSandbox,
		FranceConnect: FranceConnectConfig{Issuer: fc.URL + "/api/v2", ClientID: testFD, ClientSecret: "unit-fd-secret"},
		Habilitations: habs,
		Upstreams:     map[string]*UpstreamConfig{"CNAV": {HeaderName: "Authorization", HeaderValue: testProvKey}},
		Cache:         CacheConfig{MaxEntries: 777},
	}
	for _, o := range opts {
		o(app)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := app.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Cleanup() })
	core, logs := observer.New(zap.InfoLevel)
	f.audit = logs
	f.h = &Handler{logger: zap.NewNop(), audit: zap.New(core)}
	if err := f.h.provisionWith(app); err != nil {
		t.Fatal(err)
	}
	return f
}

func srvURL(r *http.Request) string { return "http://" + r.Host }

// serve runs one request through the handler with a provider answering
// body, under ctx.
func (f *fixture) serve(t testing.TB, ctx context.Context, token, query, body string) *httptest.ResponseRecorder {
	t.Helper()
	return f.serveMethod(t, ctx, http.MethodGet, token, query, body)
}

// serveMethod is serve with any method, valid HTTP token or not (a test
// sets what a client could send).
func (f *fixture) serveMethod(t testing.TB, ctx context.Context, method, token, query, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v3/dss/quotient_familial/france_connect?"+query, nil)
	r.Method = method
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	w := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		f.upstream = r.Clone(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
		return nil
	})
	if err := f.h.ServeHTTP(w, r, next); err != nil {
		t.Fatal(err)
	}
	return w
}

// serveWith runs one quotient familial request with token through the
// handler, next answering as the provider.
func (f *fixture) serveWith(t testing.TB, ctx context.Context, token string, next caddyhttp.Handler) *httptest.ResponseRecorder {
	t.Helper()
	return f.serveFromWith(t, ctx, "", token, next)
}

// serveFromWith is serveWith from a client address (httptest's when "").
func (f *fixture) serveFromWith(t testing.TB, ctx context.Context, addr, token string, next caddyhttp.Handler) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v3/dss/quotient_familial/france_connect?recipient="+testSIRET, nil)
	if addr != "" {
		r.RemoteAddr = addr + ":4242"
	}
	r.Header.Set("Authorization", "Bearer "+token)
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	w := httptest.NewRecorder()
	if err := f.h.ServeHTTP(w, r, next); err != nil {
		t.Error(err)
	}
	return w
}

const unitBody = `{"data":{"quotient_familial":{"valeur":1},"enfants":[],"allocataires":[{"nom":"CANARYDATA"}]},"links":{},"meta":{}}`

// TestG07_SpansNestedAndFreeOfPersonalData: each step has a span under the
// request span, the provider receives our trace context, and no attribute
// holds a token, the sub or an identity value.
func TestG07_SpansNestedAndFreeOfPersonalData(t *testing.T) {
	f := newFixture(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, root := tp.Tracer("test").Start(context.Background(), "request")
	w := f.serve(t, ctx, testToken, "recipient="+testSIRET, unitBody)
	root.End()
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		spans[s.Name()] = s
		if s.Name() != "request" && s.Parent().SpanID() != root.SpanContext().SpanID() {
			t.Errorf("span %s is not a child of the request span", s.Name())
		}
		for _, kv := range s.Attributes() {
			for _, c := range canaries {
				if strings.Contains(kv.Value.String(), c) || strings.Contains(string(kv.Key), c) {
					t.Errorf("span %s attribute %s holds %q", s.Name(), kv.Key, c)
				}
			}
		}
	}
	for _, name := range []string{"passerelle.token", "passerelle.habilitation", "passerelle.credential", "passerelle.provider"} {
		if _, ok := spans[name]; !ok {
			t.Errorf("no %s span", name)
		}
	}
	if got := attr(spans["passerelle.token"], "passerelle.cache.level"); got != "checktoken" {
		t.Errorf("first lookup cache level %q, want checktoken", got)
	}
	if got := attr(spans["passerelle.habilitation"], "passerelle.habilitation.id"); got != "hab-42" {
		t.Errorf("habilitation id attribute %q", got)
	}
	tp0 := f.upstream.Header.Get("Traceparent")
	want := spans["passerelle.provider"].SpanContext()
	if !strings.Contains(tp0, want.TraceID().String()) || !strings.Contains(tp0, want.SpanID().String()) {
		t.Errorf("provider got traceparent %q, want the provider span %s", tp0, want.SpanID())
	}

	// Second request: served from the in-process cache.
	rec2 := tracetest.NewSpanRecorder()
	tp.RegisterSpanProcessor(rec2)
	ctx, root = tp.Tracer("test").Start(context.Background(), "request")
	f.serve(t, ctx, testToken, "recipient="+testSIRET, unitBody)
	root.End()
	for _, s := range rec2.Ended() {
		if s.Name() == "passerelle.token" && attr(s, "passerelle.cache.level") != "l1" {
			t.Errorf("second lookup cache level %q, want l1", attr(s, "passerelle.cache.level"))
		}
	}
}

// TestAppPipelineServesCatalogue: the app's pipeline, which handlers of
// other packages call in process, answers a catalogue route as the
// passerelle handler does, audited on the app's trail.
func TestAppPipelineServesCatalogue(t *testing.T) {
	f := newFixture(t)
	p := f.h.app.Pipeline(zap.NewNop())
	r := httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/v3/dss/quotient_familial/france_connect?recipient="+testSIRET, nil)
	r.Header.Set("Authorization", "Bearer "+testToken)
	w := httptest.NewRecorder()
	p.Serve(w, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, unitBody)
		return nil
	}))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"quotient_familial"`) || strings.Contains(w.Body.String(), "CANARYDATA") {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if p.Audit != f.h.app.audit {
		t.Error("the app's pipeline does not audit on the app's trail")
	}
}

// TestG07_UntracedRequestsStartNoSpan: without a recording request span,
// no tracer is used and no traceparent is sent.
func TestG07_UntracedRequestsStartNoSpan(t *testing.T) {
	f := newFixture(t)
	if w := f.serve(t, context.Background(), testToken, "recipient="+testSIRET, unitBody); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	if f.upstream.Header.Get("Traceparent") != "" {
		t.Fatal("traceparent sent for an untraced request")
	}
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	if s == nil {
		return ""
	}
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// TestG01_AuditRecords: one record per decision with the documented
// fields, a pseudonymous citizen key, and nothing personal.
func TestG01_AuditRecords(t *testing.T) {
	f := newFixture(t)
	tp := sdktrace.NewTracerProvider()
	ctx, root := tp.Tracer("test").Start(context.Background(), "request")
	f.serve(t, ctx, testToken, "recipient="+testSIRET, unitBody)
	root.End()
	f.serve(t, context.Background(), "unknown-token", "recipient="+testSIRET, unitBody)
	f.serve(t, context.Background(), testToken, "recipient=21930048000015", unitBody)
	f.serve(t, context.Background(), "", "recipient="+testSIRET, unitBody)

	entries := f.audit.All()
	if len(entries) != 4 {
		t.Fatalf("%d audit records for 4 requests", len(entries))
	}
	type want struct{ decision, code, reason string }
	wants := []want{{"allow", "", ""}, {"deny", "50002", "token_inactive"}, {"deny", "00100", "recipient_mismatch"}, {"deny", "50004", "token_missing"}}
	for i, e := range entries {
		m := e.ContextMap()
		for _, k := range []string{"time", "request_id", "instance", "endpoint", "method", "decision", "reason", "provider", "provider_status", "latency_ms"} {
			if _, ok := m[k]; !ok {
				t.Errorf("record %d lacks %s", i, k)
			}
		}
		if m["decision"] != wants[i].decision || m["code"] != wants[i].code || m["reason"] != wants[i].reason {
			t.Errorf("record %d: decision %v code %v reason %v, want %+v", i, m["decision"], m["code"], m["reason"], wants[i])
		}
		if m["endpoint"] != "dss_quotient_familial_fc" {
			t.Errorf("record %d endpoint %v", i, m["endpoint"])
		}
		if ts, _ := m["time"].(string); !strings.HasSuffix(ts, "Z") || len(ts) != len("2006-01-02T15:04:05.000Z") {
			t.Errorf("record %d time %q is not UTC RFC 3339 with ms", i, ts)
		}
		for k, v := range m {
			for _, c := range canaries {
				if strings.Contains(k, c) || strings.Contains(strings.Join(strings.Fields(fmtAny(v)), " "), c) {
					t.Errorf("record %d field %s holds %q", i, k, c)
				}
			}
		}
	}
	allow := entries[0].ContextMap()
	if allow["habilitation_id"] != "hab-42" || allow["client_id"] != testFS || allow["provider_status"] != int64(200) {
		t.Errorf("allow record: %v", allow)
	}
	if allow["trace_id"] != root.SpanContext().TraceID().String() {
		t.Errorf("trace_id %v", allow["trace_id"])
	}
	key, _ := allow["citizen_key"].(string)
	if b, err := hex.DecodeString(key); err != nil || len(b) != 32 || allow["pseudonym_key_version"] != "v1" {
		t.Errorf("citizen_key %q version %v", key, allow["pseudonym_key_version"])
	}
	if entries[2].ContextMap()["citizen_key"] != key {
		t.Error("the citizen key is not stable for one citizen")
	}
	if scopes := fmtAny(allow["scopes"]); !strings.Contains(scopes, "cnaf_quotient_familial") || strings.Contains(scopes, "cnaf_adresse") {
		t.Errorf("effective scopes %s", scopes)
	}
}

func fmtAny(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		var parts []string
		for _, e := range x {
			parts = append(parts, fmtAny(e))
		}
		return strings.Join(parts, " ")
	case []string:
		return strings.Join(x, " ")
	}
	return strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(string(must(jsonMarshal(v))), "\"", ""), "\n", ""))
}

// TestG08_MetricLabelsBounded: after junk traffic (random paths, tokens,
// SIRETs), every label value comes from a closed set.
func TestG08_MetricLabelsBounded(t *testing.T) {
	f := newFixture(t)
	reg := prometheus.NewRegistry()
	if err := registerMetrics(reg); err != nil {
		t.Fatal(err)
	}
	// A sealed audit record: caddy_passerelle_audit_sealed_total{key_id, boot}.
	sealer, err := auditseal.NewSealer([]byte(strings.Repeat("k", 32)), "g08")
	if err != nil {
		t.Fatal(err)
	}
	sealer.Seal(nil, []byte(`{"msg":"access decision"}`+"\n"))
	for i := 0; i < 50; i++ {
		tok := []string{testToken, "junk" + strings.Repeat("x", i)}[i%2]
		f.serve(t, context.Background(), tok, "recipient="+[]string{testSIRET, "2193004800001" + string(rune('0'+i%10))}[i%2], unitBody)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]map[string]bool{
		"endpoint": {"dss_quotient_familial_fc": true, "unknown": true},
		"decision": {"allow": true, "deny": true, "error": true},
		"source":   {"l1": true, "l2": true, "checktoken": true},
		"result":   {"active": true, "inactive": true, "error": true, "ok": true, "refused": true}, // token checks; habilitation reloads
		"provider": {},                                                                             // the catalogue's providers, below
		"cause":    {"in_flight": true, "circuit_open": true, "memory": true},                      // provider_shed_total; requests_shed_total
		"mode":     {"sandbox": true, "production": true},
		"quota":    {"habilitation": true, "client_ip": true, "citizen": true, "failed_auth": true},
		"reason":   {"fc_unavailable": true, "fc_bad_response": true, "jwks_unavailable": true, "fc_client_auth_failed": true, "internal_error": true},
		"outcome":  {"retried": true, "budget_exhausted": true, "deadline": true},
		"kind":     {"error": true, "corrupt": true},
	}
	for name := range f.h.app.Catalog().Providers {
		allowed["provider"][name] = true
	}
	allowed["provider"]["franceconnect"] = true // checktoken calls shed
	seen := 0
	for _, fam := range families {
		for _, m := range fam.GetMetric() {
			seen++
			for _, lp := range m.GetLabel() {
				checkLabel(t, fam, lp, allowed)
				if lp.GetName() == "boot" { // the process's own stream of the series' key id
					keyID := m.GetLabel()[slices.IndexFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == "key_id" })].GetValue()
					if lp.GetValue() != auditseal.Boot(keyID) {
						t.Errorf("%s boot %q, not this process's stream of %s", fam.GetName(), lp.GetValue(), keyID)
					}
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no series gathered")
	}
	if !slices.ContainsFunc(families, func(f *dto.MetricFamily) bool { return f.GetName() == "caddy_passerelle_audit_sealed_total" }) {
		t.Fatal("caddy_passerelle_audit_sealed_total not gathered")
	}
}

func checkLabel(t *testing.T, fam *dto.MetricFamily, lp *dto.LabelPair, allowed map[string]map[string]bool) {
	t.Helper()
	v := lp.GetValue()
	for _, c := range canaries {
		if strings.Contains(v, c) {
			t.Errorf("%s{%s} holds %q", fam.GetName(), lp.GetName(), c)
		}
	}
	switch lp.GetName() {
	case "code":
		if v != "" && (len(v) != 5 || strings.Trim(v, "0123456789") != "") {
			t.Errorf("%s code label %q", fam.GetName(), v)
		}
	case "status_class":
		if v != "error" && (len(v) != 3 || !strings.HasSuffix(v, "xx")) {
			t.Errorf("%s status_class %q", fam.GetName(), v)
		}
	case "key_id": // the configuration's seal key ids
		if !auditseal.ValidKeyID(v) {
			t.Errorf("%s key_id %q", fam.GetName(), v)
		}
	case "boot": // checked against its key id's stream by the caller
		if len(v) != 16 || strings.Trim(v, "0123456789abcdef") != "" {
			t.Errorf("%s boot %q", fam.GetName(), v)
		}
	default:
		if set, ok := allowed[lp.GetName()]; !ok || !set[v] {
			t.Errorf("%s{%s=%q} outside the closed set", fam.GetName(), lp.GetName(), v)
		}
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestReadinessFollowsFranceConnectKeys: not ready while no FranceConnect
// key set could be fetched; ready once one is held.
func TestReadinessFollowsFranceConnectKeys(t *testing.T) {
	down := newFixture(t)
	down.jwksDown.Store(true)
	if got := down.h.app.readiness(context.Background()); got["franceconnect_keys"] != "unavailable" || got["redis"] != "not_configured" {
		t.Fatalf("JWKS down: %v", got)
	}
	up := newFixture(t)
	if got := up.h.app.readiness(context.Background()); got["franceconnect_keys"] != "ok" {
		t.Fatalf("JWKS up: %v", got)
	}
}

// TestReadinessShowsHabilitationsState: a refused habilitations file shows
// in the readiness detail and the state metric while the previous registry
// (narrowed) serves; a deleted one makes the instance unready (issue 8,
// defect 8).
func TestReadinessShowsHabilitationsState(t *testing.T) {
	f := newFixture(t)
	app := f.h.app
	state := func() string {
		ch := make(chan prometheus.Metric, 8)
		habilitationState{app.watcher}.Collect(ch)
		close(ch)
		for m := range ch {
			var d dto.Metric
			_ = m.Write(&d)
			if len(d.GetLabel()) == 1 && d.GetGauge().GetValue() == 1 {
				return d.GetLabel()[0].GetValue()
			}
		}
		return ""
	}
	if got := app.readiness(context.Background())["habilitations"]; got != "ok" || state() != "ok" {
		t.Fatalf("valid file: readiness %q, metric %q", got, state())
	}
	// A revocation shipped with an unrelated error: refused, yet applied.
	if err := os.WriteFile(app.Habilitations, []byte(`habilitations:
  - id: "hab-42"
    label: "Test"
    siret: "`+testSIRET+`"
    france_connect_client_ids: ["`+testFS+`"]
    modalities: [france_connect]
    scopes: [cnaf_quotient_familial]
    revoked: true
    colour: blue
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := app.watcher.Poll(); err == nil {
		t.Fatal("an unknown field was accepted")
	}
	if got := app.readiness(context.Background())["habilitations"]; got != "refused" || state() != "refused" {
		t.Fatalf("refused file: readiness %q, metric %q", got, state())
	}
	if w := f.serve(t, context.Background(), testToken, "recipient="+testSIRET, unitBody); w.Code != 403 {
		t.Fatalf("revoked by a refused file: status %d, want 403", w.Code)
	}
	if err := os.Remove(app.Habilitations); err != nil {
		t.Fatal(err)
	}
	_, _ = app.watcher.Poll()
	if got := app.readiness(context.Background()); got["habilitations"] != "unavailable" || state() != "missing" {
		t.Fatalf("deleted file: readiness %v, metric %q", got, state())
	}
}
