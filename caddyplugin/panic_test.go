package caddyplugin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestI15_PanicAnsweredAndAudited: a panic while the provider answers (a
// bug in a handler the pipeline calls) ends in a 500 in API Particulier's
// format, the audit record with internal_error, an error log line naming
// the panic's type but not its value, and a gateway that keeps serving.
// http.ErrAbortHandler still cuts the answer.
// req: I15
func TestI15_PanicAnsweredAndAudited(t *testing.T) {
	f := newFixture(t)
	logCore, serverLogs := observer.New(zap.InfoLevel)
	f.h.pipe.Logger = zap.New(logCore)
	serve := func(next caddyhttp.HandlerFunc) *httptest.ResponseRecorder {
		t.Helper()
		return f.serveWith(t, context.Background(), testToken, next)
	}
	w := serve(func(http.ResponseWriter, *http.Request) error {
		panic(errors.New("CANARYPANIC value quoting DUBOIS Angela"))
	})
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), `"00500"`) || w.Header().Get("Connection") != "close" ||
		len(w.Header().Get("X-Request-Id")) != 36 || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("panic: %d %v %s", w.Code, w.Header(), w.Body)
	}
	recs := f.audit.All()
	if len(recs) != 1 || recs[0].ContextMap()["reason"] != "internal_error" || recs[0].ContextMap()["decision"] != "error" {
		t.Fatalf("audit records: %v", recs)
	}
	lines := serverLogs.FilterMessage("pipeline panic").All()
	if len(lines) != 1 || lines[0].ContextMap()["type"] != "*errors.errorString" || lines[0].ContextMap()["request_id"] != w.Header().Get("X-Request-Id") ||
		!strings.Contains(lines[0].ContextMap()["stack"].(string), "panic_test.go") {
		t.Fatalf("panic log lines: %v", serverLogs.All())
	}
	for _, e := range serverLogs.All() {
		for k, v := range e.ContextMap() {
			if s, _ := v.(string); strings.Contains(s, "CANARYPANIC") || strings.Contains(s, "DUBOIS") {
				t.Errorf("the panic's value reached the log (%s)", k)
			}
		}
	}

	// The gateway keeps serving.
	if w := serve(func(w http.ResponseWriter, _ *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(unitBody))
		return nil
	}); w.Code != http.StatusOK {
		t.Fatalf("after the panic: %d %s", w.Code, w.Body)
	}

	// reverse_proxy's abort is not a bug: it becomes a 502, no panic log.
	if w := serve(func(w http.ResponseWriter, _ *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":`))
		panic(http.ErrAbortHandler)
	}); w.Code != http.StatusBadGateway {
		t.Fatalf("abort: %d %s", w.Code, w.Body)
	}
	if n := serverLogs.FilterMessage("pipeline panic").Len(); n != 1 {
		t.Errorf("%d panic log lines after an abort, want 1", n)
	}
}

// panicOnWrite is a client connection that fails while the body is being
// written: the answer is begun, then the pipeline panics.
type panicOnWrite struct{ *httptest.ResponseRecorder }

func (p panicOnWrite) Write([]byte) (int, error) { panic("CANARYWRITE DUBOIS") }

// TestI15_PanicAfterTheAnswerBegan: a panic once the answer's status is
// sent cannot become a 500: the record is written (internal_error) and the
// connection cut (http.ErrAbortHandler), so that a half answer never
// passes for a whole one. A panic in the error answer itself is cut too.
// req: I15
func TestI15_PanicAfterTheAnswerBegan(t *testing.T) {
	f := newFixture(t, func(a *App) { a.Cache.MaxEntries = 1501 })
	logCore, serverLogs := observer.New(zap.DebugLevel)
	f.h.pipe.Logger = zap.New(logCore)
	serve := func(w http.ResponseWriter, token string) (aborted bool) {
		t.Helper()
		defer func() {
			v := recover()
			if v != nil && v != http.ErrAbortHandler {
				t.Fatalf("panic %T escaped", v)
			}
			aborted = v != nil
		}()
		r := httptest.NewRequest(http.MethodGet, "/v3/dss/quotient_familial/france_connect?recipient="+testSIRET, nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(unitBody))
			return nil
		})
		if err := f.h.ServeHTTP(w, r, next); err != nil {
			t.Fatal(err)
		}
		return false
	}
	rec := httptest.NewRecorder()
	if !serve(panicOnWrite{rec}, testToken) {
		t.Fatal("a panic in the answer's body did not cut the connection")
	}
	if recs := f.audit.All(); len(recs) != 1 || recs[0].ContextMap()["reason"] != "internal_error" {
		t.Fatalf("audit records: %v", recs)
	}

	// The error writer panics every time (a refusal: no token).
	f.h.pipe.Logger = zap.New(logCore, zap.Hooks(func(e zapcore.Entry) error {
		if e.Message == "request refused" {
			panic("CANARYHOOK DUBOIS")
		}
		return nil
	}))
	if !serve(httptest.NewRecorder(), "") {
		t.Fatal("a panic in the error answer did not cut the connection")
	}
	for _, e := range serverLogs.All() {
		for k, v := range e.ContextMap() {
			if s, _ := v.(string); strings.Contains(s, "CANARY") || strings.Contains(s, "DUBOIS") {
				t.Errorf("a panic's value reached the log (%s)", k)
			}
		}
	}
	if n := serverLogs.FilterMessage("pipeline panic").Len(); n != 2 {
		t.Errorf("%d panic log lines, want 2", n)
	}
}
