package datapass

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"time"

	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// Results of a delivery (Outcome.Result), for the audit trail and the
// metrics.
const (
	ResultUnauthorized     = "unauthorized"      // 401: no valid signature
	ResultWrongEnvironment = "wrong_environment" // 403: X-App-Environment is not the expected one
	ResultMalformed        = "malformed"         // 400: signed, but not a payload Parse reads
	ResultFuture           = "future"            // 400: fired_at ahead of this clock by more than MaxClockAhead
	ResultTest             = "test"              // DataPass's ping
	ResultIgnored          = "ignored"           // another model type, or an organisation not served
	ResultDuplicate        = "duplicate"         // this exact body was applied already
	ResultStale            = "stale"             // older than the request's record: nothing done
	ResultUnchanged        = "unchanged"         // merged, nothing changed
	ResultApplied          = "applied"           // the bound habilitation changed
	ResultPending          = "pending"           // recorded for a request bound to no habilitation yet
	ResultError            = "error"             // 503: the store failed; DataPass will deliver again
)

// Processor handles the webhook deliveries of one gateway configuration.
type Processor struct {
	// Secrets are the webhook secrets accepted: the current one and, during
	// a rotation, the previous one.
	Secrets [][]byte
	// Environment, when set, is the only X-App-Environment accepted
	// (production). The header is not signed: the real separation is one
	// secret per DataPass environment; this catches a misconfiguration.
	Environment string
	Store       Store
	// Bindings returns the habilitations file's registry: its datapass_id
	// bindings and its organisations.
	Bindings func() *habilitation.Registry
	// SIRETs are organisations served beyond those of the file: their
	// requests are recorded as pending until a habilitation is bound.
	SIRETs []string
	// KnownScope reports the scopes the catalogue knows.
	KnownScope func(scope string) bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// MaxClockAhead bounds how far in the future a fired_at may be: a signed
// event dated later would make every real event after it stale. DataPass
// delivers it again, and it applies once its time has come.
const MaxClockAhead = 5 * time.Minute

// Outcome is what a delivery led to. Every field is free of personal data:
// the body itself is never kept, only its SHA-256.
type Outcome struct {
	// Status is the HTTP status to answer (204 for every delivery DataPass
	// should consider done).
	Status int
	Result string
	// The fields below are set once the signature is verified.
	BodySHA256       string
	Event            string
	RequestID        string
	SIRET            string
	AuthorizationIDs []string
	// Habilitation is the id of the habilitation bound to the request.
	Habilitation string
	// Record is the request's record in force after the delivery.
	Record *Record
	// Err is the store's error for ResultError.
	Err error
}

// Deliver handles one delivery: the signature header, the unsigned
// X-App-Environment header and the raw body (at most MaxBodySize bytes).
func (p *Processor) Deliver(ctx context.Context, signature, environment string, body []byte) Outcome {
	if !Verify(signature, body, p.Secrets...) {
		return Outcome{Status: http.StatusUnauthorized, Result: ResultUnauthorized}
	}
	sum := sha256.Sum256(body)
	out := Outcome{Status: http.StatusNoContent, BodySHA256: hex.EncodeToString(sum[:])}
	if p.Environment != "" && environment != p.Environment {
		out.Status, out.Result = http.StatusForbidden, ResultWrongEnvironment
		return out
	}
	ev, err := Parse(body)
	if err != nil {
		out.Status, out.Result = http.StatusBadRequest, ResultMalformed
		return out
	}
	if ev.Test {
		out.Result = ResultTest
		return out
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	if ev.FiredAt.After(now().Add(MaxClockAhead)) {
		out.Status, out.Result = http.StatusBadRequest, ResultFuture
		return out
	}
	out.Event, out.RequestID, out.SIRET = ev.Name, ev.RequestID, ev.SIRET
	for _, a := range ev.Authorizations {
		out.AuthorizationIDs = append(out.AuthorizationIDs, a.ID)
	}
	if ev.ModelType != ModelType {
		out.Result = ResultIgnored
		return out
	}
	if seen, err := p.Store.Seen(ctx, sum); err == nil && seen {
		out.Result = ResultDuplicate
		return out
	}
	registry := p.Bindings()
	hab, bound := registry.ByDataPassID(ev.RequestID)
	var next Record
	switch {
	case bound && hab.SIRET != ev.SIRET:
		// Transferred to another organisation: the habilitation's rights
		// were the former one's.
		next = Revocation(ev.RequestID, ev.Name, ev.SIRET, ev.FiredAt)
	case !bound && !p.serves(registry, ev.SIRET):
		if _, known := p.Store.Live().Record(ev.RequestID); !known {
			out.Result = ResultIgnored
			return out
		}
		// A pending request transferred to an organisation not served:
		// its record must not grant anything once bound.
		next = Revocation(ev.RequestID, ev.Name, ev.SIRET, ev.FiredAt)
	default:
		next = Derive(ev, p.KnownScope)
	}
	if bound {
		out.Habilitation = hab.ID
	}
	rec, changed, err := p.Store.Apply(ctx, next)
	if err != nil {
		out.Status, out.Result, out.Err = http.StatusServiceUnavailable, ResultError, err
		return out
	}
	out.Record = &rec
	_ = p.Store.MarkSeen(ctx, sum) // a failure only costs a no-op merge of a duplicate
	switch {
	case !changed && next.FiredAt < rec.FiredAt:
		out.Result = ResultStale
	case !changed:
		out.Result = ResultUnchanged
	case !bound:
		out.Result = ResultPending
	default:
		out.Result = ResultApplied
	}
	return out
}

// serves reports whether an organisation is one Passerelle serves: a
// habilitation of the file has its SIRET, or SIRETs lists it (the
// organisations a resync reads).
func (p *Processor) serves(r *habilitation.Registry, siret string) bool {
	return slices.Contains(p.SIRETs, siret) ||
		slices.ContainsFunc(r.All(), func(h *habilitation.Habilitation) bool { return h.SIRET == siret })
}
