package caddyplugin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/apierror"
	"github.com/passerelle-gw/passerelle/caddyplugin/pipeline"
	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/openapi"
)

// openAPIPath serves the OpenAPI 3.1 document of the routes this handler
// enables, generated from the catalogue when the handler is provisioned.
const openAPIPath = "/api/openapi.json"

// openAPIDocument is the OpenAPI document of a handler's routes.
type openAPIDocument struct{ body []byte }

// openAPIDocument returns the document of the routes h enables, shared
// with every handler that enables the same routes of the same catalogue
// (dedup.go): ~400 KB each otherwise, kept by every configuration a reload
// replaced until reverse_proxy's idle connections let it go.
func (h *Handler) openAPIDocument() (*openAPIDocument, error) {
	key := h.app.catKey + "\x00*" // every route
	if h.allowed != nil {
		ids := make([]string, 0, len(h.allowed))
		for ep := range h.allowed {
			ids = append(ids, ep.ID)
		}
		slices.Sort(ids)
		key = h.app.catKey + "\x00" + strings.Join(ids, ",")
	}
	return openAPIDocuments.Get(key, func() (*openAPIDocument, error) {
		cat := h.app.Catalog()
		gen := func(version string) ([]byte, error) {
			return openapi.Generate(cat, openapi.Options{Version: version, Utility: true,
				Include: func(ep *catalogue.Endpoint) bool { return h.allowed == nil || h.allowed[ep] }})
		}
		version, err := documentVersion(gen)
		if err != nil {
			return nil, err
		}
		doc, err := gen(version)
		if err != nil {
			return nil, err
		}
		return &openAPIDocument{body: bytes.Clone(doc)}, nil // not the generator's buffer, twice as large
	})
}

// documentVersion returns info.version of the document: a digest of the
// document itself, which changes with the routes it describes and, unlike
// the binary's version, tells nothing about the build (SECURITY.md D10).
func documentVersion(gen func(version string) ([]byte, error)) (string, error) {
	doc, err := gen("-")
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(doc)
	return "sha256-" + hex.EncodeToString(sum[:6]), nil
}

// serveOpenAPI answers GET /api/openapi.json. The document is public: it
// describes routes, parameters and scopes, nothing about habilitations,
// providers' addresses or the build. It is ~400 KB of JSON: put Caddy's
// encode directive in front of the handler to compress it.
func (h *Handler) serveOpenAPI(w http.ResponseWriter, r *http.Request, c *pipeline.Call) *apierror.Error {
	if aerr := h.publicGET(r, c); aerr != nil {
		return aerr
	}
	w.Header()["Content-Length"] = []string{strconv.Itoa(len(h.openAPI.body))}
	pipeline.WriteOK(w, h.openAPI.body)
	return nil
}
