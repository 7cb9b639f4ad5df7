package datapass

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// Defaults of a Resync.
const (
	// DefaultResyncEvery is the interval of Run when none is given.
	DefaultResyncEvery = 6 * time.Hour
	// DefaultSkew is the clock difference allowed between DataPass (its
	// webhooks' fired_at) and Passerelle.
	DefaultSkew = 5 * time.Minute
	// RetryAfterFailure is Run's pause after a failed resync once one has
	// succeeded (the first ones are retried from FirstRetry); it
	// doubles at each new failure, up to the interval.
	RetryAfterFailure = time.Minute
	// FirstRetry is Run's first pause while no resync has succeeded yet
	// (a gateway starting before the API answers, or a Memory store
	// refusing its bound habilitations until then); it doubles.
	FirstRetry = 2 * time.Second
	// DeliveriesLookback is how far back failed deliveries are counted
	// before a first successful resync.
	DeliveriesLookback = 7 * 24 * time.Hour
)

// Resync reads DataPass's API and applies what it says through the same
// path as a webhook (Store.Apply: Merge decides), to repair what webhooks
// missed: a delivery lost, an instance down without Redis, a binding added
// to the file after its request's last event.
//
// For each organisation served (the SIRETs of the file's habilitations and
// SIRETs), Once reads the active and revoked authorizations, groups them by
// request, and derives each request's record with Derive (the webhook's
// rules: active, unrevoked, API Particulier, FranceConnect modality,
// scopes ∩ the catalogue), as event EventResync. A request bound in the
// file (datapass_id) whose organisation was read but that DataPass did not
// return gets an inactive record: its authorizations are gone or obsolete.
// A request returned under an organisation other than its habilitation's
// (transferred) is revoked, as by a transfer webhook. A request returned
// but bound to no habilitation gets a pending record. An organisation whose
// read fails changes nothing: absence is only read from a complete list.
//
// Timestamps. DataPass's clock (the webhooks' fired_at) and ours may
// differ, and a webhook may be fired while the API is read. A record that
// only narrows the access in force (the habilitation as the overlay gives
// it now; for an unbound request, its record) is applied with FiredAt = the
// time the read started: a webhook fired before the read is older, the read
// saw its effect, and a late delivery of it cannot undo the narrowing. A
// record that widens — or changes nothing, or both widens and narrows — is
// applied with FiredAt = the read's start − Skew: a webhook (a revoke)
// fired shortly before the read, even by a clock Skew ahead of ours, is
// newer, so neither its earlier delivery nor its later one is undone by
// this read's view; the resync after repairs a widening this leaves out.
// (A webhook fired after the read, by a clock behind ours, may be older
// than a narrowing record and be ignored: it can only have narrowed
// further, and the next resync applies it. Keep the clocks synchronised.)
type Resync struct {
	API   *API
	Store Store
	// Bindings returns the habilitations file's registry.
	Bindings func() *habilitation.Registry
	// SIRETs are organisations served beyond the file's.
	SIRETs []string
	// KnownScope reports the scopes the catalogue knows.
	KnownScope func(scope string) bool
	// WebhookID, when set, is the DataPass webhook whose failed deliveries
	// are counted (Report.FailedDeliveries); the resync itself repairs
	// their effect.
	WebhookID string
	// Skew defaults to DefaultSkew.
	Skew time.Duration
	// Now defaults to time.Now.
	Now func() time.Time
	// Log receives failures (PII-free: no body is ever logged); nil: none.
	Log func(msg string, err error)
	// Done, when set, receives the report of each successful resync (for
	// the audit trail and the metrics).
	Done func(Report)

	mu   sync.Mutex   // one Once at a time
	last atomic.Int64 // the last success's read start, Unix ns; 0: none
}

// Report tells what a resync did.
type Report struct {
	// SIRETs is the number of organisations read successfully.
	SIRETs int
	// Requests is the number of requests whose record was applied.
	Requests int
	// Applied is the number of records that changed; Narrowed and Widened
	// count those that narrowed or widened the access in force (a change
	// may do both, or neither: a record refreshed).
	Applied, Narrowed, Widened int
	// FailedDeliveries counts the webhook's failed delivery attempts since
	// the last successful resync (DeliveriesLookback before the first): 0
	// without a WebhookID, -1 when the attempts could not be read (logged).
	FailedDeliveries int
}

// LastSuccess returns when the last fully successful resync started its
// read (zero: none yet), for the age of the sync.
func (r *Resync) LastSuccess() time.Time {
	if n := r.last.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// ErrResyncConfig: a Resync lacks its API, Store, Bindings or KnownScope.
var ErrResyncConfig = errors.New("datapass: resync: API, Store, Bindings and KnownScope are required")

// resyncRequest is what the API returned for one request.
type resyncRequest struct {
	siret    string
	conflict bool // returned under two organisations
	auths    []Authorization
}

// Once reads the API and applies every request's record. It returns an
// error when an organisation could not be read or a record not applied;
// what was read is applied all the same, and LastSuccess moves only when
// nothing failed.
func (r *Resync) Once(ctx context.Context) (Report, error) {
	if r.API == nil || r.Store == nil || r.Bindings == nil || r.KnownScope == nil {
		return Report{}, ErrResyncConfig
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	start := r.now()
	skew := r.Skew
	if skew <= 0 {
		skew = DefaultSkew
	}
	reg := r.Bindings()
	sirets := servedSIRETs(reg, r.SIRETs)
	var rep Report
	var errs []error

	requests := map[string]*resyncRequest{}
	read := map[string]bool{}
	for _, siret := range sirets {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		items, err := r.API.Habilitations(ctx, siret)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		read[siret] = true
		for _, h := range items {
			s := h.SIRET
			if s == "" {
				s = siret // the organisation asked for: DataPass filtered by it
			}
			if s != siret {
				continue // another organisation's: read under its own SIRET if served
			}
			req := requests[h.RequestID]
			if req == nil {
				req = &resyncRequest{siret: s}
				requests[h.RequestID] = req
			}
			req.conflict = req.conflict || req.siret != s
			req.auths = append(req.auths, h.Authorization())
		}
	}
	rep.SIRETs = len(read)

	recs := r.records(reg, requests, read, start)
	for _, rec := range recs {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		before := r.access(reg, rec.RequestID, nil)
		predicted := r.access(reg, rec.RequestID, &habilitation.Live{Active: rec.Active, Scopes: rec.Scopes, Grant: true})
		at := start.Add(-skew)
		if narrows(before, predicted) && !widens(before, predicted) {
			at = start
		}
		rec.FiredAt = at.UnixNano()
		_, changed, err := r.Store.Apply(ctx, rec)
		if err != nil {
			errs = append(errs, fmt.Errorf("datapass: resync: request %s: %w", rec.RequestID, err))
			continue
		}
		rep.Requests++
		if changed {
			rep.Applied++
			after := r.access(reg, rec.RequestID, nil)
			if narrows(before, after) {
				rep.Narrowed++
			}
			if widens(before, after) {
				rep.Widened++
			}
		}
	}

	if r.WebhookID != "" && ctx.Err() == nil {
		since := start.Add(-DeliveriesLookback)
		if last := r.LastSuccess(); !last.IsZero() {
			since = last.Add(-skew)
		}
		n, err := r.API.FailedDeliveries(ctx, r.WebhookID, since)
		if err != nil {
			n = -1
			r.log("datapass: resync: reading the webhook's delivery attempts failed", err)
		}
		rep.FailedDeliveries = n
	}

	if len(errs) > 0 {
		return rep, fmt.Errorf("datapass: resync: %d of %d organisations read: %w", len(read), len(sirets), errors.Join(errs...))
	}
	r.last.Store(start.UnixNano())
	// Every bound request of the organisations read has a record now.
	r.Store.Live().setUnresynced(false)
	if _, inMemory := r.Store.(*Memory); inMemory {
		// A Memory store waiting for its first resync. A Redis store is
		// ready only on its own terms: every record read, and the
		// subscription up (a revocation another instance applies must
		// reach this one within the second, SECURITY.md C13).
		r.Store.Live().setReady(true)
	}
	return rep, nil
}

// records builds the record of every request returned, and of every bound
// request that its organisation's complete list left out, in request order.
func (r *Resync) records(reg *habilitation.Registry, requests map[string]*resyncRequest, read map[string]bool, start time.Time) []Record {
	var recs []Record
	for _, id := range slices.Sorted(maps.Keys(requests)) {
		req := requests[id]
		hab, bound := reg.ByDataPassID(id)
		if req.conflict || bound && hab.SIRET != req.siret {
			// Transferred to another organisation: the habilitation's rights
			// were the former one's.
			recs = append(recs, Revocation(id, EventResync, req.siret, start))
			continue
		}
		recs = append(recs, Derive(Event{Name: EventResync, FiredAt: start, ModelType: ModelType, RequestID: id,
			SIRET: req.siret, Authorizations: req.auths}, r.KnownScope))
	}
	absent := map[string]string{}
	for _, h := range reg.All() {
		if h.DataPassID != "" && read[h.SIRET] && requests[h.DataPassID] == nil {
			absent[h.DataPassID] = h.SIRET
		}
	}
	for _, id := range slices.Sorted(maps.Keys(absent)) {
		recs = append(recs, Revocation(id, EventResync, absent[id], start))
	}
	return recs
}

// access is what a request grants: its bound habilitation as the overlay
// gives it, or, unbound, its record.
type access struct {
	active bool
	scopes []string
}

// access returns a request's access with the live states in force, or with
// l in place of the request's state when l is set.
func (r *Resync) access(reg *habilitation.Registry, id string, l *habilitation.Live) access {
	live := r.Store.Live()
	var state *habilitation.Live
	if l != nil {
		state = l
	} else if rec, ok := live.Record(id); ok {
		s := rec.Live()
		state = &s
	}
	if _, bound := reg.ByDataPassID(id); !bound {
		if state == nil || !state.Active {
			return access{}
		}
		return access{active: len(state.Scopes) > 0, scopes: state.Scopes}
	}
	states := map[string]habilitation.Live{}
	if state != nil {
		states[id] = *state
	}
	h, _ := reg.Overlay(states, live.readiness()).ByDataPassID(id)
	if h.Revoked || len(h.Scopes) == 0 {
		return access{}
	}
	return access{active: true, scopes: h.Scopes}
}

// widens reports whether after grants something before does not.
func widens(before, after access) bool {
	return after.active && (!before.active || slices.ContainsFunc(after.scopes, func(s string) bool { return !slices.Contains(before.scopes, s) }))
}

// narrows reports whether before grants something after does not.
func narrows(before, after access) bool { return widens(after, before) }

// servedSIRETs returns the organisations served: the file's and extra,
// sorted, without repeats.
func servedSIRETs(reg *habilitation.Registry, extra []string) []string {
	out := slices.Clone(extra)
	for _, h := range reg.All() {
		out = append(out, h.SIRET)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Run resyncs at once, then every `every` (DefaultResyncEvery when not
// positive), until ctx is done. A failed resync is logged and tried again
// after RetryAfterFailure (FirstRetry before any success), then twice as
// long at each new failure, never longer than every: a DataPass outage
// costs a request a minute at most at first, and the sync's age
// (LastSuccess) keeps growing for the alert.
func (r *Resync) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = DefaultResyncEvery
	}
	retry := min(FirstRetry, every)
	if !r.LastSuccess().IsZero() {
		retry = min(RetryAfterFailure, every)
	}
	for ctx.Err() == nil {
		wait := every
		if rep, err := r.Once(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log("datapass: resync failed, retrying later", err)
			wait, retry = retry, min(2*retry, every)
		} else {
			retry = min(RetryAfterFailure, every)
			if r.Done != nil {
				r.Done(rep)
			}
		}
		sleep(ctx, wait)
	}
}

// SetLastSuccess seeds LastSuccess, e.g. with the previous configuration's
// on a reload, so that the sync's age keeps counting from the last real
// success.
func (r *Resync) SetLastSuccess(t time.Time) {
	if !t.IsZero() {
		r.last.Store(t.UnixNano())
	}
}

func (r *Resync) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Resync) log(msg string, err error) {
	if r.Log != nil {
		r.Log(msg, err)
	}
}
