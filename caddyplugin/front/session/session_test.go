package session

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/handoff"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/reconcile"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/tokencache/redistest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var secret = bytes.Repeat([]byte("k"), 32)

// backends runs fn on the memory store and on a real redis-server, with
// two managers (two instances) sharing the store.
func backends(t *testing.T, fn func(t *testing.T, a, b *Manager, clk *clock, raw func() map[string][]byte)) {
	t.Run("memory", func(t *testing.T) {
		clk := &clock{t: time.Now()}
		st := NewMemory(0, clk.Now)
		a, b := manager(t, st, clk), manager(t, st, clk)
		fn(t, a, b, clk, func() map[string][]byte {
			st.mu.Lock()
			defer st.mu.Unlock()
			out := map[string][]byte{}
			for k, e := range st.m {
				out[k] = e.val
			}
			return out
		})
	})
	t.Run("redis-server", func(t *testing.T) {
		rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr(t)})
		t.Cleanup(func() { _ = rdb.Close() })
		prefix := "test:" + NewTicket()[:8] + ":"
		clk := &clock{t: time.Now()}
		mk := func() *Manager {
			m, err := New(Config{Store: NewRedis(rdb), Secret: secret, Prefix: prefix, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		fn(t, mk(), mk(), clk, func() map[string][]byte {
			out := map[string][]byte{}
			keys, _ := rdb.Keys(context.Background(), prefix+"*").Result()
			for _, k := range keys {
				v, _ := rdb.Get(context.Background(), k).Bytes()
				out[k] = v
			}
			return out
		})
	})
}

func manager(t *testing.T, st Store, clk *clock) *Manager {
	t.Helper()
	m, err := New(Config{Store: st, Secret: secret, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func angela() *Session {
	return &Session{Subject: "sub-canary-v1", ACR: "eidas1", IDToken: "idtoken-canary", AccessToken: "at-canary",
		Identity: &handoff.Identity{FamilyName: "DUBOIS", GivenName: "Angela Claire Louise", Birthdate: "1962-08-24"}}
}

// TestTransmittedKeepsWhatLogoutNeeds: a Cas 2 session handed over keeps
// the subject, the ACR and the tokens with their expiry, for logout, and
// nothing of the identity, the datasets, the reconciliation nor the return.
func TestTransmittedKeepsWhatLogoutNeeds(t *testing.T) {
	s := angela()
	s.Moment, s.ReturnTo, s.AccessExpiry = handoff.MomentTransmit, "/demarche/", time.Now().Add(time.Minute)
	s.Datasets = map[string]handoff.Dataset{"quotient_familial": {Status: handoff.StatusOK}}
	s.Reconciliation = &reconcile.Result{}
	s.Created = time.Now().Add(-time.Hour)
	want := &Session{Created: s.Created, Subject: s.Subject, ACR: s.ACR, IDToken: s.IDToken, AccessToken: s.AccessToken,
		AccessExpiry: s.AccessExpiry, Moment: MomentTransmitted}
	if got := s.Transmitted(); !reflect.DeepEqual(got, want) {
		t.Fatalf("kept %+v", got)
	}
}

func TestSessionsAcrossInstances(t *testing.T) {
	backends(t, func(t *testing.T, a, b *Manager, clk *clock, raw func() map[string][]byte) {
		ctx := context.Background()
		ticket, err := a.Create(ctx, angela())
		if err != nil {
			t.Fatal(err)
		}
		s, err := b.Get(ctx, ticket)
		if err != nil || s.Identity.FamilyName != "DUBOIS" || s.Subject != "sub-canary-v1" {
			t.Fatalf("the other instance reads %+v, %v", s, err)
		}
		// The store holds neither the ticket nor anything readable.
		records := raw()
		if len(records) == 0 {
			t.Fatal("nothing stored")
		}
		for k, v := range records {
			for _, canary := range []string{ticket, "DUBOIS", "Angela", "1962", "sub-canary", "idtoken-canary", "at-canary"} {
				if strings.Contains(k, canary) || bytes.Contains(v, []byte(canary)) {
					t.Fatalf("the store shows %q", canary)
				}
			}
		}
		if n, ok, err := b.Active(ctx); !ok || err != nil || n != 1 {
			t.Fatalf("active sessions: %d %v %v", n, ok, err)
		}
		// Logout on one instance is seen by the other once its cache
		// expires (1 s).
		if err := a.Delete(ctx, ticket); err != nil {
			t.Fatal(err)
		}
		clk.add(1100 * time.Millisecond)
		if _, err := b.Get(ctx, ticket); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted session still served: %v", err)
		}
		// A request that read the session before the logout and writes it
		// back after does not bring it back.
		if err := b.Save(ctx, ticket, s); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a deleted session was saved back: %v", err)
		}
		if _, err := a.Get(ctx, ticket); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the logout did not hold: %v", err)
		}
		// Take: one of two instances gets a session, once.
		t2, _ := a.Create(ctx, angela())
		if _, err := b.Get(ctx, t2); err != nil {
			t.Fatal(err)
		}
		if got, err := b.Take(ctx, t2); err != nil || got.Subject != "sub-canary-v1" {
			t.Fatalf("take: %v", err)
		}
		if _, err := a.Take(ctx, t2); !errors.Is(err, ErrNotFound) {
			t.Fatalf("taken twice: %v", err)
		}
	})
}

func TestSessionLifetimes(t *testing.T) {
	backends(t, func(t *testing.T, a, _ *Manager, clk *clock, _ func() map[string][]byte) {
		ctx := context.Background()
		idle, _ := a.Create(ctx, angela())
		clk.add(29 * time.Minute)
		if _, err := a.Get(ctx, idle); err != nil {
			t.Fatalf("used within the idle timeout: %v", err)
		}
		clk.add(29 * time.Minute) // 58 min after creation, 29 after the last use
		if _, err := a.Get(ctx, idle); err != nil {
			t.Fatalf("the idle deadline did not move: %v", err)
		}
		clk.add(31 * time.Minute)
		if _, err := a.Get(ctx, idle); !errors.Is(err, ErrNotFound) {
			t.Fatalf("idle for 31 min and still alive: %v", err)
		}
		busy, _ := a.Create(ctx, angela())
		for range 12*4 + 1 { // used every 15 min for 12 h 15
			clk.add(15 * time.Minute)
			if _, err := a.Get(ctx, busy); err != nil {
				break
			}
		}
		if _, err := a.Get(ctx, busy); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a session outlived its 12 h maximum: %v", err)
		}
	})
}

func TestPendingUsedOnce(t *testing.T) {
	backends(t, func(t *testing.T, a, b *Manager, _ *clock, _ func() map[string][]byte) {
		ctx := context.Background()
		state := NewTicket()
		if err := a.PutPending(ctx, state, &Pending{Nonce: "n", Binding: "b", Moment: handoff.MomentLogin}); err != nil {
			t.Fatal(err)
		}
		// Two callbacks with the same state, on two instances, at once:
		// exactly one gets the pending login.
		var got atomic.Int32
		var wg sync.WaitGroup
		for _, m := range []*Manager{a, b, a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if p, err := m.TakePending(ctx, state); err == nil && p.Nonce == "n" {
					got.Add(1)
				}
			}()
		}
		wg.Wait()
		if got.Load() != 1 {
			t.Fatalf("state used %d times", got.Load())
		}
		if _, err := b.TakePending(ctx, "unknown-state"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown state: %v", err)
		}
		if _, err := b.TakePending(ctx, ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("empty state: %v", err)
		}
		logout := NewTicket()
		_ = a.PutLogout(ctx, logout)
		if err := b.TakeLogout(ctx, logout); err != nil {
			t.Fatal(err)
		}
		if err := a.TakeLogout(ctx, logout); !errors.Is(err, ErrNotFound) {
			t.Fatalf("logout state replayed: %v", err)
		}
	})
}

// TestRecordBoundToItsKey: a sealed record copied under another key (a
// pending login moved to a session key, one session over another) does
// not open.
func TestRecordBoundToItsKey(t *testing.T) {
	clk := &clock{t: time.Now()}
	st := NewMemory(0, clk.Now)
	m := manager(t, st, clk)
	ctx := context.Background()
	victim, _ := m.Create(ctx, angela())
	attacker, _ := m.Create(ctx, &Session{Subject: "attacker"})
	v, _, _ := st.Get(ctx, m.key("s", victim))
	_ = st.Set(ctx, m.key("s", attacker), v, time.Hour)
	m.forget(attacker)
	if _, err := m.Get(ctx, attacker); !errors.Is(err, ErrSealed) {
		t.Fatalf("a record moved to another key opened: %v", err)
	}
	other, _ := New(Config{Store: st, Secret: bytes.Repeat([]byte("x"), 32), Now: clk.Now})
	if _, err := other.Get(ctx, victim); err == nil {
		t.Fatal("a manager with another secret read the session")
	}
}

func TestMemoryBounded(t *testing.T) {
	clk := &clock{t: time.Now()}
	st := NewMemory(3, clk.Now)
	ctx := context.Background()
	for i := range 3 {
		if err := st.Set(ctx, string(rune('a'+i)), nil, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Set(ctx, "d", nil, time.Minute); !errors.Is(err, ErrFull) {
		t.Fatalf("a fourth record: %v", err)
	}
	clk.add(2 * time.Minute)
	if err := st.Set(ctx, "d", nil, time.Minute); err != nil || st.Len() != 1 {
		t.Fatalf("expired records were not swept: %v, %d", err, st.Len())
	}
}

func TestNewRefusesShortSecret(t *testing.T) {
	if _, err := New(Config{Store: NewMemory(0, nil), Secret: []byte("short")}); err == nil {
		t.Fatal("accepted")
	}
	if a, b := NewTicket(), NewTicket(); len(a) != 43 || a == b {
		t.Fatalf("tickets %q %q", a, b)
	}
}

// countingStore counts the lookups of a Store.
type countingStore struct {
	Store
	gets atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key)
}

// TestGoneTicketCostsNoLookup: a browser that keeps sending the ticket of
// a session gone (logged out, expired) costs one store lookup, not one a
// request; a live session is still read from the store.
func TestGoneTicketCostsNoLookup(t *testing.T) {
	clk := &clock{t: time.Now()}
	st := &countingStore{Store: NewMemory(0, clk.Now)}
	m := manager(t, st, clk)
	ctx := context.Background()
	ticket, err := m.Create(ctx, &Session{Subject: "sub"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, ticket); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, ticket); err != nil {
		t.Fatal(err)
	}
	before := st.gets.Load()
	for range 100 {
		if _, err := m.Get(ctx, ticket); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a deleted session: %v", err)
		}
	}
	if n := st.gets.Load() - before; n != 0 {
		t.Fatalf("%d store lookups for a ticket known gone", n)
	}
	unknown := NewTicket()
	for range 3 {
		_, _ = m.Get(ctx, unknown)
	}
	if n := st.gets.Load() - before; n != 1 {
		t.Fatalf("%d store lookups for an unknown ticket asked 3 times, want 1", n)
	}
	other, _ := m.Create(ctx, &Session{Subject: "sub"})
	clk.add(2 * time.Second) // past CacheTTL
	if _, err := m.Get(ctx, other); err != nil || st.gets.Load()-before != 2 {
		t.Fatalf("a live session: %v, %d lookups", err, st.gets.Load()-before)
	}
}

// TestSweepDropsExpiredSessions: what a session holds (identity, datasets,
// tokens) leaves this instance's memory once expired, without waiting for
// the cache or the memory store to fill up: Sweep drops the sessions read
// beyond CacheTTL and the records past their lifetime, and keeps the live.
func TestSweepDropsExpiredSessions(t *testing.T) {
	clk := &clock{t: time.Now()}
	st := NewMemory(0, clk.Now)
	m := manager(t, st, clk)
	ctx := context.Background()
	old, _ := m.Create(ctx, angela())
	if _, err := m.Get(ctx, old); err != nil { // read: in the instance's cache
		t.Fatal(err)
	}
	clk.add(31 * time.Minute) // past the idle lifetime and the cache TTL
	live, _ := m.Create(ctx, angela())
	m.Sweep(clk.Now())
	m.cacheMu.Lock()
	_, oldCached := m.cache[old]
	m.cacheMu.Unlock()
	st.mu.Lock()
	records := len(st.m)
	st.mu.Unlock()
	if oldCached || records != 1 {
		t.Fatalf("after the sweep: the expired session cached %v, %d records; want false and 1 (the live one)", oldCached, records)
	}
	if _, err := m.Get(ctx, live); err != nil {
		t.Fatalf("the live session: %v", err)
	}
}

// TestMovedSessionKeepsItsAge: a session stored again under a new ticket
// (what a Cas 2 session keeps for logout once handed over) keeps its
// creation time: it ends at session_max from the login, not 12 hours
// after the hand-off, with the tokens it holds.
func TestMovedSessionKeepsItsAge(t *testing.T) {
	clk := &clock{t: time.Now()}
	m := manager(t, NewMemory(0, clk.Now), clk)
	ctx := context.Background()
	s := angela()
	s.Moment = handoff.MomentTransmit
	if _, err := m.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	clk.add(m.cfg.Max - time.Hour)
	ticket, err := m.Create(ctx, s.Transmitted())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // used within session_idle: alive until session_max
		clk.add(25 * time.Minute)
		if _, err := m.Get(ctx, ticket); err != nil {
			t.Fatalf("the moved session is gone early: %v", err)
		}
	}
	clk.add(25 * time.Minute) // 15 minutes past session_max from the login
	if _, err := m.Get(ctx, ticket); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the moved session outlived session_max from its login: %v", err)
	}
}
