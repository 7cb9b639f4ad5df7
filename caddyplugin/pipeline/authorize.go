package pipeline

import (
	"context"
	"crypto/x509"
	"errors"
	"math"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/apierror"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/bearer"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/ratelimit"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/tokencache"
	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// authorize runs steps 1 to 5.
func (p *Pipeline) authorize(r *http.Request, c *Call) *apierror.Error {
	ep, aerr := p.route(r)
	if aerr != nil {
		return aerr
	}
	c.ep = ep
	if p.MemoryPressure != nil && p.MemoryPressure() {
		// Near the memory limit nothing more is taken on: no quota, no
		// token check, no provider call, no buffered answer.
		delete(r.Header, bearer.APIKeyHeader)
		shedRequests.get(shedCauseMemory).Inc()
		return apierror.Unavailable(apierror.ReasonInternalError)
	}
	if p.InFlight != nil {
		t, err := p.InFlight.Enter()
		if err != nil {
			delete(r.Header, bearer.APIKeyHeader)
			shedRequests.get(shedCauseInFlight).Inc()
			return apierror.Unavailable(apierror.ReasonInternalError)
		}
		c.admitted = t
	}
	if aerr := p.LimitClient(r, c); aerr != nil {
		return aerr
	}

	extract := bearer.Extract
	if ep.APIKeyHeader() {
		extract = bearer.ExtractAPIKey // legacy v2 API key
	}
	token, err := extract(r)
	// The credential leaves the request at once: no handler or log line
	// after this one sees it. (Caddy's access log copied the headers
	// before any handler ran; its X-Api-Key is deleted by the log filter,
	// see Caddyfile.example.)
	delete(r.Header, bearer.APIKeyHeader)
	switch {
	case errors.Is(err, bearer.ErrMissing) && ep.Modality.CallerGivesIdentity():
		return apierror.APITokenMissing()
	case err != nil && ep.Modality.CallerGivesIdentity():
		return apierror.APITokenMalformed()
	case errors.Is(err, bearer.ErrMissing):
		return apierror.TokenMissing()
	case err != nil:
		return apierror.TokenMalformed()
	}

	if ep.Modality.CallerGivesIdentity() {
		// The caller's habilitation API token, found by its digest; a
		// FranceConnect token is unknown here and never sent anywhere.
		hab, ok := p.Registry().ByAPIToken(token)
		if !ok {
			return apierror.APITokenInvalid()
		}
		c.hab = hab
	} else {
		facts, aerr := p.CheckToken(r.Context(), token, c)
		if aerr != nil {
			return aerr
		}
		c.facts = facts
		if !coversIdentity(facts.Scopes) {
			return apierror.IdentityScopesMissing()
		}
		if have, ok := catalogue.ACRLevel(facts.ACR); !ok || have < mustACR(ep.MinACR) {
			return apierror.ACRTooLow(ep.MinACR)
		}
	}

	_, sp := startSpan(r.Context(), c.tracer, spanHabilitation, trace.SpanKindInternal, attrEndpoint.String(ep.ID))
	aerr = p.habilitation(r, c)
	if c.hab != nil {
		setAttr(sp, attrHabilitation.String(c.hab.ID))
	}
	if aerr != nil {
		setAttr(sp, attrDecision.String("deny"))
		endSpan(sp, aerr.Reason)
		return aerr
	}
	setAttr(sp, attrDecision.String("allow"))
	endSpan(sp, "")
	return nil
}

// errAPITokenOnFCRoute: the bearer is a habilitation's API token, presented
// on a FranceConnect route.
var errAPITokenOnFCRoute = errors.New("passerelle: API token on a FranceConnect route")

// CheckToken returns the facts of a FranceConnect token from the cache or
// checktoken, or the error to answer: inactive, expired, malformed (a
// habilitation's API token included, which is never sent to FranceConnect)
// or FranceConnect unavailable. An inactive token's facts are an error too.
func (p *Pipeline) CheckToken(ctx context.Context, token string, c *Call) (*fcverify.Facts, *apierror.Error) {
	ctx, sp := startSpan(ctx, c.tracer, spanToken, trace.SpanKindInternal, attribute.KeyValue{})
	facts, src, err := p.cachedFacts(ctx, token, c)
	if err != nil { // not on the cached path: errors.As's target escapes
		if spent := (*failedAuthSpent)(nil); errors.As(err, &spent) { // nothing checked
			metricRateLimited.WithLabelValues(quotaFailedAuth).Inc()
			// The RateLimit headers tell the quota that refused.
			c.rate = ratelimit.Decision{Limit: p.FailedAuthQuota.Requests, Reset: spent.retryAfter, RetryAfter: spent.retryAfter}
			c.refusedBy, c.refusedPer = quotaFailedAuth, p.FailedAuthQuota.Per
			aerr := apierror.RateLimited(int(math.Ceil(spent.retryAfter.Seconds())))
			endSpan(sp, aerr.Reason)
			return nil, aerr
		}
	}
	c.source = src.String()
	result, aerr := "active", (*apierror.Error)(nil)
	switch {
	case err != nil && ctx.Err() != nil:
		// The caller hung up while the check ran (it goes on, detached,
		// for the requests that share it): nobody reads this answer, and
		// FranceConnect did not fail. Neither logged nor counted as a
		// FranceConnect failure, so that hanging up cannot raise its alert.
		result, aerr = "abandoned", apierror.Unavailable(apierror.ReasonInternalError)
	case err != nil:
		result, aerr = "error", p.tokenError(err)
		if errors.Is(err, fcverify.ErrTokenExpired) || errors.Is(err, fcverify.ErrTokenMalformed) || errors.Is(err, errAPITokenOnFCRoute) {
			result = "inactive"
		}
	case !facts.Active:
		result, aerr = "inactive", apierror.TokenNotFound()
	}
	tokenCheckCounters.get(labels2{c.source, result}).Inc()
	if sp.IsRecording() {
		sp.SetAttributes(attrCacheLevel.String(c.source), attrTokenResult.String(result))
	}
	if aerr != nil {
		endSpan(sp, aerr.Reason)
		return nil, aerr
	}
	endSpan(sp, "")
	return facts, nil
}

// cachedFacts returns a token's facts from the cache, and on a miss from
// checktoken, unless the client network of c has spent its failed
// authentications (a *failedAuthSpent): then FranceConnect is not asked.
// The fetch function is built on a miss only: the cached path allocates
// nothing for it.
func (p *Pipeline) cachedFacts(ctx context.Context, token string, c *Call) (*fcverify.Facts, tokencache.Source, error) {
	if f, ok := p.Cache.Cached(token); ok {
		return f, tokencache.SourceL1, nil
	}
	pseudo, registry, client := p.Pseudonymizer, p.Registry(), c.client
	return p.Cache.Get(ctx, token, func(ctx context.Context) (*fcverify.Facts, error) {
		if _, ok := registry.ByAPIToken(token); ok || habilitation.HasAPITokenShape(token) {
			// A habilitation's API token, or one of that shape that
			// this registry no longer holds (rotated, revoked), is never
			// sent to FranceConnect (SECURITY.md A19). Checked on a miss
			// only: an API token is never in the cache, so the cached
			// path stays free of crypto.
			return nil, errAPITokenOnFCRoute
		}
		// Detached from the caller (tokencache): a caller that hangs up
		// still has its refusal counted.
		f, err := p.checkWithinFailedAuth(ctx, client, func() (*fcverify.Facts, error) {
			f, err := p.Verifier.CheckToken(ctx, token)
			p.noteFranceConnectFailure(err)
			return f, err
		})
		if err == nil && f.Active {
			// Pseudonymise and normalise once per token, not once per request.
			f.CitizenKey, f.CitizenKeyVersion = pseudo.CitizenKey(f.Sub), pseudo.version
			normalizeIdentity(&f.Identity)
		}
		return f, err
	})
}

// habilitation runs step 4 and 5: habilitation, query, effective scopes.
func (p *Pipeline) habilitation(r *http.Request, c *Call) *apierror.Error {
	ep, facts, hab := c.ep, c.facts, c.hab
	if hab == nil { // FranceConnect: the habilitation paired with the calling service
		var ok bool
		if hab, ok = p.Registry().ByClientID(facts.ClientID); !ok {
			return apierror.HabilitationUnknown()
		}
		c.hab = hab
	}
	now := c.rec.start // the request's time, read once
	if !hab.ActiveAt(now) {
		return apierror.HabilitationInactive()
	}
	if !allowsAny(hab, ep) {
		// DataPass grants each calling modality apart: a token that only
		// introspects, or a FranceConnect pairing, opens no other route.
		return apierror.ModalityDenied()
	}
	if !hab.AcceptsClientCertificate(ClientCertificate(r), now) {
		// A token bound to its caller's certificate is of no use to
		// another party (SECURITY.md C09): refused before the quota.
		return p.RefuseCertificate(hab, ep.ID, now)
	}
	quota := p.HabilitationQuota
	if !hab.RateLimit.IsZero() {
		quota = ratelimit.Quota{Requests: hab.RateLimit.Requests, Per: hab.RateLimit.Per}
	}
	if aerr := p.limit(r.Context(), hab.LimiterKey(), quota, quotaHabilitation, c); aerr != nil {
		return aerr
	}

	params, ok := parseQuery(r.URL.RawQuery, c.params[:0])
	if !ok {
		return apierror.ParamInvalid(ep.InvalidCode, "")
	}
	c.query = params
	if aerr := checkQuery(params, ep, hab, now); aerr != nil {
		return aerr
	}
	if ep.Modality.CallerGivesIdentity() {
		c.personBasis, c.person = p.Pseudonymizer.personKey(ep, params)
		// The modality is that of what the call gives: an INE on a v2
		// identite route is an identifiant call.
		if !hab.Allows(string(ep.CallModality(c.personBasis))) {
			return apierror.ModalityDenied()
		}
	}

	c.mask |= effectiveMask(ep, hab, facts)
	if c.mask == 0 {
		return apierror.Forbidden()
	}
	// Last of the decisions: a call refused for its query, habilitation
	// or scopes takes nothing from the citizen's quota.
	citizen := ""
	if p.CitizenQuota.Requests > 0 {
		if facts != nil {
			citizen = p.Pseudonymizer.citizenKeyOf(facts)
		} else {
			citizen = p.Pseudonymizer.quotaKey(ep, params)
		}
	}
	return p.limitCitizen(r.Context(), hab, citizen, c)
}

// allowsAny reports whether hab was granted a modality that a call to ep
// may need (catalogue.Endpoint.CallModalities); the call's own is checked
// once its query is read.
func allowsAny(hab *habilitation.Habilitation, ep *catalogue.Endpoint) bool {
	for _, m := range hab.Modalities {
		if ep.CallModalities(catalogue.Modality(m)) {
			return true
		}
	}
	return false
}

// maxRequestURI bounds the request target (SECURITY.md F01): the longest
// identite query, three given names and a commune name of 100 letters
// each, percent-encoded, stays well under it.
const maxRequestURI = 2048

// route finds the endpoint of the canonical request path (SECURITY.md C04,
// D06, D08).
func (p *Pipeline) route(r *http.Request) (*catalogue.Endpoint, *apierror.Error) {
	if len(r.RequestURI) > maxRequestURI {
		return nil, apierror.URITooLong()
	}
	if r.URL.RawPath != "" || !strings.HasPrefix(r.RequestURI, "/") || r.URL.Fragment != "" {
		return nil, apierror.BadRequest()
	}
	cat := p.Catalogue
	ep, ok := cat.Lookup(r.URL.Path)
	if len(r.Header[bearer.APIKeyHeader]) > 0 {
		// A legacy v2 path served in both modalities: an API key in
		// X-Api-Key selects the identite one.
		if twin, isTwin := cat.CallerTwin(r.URL.Path); isTwin {
			ep, ok = twin, true
		}
	}
	if !ok || (p.allowed != nil && !p.allowed[ep]) {
		return nil, apierror.UnknownRoute()
	}
	if r.Method != ep.Method {
		return ep, apierror.MethodNotAllowed(ep.Method)
	}
	// No body, and no declared trailer (an HTTP/2 GET may announce some):
	// a GET carries nothing but its target and headers.
	if r.ContentLength > 0 || len(r.TransferEncoding) > 0 || len(r.Trailer) > 0 {
		return ep, apierror.BadRequest()
	}
	return ep, nil
}

func (p *Pipeline) tokenError(err error) *apierror.Error {
	switch {
	case errors.Is(err, fcverify.ErrTokenExpired):
		return apierror.TokenExpired()
	case errors.Is(err, fcverify.ErrTokenMalformed):
		return apierror.TokenMalformed()
	case errors.Is(err, errAPITokenOnFCRoute):
		// A well-formed credential of the wrong kind (SECURITY.md A19).
		return apierror.TokenNotFound()
	}
	reason := fcverify.Reason(err)
	if errors.Is(err, fcverify.ErrBusy) {
		// Shed, not failed: counted apart from FranceConnect's failures.
		shedCounters.get(labels2{"franceconnect", "in_flight"}).Inc()
		return apierror.Unavailable(reason)
	}
	if reason == fcverify.ReasonClientAuth {
		reason = fcverify.ReasonUnavailable // the caller sees FranceConnect as unavailable
	}
	return apierror.Unavailable(reason)
}

// noteFranceConnectFailure logs and counts a failed checktoken call, once
// a call, in the call itself: the requests that shared it may all have
// hung up (their callers' deadlines shorter than FranceConnect's timeout),
// and a FranceConnect that fails must still be seen (franceconnect_failures_total,
// the PasserelleFranceConnectErrors alert). A token refused for itself
// (expired, malformed) and a call shed at the in-flight cap are no
// FranceConnect failure.
func (p *Pipeline) noteFranceConnectFailure(err error) {
	if err == nil || errors.Is(err, fcverify.ErrTokenExpired) || errors.Is(err, fcverify.ErrTokenMalformed) || errors.Is(err, fcverify.ErrBusy) {
		return
	}
	reason := fcverify.Reason(err)
	metricFCFailures.WithLabelValues(reason).Inc()
	if reason == fcverify.ReasonClientAuth {
		// Our own credentials are refused: an operator must act (SECURITY.md
		// I02).
		p.Logger.Error("FranceConnect refused the gateway's client authentication", zap.String("alert", reason))
	} else if ce := p.Logger.Check(zapcore.WarnLevel, "FranceConnect check failed"); ce != nil {
		ce.Write(zap.String("reason", reason))
	}
}

func mustACR(v string) int {
	l, _ := catalogue.ACRLevel(v)
	return l
}

// identityClaims are the pivot claims the token's scopes must release
// (DOMAIN.md §2 step 7), with FranceConnect's scope aliases.
var identityScopes = map[string][]string{
	"identite_pivot": {"family_name", "given_name", "birthdate", "gender", "birthplace", "birthcountry"},
	"profile":        {"family_name", "given_name", "birthdate", "gender"},
	"birth":          {"birthplace", "birthcountry"},
}

// coversIdentity reports whether a token's scopes release the whole
// identity pivot.
func coversIdentity(scopes []string) bool {
	const all = 1<<6 - 1
	bits := 0
	for _, s := range scopes {
		claims, ok := identityScopes[s]
		if !ok {
			claims = []string{s}
		}
		for _, c := range claims {
			switch c {
			case "family_name":
				bits |= 1
			case "given_name":
				bits |= 2
			case "birthdate":
				bits |= 4
			case "gender":
				bits |= 8
			case "birthplace":
				bits |= 16
			case "birthcountry":
				bits |= 32
			}
		}
		if bits == all {
			return true
		}
	}
	return false
}

// effectiveMask returns the endpoint's scopes (bit i: ep.Scopes[i]) that
// the habilitation grants and, on a FranceConnect route, the token carries
// (SECURITY.md C03). On an identite route there is no token (facts nil):
// habilitation ∩ endpoint.
func effectiveMask(ep *catalogue.Endpoint, hab *habilitation.Habilitation, facts *fcverify.Facts) uint64 {
	var mask uint64
	for i := range ep.Scopes {
		if (facts == nil || hasAnyName(facts.Scopes, &ep.Scopes[i])) && habHasAny(hab, &ep.Scopes[i]) {
			mask |= 1 << i
		}
	}
	// Scopes that release their fields only together: part of a group
	// releases none of it (the records a path mask cannot select).
	return ep.KeepWholeJointGroups(mask)
}

func hasAnyName(scopes []string, s *catalogue.Scope) bool {
	for _, have := range scopes {
		if have == s.Name {
			return true
		}
		for _, a := range s.Aliases {
			if have == a {
				return true
			}
		}
	}
	return false
}

func habHasAny(hab *habilitation.Habilitation, s *catalogue.Scope) bool {
	if hab.HasScope(s.Name) {
		return true
	}
	for _, a := range s.Aliases {
		if hab.HasScope(a) {
			return true
		}
	}
	return false
}

// ClientCertificate returns the certificate the caller presented in the
// request's TLS handshake, or nil (plain HTTP, or no certificate asked or
// given). Caddy asks for one when the site's tls block has client_auth;
// the handshake proved the caller holds its key.
func ClientCertificate(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	return r.TLS.PeerCertificates[0]
}
