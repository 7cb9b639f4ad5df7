package pipeline

import (
	"time"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/apierror"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// PlannedCall is what every call of a service to a FranceConnect route
// carries, whatever the citizen's token.
type PlannedCall struct {
	// ClientID is the service's FranceConnect client id, its tokens'
	// token_introspection.aud.
	ClientID string
	// Scopes are the most its tokens can carry: the scopes it asks
	// FranceConnect for.
	Scopes []string
	// Recipient is the recipient parameter it sends.
	Recipient string
}

// Preflight reports why every call c plans to ep would be refused at now
// under the habilitations in force, whatever its token: the audit reason
// the request path gives such calls (scope_denied, habilitation_unknown,
// habilitation_inactive, modality_denied, client_certificate_mismatch,
// recipient_mismatch, param_refused…), with the habilitation paired with
// c.ClientID (nil when none is); or "" when the configuration refuses
// nothing.
//
// It runs the request path's checks that depend on the configuration
// only, in its order, on the same functions: identity scopes (step 3),
// habilitation (step 4: paired, active, modality, client certificate,
// query), effective scopes (step 5). It is for diagnostics (the
// FranceConnect front warns at provisioning when its own in-process
// calls, which present no client certificate, cannot succeed); the
// request path never calls it.
func (p *Pipeline) Preflight(ep *catalogue.Endpoint, c PlannedCall, now time.Time) (*habilitation.Habilitation, string) {
	if !coversIdentity(c.Scopes) {
		return nil, apierror.ReasonScopeDenied
	}
	hab, ok := p.Registry().ByClientID(c.ClientID)
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
	query := []queryParam{{name: "recipient", value: c.Recipient}}
	if aerr := checkQuery(query, ep, hab, now); aerr != nil {
		return hab, aerr.Reason
	}
	if effectiveMask(ep, hab, &fcverify.Facts{Scopes: c.Scopes}) == 0 {
		return hab, apierror.ReasonScopeDenied
	}
	return hab, ""
}
