package datapass

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// SeenFor is how long a delivered body is remembered: a duplicate within
// it answers at once. (A later one is merged again, which changes nothing:
// Merge is idempotent.)
const SeenFor = 30 * 24 * time.Hour

// Store keeps the records and makes every change visible to the instances
// that share it.
type Store interface {
	// Apply merges next into its request's record (Merge), atomically with
	// respect to every instance, and updates Live before it returns. It
	// returns the record in force and whether it changed.
	Apply(ctx context.Context, next Record) (Record, bool, error)
	// Seen reports whether a body with this SHA-256 was applied already.
	Seen(ctx context.Context, sum [sha256.Size]byte) (bool, error)
	// MarkSeen remembers a body applied, for SeenFor.
	MarkSeen(ctx context.Context, sum [sha256.Size]byte) error
	// Live is this instance's copy of the records.
	Live() *Live
}

// Memory is a Store for one instance: without Redis, the instance that
// receives a webhook applies it alone (the others learn it from their own
// resync), and the records last until the process ends.
type Memory struct {
	live Live

	mu   sync.Mutex
	seen map[[sha256.Size]byte]time.Time
	now  func() time.Time
}

// maxSeen bounds the bodies a Memory store remembers.
const maxSeen = 100_000

// NewMemory returns an empty Memory store, ready at once: without a
// resync, the file governs until a webhook arrives.
func NewMemory() *Memory {
	m := NewMemoryUntilResync()
	m.live.setReady(true)
	return m
}

// NewMemoryUntilResync returns an empty Memory store that is not ready
// (the habilitations bound to DataPass refused) until a resync succeeds:
// after a restart, what DataPass revoked is not served again on the file's
// word.
func NewMemoryUntilResync() *Memory {
	return &Memory{seen: map[[sha256.Size]byte]time.Time{}, now: time.Now}
}

// Apply implements Store.
func (m *Memory) Apply(_ context.Context, next Record) (Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var cur *Record
	if r, ok := m.live.Record(next.RequestID); ok {
		cur = &r
	}
	rec, changed := Merge(cur, next)
	if changed {
		m.live.put(rec)
	}
	return rec, changed, nil
}

// Seen implements Store.
func (m *Memory) Seen(_ context.Context, sum [sha256.Size]byte) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.seen[sum]
	return ok && m.now().Sub(t) < SeenFor, nil
}

// MarkSeen implements Store.
func (m *Memory) MarkSeen(_ context.Context, sum [sha256.Size]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if len(m.seen) >= maxSeen {
		for k, t := range m.seen {
			if now.Sub(t) >= SeenFor || len(m.seen) >= maxSeen {
				delete(m.seen, k)
			}
		}
	}
	m.seen[sum] = now
	return nil
}

// Live implements Store.
func (m *Memory) Live() *Live { return &m.live }
