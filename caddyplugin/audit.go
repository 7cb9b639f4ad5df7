package caddyplugin

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The audit trail: one JSON record per request that matched a catalogue
// endpoint, allowed or not, on its own logger, `passerelle.audit`, so that
// operators can ship it apart from the server logs:
//
//	log audit {
//	    include passerelle.audit
//	    output file /var/log/passerelle/audit.log
//	}
//
// Fields (SECURITY.md G01):
//
//	time             UTC, RFC 3339 with milliseconds
//	request_id       the X-Request-Id of the answer
//	trace_id         the W3C trace id when tracing is on
//	instance         host name of the gateway
//	endpoint         catalogue endpoint id (never the raw URL)
//	method           HTTP method
//	client_id        the calling service's FranceConnect client id (token_introspection.aud)
//	habilitation_id  DataPass id of the habilitation used
//	scopes           effective scopes
//	acr              the token's acr
//	decision         allow | deny | error
//	code             API Particulier error code ("" when allowed)
//	reason           closed-list reason (SECURITY.md G04)
//	provider         provider name; provider_status its HTTP status (0: not called)
//	latency_ms       time spent in Passerelle and the provider
//	citizen_key      HMAC-SHA256(pseudonym key, iss ‖ sub), with pseudonym_key_version
//
// Never a token, a name, a birth date, a query string or response data
// (G03). Keep the records 6 to 12 months (CNIL, délibération 2021-122).
const auditLoggerName = "passerelle.audit"

// pseudonymizer computes citizen keys (SECURITY.md G02). Its key is
// separate from every cache secret.
type pseudonymizer struct {
	key     []byte
	version string
	issuer  string
}

// citizenKey returns hex(HMAC-SHA256(key, iss ‖ 0 ‖ sub)).
func (p *pseudonymizer) citizenKey(sub string) string {
	if sub == "" {
		return ""
	}
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(p.issuer))
	m.Write([]byte{0})
	m.Write([]byte(sub))
	return hex.EncodeToString(m.Sum(nil))
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

// writeAudit writes one record. rq holds what the request established.
func (h *Handler) writeAudit(rec *auditRecord, rq *request) {
	c := h.audit.Check(zapcore.InfoLevel, "access decision")
	if c == nil {
		return
	}
	fields := make([]zap.Field, 0, 18)
	fields = append(fields,
		zap.String("time", rec.start.UTC().Format("2006-01-02T15:04:05.000Z07:00")),
		zap.String("request_id", rec.requestID),
		zap.String("trace_id", rec.traceID),
		zap.String("instance", hostname),
		zap.String("endpoint", rec.endpoint),
		zap.String("method", rec.method),
		zap.String("decision", rec.decision),
		zap.String("code", rec.code),
		zap.String("reason", rec.reason),
		zap.String("provider", rec.provider),
		zap.Int("provider_status", rec.providerStatus),
		zap.Int64("latency_ms", time.Since(rec.start).Milliseconds()),
	)
	if f := rq.facts; f != nil {
		key := f.CitizenKey
		if f.CitizenKeyVersion != h.app.pseudo.version { // cached before a key rotation
			key = h.app.pseudo.citizenKey(f.Sub)
		}
		fields = append(fields, zap.String("client_id", f.ClientID), zap.String("acr", f.ACR),
			zap.String("citizen_key", key), zap.String("pseudonym_key_version", h.app.pseudo.version))
	}
	if rq.hab != nil {
		fields = append(fields, zap.String("habilitation_id", rq.hab.ID))
	}
	if rq.mask != 0 && rq.ep != nil {
		scopes := make([]string, 0, 8)
		for i := range rq.ep.Scopes {
			if rq.mask&(1<<i) != 0 {
				scopes = append(scopes, rq.ep.Scopes[i].Name)
			}
		}
		fields = append(fields, zap.Strings("scopes", scopes))
	}
	c.Write(fields...)
}
