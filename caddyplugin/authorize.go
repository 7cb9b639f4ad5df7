package caddyplugin

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/apierror"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/bearer"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/ratelimit"
	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// authorize runs steps 1 to 5.
func (h *Handler) authorize(r *http.Request, rq *request) *apierror.Error {
	ep, aerr := h.route(r)
	if aerr != nil {
		return aerr
	}
	rq.ep = ep
	if aerr := h.limitClient(r, rq); aerr != nil {
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
		hab, ok := h.app.Registry().ByAPIToken(token)
		if !ok {
			return apierror.APITokenInvalid()
		}
		rq.hab = hab
	} else {
		facts, aerr := h.checkToken(r.Context(), token, rq)
		if aerr != nil {
			return aerr
		}
		rq.facts = facts
		if !coversIdentity(facts) {
			return apierror.IdentityScopesMissing()
		}
		if have, ok := catalogue.ACRLevel(facts.ACR); !ok || have < mustACR(ep.MinACR) {
			return apierror.ACRTooLow(ep.MinACR)
		}
	}

	_, sp := startSpan(r.Context(), rq.tracer, spanHabilitation, trace.SpanKindInternal, attrEndpoint.String(ep.ID))
	aerr = h.habilitation(r, rq)
	if rq.hab != nil {
		sp.SetAttributes(attrHabilitation.String(rq.hab.ID))
	}
	if aerr != nil {
		sp.SetAttributes(attrDecision.String("deny"))
		endSpan(sp, aerr.Reason)
		return aerr
	}
	sp.SetAttributes(attrDecision.String("allow"))
	endSpan(sp, "")
	return nil
}

// errAPITokenOnFCRoute: the bearer is a habilitation's API token, presented
// on a FranceConnect route.
var errAPITokenOnFCRoute = errors.New("passerelle: API token on a FranceConnect route")

// limitClient applies the per-client quota before FranceConnect is asked
// (SECURITY.md F04). The address is Caddy's client IP, which honours
// trusted_proxies only (D04), counted per network (IPv6 per
// client_ipv6_prefix, /64 by default: one subscriber holds a whole /64),
// hashed before it becomes a Redis key.
func (h *Handler) limitClient(r *http.Request, rq *request) *apierror.Error {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	if ip == "" {
		ip, _, _ = net.SplitHostPort(r.RemoteAddr)
	}
	key := h.app.core.limiter.ClientKey(h.app.core.ipKey, ip, h.app.RateLimits.ClientIPv6Prefix)
	return h.limit(r.Context(), key, h.app.ipQuota, "client_ip", rq)
}

// limit takes one request from a quota; the decision feeds the RateLimit
// headers.
func (h *Handler) limit(ctx context.Context, key string, q ratelimit.Quota, name string, rq *request) *apierror.Error {
	d, err := h.app.core.limiter.Allow(ctx, key, q)
	if err != nil {
		return apierror.Internal()
	}
	rq.rate = d
	if !d.Allowed {
		metricRateLimited.WithLabelValues(name).Inc()
		return apierror.RateLimited(int(math.Ceil(d.RetryAfter.Seconds())))
	}
	return nil
}

// setRateLimitHeaders writes API Particulier's RateLimit headers: the
// quota, what is left of it, and when it is whole again (Unix time).
func setRateLimitHeaders(h http.Header, d ratelimit.Decision, now time.Time) {
	h["Ratelimit-Limit"] = []string{strconv.Itoa(d.Limit)}
	h["Ratelimit-Remaining"] = []string{strconv.Itoa(d.Remaining)}
	h["Ratelimit-Reset"] = []string{strconv.FormatInt(now.Add(d.Reset).Unix()+1, 10)}
}

// checkToken returns the facts of a token from the cache or FranceConnect.
func (h *Handler) checkToken(ctx context.Context, token string, rq *request) (*fcverify.Facts, *apierror.Error) {
	ctx, sp := startSpan(ctx, rq.tracer, spanToken, trace.SpanKindInternal)
	core := h.app.core
	pseudo, registry := h.app.pseudo, h.app.Registry()
	facts, src, err := core.cache.Get(ctx, token, func(ctx context.Context) (*fcverify.Facts, error) {
		if _, ok := registry.ByAPIToken(token); ok {
			// A habilitation's API token is never sent to FranceConnect
			// (SECURITY.md A19). Checked on a miss only: an API token is
			// never in the cache, so the cached path stays free of crypto.
			return nil, errAPITokenOnFCRoute
		}
		f, err := core.verifier.CheckToken(ctx, token)
		if err == nil && f.Active {
			// Pseudonymise and normalise once per token, not once per request.
			f.CitizenKey, f.CitizenKeyVersion = pseudo.citizenKey(f.Sub), pseudo.version
			normalizeIdentity(&f.Identity)
		}
		return f, err
	})
	rq.source = src.String()
	result, aerr := "active", (*apierror.Error)(nil)
	switch {
	case err != nil:
		result, aerr = "error", h.tokenError(err)
		if errors.Is(err, fcverify.ErrTokenExpired) || errors.Is(err, fcverify.ErrTokenMalformed) || errors.Is(err, errAPITokenOnFCRoute) {
			result = "inactive"
		}
	case !facts.Active:
		result, aerr = "inactive", apierror.TokenNotFound()
	}
	tokenCheckCounters.get(labels2{rq.source, result}).Inc()
	sp.SetAttributes(attrCacheLevel.String(rq.source), attrTokenResult.String(result))
	if aerr != nil {
		endSpan(sp, aerr.Reason)
		return nil, aerr
	}
	endSpan(sp, "")
	return facts, nil
}

// habilitation runs step 4 and 5: habilitation, query, effective scopes.
func (h *Handler) habilitation(r *http.Request, rq *request) *apierror.Error {
	ep, facts, hab := rq.ep, rq.facts, rq.hab
	if hab == nil { // FranceConnect: the habilitation paired with the calling service
		var ok bool
		if hab, ok = h.app.Registry().ByClientID(facts.ClientID); !ok {
			return apierror.HabilitationUnknown()
		}
		rq.hab = hab
	}
	if !hab.ActiveAt(h.now()) {
		return apierror.HabilitationInactive()
	}
	if !hab.Allows(string(ep.Modality)) {
		// DataPass grants each calling modality apart: a token that only
		// introspects, or a FranceConnect pairing, opens no other route.
		return apierror.ModalityDenied()
	}
	quota := h.app.habQuota
	if !hab.RateLimit.IsZero() {
		quota = ratelimit.Quota{Requests: hab.RateLimit.Requests, Per: hab.RateLimit.Per}
	}
	if aerr := h.limit(r.Context(), hab.LimiterKey(), quota, "habilitation", rq); aerr != nil {
		return aerr
	}

	params, ok := parseQuery(r.URL.RawQuery, rq.params[:0])
	if !ok {
		return apierror.ParamInvalid(ep.InvalidCode, "")
	}
	rq.query = params
	if aerr := checkQuery(params, ep, hab, h.now()); aerr != nil {
		return aerr
	}
	if ep.Modality.CallerGivesIdentity() {
		rq.personBasis, rq.person = h.app.pseudo.personKey(ep, params)
	}

	for i := range ep.Scopes {
		// On an identite route there is no token scope: habilitation ∩ endpoint.
		if (facts == nil || hasAnyName(facts.Scopes, &ep.Scopes[i])) && habHasAny(hab, &ep.Scopes[i]) {
			rq.mask |= 1 << i
		}
	}
	if rq.mask == 0 {
		return apierror.Forbidden()
	}
	return nil
}

// maxRequestURI bounds the request target (SECURITY.md F01): the longest
// identite query, three given names and a commune name of 100 letters
// each, percent-encoded, stays well under it.
const maxRequestURI = 2048

// route finds the endpoint of the canonical request path (SECURITY.md C04,
// D06, D08).
func (h *Handler) route(r *http.Request) (*catalogue.Endpoint, *apierror.Error) {
	if len(r.RequestURI) > maxRequestURI {
		return nil, apierror.URITooLong()
	}
	if r.URL.RawPath != "" || !strings.HasPrefix(r.RequestURI, "/") || r.URL.Fragment != "" {
		return nil, apierror.BadRequest()
	}
	cat := h.app.Catalog()
	ep, ok := cat.Lookup(r.URL.Path)
	if len(r.Header[bearer.APIKeyHeader]) > 0 {
		// A legacy v2 path served in both modalities: an API key in
		// X-Api-Key selects the identite one.
		if twin, isTwin := cat.CallerTwin(r.URL.Path); isTwin {
			ep, ok = twin, true
		}
	}
	if !ok || (h.allowed != nil && !h.allowed[ep]) {
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

func (h *Handler) tokenError(err error) *apierror.Error {
	switch {
	case errors.Is(err, fcverify.ErrTokenExpired):
		return apierror.TokenExpired()
	case errors.Is(err, fcverify.ErrTokenMalformed), errors.Is(err, errAPITokenOnFCRoute):
		return apierror.TokenMalformed()
	}
	reason := fcverify.Reason(err)
	if reason == fcverify.ReasonClientAuth {
		// Our own credentials are refused: an operator must act (SECURITY.md
		// I02). The caller sees FranceConnect as unavailable.
		h.logger.Error("FranceConnect refused the gateway's client authentication", zap.String("alert", reason))
		reason = fcverify.ReasonUnavailable
	} else if c := h.logger.Check(zapcore.WarnLevel, "FranceConnect check failed"); c != nil {
		c.Write(zap.String("reason", reason))
	}
	return apierror.Unavailable(reason)
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

// coversIdentity reports whether the token's scopes release the whole
// identity pivot.
func coversIdentity(f *fcverify.Facts) bool {
	const all = 1<<6 - 1
	bits := 0
	for _, s := range f.Scopes {
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
