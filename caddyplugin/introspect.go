package caddyplugin

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/apierror"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/bearer"
	"github.com/passerelle-gw/passerelle/caddyplugin/pipeline"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// introspectPath is API Particulier's utility route listing the caller's
// rights.
const introspectPath = "/api/introspect"

// introspectAnswer is API Particulier's introspect body: the habilitation id,
// its label, and the scopes the credential can use.
type introspectAnswer struct {
	ID     string   `json:"_id"`
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

// introspect answers GET /api/introspect for either kind of credential: a
// habilitation's API token (its scopes), in Authorization (Bearer) or, as
// API Particulier v2's callers send it, in X-Api-Key; or a FranceConnect
// token in Authorization (the scopes it carries that its paired
// habilitation grants). One credential a request, as on the data routes:
// both headers, or either one twice, is refused. Errors use the v2 shape,
// as API Particulier's introspect does; an X-Api-Key request gets the API
// key's (00101).
func (h *Handler) introspect(w http.ResponseWriter, r *http.Request, c *pipeline.Call) *apierror.Error {
	if r.Method != http.MethodGet {
		return apierror.MethodNotAllowed(http.MethodGet)
	}
	if aerr := h.pipe.LimitClient(r, c); aerr != nil {
		return aerr
	}
	apiKey := len(r.Header[bearer.APIKeyHeader]) > 0
	extract := bearer.Extract
	if apiKey {
		extract = bearer.ExtractAPIKey
	}
	token, err := extract(r)
	delete(r.Header, bearer.APIKeyHeader) // no later handler or log line sees it
	switch {
	case err != nil && apiKey:
		return apierror.APITokenMalformed()
	case errors.Is(err, bearer.ErrMissing):
		return apierror.TokenMissing()
	case err != nil:
		return apierror.TokenMalformed()
	}
	now := h.pipe.Now()
	if hab, ok := h.app.Registry().ByAPIToken(token); ok {
		switch {
		case !hab.ActiveAt(now) && apiKey:
			return apierror.APITokenInvalid()
		case !hab.ActiveAt(now):
			return apierror.TokenNotFound()
		}
		if !hab.AcceptsClientCertificate(pipeline.ClientCertificate(r), now) {
			return h.pipe.RefuseCertificate(hab, "introspect", now) // SECURITY.md C09
		}
		return writeIntrospection(w, hab, hab.Scopes)
	}
	if apiKey {
		// An X-Api-Key holds an API token: a FranceConnect token there
		// is unknown, and never sent to FranceConnect.
		return apierror.APITokenInvalid()
	}
	facts, aerr := h.pipe.CheckToken(r.Context(), token, c)
	if aerr != nil {
		return aerr
	}
	hab, ok := h.app.Registry().ByClientID(facts.ClientID)
	if !ok || !hab.ActiveAt(now) {
		return apierror.HabilitationUnknown()
	}
	if !hab.Allows(habilitation.ModalityFranceConnect) {
		return apierror.ModalityDenied() // the service's tokens open nothing here
	}
	if !hab.AcceptsClientCertificate(pipeline.ClientCertificate(r), now) {
		return h.pipe.RefuseCertificate(hab, "introspect", now) // SECURITY.md C09
	}
	scopes := make([]string, 0, len(facts.Scopes))
	for _, s := range facts.Scopes {
		if hab.HasScope(s) {
			scopes = append(scopes, s)
		}
	}
	return writeIntrospection(w, hab, scopes)
}

func writeIntrospection(w http.ResponseWriter, hab *habilitation.Habilitation, scopes []string) *apierror.Error {
	body, err := json.Marshal(introspectAnswer{ID: hab.ID, Name: hab.Label, Scopes: scopes})
	if err != nil {
		return apierror.Internal()
	}
	pipeline.WriteOK(w, body)
	return nil
}
