package sandbox

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestDemoAppRefusesUnreconciledData: the demo app shows how an app takes a
// Cas 2 hand-off. Data with no reconciliation verdict, or with a verdict
// about another account, is refused and not shown; a verdict about the
// account in use is.
func TestDemoAppRefusesUnreconciledData(t *testing.T) {
	a := &DemoApp{FrontURL: "http://127.0.0.1:1", client: &http.Client{Timeout: time.Second}}
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	page := func(verdict string) string {
		r := httptest.NewRequest(http.MethodGet, "/demarche/", nil)
		r.AddCookie(&http.Cookie{Name: demoCookie, Value: "angela"})
		r.Header.Set("X-Passerelle-Sub", "sub-1")
		r.Header.Set("X-Passerelle-Family-Name-B64", b64("DUBOIS"))
		r.Header.Set("X-Passerelle-Data-Quotient-Familial-B64", b64(`{"valeur":1380}`))
		if verdict != "" {
			r.Header.Set("X-Passerelle-Reconciliation-B64", b64(verdict))
		}
		w := httptest.NewRecorder()
		if err := a.ServeHTTP(w, r, nil); err != nil {
			t.Fatal(err)
		}
		return w.Body.String()
	}
	for verdict, want := range map[string]string{
		"": "sans rapprochement avec le compte",
		`{"verdict":"match","account_ref":"paul"}`: "comparées avec un autre compte (paul)",
	} {
		if body := page(verdict); !strings.Contains(body, want) || strings.Contains(body, "1380") || strings.Contains(body, b64(`{"valeur":1380}`)) || strings.Contains(body, `id="identity"`) {
			t.Errorf("verdict %q: the data was kept or the refusal not shown", verdict)
		}
	}
	if body := page(`{"verdict":"match","account_ref":"angela"}`); !strings.Contains(body, "comparé avec ce compte") || !strings.Contains(body, "1380") {
		t.Error("a verdict about the account in use was refused")
	}
}
