package pipeline

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/config/catalogue"
)

// The audit trail: one JSON record per request that matched a catalogue
// endpoint, allowed or not, on its own logger (Config.Audit; in Caddy
// `passerelle.audit`, the passerelle app's logger named "audit"), so that
// operators can ship it apart from the server logs:
//
//	log audit {
//	    include passerelle.audit
//	    output file /var/log/passerelle/audit.log
//	}
//
// On a busy gateway, `output passerelle_buffered { output file … }` writes
// the records in batches (package logbuffer: at most flush_interval of them
// lost on a crash, none on a graceful stop or reload).
//
// Fields (SECURITY.md G01):
//
//	time             UTC, RFC 3339 with milliseconds
//	request_id       the X-Request-Id of the answer
//	trace_id         the W3C trace id when tracing is on
//	instance         host name of the gateway
//	endpoint         catalogue endpoint id (never the raw URL)
//	method           HTTP method (registered ones; any other is _OTHER)
//	client_id        the calling service's FranceConnect client id (token_introspection.aud)
//	habilitation_id  DataPass id of the habilitation used
//	scopes           effective scopes
//	acr              the token's acr
//	decision         allow | deny | error
//	code             API Particulier error code ("" when allowed)
//	reason           closed-list reason (SECURITY.md G04)
//	provider         provider name; provider_status its HTTP status (0: not called)
//	latency_ms       time spent in Passerelle and the provider
//	citizen_key      the citizen's pseudonym, with pseudonym_key_version and
//	                 citizen_key_basis: "sub" on FranceConnect routes,
//	                 HMAC-SHA256(pseudonym key, iss ‖ sub); "civil_status" or
//	                 "identifier" on identite and identifiant routes, the HMAC of
//	                 the normalised birth name, given names and birth date (empty
//	                 when the call gives none), or of
//	                 the provider identifier (catalogue.Endpoint.Person)
//
// Never a token, a name, a birth date, a query string or response data
// (G03). Keep the records 6 to 12 months (CNIL, délibération 2021-122).

// Pseudonymizer computes citizen keys (SECURITY.md G02). Its key is
// separate from every cache secret.
type Pseudonymizer struct {
	key     []byte
	version string
	issuer  string
}

// NewPseudonymizer returns the pseudonymizer of a key, tagged version in
// the records it keys, for the FranceConnect issuer iss.
func NewPseudonymizer(key []byte, version, iss string) *Pseudonymizer {
	return &Pseudonymizer{key: key, version: version, issuer: iss}
}

// Version is the key version the records carry (pseudonym_key_version).
func (p *Pseudonymizer) Version() string { return p.version }

// CitizenKey returns the pseudonym of a FranceConnect subject:
// hex(HMAC-SHA256(key, iss ‖ 0 ‖ sub)); "" for an empty sub.
func (p *Pseudonymizer) CitizenKey(sub string) string {
	if sub == "" {
		return ""
	}
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(p.issuer))
	m.Write([]byte{0})
	m.Write([]byte(sub))
	return hex.EncodeToString(m.Sum(nil))
}

// citizenKeyOf returns the pseudonym of a FranceConnect token's citizen
// under the current key: the one computed when the token was checked, or,
// for facts cached before a key rotation, computed again, so that the
// audit trail and the citizen's quota never split one citizen in two.
func (p *Pseudonymizer) citizenKeyOf(f *fcverify.Facts) string {
	if f.CitizenKeyVersion == p.version {
		return f.CitizenKey
	}
	return p.CitizenKey(f.Sub)
}

// personKey returns the pseudonym of the citizen a caller's validated,
// normalised parameters designate on an identite or identifiant route, and
// its basis: hex(HMAC-SHA256(key, basis ‖ 0 ‖ person)), where person is
// catalogue.Endpoint.Person's text. Both are "" when the parameters
// designate nobody.
func (p *Pseudonymizer) personKey(ep *catalogue.Endpoint, params []queryParam) (basis, key string) {
	basis, person, ok := ep.Person(paramValues(params))
	if !ok {
		return "", ""
	}
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(basis))
	m.Write([]byte{0})
	m.Write([]byte(person))
	return basis, hex.EncodeToString(m.Sum(nil))
}

// quotaKey returns the pseudonym one citizen's quota counts on an
// identite or identifiant route (catalogue.Endpoint.QuotaSubject, hashed
// apart from the audit pseudonyms), or "" when the call names nobody.
func (p *Pseudonymizer) quotaKey(ep *catalogue.Endpoint, params []queryParam) string {
	subject, ok := ep.QuotaSubject(paramValues(params))
	if !ok {
		return ""
	}
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte("quota\x00"))
	m.Write([]byte(subject))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// paramValues returns the values of a query parameter, in order.
func paramValues(params []queryParam) func(name string) []string {
	return func(name string) []string {
		var vals []string
		for _, qp := range params {
			if qp.name == name {
				vals = append(vals, qp.value)
			}
		}
		return vals
	}
}

// auditRecord is filled along one request.
type auditRecord struct {
	start          time.Time
	method         string
	requestID      string
	traceID        string
	endpoint       string
	provider       string
	providerStatus int
	decision       string
	code           string
	reason         string
}

var hostname = func() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}()

// writeAudit writes the record of a call, with what the call established.
func (p *Pipeline) writeAudit(c *Call) {
	ce := p.Audit.Check(zapcore.InfoLevel, "access decision")
	if ce == nil {
		return
	}
	c.audit = auditFields{c, p.Pseudonymizer, time.Since(c.rec.start)}
	c.auditField[0] = zap.Inline(&c.audit)
	ce.Write(c.auditField[:]...)
}

// auditFields writes the record's fields straight into the log encoder:
// no []zap.Field nor scope list is built for each request.
type auditFields struct {
	c       *Call
	pseudo  *Pseudonymizer
	latency time.Duration
}

// MarshalLogObject implements zapcore.ObjectMarshaler.
func (a auditFields) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	rec, c := &a.c.rec, a.c
	var ts [len(AuditTimeLayout)]byte
	// A string, not bytes: Caddy's filter encoder sees []byte as binary.
	enc.AddString("time", string(appendAuditTime(ts[:0], rec.start)))
	enc.AddString("request_id", rec.requestID)
	enc.AddString("trace_id", rec.traceID)
	enc.AddString("instance", hostname)
	enc.AddString("endpoint", rec.endpoint)
	enc.AddString("method", auditMethod(rec.method))
	enc.AddString("decision", rec.decision)
	enc.AddString("code", rec.code)
	enc.AddString("reason", rec.reason)
	enc.AddString("provider", rec.provider)
	enc.AddInt64("provider_status", int64(rec.providerStatus))
	enc.AddInt64("latency_ms", a.latency.Milliseconds())
	if f := c.facts; f != nil {
		enc.AddString("client_id", f.ClientID)
		enc.AddString("acr", f.ACR)
		enc.AddString("citizen_key", a.pseudo.citizenKeyOf(f))
		enc.AddString("citizen_key_basis", "sub")
		enc.AddString("pseudonym_key_version", a.pseudo.version)
	}
	if c.person != "" {
		enc.AddString("citizen_key", c.person)
		enc.AddString("citizen_key_basis", c.personBasis)
		enc.AddString("pseudonym_key_version", a.pseudo.version)
	}
	if c.hab != nil {
		enc.AddString("habilitation_id", c.hab.ID)
	}
	if c.mask != 0 && c.ep != nil {
		c.scopes = effectiveScopes{c.ep.Scopes, c.mask}
		return enc.AddArray("scopes", &c.scopes)
	}
	return nil
}

// auditMethod is the request method as the record shows it: one of HTTP's
// registered methods, or "_OTHER" as OpenTelemetry writes it. A method is
// any token the client chooses, of any length: it never reaches the trail
// as sent (SECURITY.md G05).
func auditMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// AuditTimeLayout is the audit records' time format: UTC, RFC 3339,
// milliseconds (every record of passerelle.audit uses it).
const AuditTimeLayout = "2006-01-02T15:04:05.000Z"

// appendAuditTime appends t in AuditTimeLayout; it is what
// t.UTC().AppendFormat(dst, AuditTimeLayout) gives for years 0 to 9999, in a
// fifth of the time (no layout to interpret on every record).
func appendAuditTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	ms := t.Nanosecond() / 1e6
	two := func(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }
	dst = append(dst, byte('0'+year/1000%10), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-')
	dst = append(two(dst, int(month)), '-')
	dst = append(two(dst, day), 'T')
	dst = append(two(dst, hour), ':')
	dst = append(two(dst, minute), ':')
	dst = append(two(dst, sec), '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
	return dst
}

// effectiveScopes lists the names of the scopes in mask.
type effectiveScopes struct {
	scopes []catalogue.Scope
	mask   uint64
}

// MarshalLogArray implements zapcore.ArrayMarshaler.
func (e effectiveScopes) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for i := range e.scopes {
		if e.mask&(1<<i) != 0 {
			enc.AppendString(e.scopes[i].Name)
		}
	}
	return nil
}
