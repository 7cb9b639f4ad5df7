package caddyplugin

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/apierror"
	"github.com/passerelle-gw/passerelle/caddyplugin/pipeline"
)

// openAPIPath serves the OpenAPI 3.1 document of the routes this handler
// enables, generated from the catalogue when the handler is provisioned.
const openAPIPath = "/api/openapi.json"

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
	w.Header()["Content-Length"] = []string{strconv.Itoa(len(h.openAPI))}
	pipeline.WriteOK(w, h.openAPI)
	return nil
}
