package caddyplugin

import (
	"encoding/json"
	"testing"

	"go.uber.org/zap"
)

// TestReloadSharesCatalogueAndDocument: configurations that load the same
// catalogue share one parsed catalogue, and handlers that enable the same
// routes of it share one OpenAPI document; another catalogue, or other
// routes, get their own. A configuration a reload replaced, kept alive a
// while by reverse_proxy's idle connections, then holds no copy of either
// (SECURITY.md J06's memory bar after the reload storm).
func TestReloadSharesCatalogueAndDocument(t *testing.T) {
	a, b := newFixture(t), newFixture(t)
	if a.h.app.Catalog() != b.h.app.Catalog() {
		t.Fatal("two configurations of the embedded catalogue parsed it twice")
	}
	if a.h.openAPI != b.h.openAPI {
		t.Fatal("two handlers of the same routes generated the OpenAPI document twice")
	}

	own := newFixture(t, func(app *App) { app.Catalogue = privateCatalogue(t) })
	if own.h.app.Catalog() == a.h.app.Catalog() {
		t.Fatal("a configuration of another catalogue file got the embedded catalogue")
	}
	if own.h.openAPI == a.h.openAPI {
		t.Fatal("the routes of another catalogue got the embedded catalogue's document")
	}

	restricted := &Handler{logger: zap.NewNop(), Endpoints: []string{"dss_quotient_familial_fc"}}
	if err := restricted.provisionWith(a.h.app); err != nil {
		t.Fatal(err)
	}
	again := &Handler{logger: zap.NewNop(), Endpoints: []string{"dss_quotient_familial_fc", "dss_quotient_familial_fc"}}
	if err := again.provisionWith(b.h.app); err != nil {
		t.Fatal(err)
	}
	if restricted.openAPI == a.h.openAPI {
		t.Fatal("a handler of one route got the document of every route")
	}
	if again.openAPI != restricted.openAPI {
		t.Fatal("two handlers of the same route generated its document twice")
	}
	var doc struct{ Paths map[string]any }
	if err := json.Unmarshal(restricted.openAPI.body, &doc); err != nil {
		t.Fatal(err)
	}
	for p := range doc.Paths {
		if ep, ok := a.h.app.Catalog().Lookup(p); ok && ep.ID != "dss_quotient_familial_fc" {
			t.Errorf("the document of one route describes %s too", p)
		}
	}
	if len(doc.Paths) == 0 {
		t.Fatal("the document of one route has no path")
	}
}
