package caddyplugin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// utility runs one request on a utility route through the handler; next
// must not be called.
func (f *fixture) utility(t *testing.T, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	w := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		t.Errorf("%s %s reached the provider", method, target)
		return nil
	})
	if err := f.h.ServeHTTP(w, r, next); err != nil {
		t.Fatal(err)
	}
	return w
}

type pingStatus struct {
	Status       string  `json:"status"`
	LastUpdate   *string `json:"last_update"`
	LastOKStatus *string `json:"last_ok_status"`
}

// TestPingsFollowProviderCalls: the provider status routes report the
// outcome of the gateway's own calls: ok after a data answer, bad_gateway
// (HTTP 502) after an answer that could not be used, ok again after the
// next good one, the last success kept throughout.
func TestPingsFollowProviderCalls(t *testing.T) {
	f := newFixture(t)
	// A provider no route calls in this test stays unknown (the tracker
	// is shared by every fixture of the package, CNAV is not reset).
	w := f.utility(t, http.MethodGet, "/api/pings/dsnj")
	var st pingStatus
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &st) != nil || st.Status != "unknown" || st.LastUpdate != nil {
		t.Fatalf("uncalled provider: %d %s", w.Code, w.Body)
	}

	q := "recipient=" + testSIRET
	if w := f.serve(t, context.Background(), testToken, q, unitBody); w.Code != 200 {
		t.Fatalf("data call: %d %s", w.Code, w.Body)
	}
	w = f.utility(t, http.MethodGet, "/api/pings/cnav")
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &st) != nil || st.Status != "ok" || st.LastOKStatus == nil {
		t.Fatalf("after a data answer: %d %s", w.Code, w.Body)
	}
	lastOK := *st.LastOKStatus

	if w := f.serve(t, context.Background(), testToken, q, `{"data": nope`); w.Code != 502 {
		t.Fatalf("broken provider answer: %d %s", w.Code, w.Body)
	}
	w = f.utility(t, http.MethodGet, "/api/pings/cnav")
	if w.Code != 502 || json.Unmarshal(w.Body.Bytes(), &st) != nil || st.Status != "bad_gateway" || st.LastOKStatus == nil || *st.LastOKStatus != lastOK {
		t.Fatalf("after a broken answer: %d %s", w.Code, w.Body)
	}
	all := f.utility(t, http.MethodGet, "/api/pings")
	var board map[string]pingStatus
	if all.Code != 502 || json.Unmarshal(all.Body.Bytes(), &board) != nil || board["CNAV"].Status != "bad_gateway" || board["DSNJ"].Status != "unknown" {
		t.Fatalf("all providers: %d %s", all.Code, all.Body)
	}

	if w := f.serve(t, context.Background(), testToken, q, unitBody); w.Code != 200 {
		t.Fatalf("data call: %d %s", w.Code, w.Body)
	}
	if w := f.utility(t, http.MethodGet, "/api/pings/cnav"); w.Code != 200 || !strings.Contains(w.Body.String(), `"status":"ok"`) {
		t.Fatalf("after recovery: %d %s", w.Code, w.Body)
	}
	for _, bad := range []string{"/api/pings/nope", "/api/pings/cnav/x", "/api/pings/CNAV", "/api/pings/cnav?x=1"} {
		if w := f.utility(t, http.MethodGet, bad); w.Code != 404 && w.Code != 422 {
			t.Errorf("%s: %d %s", bad, w.Code, w.Body)
		}
	}
	if w := f.utility(t, http.MethodPost, "/api/pings"); w.Code != 405 {
		t.Errorf("POST /api/pings: %d", w.Code)
	}
	if h := f.utility(t, http.MethodGet, "/api/pings").Header(); h.Get("Cache-Control") != "no-store" || h.Get("X-Request-Id") == "" {
		t.Errorf("headers %v", h)
	}
}

// TestF01_LongRequestRefused: a request target over 2 KiB is refused
// before anything else (414). (A parameter value over 512 bytes: package
// pipeline's TestF01_LongValueRefused.)
func TestF01_LongRequestRefused(t *testing.T) {
	f := newFixture(t)
	w := f.serve(t, context.Background(), testToken, "recipient="+testSIRET+"&annee="+strings.Repeat("1", 2100), unitBody)
	if w.Code != 414 {
		t.Errorf("long target: %d %s", w.Code, w.Body)
	}
}

// TestProviderNotFoundIsJSON: a provider's 404 is "no record for this
// person" (404 with the route's not-found code, the provider ok) only when
// it is the provider's JSON answer; an HTML or empty 404 (a proxy on the
// way, a wrong upstream_path) is a provider error, 502, and the status
// routes say bad_gateway: callers are not told that nobody has a record
// while the route is broken.
func TestProviderNotFoundIsJSON(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		contentType, body string
		code              int
		ping              string
	}{
		{"application/json; charset=utf-8", `{"errors":[{"code":"00404"}]}`, http.StatusNotFound, "ok"},
		{"application/problem+json", `{"title":"absent"}`, http.StatusNotFound, "ok"},
		{"text/html", "<h1>Not Found</h1>", http.StatusBadGateway, "bad_gateway"},
		{"", "", http.StatusBadGateway, "bad_gateway"},
	} {
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			if tc.contentType != "" {
				w.Header().Set("Content-Type", tc.contentType)
			}
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(tc.body))
			return nil
		})
		w := f.serveWith(t, context.Background(), testToken, next)
		if w.Code != tc.code {
			t.Errorf("404 %q: answered %d %s, want %d", tc.contentType, w.Code, w.Body, tc.code)
		}
		var st pingStatus
		pw := f.utility(t, http.MethodGet, "/api/pings/cnav")
		if json.Unmarshal(pw.Body.Bytes(), &st) != nil || st.Status != tc.ping {
			t.Errorf("404 %q: pings %s, want %s", tc.contentType, pw.Body, tc.ping)
		}
	}
}
