package pipeline

import (
	"time"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/apierror"
	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// Preflight reports why every FranceConnect call of the service
// clientID to the endpoint ep would be refused at now, whatever its
// token, under the habilitations in force: the audit reason such calls
// get (habilitation_unknown, habilitation_inactive, modality_denied,
// client_certificate_mismatch, scope_denied), with the habilitation paired
// with clientID (nil when none is), or "" when the configuration itself
// refuses nothing.
//
// It runs the request path's configuration checks, in its order, for
// diagnostics: the FranceConnect front warns at provisioning when its own
// in-process calls, which present no client certificate, cannot succeed.
// The request path never calls it.
func (p *Pipeline) Preflight(clientID string, ep *catalogue.Endpoint, now time.Time) (*habilitation.Habilitation, string) {
	hab, ok := p.Registry().ByClientID(clientID)
	switch {
	case !ok:
		return nil, apierror.ReasonHabilitationUnknown
	case !hab.ActiveAt(now):
		return hab, apierror.ReasonHabilitationInactive
	case !hab.Allows(string(ep.Modality)):
		return hab, apierror.ReasonModalityDenied
	case hab.BindsClientCertificate():
		return hab, apierror.ReasonClientCertificate
	}
	for i := range ep.Scopes {
		if habHasAny(hab, &ep.Scopes[i]) {
			return hab, ""
		}
	}
	return hab, apierror.ReasonScopeDenied
}
