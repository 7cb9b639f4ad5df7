package tokencache

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
)

// l1 is the in-process tier: a size-bounded map of raw token → facts (the
// package doc says why the raw token is acceptable here).
//
// It is built for the hit path, which BenchmarkL1Hit measures: the token is
// hashed once with a process-seeded maphash, which picks both the shard and
// the map slot; a hit takes the shard's read lock only, compares the token
// and the deadline, and writes nothing but a reference bit (only when it is
// not set yet) and a per-shard counter. Eviction is CLOCK (second chance), a
// standard LRU approximation: an entry hit since the hand last passed it
// survives one more sweep, so one-off tokens (a flood of unknown tokens
// cached negatively) are evicted before the ones in use. hashicorp/golang-lru
// was measured first: its exact LRU moves a list node on every hit, under an
// exclusive lock, and its hit cost about 135 ns against about 95 ns here on
// the same (noisy, 2-core) machine; a third of what is left is the clock read
// (BenchmarkL1Clock).
type l1 struct {
	seed   maphash.Seed
	mask   uint64
	shards []l1Shard
}

type l1Entry struct {
	token    string
	facts    *fcverify.Facts
	deadline int64 // tick value (see Cache.tick) at which the entry expires
	hash     uint64
	slot     int
	ref      atomic.Bool // hit since the CLOCK hand last passed
}

type l1Shard struct {
	mu   sync.RWMutex
	m    map[uint64]*l1Entry // by maphash of the token
	ring []*l1Entry          // CLOCK ring; nil slots are free
	max  int
	hand int
	hits atomic.Uint64
	_    [64]byte // keep neighbouring shards' hot words apart
}

const (
	minPerShard = 1024 // small caches keep one shard
	maxShards   = 64
)

func newL1(maxEntries int) *l1 {
	n := 1
	for n < maxShards && maxEntries/(n*2) >= minPerShard {
		n *= 2
	}
	c := &l1{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]l1Shard, n)}
	per := max(maxEntries/n, 1) // n*per <= maxEntries
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]*l1Entry)
		c.shards[i].max = per
	}
	return c
}

// get returns the facts stored for token if their deadline is after now.
// An expired entry is removed and reported as a miss.
func (c *l1) get(token string, now int64) (*fcverify.Facts, bool) {
	h := maphash.String(c.seed, token)
	s := &c.shards[h&c.mask]
	s.mu.RLock()
	e := s.m[h]
	if e == nil || e.token != token {
		s.mu.RUnlock()
		return nil, false
	}
	if now < e.deadline {
		if !e.ref.Load() {
			e.ref.Store(true)
		}
		f := e.facts
		s.mu.RUnlock()
		s.hits.Add(1)
		return f, true
	}
	s.mu.RUnlock()
	s.mu.Lock()
	if e2 := s.m[h]; e2 == e { // not replaced meanwhile
		s.remove(e)
	}
	s.mu.Unlock()
	return nil, false
}

// put stores facts until deadline, replacing any entry of the same hash. The
// token is cloned so the cache does not pin the request header it was
// sliced from.
//
// Expired entries are not left to wait for max entries: while the ring is
// not full, a slot under the hand is reused when its entry has expired (the
// hand looks at two slots per put, so it laps the ring while the ring grows),
// so a stream of new tokens keeps the ring within about twice the entries
// still alive, 2 × rate × TTL, rather than growing to max (100 000 entries,
// about 100 MB); once full, an expired entry is evicted whatever its
// reference bit.
func (c *l1) put(token string, f *fcverify.Facts, now, deadline int64) {
	h := maphash.String(c.seed, token)
	s := &c.shards[h&c.mask]
	ne := &l1Entry{token: strings.Clone(token), facts: f, deadline: deadline, hash: h}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.m[h]; old != nil {
		// Same token, or (2^-64 per pair, unpredictable without the seed)
		// another one with the same hash: the newer entry wins the slot.
		ne.slot = old.slot
		s.ring[ne.slot] = ne
		s.m[h] = ne
		return
	}
	s.m[h] = ne
	if n := len(s.ring); n < s.max {
		// Look at two slots per put: the hand then laps the ring even
		// while it grows by one slot per put.
		for range min(2, n) {
			i := s.hand % n
			s.hand = (i + 1) % n
			if e := s.ring[i]; e == nil || e.deadline <= now {
				if e != nil {
					delete(s.m, e.hash)
				}
				ne.slot, s.ring[i] = i, ne
				return
			}
		}
		ne.slot = n
		s.ring = append(s.ring, ne)
		return
	}
	// CLOCK: advance until a free slot, an expired entry or an entry
	// without its bit.
	for {
		e := s.ring[s.hand]
		if e == nil || e.deadline <= now || !e.ref.Swap(false) {
			if e != nil {
				delete(s.m, e.hash)
			}
			ne.slot = s.hand
			s.ring[s.hand] = ne
			s.hand = (s.hand + 1) % len(s.ring)
			return
		}
		s.hand = (s.hand + 1) % len(s.ring)
	}
}

// remove drops e; s.mu must be held for writing.
func (s *l1Shard) remove(e *l1Entry) {
	delete(s.m, e.hash)
	s.ring[e.slot] = nil
}

func (c *l1) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

func (c *l1) hits() uint64 {
	var n uint64
	for i := range c.shards {
		n += c.shards[i].hits.Load()
	}
	return n
}
