package datapass

import (
	"slices"
	"time"

	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// What DataPass calls the pieces an authorization must have to grant
// Passerelle's routes.
const (
	// DefinitionAPIParticulier is the definition_id of API Particulier's
	// authorizations.
	DefinitionAPIParticulier = "api_particulier"
	// ModalityFranceConnect is the FranceConnect calling modality.
	ModalityFranceConnect = "france_connect"
	// StateActive is the state of an authorization in force.
	StateActive = "active"
)

// Record is the last word of DataPass on one request, as stored (in Redis
// with the Redis store) and overlaid on the habilitation bound to it. It
// holds no personal data.
type Record struct {
	RequestID string `json:"request_id"`
	// FiredAt orders the events of one request (Unix nanoseconds).
	FiredAt int64 `json:"fired_at"`
	// Event is the last event merged (approve, revoke…, or "resync").
	Event string `json:"event"`
	// SIRET is the organisation the request belongs to, as of Event.
	SIRET  string   `json:"siret"`
	Active bool     `json:"active"`
	Scopes []string `json:"scopes"`
	// Grant: Scopes were granted (approve, resync) and replace the file's;
	// otherwise they cap the file's (see habilitation.Live).
	Grant bool `json:"grant"`
	// Rev counts the record's changes; of two copies at the same FiredAt,
	// the higher is the later (reloads never bring an older copy back), and
	// two different copies with the same Rev are merged (see newest).
	Rev uint64 `json:"rev"`
}

// Live returns the record as the habilitation overlay reads it.
func (r Record) Live() habilitation.Live {
	return habilitation.Live{Active: r.Active, Scopes: r.Scopes, Grant: r.Grant, SIRET: r.SIRET}
}

// Widens reports whether an event may grant more than the record in force:
// approve, and a resync (DataPass's API read with its credentials). Every
// other event (update, reopen, submit, transfer…, or one DataPass adds
// later) can only narrow.
func Widens(event string) bool { return event == "approve" || event == EventResync }

// EventResync names the records a resync writes.
const EventResync = "resync"

// Derive returns what an event's authorizations grant to its request: active
// when one authorization is active, not revoked, of API Particulier, with
// the FranceConnect modality; its scopes are those of every such
// authorization that known accepts (the catalogue's). No scope left means
// inactive. The record's Grant is set by Merge.
func Derive(ev Event, known func(scope string) bool) Record {
	rec := Record{RequestID: ev.RequestID, FiredAt: ev.FiredAt.UnixNano(), Event: ev.Name, SIRET: ev.SIRET}
	for _, a := range ev.Authorizations {
		if a.State != StateActive || a.Revoked || a.DefinitionID != DefinitionAPIParticulier ||
			!slices.Contains(a.Modalities, ModalityFranceConnect) {
			continue
		}
		for _, s := range a.Scopes {
			if known(s) && !slices.Contains(rec.Scopes, s) {
				rec.Scopes = append(rec.Scopes, s)
			}
		}
	}
	slices.Sort(rec.Scopes)
	rec.Active = len(rec.Scopes) > 0
	return rec
}

// Revocation returns the record that revokes a request at t: what a
// transfer to an organisation Passerelle does not serve leads to.
func Revocation(requestID, event, siret string, t time.Time) Record {
	return Record{RequestID: requestID, FiredAt: t.UnixNano(), Event: event, SIRET: siret}
}

// Merge returns the record in force once next (derived from an event) is
// merged into cur (nil: none yet), and whether it differs from cur:
//   - next older than cur: cur stays (a late or replayed delivery);
//   - next newer and widening (Widens): next, as a grant;
//   - otherwise, the more restrictive of the two: active only if both are,
//     the scopes both hold, at the later time. With no record yet, next
//     caps the file's habilitation (it grants nothing the file does not).
func Merge(cur *Record, next Record) (Record, bool) {
	widen := Widens(next.Event)
	switch {
	case cur == nil:
		next.Grant = widen
		next.Rev = 1
		if next.Scopes == nil {
			next.Scopes = []string{}
		}
		return next, true
	case next.FiredAt < cur.FiredAt:
		return *cur, false
	case next.FiredAt > cur.FiredAt && widen:
		next.Grant = true
	default:
		next.Grant = cur.Grant
		next.Active = cur.Active && next.Active
		next.Scopes = slices.DeleteFunc(slices.Clone(next.Scopes), func(s string) bool { return !slices.Contains(cur.Scopes, s) })
		if len(next.Scopes) == 0 {
			next.Active = false
		}
	}
	if next.Scopes == nil {
		next.Scopes = []string{}
	}
	next.Rev = cur.Rev
	if cur.same(next) {
		return *cur, false
	}
	next.Rev = cur.Rev + 1
	return next, true
}

// same compares everything but Rev.
func (r Record) same(o Record) bool {
	return r.RequestID == o.RequestID && r.FiredAt == o.FiredAt && r.Event == o.Event && r.SIRET == o.SIRET &&
		r.Active == o.Active && r.Grant == o.Grant && slices.Equal(r.Scopes, o.Scopes)
}
