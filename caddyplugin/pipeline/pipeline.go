// Package pipeline is Passerelle's decision pipeline for the catalogue
// routes, free of Caddy: for one request it finds the endpoint, applies the
// quotas, checks the caller's credential (a FranceConnect token through the
// token cache and checktoken, or a habilitation's API token), the
// habilitation, the query and the effective scopes, rebuilds the request
// for the provider, filters the provider's answer, and writes the audit
// record and the metrics.
//
// Every handler that serves catalogue data calls the same pipeline in
// process (the passerelle Caddy handler through Serve), so that no decision
// is ever taken twice in two ways. Utility routes that are not catalogue
// routes use its pieces: Start, LimitClient, CheckToken, WriteOK, Refuse
// and Record.
package pipeline

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	mathrand "math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/apierror"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/framing"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/pings"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/ratelimit"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/retry"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/shed"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/tokencache"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/upstreamauth"
	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// DefaultMaxResponseBytes bounds a provider answer when a handler sets no
// bound of its own (1 MiB).
const DefaultMaxResponseBytes = 1 << 20

// DefaultProviderTimeout bounds a whole provider call when the
// configuration sets no bound of its own (SECURITY.md E08).
const DefaultProviderTimeout = 15 * time.Second

// Config is what a pipeline depends on: the state shared by every handler
// of one configuration, and the hooks into the server it runs in. Every
// field is required unless its comment says otherwise.
type Config struct {
	// Catalogue is the endpoint catalogue in force.
	Catalogue *catalogue.Catalogue
	// Registry returns the habilitation registry in force; it changes when
	// the habilitations file is reloaded.
	Registry func() *habilitation.Registry
	// Cache holds the verified facts of FranceConnect tokens.
	Cache *tokencache.Cache
	// Verifier asks FranceConnect checktoken on a cache miss.
	Verifier *fcverify.Verifier
	// Limiter enforces the quotas.
	Limiter *ratelimit.Limiter
	// ClientIPKey is the HMAC key of client addresses and citizen
	// pseudonyms in limiter keys shared through Redis.
	ClientIPKey []byte
	// ClientIPv6Prefix is the length of the IPv6 prefix that shares one
	// client quota.
	ClientIPv6Prefix int
	// HabilitationQuota is the quota of a habilitation that sets no
	// rate_limit of its own.
	HabilitationQuota ratelimit.Quota
	// ClientQuota is the quota of one client address (network).
	ClientQuota ratelimit.Quota
	// FailedAuthQuota is the quota of failed authentications of one client
	// network (SECURITY.md F04, failedauth.go): each checktoken call takes
	// one, given back only when FranceConnect accepts the token; none left, a
	// token the cache does not hold is refused 429 before FranceConnect is
	// asked. Optional: zero, no such quota.
	FailedAuthQuota ratelimit.Quota
	// CitizenQuota is the quota of one citizen within one habilitation
	// (SECURITY.md F05): the FranceConnect token's citizen, or the person
	// an identite or identifiant call looks up. Optional: zero, no such
	// quota.
	CitizenQuota ratelimit.Quota
	// Credentials are the platform credentials, by catalogue provider
	// name; a provider without one is called without a credential.
	Credentials map[string]upstreamauth.Source
	// Pseudonymizer computes the audit trail's citizen keys.
	Pseudonymizer *Pseudonymizer
	// Pings records the outcome of each provider call for the status routes.
	Pings *pings.Tracker
	// Guards cap the calls in flight to each provider and break its
	// circuit while it fails, by catalogue provider name. Optional: a
	// provider without one is never refused.
	Guards map[string]*shed.Guard
	// Retries are the retry budgets of the providers, by catalogue
	// provider name (SECURITY.md E09). Optional: a provider without one
	// is never retried.
	Retries map[string]*retry.Budget
	// Unsent reports that a Provider's error means the request was never
	// sent (its connection could not be made): only such a call is
	// retried. Optional: without it no call is retried.
	Unsent func(err error) bool
	// Logger receives the server log lines (refusals at debug level,
	// FranceConnect failures).
	Logger *zap.Logger
	// Audit receives one audit record per request that matched an endpoint.
	Audit *zap.Logger
	// AuditRefusing reports that the audit trail cannot take records (its
	// buffered writer is full: logbuffer.Refusing): no provider is called,
	// the request is answered 503 audit_unavailable (SECURITY.md G09, I11).
	// Optional: without it the audit trail is never refusing.
	AuditRefusing func() bool
	// MemoryPressure reports that the process nears its memory limit: new
	// requests are refused at once, 503 (SECURITY.md F09, I16). Optional.
	MemoryPressure func() bool
	// InFlight caps the requests this instance takes on at once, all
	// routes and handlers together (SECURITY.md F07, "overall"): past it,
	// a routed request is refused at once, 503, before any quota, token
	// check or provider call. Optional: nil admits every request.
	InFlight *shed.Guard
	// Now returns the current time (time.Now when nil).
	Now func() time.Time
	// ClientIP returns the client address of a request as the server
	// established it (trusted proxies honoured), or "" when it has none: the
	// connection's remote address is then used. Optional.
	ClientIP func(r *http.Request) string
	// ProviderTimeout bounds each whole provider call: its credential,
	// the call, its answer's body, a retry and a credential refresh
	// (SECURITY.md E08). Zero: DefaultProviderTimeout.
	ProviderTimeout time.Duration
	// ErrorStatus returns the HTTP status a Provider's error stands for
	// (504 when the provider timed out), or 0 when it carries none.
	// Optional: without it no provider error is a timeout.
	ErrorStatus func(err error) int
}

// Pipeline runs the decisions of one handler: the shared Config, the
// endpoints the handler serves, its bound on provider answers and its
// compiled response filters.
type Pipeline struct {
	Config

	allowed          map[*catalogue.Endpoint]bool // nil: every endpoint
	maxResponseBytes int
	filters          *sync.Map // filterKey → *respfilter.Paths
}

// New returns the pipeline of one handler. allowed lists the endpoints it
// serves (nil: every endpoint of the catalogue; the map is kept, not
// copied); maxResponseBytes bounds a provider answer
// (DefaultMaxResponseBytes when 0 or less).
func New(c Config, allowed map[*catalogue.Endpoint]bool, maxResponseBytes int) *Pipeline {
	if c.Now == nil {
		c.Now = time.Now
	}
	if maxResponseBytes <= 0 {
		maxResponseBytes = DefaultMaxResponseBytes
	}
	if c.ProviderTimeout <= 0 {
		c.ProviderTimeout = DefaultProviderTimeout
	}
	// The shed counters of the guarded providers and the quota counters
	// exist from the start, at 0, so that an alert on their increase sees
	// the first refusal.
	for name := range c.Guards {
		shedCounters.get(labels2{name, "in_flight"})
		shedCounters.get(labels2{name, "circuit_open"})
	}
	for name := range c.Retries {
		retryCounters.get(labels2{name, retryRetried})
		retryCounters.get(labels2{name, retryBudgetExhausted})
		retryCounters.get(labels2{name, retryDeadline})
	}
	shedCounters.get(labels2{"franceconnect", "in_flight"})
	for _, quota := range []string{quotaClientIP, quotaHabilitation, quotaCitizen, quotaFailedAuth} {
		metricRateLimited.WithLabelValues(quota)
	}
	return &Pipeline{Config: c, allowed: allowed, maxResponseBytes: maxResponseBytes, filters: new(sync.Map)}
}

// Provider answers the request the pipeline rebuilt for a provider. Caddy's
// next handler (reverse_proxy) is one as it is: caddyhttp.Handler has this
// method set. The answer is buffered; nothing reaches the caller before it
// is filtered.
type Provider interface {
	ServeHTTP(w http.ResponseWriter, r *http.Request) error
}

// Call is the state of one request through the pipeline: what it decided,
// for the error answer, the later steps, the audit record and the metrics.
type Call struct {
	rec    auditRecord
	ep     *catalogue.Endpoint
	facts  *fcverify.Facts
	hab    *habilitation.Habilitation
	mask   uint64
	source string
	query  []queryParam
	params [maxQueryParams]queryParam
	tracer trace.Tracer // nil when the request is not traced
	status int          // provider HTTP status; 0 when not called
	rate   ratelimit.Decision
	client string // the client network's limiter key (LimitClient)
	// person is the audit pseudonym of the citizen an identite or
	// identifiant call looks up, and personBasis what it was computed from
	// (civil_status, identifier); "" on FranceConnect routes.
	person, personBasis string
	// answered: the answer was begun (Refuse or WriteOK); recorded: Record
	// was called. recoverPanic reads them. called: the request was handed
	// to the provider.
	answered, recorded, called bool
	// admitted is the request's place under Config.InFlight, given back
	// when Serve returns.
	admitted shed.Ticket

	// Storage for the small values a request hands to headers and to the
	// audit logger. A Call lives on the heap (the audit record refers to
	// it), so pointing into it allocates nothing more.
	requestIDValue [1]string // X-Request-Id of the answer
	upRequestID    [1]string // X-Request-Id sent to the provider
	rateValues     [3]string // RateLimit-Limit, -Remaining, -Reset
	// refusedBy is the quota that refused the request, "" when none did:
	// its name and window, for the RateLimit and RateLimit-Policy fields.
	refusedBy  string
	refusedPer time.Duration
	upURL      url.URL      // the provider request's URL
	audit      auditFields  // the record, as the audit logger reads it
	auditField [1]zap.Field // zap.Inline(&audit)
	scopes     effectiveScopes
}

// Serve answers a request on a catalogue route (DOMAIN.md §2):
//
//  1. exactly one bearer token, in Authorization only (401 50004 / 50001);
//  2. the token's facts from the cache or FranceConnect checktoken
//     (401 50002 inactive or unknown, 503 when FranceConnect fails);
//  3. identity scopes and minimum acr (401 50003);
//  4. the habilitation paired with token_introspection.aud, valid today
//     (403 00100), the recipient SIRET (422 00203 / 00210, 403 when it is
//     not the habilitation's) and the other query parameters (422 00366);
//  5. effective scopes = token ∩ habilitation ∩ endpoint (403 00100 if empty);
//  6. the request is rebuilt: provider path and query from the catalogue and
//     the identity pivot, every caller header dropped, the platform
//     credential set;
//  7. provider answers it, unless the audit trail refuses records (503
//     audit_unavailable); its answer is buffered, and only the fields
//     released by the effective scopes are returned (404 → provider
//     not-found code, timeout → 504, anything else → 502).
//
// Near the process's memory limit (Config.MemoryPressure) a request is
// refused once routed, before step 1 (503). The client address quota is
// taken before step 1, the habilitation's
// quota in step 4. On an identite or identifiant route, steps 2 and 3 are
// replaced by the habilitation's API token (401 00101 otherwise; a
// FranceConnect token is never sent anywhere), effective scopes are
// habilitation ∩ endpoint, and the provider query is the caller's
// validated, normalised parameters (the route's civility checks included).
// A legacy v2 path served in both modalities is the identite one when the
// request carries X-Api-Key, whose value is then the API token. v2 routes
// answer bare bodies and errors in the v2 shape, except FranceConnect token
// errors.
//
// Every answer carries X-Request-Id, Cache-Control: no-store and
// X-Content-Type-Options: nosniff. provider is never called for a refused
// request. Every request is counted; one that matched an endpoint is
// audited, a panic included (recoverPanic).
func (p *Pipeline) Serve(w http.ResponseWriter, r *http.Request, provider Provider) {
	var c Call
	defer p.recoverPanic(w, &c)
	defer c.leave() // a panic too gives the place back
	p.start(w, r, &c)
	aerr := p.authorize(r, &c)
	c.SetRateLimitHeaders(w.Header())
	if aerr == nil {
		aerr = p.forward(w, r, provider, &c)
	}
	if aerr != nil {
		p.Refuse(w, &c, aerr)
	}
	c.recorded = true
	p.Record(&c, aerr)
}

// leave gives back the call's place under Config.InFlight, if it took one.
func (c *Call) leave() {
	c.admitted.Done(shed.Success)
	c.admitted = shed.Ticket{}
}

// recoverPanic ends a call whose pipeline panicked (SECURITY.md I15): a
// server log line with the panic's type, the request id, the endpoint and
// the call stack as function:file:line (never the panic's value nor the
// functions' arguments, which may hold request data), the audit record
// with internal_error unless Record already ran, then a 500 when no answer
// was begun, or the connection cut (http.ErrAbortHandler) when one was:
// a half-written answer must not pass for a complete one.
// http.ErrAbortHandler itself goes on: it asks the server to cut the
// answer.
func (p *Pipeline) recoverPanic(w http.ResponseWriter, c *Call) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel itself is the panic value
		panic(v)
	}
	endpoint := ""
	if c.ep != nil {
		endpoint = c.ep.ID
	}
	p.Logger.Error("pipeline panic", zap.String("type", fmt.Sprintf("%T", v)), zap.String("request_id", c.rec.requestID),
		zap.String("endpoint", endpoint), zap.String("stack", callStack()))
	// A second panic (the audit sink, the error writer) cuts the answer,
	// its value unlogged too.
	defer func() {
		if recover() != nil {
			panic(http.ErrAbortHandler)
		}
	}()
	aerr := apierror.Internal()
	if !c.recorded {
		c.recorded = true
		p.Record(c, aerr)
	}
	if c.answered {
		panic(http.ErrAbortHandler)
	}
	w.Header().Set("Connection", "close")
	p.Refuse(w, c, aerr)
}

// callStack lists the calls of the panicking goroutine, one
// function file:line a line, without their arguments.
func callStack() string {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	var b strings.Builder
	for {
		f, more := frames.Next()
		fmt.Fprintf(&b, "%s %s:%d\n", f.Function, f.File, f.Line)
		if !more {
			return b.String()
		}
	}
}

// Start begins a call on a route that is not a catalogue route: it stamps
// the start time and a request id, sets X-Request-Id and drops Server from
// w's headers, and joins the request's trace. End it with Record, after
// SetRateLimitHeaders and, on an error, Refuse.
func (p *Pipeline) Start(w http.ResponseWriter, r *http.Request) *Call {
	c := new(Call)
	p.start(w, r, c)
	return c
}

func (p *Pipeline) start(w http.ResponseWriter, r *http.Request, c *Call) {
	c.rec = auditRecord{start: p.Now(), method: r.Method, requestID: newRequestID()}
	framing.CloseIfChunked(w, r)
	hdr := w.Header()
	hdr.Del("Server")
	c.requestIDValue[0] = c.rec.requestID
	hdr["X-Request-Id"] = c.requestIDValue[:]
	c.tracer = tracerFor(r.Context())
	if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() {
		c.rec.traceID = sc.TraceID().String()
	}
	if c.tracer != nil {
		linkCallerTrace(r)
	}
}

// SetRateLimitHeaders writes API Particulier's RateLimit headers of the
// last quota the call took, if it took one.
func (c *Call) SetRateLimitHeaders(h http.Header) {
	if c.rate.Limit > 0 {
		setRateLimitHeaders(h, c.rate, c.rec.start, &c.rateValues)
	}
	if c.refusedBy != "" {
		setRateLimitFields(h, c.refusedBy, c.rate.Limit, c.refusedPer, c.rate.RetryAfter)
	}
}

// Record counts the request and writes its audit record. Requests that
// matched no endpoint are counted but not audited: no personal data was at
// stake; nor are, while the audit trail refuses records, refusals that
// reached no provider.
func (p *Pipeline) Record(c *Call, aerr *apierror.Error) {
	rec := &c.rec
	rec.decision, rec.providerStatus = "allow", c.status
	if aerr != nil {
		rec.code, rec.reason, rec.decision = aerr.Code, aerr.Reason, "deny"
		if aerr.Status >= 500 {
			rec.decision = "error"
		}
	}
	if c.ep == nil {
		requestCounters.get(labels3{"unknown", rec.decision, rec.code}).Inc()
		return
	}
	rec.endpoint, rec.provider = c.ep.ID, c.ep.ProviderName
	requestCounters.get(labels3{rec.endpoint, rec.decision, rec.code}).Inc()
	if aerr != nil && !c.called && p.auditRefuses() {
		// The audit trail cannot take records: a refusal that sent
		// nothing to a provider is counted only, so that its record does
		// not take the place of one of a request that got data (G09, I11).
		return
	}
	p.writeAudit(c)
}

// auditRefuses reports Config.AuditRefusing (false without it).
func (p *Pipeline) auditRefuses() bool { return p.AuditRefusing != nil && p.AuditRefusing() }

// Refuse writes an API Particulier error answer: in the v2 shape on a
// legacy route, except for a rejected FranceConnect token.
func (p *Pipeline) Refuse(w http.ResponseWriter, c *Call, e *apierror.Error) {
	if ce := p.Logger.Check(zapcore.DebugLevel, "request refused"); ce != nil {
		endpoint := ""
		if c.ep != nil {
			endpoint = c.ep.ID
		}
		ce.Write(zap.String("endpoint", endpoint), zap.String("code", e.Code), zap.String("reason", e.Reason))
	}
	c.answered = true
	if c.ep != nil && c.ep.API == catalogue.APIv2 && !apierror.IsFranceConnectToken(e) {
		// Legacy routes answer {error, reason, message}, except for a
		// rejected FranceConnect token (50001–50004), as API Particulier v2.
		apierror.WriteV2(w, e)
		return
	}
	apierror.Write(w, e)
}

// newRequestID returns a random UUID (version 4) for X-Request-Id, from
// math/rand/v2's generator: the runtime's ChaCha8, one per thread, seeded
// from the system's randomness; no lock, no system call.
func newRequestID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], mathrand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], mathrand.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}

// Response header values, shared (never modified) as Caddy does for Server.
var (
	jsonContentType = []string{"application/json; charset=utf-8"}
	noStore         = []string{"no-store"}
	noSniff         = []string{"nosniff"}
	acceptJSON      = []string{"application/json"}
	identityOnly    = []string{"identity"}
)

// Interface guards.
var _ http.Flusher = (*capture)(nil)
