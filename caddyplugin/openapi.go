package caddyplugin

import (
	"net/http"
	"runtime/debug"
	"strconv"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/apierror"
)

// openAPIPath serves the OpenAPI 3.1 document of the routes this handler
// enables, generated from the catalogue when the handler is provisioned.
const openAPIPath = "/api/openapi.json"

// documentVersion is info.version of the document: the module version of
// the running binary, "dev" in a build from a checkout.
func documentVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == modulePath && m.Version != "" && m.Version != "(devel)" {
				return m.Version
			}
		}
		if bi.Main.Path == modulePath && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
	}
	return "dev"
}

const modulePath = "github.com/passerelle-gw/passerelle"

// serveOpenAPI answers GET /api/openapi.json. The document is public: it
// describes routes, parameters and scopes, nothing about habilitations.
func (h *Handler) serveOpenAPI(w http.ResponseWriter, r *http.Request, rq *request) *apierror.Error {
	if r.Method != http.MethodGet {
		return apierror.MethodNotAllowed(http.MethodGet)
	}
	if aerr := h.limitClient(r, rq); aerr != nil {
		return aerr
	}
	hdr := w.Header()
	hdr["Content-Type"] = jsonContentType
	hdr["Cache-Control"] = []string{"public, max-age=300"}
	hdr["X-Content-Type-Options"] = noSniff
	hdr["Content-Length"] = []string{strconv.Itoa(len(h.openAPI))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(h.openAPI)
	return nil
}
