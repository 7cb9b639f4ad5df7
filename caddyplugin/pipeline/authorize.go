package pipeline

import (
	"context"
	"crypto/x509"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

// LimitClient takes one request from the client address quota, before
// FranceConnect is asked (SECURITY.md F04), and returns the error to answer
// when it is spent (429) or cannot be decided. The address is Config.ClientIP's
// (Caddy's client IP, which honours trusted_proxies only, D04), or the
// connection's, counted per network (IPv6 per ClientIPv6Prefix, /64 by
// default: one subscriber holds a whole /64), hashed before it becomes a
// Redis key.
func (p *Pipeline) LimitClient(r *http.Request, c *Call) *apierror.Error {
	c.client = p.Limiter.ClientKey(p.ClientIPKey, p.ClientAddr(r), p.ClientIPv6Prefix)
	return p.limit(r.Context(), c.client, p.ClientQuota, quotaClientIP, c)
}

// ClientAddr is the client address of a request: Config.ClientIP's (the
// server's, trusted proxies honoured), or the connection's.
func (p *Pipeline) ClientAddr(r *http.Request) string {
	if p.ClientIP != nil {
		if ip := p.ClientIP(r); ip != "" {
			return ip
		}
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	return ip
}

// Quota names, as the rate_limited_total metric counts refusals.
const (
	quotaClientIP     = "client_ip"
	quotaFailedAuth   = "failed_auth"
	quotaHabilitation = "habilitation"
	quotaCitizen      = "citizen"
)

// limitCitizen takes one request from the quota of one citizen within one
// habilitation (SECURITY.md F05; Config.CitizenQuota). A caller asking
// about the same person again and again is refused 429, and the refusals
// are a security alert (possible enumeration by a compromised caller):
// each is counted, and a warning names the habilitation and the endpoint,
// never the citizen (the audit record of each refusal carries its
// pseudonym), at most once a minute for each.
func (p *Pipeline) limitCitizen(ctx context.Context, hab *habilitation.Habilitation, citizen string, c *Call) *apierror.Error {
	if citizen == "" { // no quota, or a call that names nobody
		return nil
	}
	key := p.Limiter.CitizenKey(p.ClientIPKey, hab.LimiterKey(), citizen)
	aerr := p.limit(ctx, key, p.CitizenQuota, quotaCitizen, c)
	if aerr != nil && aerr.Reason == apierror.ReasonRateLimited && citizenAlerts.due(labels2{hab.ID, c.ep.ID}, time.Now()) {
		p.Logger.Warn("citizen quota exceeded: possible enumeration",
			zap.String("alert", "citizen_quota"), zap.String("habilitation", hab.ID), zap.String("endpoint", c.ep.ID))
	}
	return aerr
}

// citizenAlerts spaces the citizen quota's warnings: one a minute for each
// habilitation and endpoint (a bounded set), however many refusals.
var citizenAlerts = alertThrottle{every: time.Minute}

// certificateAlerts spaces RefuseCertificate's warnings the same way.
var certificateAlerts = alertThrottle{every: time.Minute}

// RefuseCertificate answers a call of hab, bound to client certificates,
// that presented none of them (SECURITY.md C09) on endpoint (a catalogue
// endpoint id, or "introspect"): most likely a token that leaked, tried by
// another party. A security alert: client_certificate_refusals_total, and
// a WARN line naming the habilitation and the endpoint, never the
// certificate, at most once a minute for each.
func (p *Pipeline) RefuseCertificate(hab *habilitation.Habilitation, endpoint string, now time.Time) *apierror.Error {
	metricCertificateRefusals.Inc()
	if p.Logger != nil && certificateAlerts.due(labels2{hab.ID, endpoint}, now) {
		p.Logger.Warn("client certificate refused: a token of a certificate-bound habilitation came without its certificate",
			zap.String("alert", "client_certificate"), zap.String("habilitation", hab.ID), zap.String("endpoint", endpoint))
	}
	return apierror.ClientCertificateMismatch()
}

// alertThrottle reports when a warning is due again for a key.
type alertThrottle struct {
	every time.Duration
	last  sync.Map // labels2 → *atomic.Int64, Unix nanoseconds of the last warning
}

// due reports whether no warning was given for k within every, and if so
// records one at now.
func (a *alertThrottle) due(k labels2, now time.Time) bool {
	v, ok := a.last.Load(k)
	if !ok {
		v, _ = a.last.LoadOrStore(k, new(atomic.Int64))
	}
	last := v.(*atomic.Int64)
	prev := last.Load()
	if prev != 0 && now.UnixNano()-prev < int64(a.every) {
		return false
	}
	return last.CompareAndSwap(prev, now.UnixNano())
}

// limit takes one request from a quota; the decision feeds the RateLimit
// headers. A citizen's quota shows in them only when it refuses: they keep
// telling the habilitation's quota, as API Particulier's do.
func (p *Pipeline) limit(ctx context.Context, key string, q ratelimit.Quota, name string, c *Call) *apierror.Error {
	// The limiter reads the clock itself: a request's start time can be a
	// FranceConnect round trip old, and an earlier time would rewind an
	// in-process limiter (x/time/rate credits the interval again).
	d, err := p.Limiter.Allow(ctx, key, q)
	if err != nil {
		return apierror.Internal()
	}
	if d.Allowed && name == quotaCitizen {
		return nil
	}
	c.rate = d
	if !d.Allowed {
		c.refusedBy, c.refusedPer = name, q.Per
		metricRateLimited.WithLabelValues(name).Inc()
		return apierror.RateLimited(int(math.Ceil(d.RetryAfter.Seconds())))
	}
	return nil
}

// setRateLimitHeaders writes API Particulier's RateLimit headers: the
// quota, what is left of it, and when it is whole again (Unix time). The
// values are kept in vals; the three numbers share one string.
func setRateLimitHeaders(h http.Header, d ratelimit.Decision, now time.Time, vals *[3]string) {
	var buf [3 * 20]byte
	b := strconv.AppendInt(buf[:0], int64(d.Limit), 10)
	n1 := len(b)
	b = strconv.AppendInt(b, int64(d.Remaining), 10)
	n2 := len(b)
	b = strconv.AppendInt(b, now.Add(d.Reset).Unix()+1, 10)
	all := string(b)
	*vals = [3]string{all[:n1], all[n1:n2], all[n2:]}
	h["Ratelimit-Limit"] = vals[0:1:1]
	h["Ratelimit-Remaining"] = vals[1:2:2]
	h["Ratelimit-Reset"] = vals[2:3:3]
}

// setRateLimitFields writes, on a refusal, the IETF RateLimit fields
// (draft-ietf-httpapi-ratelimit-headers) beside API Particulier's
// (SECURITY.md F03): the policy of the quota that refused, by name, with
// its quota q and window w in seconds, and that nothing is left of it for
// t seconds: RateLimit-Policy: "habilitation";q=20;w=1 and
// RateLimit: "habilitation";r=0;t=1. A refusal only: no cost on the
// request path.
func setRateLimitFields(h http.Header, name string, limit int, per, retryAfter time.Duration) {
	window := max(int64(math.Ceil(per.Seconds())), 1)
	h["Ratelimit-Policy"] = []string{strconv.Quote(name) + ";q=" + strconv.Itoa(limit) + ";w=" + strconv.FormatInt(window, 10)}
	h["Ratelimit"] = []string{strconv.Quote(name) + ";r=0;t=" + strconv.FormatInt(max(int64(math.Ceil(retryAfter.Seconds())), 1), 10)}
}

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
