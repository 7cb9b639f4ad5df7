package caddyplugin

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestA16_ACRMatrix: each route level (eidas1 < eidas2 < eidas3) against
// each token level, and tokens whose acr is unknown, empty or in another
// case: a token below the route's level, or of no known level, is 401
// 50003, whose detail names the level required and never the token's
// value; one at or above it is served.
// req: A16
func TestA16_ACRMatrix(t *testing.T) {
	// The test changes a route's level: on a catalogue of its own, since
	// configurations that load the same catalogue share it (dedup.go).
	f := newFixture(t, func(a *App) { a.Cache.MaxEntries = 1601; a.Catalogue = privateCatalogue(t) })
	ep, ok := f.h.app.Catalog().Lookup("/v3/dss/quotient_familial/france_connect")
	if !ok {
		t.Fatal("no quotient familial route")
	}
	levels := []string{"eidas1", "eidas2", "eidas3"}
	for ri, route := range levels {
		ep.MinACR = route
		for ti, token := range levels {
			w := f.serve(t, context.Background(), acrTokenPrefix+token, "recipient="+testSIRET, unitBody)
			if allowed := ti >= ri; allowed != (w.Code == http.StatusOK) {
				t.Errorf("route %s, token %s: %d %s", route, token, w.Code, w.Body)
				continue
			}
			if ti < ri {
				checkACRRefusal(t, w.Body.Bytes(), route, token)
			}
		}
		for _, token := range []string{"", "eidas9", "EIDAS3", "loa3", "CANARYACR"} {
			w := f.serve(t, context.Background(), acrTokenPrefix+token, "recipient="+testSIRET, unitBody)
			if w.Code != http.StatusUnauthorized {
				t.Errorf("route %s, unknown acr %q: %d %s", route, token, w.Code, w.Body)
				continue
			}
			checkACRRefusal(t, w.Body.Bytes(), route, token)
		}
	}
}

func checkACRRefusal(t *testing.T, body []byte, route, token string) {
	t.Helper()
	var a struct {
		Errors []struct{ Code, Detail string } `json:"errors"`
	}
	if err := json.Unmarshal(body, &a); err != nil || len(a.Errors) != 1 {
		t.Fatalf("route %s, token %s: %s", route, token, body)
	}
	e := a.Errors[0]
	if e.Code != "50003" || !strings.Contains(e.Detail, route) || (token != "" && token != route && strings.Contains(e.Detail, token)) {
		t.Errorf("route %s, token %s: %+v", route, token, e)
	}
}

// privateCatalogue writes the embedded catalogue to a file of t's with a
// comment of its own (the file's path, new on every run), so that the
// configuration loading it shares it with no other.
func privateCatalogue(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../config/catalogue/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "catalogue.yaml")
	if err := os.WriteFile(path, append(data, "\n# "+path+"\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
