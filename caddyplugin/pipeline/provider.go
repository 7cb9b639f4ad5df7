package pipeline

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/apierror"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/pings"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/respfilter"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/retry"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/shed"
	"github.com/passerelle-gw/passerelle/config/catalogue"
)

// filterKey names a compiled allow-list: one per endpoint and scope mask.
type filterKey struct {
	ep   *catalogue.Endpoint
	mask uint64
}

// paths returns the compiled allow-list of the scopes in mask.
func (p *Pipeline) paths(ep *catalogue.Endpoint, mask uint64) (*respfilter.Paths, error) {
	key := filterKey{ep, mask}
	if f, ok := p.filters.Load(key); ok {
		return f.(*respfilter.Paths), nil
	}
	var fields []string
	for i := range ep.Scopes {
		if mask&(1<<i) != 0 {
			fields = append(fields, ep.Scopes[i].Fields...)
		}
	}
	compile := respfilter.Compile
	if ep.API == catalogue.APIv2 {
		compile = respfilter.CompileBare // v2 answers have no envelope
	}
	f, err := compile(fields)
	if err != nil {
		return nil, err
	}
	p.filters.Store(key, f)
	return f, nil
}

// filterOptions are the response filter's options: the handler's bound on
// answers, and leaves only, as every path of the catalogue names a leaf
// (SECURITY.md C05): a structure a provider puts where a leaf was is
// dropped, not passed whole.
func (p *Pipeline) filterOptions() respfilter.Options {
	return respfilter.Options{MaxBytes: p.maxResponseBytes, Leaves: true}
}

// forward runs steps 6 and 7. It writes the answer itself on success and
// returns the error to answer otherwise.
func (p *Pipeline) forward(w http.ResponseWriter, r *http.Request, provider Provider, c *Call) *apierror.Error {
	if p.auditRefuses() {
		// No access to personal data without its audit record (G09, I11).
		return apierror.Unavailable(apierror.ReasonAuditUnavailable)
	}
	ep := c.ep
	var query string
	if ep.Modality.CallerGivesIdentity() {
		query = callerQuery(ep, c.query)
	} else {
		var err error
		if query, err = upstreamQuery(ep, c.facts, c.query); err != nil {
			return apierror.IdentityUnusable()
		}
	}
	paths, err := p.paths(ep, c.mask)
	if err != nil {
		return apierror.Internal()
	}
	cred := p.Credentials[ep.ProviderName]

	// The whole provider call, its credential, a retry and a credential
	// refresh included, ends at ProviderTimeout (SECURITY.md E08): the
	// transport's own timeouts bound each phase, not a provider that
	// trickles its answer.
	ctx, cancel := context.WithTimeout(r.Context(), p.ProviderTimeout)
	defer cancel()
	// ranOut: the call's time is up while its caller still waits.
	ranOut := func() bool { return ctx.Err() != nil && r.Context().Err() == nil }
	// A new request: nothing of the caller's headers, Host, path or query
	// reaches the provider (SECURITY.md D01, D02, E01), and the caller's
	// request stays as Caddy logs it (its access log is routed by r.Host).
	c.upRequestID[0] = c.rec.requestID
	up := providerRequest(ctx, r, &c.upURL, ep.UpstreamPath, query, c.upRequestID[:])
	if cred != nil {
		_, sp := startSpan(ctx, c.tracer, spanCredential, trace.SpanKindInternal, attrProvider.String(ep.ProviderName))
		err := cred.Apply(ctx, up.Header)
		if err != nil {
			endSpan(sp, apierror.ReasonProviderError)
			if ranOut() {
				// The platform's token endpoint used up the call's time.
				return apierror.ProviderTimeout(ep.Provider.ErrorPrefix, ep.ProviderName)
			}
			return apierror.Unavailable(apierror.ReasonProviderError)
		}
		endSpan(sp, "")
	}

	// A saturated or failing provider is refused at once (SECURITY.md
	// F07, I06): no queue, no call while its circuit is open.
	ticket, serr := p.Guards[ep.ProviderName].Enter()
	if serr != nil {
		return shedAnswer(ep.ProviderName, serr)
	}
	outcome := shed.Abandoned // until the provider answered (a panic)
	released := false
	release := func() { // at most once: when its answer is captured, or at the end
		if !released {
			released = true
			ticket.Done(outcome)
		}
	}
	defer release()
	rec := getCapture(p.maxResponseBytes)
	defer putCapture(rec)
	budget := p.Retries[ep.ProviderName]
	if budget != nil {
		budget.Call(time.Now())
	}
	err = p.callProvider(up, provider, rec, c)
	retried := err != nil && p.mayRetry(ctx, ep.ProviderName, budget, rec, err)
	if retried {
		rec.reset(p.maxResponseBytes)
		err = p.callProvider(up, provider, rec, c)
	}
	if !retried && err == nil && rec.status == http.StatusUnauthorized && cred != nil {
		// One refresh and one retry when the provider refuses our credential
		// (SECURITY.md B11). Invalidate reads the credential as sent (the
		// proxy forwarded a clone of up.Header): only that token is dropped,
		// so a late 401 about an older one keeps the fresh token. No retry
		// for a static credential, nor within the cooldown of the last
		// forced refresh, nor after a retry already made (one at most, E09):
		// the 401 is then answered as a provider error.
		if cred.Invalidate(ctx, up.Header) {
			delete(up.Header, "Authorization")
			if err := cred.Apply(ctx, up.Header); err != nil {
				// The provider refused our credential and none could
				// replace it: a provider failure for the status routes,
				// a timeout when the refresh used up the call's time.
				outcome = callOutcome(r, rec, nil)
				if outcome != shed.Abandoned {
					p.Pings.Record(ep.ProviderName, ProviderOutcome(http.StatusUnauthorized, nil, false))
				}
				if ranOut() {
					return apierror.ProviderTimeout(ep.Provider.ErrorPrefix, ep.ProviderName)
				}
				return apierror.Unavailable(apierror.ReasonProviderError)
			}
			rec.reset(p.maxResponseBytes)
			err = p.callProvider(up, provider, rec, c)
		}
	}
	outcome = callOutcome(r, rec, err)
	// The provider's answer is captured: its slot is free before the answer
	// is filtered and written to a caller that may read it slowly, or not
	// at all (F07: a slow reader must not hold the provider's calls).
	release()
	if aerr := p.providerError(ep, rec, err, ranOut()); aerr != nil {
		// A 200 that ends in an error was unusable (too large, not JSON),
		// and so was a 404 that is not the provider's JSON not-found. A
		// caller that hung up says nothing of the provider.
		if outcome != shed.Abandoned {
			unusable := rec.status == http.StatusOK || rec.status == http.StatusNotFound && !providerNotFound(rec)
			p.Pings.Record(ep.ProviderName, ProviderOutcome(rec.status, err, unusable))
		}
		return aerr
	}
	out := getBuffer()
	defer putBuffer(out)
	filtered, err := respfilter.Filter((*out)[:0], rec.buf.Bytes(), paths, p.filterOptions())
	if err != nil {
		p.Pings.Record(ep.ProviderName, ProviderOutcome(rec.status, nil, true))
		return apierror.FilterFailed(ep.Provider.ErrorPrefix, ep.ProviderName)
	}
	p.Pings.Record(ep.ProviderName, pings.OK)
	*out = filtered
	c.answered = true
	WriteOK(w, filtered)
	return nil
}

// Outcomes of a provider call never sent, as provider_retries_total
// counts them.
const (
	retryRetried         = "retried"
	retryBudgetExhausted = "budget_exhausted"
	retryDeadline        = "deadline"
)

// mayRetry decides the one retry of a provider call (SECURITY.md E09): the
// request was never sent (Config.Unsent: its connection could not be
// made, so nothing came back), the provider's retry budget allows one
// more, and a random delay fits before the request's deadline; that delay
// is waited here. A call whose answer had begun is never retried.
func (p *Pipeline) mayRetry(ctx context.Context, provider string, budget *retry.Budget, rec *capture, err error) bool {
	if budget == nil || p.Unsent == nil || rec.wroteHeader || !p.Unsent(err) {
		return false
	}
	delay := retry.Jitter(retry.DefaultMaxDelay)
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= delay {
		retryCounters.get(labels2{provider, retryDeadline}).Inc()
		return false
	}
	if !budget.Take(time.Now()) {
		retryCounters.get(labels2{provider, retryBudgetExhausted}).Inc()
		return false
	}
	if !retry.Wait(ctx, delay) {
		retryCounters.get(labels2{provider, retryDeadline}).Inc()
		return false
	}
	retryCounters.get(labels2{provider, retryRetried}).Inc()
	return true
}

// providerRequest returns the request handed to the provider: a shallow
// copy of the caller's r (same connection state and method, context ctx) with
// its own URL (u, overwritten), the provider path and query, no body, and
// only the headers set here (requestID is X-Request-Id's value; no
// compression). Its Host is empty, so the transport sends the upstream's
// own (an HTTPS upstream gets it from reverse_proxy), and a nil
// X-Forwarded-Host tells reverse_proxy to add none: the caller's Host never reaches the provider. Its RequestURI,
// which reverse_proxy's log lines print, is the provider path only: the
// caller's query may hold a civil status. Nothing the caller declared
// (trailers, a parsed form, its client certificate, whose name
// reverse_proxy's debug line would print) is carried over.
func providerRequest(ctx context.Context, r *http.Request, u *url.URL, path, query string, requestID []string) *http.Request {
	up := r.WithContext(ctx)
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		state := *r.TLS
		state.PeerCertificates, state.VerifiedChains = nil, nil
		up.TLS = &state
	}
	*u = url.URL{Scheme: r.URL.Scheme, Host: r.URL.Host, Path: path, RawQuery: query}
	up.URL = u
	up.Host, up.RequestURI = "", path
	// Accept-Encoding identity: otherwise Go's transport asks for gzip and
	// inflates the answer before the size limit sees it (a gzip bomb).
	up.Header = http.Header{"Accept": acceptJSON, "Accept-Encoding": identityOnly, "X-Request-Id": requestID, "X-Forwarded-Host": nil}
	up.Body, up.ContentLength, up.TransferEncoding, up.Trailer = http.NoBody, 0, nil, nil
	up.Form, up.PostForm, up.MultipartForm = nil, nil, nil
	return up
}

// WriteOK sends a 200 JSON answer with the headers every answer carries
// (Cache-Control: no-store, X-Content-Type-Options: nosniff).
func WriteOK(w http.ResponseWriter, body []byte) {
	hdr := w.Header()
	hdr["Content-Type"] = jsonContentType
	hdr["Cache-Control"] = noStore
	hdr["X-Content-Type-Options"] = noSniff
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// callProvider hands the rebuilt request to the provider (reverse_proxy)
// under a client span, with the trace context for the provider.
func (p *Pipeline) callProvider(r *http.Request, provider Provider, rec *capture, c *Call) error {
	ctx, sp := startSpan(r.Context(), c.tracer, spanProvider, trace.SpanKindClient, attrProvider.String(c.ep.ProviderName))
	if c.tracer != nil {
		injectTraceContext(ctx, r.Header)
	}
	start := time.Now()
	c.called = true
	err := serveProvider(provider, rec, r)
	c.status = rec.status
	class := statusClass(rec.status)
	if err != nil {
		class = "error"
	}
	providerDurations.get(labels2{c.ep.ProviderName, class}).Observe(time.Since(start).Seconds())
	setAttr(sp, attrStatusClass.String(class))
	if err != nil || rec.status >= 400 {
		endSpan(sp, apierror.ReasonProviderError)
	} else {
		endSpan(sp, "")
	}
	return err
}

// shedAnswer answers a call the provider's guard refused: 503 with
// Retry-After, counted by provider and cause.
func shedAnswer(provider string, err error) *apierror.Error {
	if errors.Is(err, shed.ErrOpen) {
		shedCounters.get(labels2{provider, "circuit_open"}).Inc()
		return apierror.Unavailable(apierror.ReasonProviderError)
	}
	shedCounters.get(labels2{provider, "in_flight"}).Inc()
	// G04 has no capacity reason: load shedding passes internal_error.
	return apierror.Unavailable(apierror.ReasonInternalError)
}

// callOutcome tells the provider's guard how its call went: a transport
// error, a timeout, an abort, or a 502, 503 or 504 (the provider or its
// own gateway down) is a failure; any other answer, a 500 included (a
// caller's input may provoke one: it must not open the circuit for every
// caller), shows a provider that answers, and so does an answer over the
// size limit (whose reading was cut on purpose); a call the caller
// abandoned says nothing.
func callOutcome(r *http.Request, rec *capture, err error) shed.Outcome {
	switch {
	case r.Context().Err() != nil:
		return shed.Abandoned
	case rec.status == http.StatusBadGateway || rec.status == http.StatusServiceUnavailable ||
		rec.status == http.StatusGatewayTimeout:
		return shed.Failure // however long its page
	case rec.overflow:
		return shed.Success
	case err != nil || rec.status == 0:
		return shed.Failure
	}
	return shed.Success
}

// errProviderAborted: reverse_proxy aborted the answer mid-stream (the
// provider's body was cut after its headers).
var errProviderAborted = errors.New("passerelle: provider answer aborted")

// serveProvider calls the provider, turning reverse_proxy's abort of a
// half-copied answer (a panic with http.ErrAbortHandler, as the standard
// library's proxy does) into an error: the request still gets its answer
// (502), its audit record, its metrics and its pings outcome. Any other
// panic goes on.
func serveProvider(provider Provider, w http.ResponseWriter, r *http.Request) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler { //nolint:errorlint // the sentinel itself is the panic value
				panic(v)
			}
			err = errProviderAborted
		}
	}()
	return provider.ServeHTTP(w, r)
}

// providerError maps a provider answer that cannot be relayed to API
// Particulier's codes (SECURITY.md C10): nothing of its body is kept.
// timedOut: the call ran out of ProviderTimeout, whatever error the
// provider's transport made of it (an answer cut mid-body included).
func (p *Pipeline) providerError(ep *catalogue.Endpoint, rec *capture, err error, timedOut bool) *apierror.Error {
	prefix, name := ep.Provider.ErrorPrefix, ep.ProviderName
	if err != nil {
		if timedOut || p.ErrorStatus != nil && p.ErrorStatus(err) == http.StatusGatewayTimeout {
			return apierror.ProviderTimeout(prefix, name)
		}
		if rec.overflow || rec.wroteHeader {
			return apierror.ProviderError(prefix, name)
		}
		return apierror.ProviderUnreachable(prefix, name)
	}
	switch {
	case providerNotFound(rec):
		return apierror.ProviderNotFound(ep.NotFoundError())
	case rec.status != http.StatusOK, rec.overflow:
		return apierror.ProviderError(prefix, name)
	}
	if !isJSON(rec.header.Get("Content-Type")) {
		return apierror.ProviderError(prefix, name)
	}
	return nil
}

// providerNotFound reports whether the provider answered that it holds
// nothing on the person: a 404 with a JSON body (application/json or a
// +json type), as providers write it. Any other 404 (an HTML or empty page
// of a proxy on the way, a wrong upstream_path) is a provider error:
// telling the caller the citizen has no record, while the status routes
// stay green, would hide a broken route.
func providerNotFound(rec *capture) bool {
	if rec.status != http.StatusNotFound || rec.overflow {
		return false
	}
	mt, _, _ := strings.Cut(rec.header.Get("Content-Type"), ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}

// isJSON reports whether a Content-Type is application/json, with or
// without parameters (no allocation, unlike mime.ParseMediaType).
func isJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

// ProviderOutcome classifies one provider call for the status routes. The
// provider failed on a network error or timeout (callErr), a 5xx, a
// refusal of the platform credential (401, 403: an operator must act) or a
// 200 the gateway could not use (filterFailed). Any other answer, the
// not-found 404 or a provider refusing the caller's data (400, 422…),
// shows a provider that is up: a caller cannot turn a provider "down" for
// everyone by sending data the provider rejects.
func ProviderOutcome(status int, callErr error, filterFailed bool) pings.Outcome {
	switch {
	case callErr != nil, filterFailed, status >= 500, status == http.StatusUnauthorized, status == http.StatusForbidden:
		return pings.Failed
	default:
		return pings.OK
	}
}
