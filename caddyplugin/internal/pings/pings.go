// Package pings tracks the health of data providers for API Particulier's
// ping routes (DOMAIN.md §4 "Utility"): per provider
//
//	{"status": "ok"|"bad_gateway"|"unknown", "last_update": <time|null>, "last_ok_status": <time|null>}
//
// with HTTP 200 for ok and unknown, 502 for bad_gateway.
//
// The tracker is passive: it never calls a provider. The gateway records
// the outcome of the provider calls it makes anyway (Tracker.Record), so the
// status costs providers nothing, and it describes the calls this instance
// made: each gateway instance (and each Tracker) has its own view, and a
// provider no one has called lately is "unknown" rather than presumed up.
//
// What the caller records:
//   - OK when the provider answered: 2xx, or the documented not-found answer
//     (404) of the route, since a provider saying "no such person" is up;
//   - Failed when it did not: 5xx, timeout, network error, or an answer that
//     cannot be parsed.
//
// Status is "ok" when the most recent outcome is OK, "bad_gateway" when it
// is Failed, and "unknown" when nothing was recorded or the most recent
// outcome is older than staleAfter. last_update is the time of the most
// recent outcome, last_ok_status that of the most recent OK; both are kept
// (and reported) when the status turns unknown.
//
// Only provider names, outcomes and times are stored: nothing about the
// citizen, the caller or the request. Provider names come from the closed
// set given to New, so anything keyed by them (routes, metric labels) stays
// bounded; Record ignores any other name.
package pings

import (
	"bytes"
	"encoding/json"
	"github.com/passerelle-gw/passerelle/config/catalogue"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// Outcome is the result of one provider call, as seen by the gateway.
type Outcome uint8

const (
	// OK: the provider answered, 2xx or its documented not-found 404.
	OK Outcome = iota + 1
	// Failed: 5xx, timeout, network error or unparsable answer.
	Failed
)

// State is the "status" value of a provider.
type State string

// The three states of API Particulier's ping routes.
const (
	StateOK         State = "ok"
	StateBadGateway State = "bad_gateway"
	StateUnknown    State = "unknown"
)

// Status is one provider's status at a given time. Zero times mean "never"
// and are written as JSON null.
type Status struct {
	// State is ok, bad_gateway or unknown.
	State State
	// LastUpdate is the time of the most recent recorded outcome.
	LastUpdate time.Time
	// LastOK is the time of the most recent OK outcome.
	LastOK time.Time
}

// HTTPStatus is the HTTP status of a ping answer in state s: 502 for
// bad_gateway, 200 otherwise.
func (s Status) HTTPStatus() int {
	if s.State == StateBadGateway {
		return http.StatusBadGateway
	}
	return http.StatusOK
}

// statusJSON is the wire shape of Status.
type statusJSON struct {
	Status     State   `json:"status"`
	LastUpdate *string `json:"last_update"`
	LastOK     *string `json:"last_ok_status"`
}

// MarshalJSON writes s as {"status", "last_update", "last_ok_status"},
// times in UTC, RFC 3339 truncated to the minute, zero times as null.
func (s Status) MarshalJSON() ([]byte, error) {
	return json.Marshal(statusJSON{Status: s.State, LastUpdate: wireTime(s.LastUpdate), LastOK: wireTime(s.LastOK)})
}

func wireTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	// To the minute: the routes are public, and finer times would tell when
	// someone last asked a low-traffic provider about a citizen.
	s := t.UTC().Truncate(time.Minute).Format(time.RFC3339)
	return &s
}

// entry holds one provider's state. last packs the time of the most recent
// outcome (unix nanoseconds, lowest bit cleared) with the outcome in the
// lowest bit (1 = Failed), so that a reader never sees the status of one
// call with the time of another. 0 means nothing recorded (an outcome at
// exactly the Unix epoch would read as nothing: no real clock returns it).
type entry struct {
	last   atomic.Int64
	lastOK atomic.Int64 // unix nanoseconds of the most recent OK, 0 = never
}

const failedBit = 1

// Tracker holds the status of a fixed set of providers. Record, Status,
// BySlug and the Serve methods are safe for concurrent use. Its maps are
// built by New and only read afterwards; each provider's state is a pair of
// atomics, so recording takes no lock and allocates nothing.
type Tracker struct {
	entries    map[string]*entry
	slugs      map[string]string // slug → provider; ambiguous slugs are absent
	names      []string          // sorted provider names
	staleAfter time.Duration
	now        func() time.Time
}

// New returns a tracker for providers, the closed set of provider names of
// the catalogue (duplicates and empty names are dropped). A status turns
// unknown when its last outcome is more than staleAfter old; staleAfter <= 0
// disables staleness. now is the clock (nil means time.Now).
//
// If two providers share a slug (see Slug), BySlug finds neither of them;
// both are still recorded and listed by ServeAll.
func New(providers []string, staleAfter time.Duration, now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	t := &Tracker{
		entries:    make(map[string]*entry, len(providers)),
		slugs:      make(map[string]string, len(providers)),
		staleAfter: staleAfter,
		now:        now,
	}
	ambiguous := map[string]bool{}
	for _, p := range providers {
		if p == "" || t.entries[p] != nil {
			continue
		}
		t.entries[p] = new(entry)
		t.names = append(t.names, p)
		s := Slug(p)
		if _, dup := t.slugs[s]; dup || s == "" || ambiguous[s] {
			delete(t.slugs, s)
			ambiguous[s] = true
			continue
		}
		t.slugs[s] = p
	}
	slices.Sort(t.names)
	return t
}

// Providers returns the tracked provider names, sorted. The slice is a copy.
func (t *Tracker) Providers() []string {
	return slices.Clone(t.names)
}

// Record notes the outcome of one call to provider at the tracker's current
// time. Unknown providers and outcomes other than OK and Failed are ignored.
// Record takes no lock and does not allocate.
//
// Concurrent calls race only for the last store, a window of nanoseconds, so
// "the most recent outcome" is the last one stored. Times are not compared:
// a wall clock stepped back must not freeze the status.
func (t *Tracker) Record(provider string, outcome Outcome) {
	e := t.entries[provider]
	if e == nil || (outcome != OK && outcome != Failed) {
		return
	}
	at := t.now().UnixNano()
	v := at &^ failedBit
	if outcome == Failed {
		v |= failedBit
	} else {
		e.lastOK.Store(at)
	}
	e.last.Store(v)
}

// Status returns the status of provider now, and false if provider is not
// tracked.
func (t *Tracker) Status(provider string) (Status, bool) {
	e := t.entries[provider]
	if e == nil {
		return Status{}, false
	}
	return t.statusAt(e, t.now()), true
}

func (t *Tracker) statusAt(e *entry, now time.Time) Status {
	last, lastOK := e.last.Load(), e.lastOK.Load()
	var s Status
	if last != 0 {
		s.LastUpdate = time.Unix(0, last&^failedBit).UTC()
	}
	if lastOK != 0 {
		s.LastOK = time.Unix(0, lastOK).UTC()
	}
	switch {
	case last == 0, t.staleAfter > 0 && now.Sub(s.LastUpdate) > t.staleAfter:
		s.State = StateUnknown
	case last&failedBit != 0:
		s.State = StateBadGateway
	default:
		s.State = StateOK
	}
	return s
}

// ServeProvider writes provider's status as JSON, with HTTP 502 when it is
// bad_gateway and 200 otherwise. It returns false and writes nothing when
// provider is not tracked, so the caller can answer 404 in its own format.
func (t *Tracker) ServeProvider(w http.ResponseWriter, provider string) bool {
	s, ok := t.Status(provider)
	if !ok {
		return false
	}
	writeJSON(w, s.HTTPStatus(), s)
	return true
}

// ServeAll writes {"<provider>": {...}, ...} for every tracked provider, in
// sorted order, with HTTP 502 when any provider is bad_gateway and 200
// otherwise. All statuses are taken at the same time.
func (t *Tracker) ServeAll(w http.ResponseWriter) {
	now := t.now()
	all := make(map[string]Status, len(t.names)) // encoding/json sorts map keys
	code := http.StatusOK
	for _, p := range t.names {
		s := t.statusAt(t.entries[p], now)
		all[p] = s
		if s.State == StateBadGateway {
			code = http.StatusBadGateway
		}
	}
	writeJSON(w, code, all)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "CNAF & MSA", not "CNAF \u0026 MSA": this is JSON, not HTML
	if err := enc.Encode(v); err != nil {
		// Unreachable: strings, fixed states and formatted times only.
		http.Error(w, "", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body) // a failed write means the client left
}

// Slug returns provider as a URL path segment (catalogue.ProviderSlug):
// "CNAF & MSA" → "cnaf-msa", "France Travail" → "france-travail".
func Slug(provider string) string { return catalogue.ProviderSlug(provider) }

// BySlug returns the tracked provider whose Slug is slug (an exact match:
// slugs are lower-case), and false when there is none or more than one.
func (t *Tracker) BySlug(slug string) (string, bool) {
	p, ok := t.slugs[slug]
	return p, ok
}
