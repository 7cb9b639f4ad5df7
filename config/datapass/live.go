package datapass

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// Live is this instance's copy of the records, read lock-free by the
// request path through habilitation.Overlaid (it is a
// habilitation.LiveSource). Writers go through a Store.
type Live struct {
	mu   sync.Mutex // serialises writers
	snap atomic.Pointer[snapshot]
}

type snapshot struct {
	version uint64
	ready   bool
	// unresynced: a bound habilitation without a record is refused until
	// a resync succeeds (AwaitResync).
	unresynced bool
	records    map[string]Record
	// unreadable are the request numbers whose record in Redis this
	// instance cannot open (sealed under a key it does not hold, or
	// garbage): their habilitations are refused until it can, whatever
	// its own copy says (it may be older).
	unreadable map[string]bool
	states     map[string]habilitation.Live
}

// statesOf is what the request path reads of records: each record's
// state, and a refusal for each unreadable request number.
func statesOf(records map[string]Record, unreadable map[string]bool) map[string]habilitation.Live {
	states := make(map[string]habilitation.Live, len(records)+len(unreadable))
	for id, r := range records {
		states[id] = r.Live()
	}
	for id := range unreadable {
		states[id] = habilitation.Live{} // not active: refused
	}
	return states
}

var emptySnapshot = &snapshot{}

func (l *Live) load() *snapshot {
	if s := l.snap.Load(); s != nil {
		return s
	}
	return emptySnapshot
}

// LiveSnapshot implements habilitation.LiveSource: the states by DataPass
// request number (the map must not be modified), their version and their
// readiness, from one snapshot.
func (l *Live) LiveSnapshot() (uint64, map[string]habilitation.Live, habilitation.LiveReadiness) {
	s := l.load()
	return s.version, s.states, s.readiness()
}

func (s *snapshot) readiness() habilitation.LiveReadiness {
	switch {
	case !s.ready:
		return habilitation.LiveNotRead
	case s.unresynced:
		return habilitation.LiveUnresynced
	}
	return habilitation.LiveRead
}

// readiness is the records' readiness now (see habilitation.Overlay).
func (l *Live) readiness() habilitation.LiveReadiness { return l.load().readiness() }

// LiveReady reports whether the records are known: at once for a Memory
// store without a resync, after the first full read of Redis for a Redis
// store.
func (l *Live) LiveReady() bool { return l.load().ready }

// setReady marks the records known (after a full read), or unknown again
// (a lost subscription: every bound habilitation is refused until the next
// full read).
func (l *Live) setReady(ready bool) {
	l.set(func(s *snapshot) { s.ready = ready })
}

// setUnreadable sets the request numbers whose record this instance
// cannot open (nil: none): their habilitations are refused, the others
// served.
func (l *Live) setUnreadable(ids map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := l.load()
	if maps.Equal(cur.unreadable, ids) {
		return
	}
	c := *cur
	c.unreadable = ids
	c.states = statesOf(c.records, ids)
	c.version++
	l.snap.Store(&c)
}

// setUnresynced makes a bound habilitation without a record refused
// (true), until a resync succeeds (false).
func (l *Live) setUnresynced(unresynced bool) {
	l.set(func(s *snapshot) { s.unresynced = unresynced })
}

// set stores a copy of the snapshot that change made, a version later,
// when it differs.
func (l *Live) set(change func(*snapshot)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := l.load()
	c := *cur
	change(&c)
	if c.ready == cur.ready && c.unresynced == cur.unresynced {
		return
	}
	c.version++
	l.snap.Store(&c)
}

// Record returns the record of a request.
func (l *Live) Record(requestID string) (Record, bool) {
	r, ok := l.load().records[requestID]
	return r, ok
}

// Records returns every record, by request number.
func (l *Live) Records() []Record {
	recs := slices.Collect(maps.Values(l.load().records))
	slices.SortFunc(recs, func(a, b Record) int { return cmp.Compare(a.RequestID, b.RequestID) })
	return recs
}

// later reports whether a is a later copy of a request's record than b.
func later(a, b Record) bool {
	if a.FiredAt != b.FiredAt {
		return a.FiredAt > b.FiredAt
	}
	return a.Rev > b.Rev
}

// newest returns the copy of a request's record to keep of a and b: the
// later one. Two different copies tied on FiredAt and Rev (two instances
// that each changed the record while cut off from each other) give their
// merge, the more restrictive of the two, as in Merge on equal times: active
// only if both are, for the same organisation, with the scopes both hold and
// a grant only if both grant. The merge is one revision later than both, so
// that it wins over each copy wherever it goes (Redis, the other
// instances), and the same whichever instance makes it.
func newest(a, b Record) Record {
	switch {
	case later(a, b):
		return a
	case later(b, a), a.same(b):
		return b
	}
	m := a
	m.Event = min(a.Event, b.Event)
	m.SIRET = min(a.SIRET, b.SIRET)
	m.Grant = a.Grant && b.Grant
	m.Scopes = slices.DeleteFunc(slices.Clone(a.Scopes), func(s string) bool { return !slices.Contains(b.Scopes, s) })
	slices.Sort(m.Scopes)
	if m.Scopes == nil {
		m.Scopes = []string{}
	}
	m.Active = a.Active && b.Active && a.SIRET == b.SIRET && len(m.Scopes) > 0
	m.Rev = a.Rev + 1
	return m
}

// put keeps, of each record and the copy held, the newest; it reports
// whether anything changed.
func (l *Live) put(recs ...Record) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := l.load()
	records := cur.records
	var next map[string]Record
	for _, r := range recs {
		if old, ok := records[r.RequestID]; ok {
			if r = newest(r, old); r.same(old) && r.Rev == old.Rev {
				continue
			}
		}
		if next == nil {
			next = maps.Clone(cur.records)
			if next == nil {
				next = map[string]Record{}
			}
			records = next
		}
		next[r.RequestID] = r
	}
	if next == nil {
		return false
	}
	l.snap.Store(&snapshot{version: cur.version + 1, ready: cur.ready, unresynced: cur.unresynced, records: next,
		unreadable: cur.unreadable, states: statesOf(next, cur.unreadable)})
	return true
}
