package caddyplugin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestD06_DeclaredTrailerRefused: a GET that declares trailers (HTTP/2
// lets a client announce them) is refused before anything is checked.
func TestD06_DeclaredTrailerRefused(t *testing.T) {
	f := newFixture(t)
	r := httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/v3/dss/quotient_familial/france_connect?recipient="+testSIRET, nil)
	r.Header.Set("Authorization", "Bearer "+testToken)
	r.Trailer = http.Header{"X-Passerelle-User": nil}
	w := httptest.NewRecorder()
	if err := f.h.ServeHTTP(w, r, nil); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", w.Code)
	}
}
