package pipeline

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/config/catalogue"
)

// TestServeOutsideCaddy: the pipeline serves without Caddy. A route the
// handler does not serve, or no route at all, is 404 with a request id,
// and the provider is never called.
func TestServeOutsideCaddy(t *testing.T) {
	cat, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
	only, ok := cat.Lookup("/v3/dss/quotient_familial/identite")
	if !ok {
		t.Fatal("identite route missing")
	}
	p := New(Config{Catalogue: cat, Logger: zap.NewNop(), Audit: zap.NewNop()}, map[*catalogue.Endpoint]bool{only: true}, 0)
	provider := providerFunc(func(http.ResponseWriter, *http.Request) error {
		t.Error("the provider was called")
		return nil
	})
	for _, target := range []string{"/nope", "/v3/dss/quotient_familial/france_connect"} {
		w := httptest.NewRecorder()
		p.Serve(w, httptest.NewRequest(http.MethodGet, target, nil), provider)
		if w.Code != http.StatusNotFound || len(w.Header().Get("X-Request-Id")) != 36 || w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d %v %s", target, w.Code, w.Header(), w.Body)
		}
	}
}

type providerFunc func(http.ResponseWriter, *http.Request) error

func (f providerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) error { return f(w, r) }
