package pipeline

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/pings"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/shed"
)

// TestD01_ProviderRequestCarriesNothingOfTheCaller: the request handed to
// reverse_proxy holds the provider path and query and the headers set by
// the gateway only: no caller Host, header, declared trailer, parsed form
// or client certificate; and the caller's request is left as Caddy logs it
// (its Host routes the access log).
// req: E01
func TestD01_ProviderRequestCarriesNothingOfTheCaller(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "http://caller.example/v3/x/identite?nomNaissance=DUPONT", nil)
	r.Header.Set("X-Injected", "1")
	r.Trailer = http.Header{"X-Passerelle-User": nil}
	r.Form = url.Values{"nomNaissance": {"DUPONT"}}
	caller := &x509.Certificate{Subject: pkix.Name{CommonName: "Agent DUPONT"}}
	r.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, PeerCertificates: []*x509.Certificate{caller}}
	up := providerRequest(r.Context(), r, new(url.URL), "/v3/x/identite", "nomNaissance=DUPONT", []string{"rid"})
	if up.TLS == nil || up.TLS.Version != tls.VersionTLS13 || up.TLS.PeerCertificates != nil || len(r.TLS.PeerCertificates) != 1 {
		t.Errorf("provider request TLS state %+v: the caller's certificate (whose name reverse_proxy logs) is carried over, or the caller's own was dropped", up.TLS)
	}
	switch {
	case up.Host != "" || up.URL.Path != "/v3/x/identite" || up.URL.RawQuery != "nomNaissance=DUPONT" || up.RequestURI != "/v3/x/identite":
		t.Errorf("provider request target: host %q url %v requestURI %q", up.Host, up.URL, up.RequestURI)
	case up.Trailer != nil || up.Form != nil || up.Body != http.NoBody || up.ContentLength != 0:
		t.Errorf("caller's trailer, form or body carried over: %v %v", up.Trailer, up.Form)
	case len(up.Header) != 4 || up.Header.Get("X-Request-Id") != "rid" || up.Header["X-Forwarded-Host"] != nil ||
		up.Header.Get("Accept-Encoding") != "identity":
		t.Errorf("provider headers %v", up.Header)
	}
	if _, ok := up.Header["X-Forwarded-Host"]; !ok {
		t.Error("no nil X-Forwarded-Host: reverse_proxy would add the caller's Host")
	}
	if r.Host != "caller.example" || r.URL.RawQuery != "nomNaissance=DUPONT" || r.Header.Get("X-Injected") != "1" {
		t.Error("the caller's request was modified")
	}
}

// TestPingsOutcomeNotCallerDriven: a provider refusing the caller's data
// (400, 422, 409…) is up; only what shows the provider or our credential
// failing counts against it.
func TestPingsOutcomeNotCallerDriven(t *testing.T) {
	for _, tc := range []struct {
		status       int
		callErr      error
		filterFailed bool
		want         pings.Outcome
	}{
		{200, nil, false, pings.OK},
		{404, nil, false, pings.OK},
		{400, nil, false, pings.OK},
		{422, nil, false, pings.OK},
		{409, nil, false, pings.OK},
		{429, nil, false, pings.OK},
		{200, nil, true, pings.Failed},
		{500, nil, false, pings.Failed},
		{503, nil, false, pings.Failed},
		{401, nil, false, pings.Failed},
		{403, nil, false, pings.Failed},
		{0, context.DeadlineExceeded, false, pings.Failed},
	} {
		if got := ProviderOutcome(tc.status, tc.callErr, tc.filterFailed); got != tc.want {
			t.Errorf("status %d err %v filter %v: %v, want %v", tc.status, tc.callErr, tc.filterFailed, got, tc.want)
		}
	}
}

// TestD01_NoCallerTraceStateToProvider: the provider gets the gateway's
// traceparent, never the tracestate its span inherited from the caller.
func TestD01_NoCallerTraceStateToProvider(t *testing.T) {
	ts, err := trace.ParseTraceState("caller=CANARY")
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2},
		TraceFlags: trace.FlagsSampled, TraceState: ts})
	h := http.Header{}
	injectTraceContext(trace.ContextWithSpanContext(context.Background(), sc), h)
	if h.Get("Traceparent") == "" || h.Get("Tracestate") != "" {
		t.Fatalf("provider trace headers %v", h)
	}
}

// TestCallOutcomeOverflow: an answer over the size limit (its reading cut
// on purpose) shows a provider that answers: a caller whose query makes a
// large answer cannot open the circuit for every caller; a body cut by the
// provider is a failure, and so is a 502, 503 or 504 whose page is over the
// limit (a gateway's long error page is still a provider down).
func TestCallOutcomeOverflow(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	rec := getCapture(8)
	defer putCapture(rec)
	if _, err := rec.Write([]byte("0123456789")); err == nil || !rec.overflow {
		t.Fatal("the capture took more than its limit")
	}
	if got := callOutcome(r, rec, errProviderAborted); got != shed.Success {
		t.Errorf("over the limit: %v", got)
	}
	rec.reset(8)
	rec.WriteHeader(http.StatusOK)
	if got := callOutcome(r, rec, errProviderAborted); got != shed.Failure {
		t.Errorf("cut by the provider: %v", got)
	}
	for _, status := range []int{http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout} {
		rec.reset(8)
		rec.WriteHeader(status)
		if _, err := rec.Write([]byte("<html>a long error page</html>")); err == nil || !rec.overflow {
			t.Fatal("the capture took more than its limit")
		}
		if got := callOutcome(r, rec, errProviderAborted); got != shed.Failure {
			t.Errorf("%d over the limit: %v, want a failure", status, got)
		}
	}
}
