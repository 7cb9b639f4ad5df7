package tokencache

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/tokencache/redistest"
)

// Canaries (SECURITY.md §1.4): marked values that must never reach Redis.
const (
	canaryFamily    = "CANARYFAMILYNAME"
	canaryBirthdate = "1962-08-24-CANARY"
	canarySub       = "CANARYSUB0123456789"
)

func canaryToken(t testing.TB) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "CANARYTOKEN-" + hex.EncodeToString(b)
}

func secret() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// clock is an injectable, goroutine-safe clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func activeFacts(exp time.Time) *fcverify.Facts {
	return &fcverify.Facts{
		Active:    true,
		ClientID:  "client-abc",
		Sub:       canarySub,
		Scopes:    []string{"openid", "family_name", "birthdate"},
		ACR:       "eidas1",
		IssuedAt:  exp.Add(-time.Minute),
		ExpiresAt: exp,
		Identity: fcverify.Identity{
			FamilyName: canaryFamily,
			GivenName:  "Jean",
			Birthdate:  canaryBirthdate,
		},
	}
}

// fetcher is a stub checktoken that counts its calls.
type fetcher struct {
	calls atomic.Int64
	fn    func(ctx context.Context) (*fcverify.Facts, error)
}

func (f *fetcher) fetch(ctx context.Context) (*fcverify.Facts, error) {
	f.calls.Add(1)
	return f.fn(ctx)
}

func returns(facts *fcverify.Facts) *fetcher {
	return &fetcher{fn: func(context.Context) (*fcverify.Facts, error) { return facts, nil }}
}

var errStub = errors.New("stub: checktoken unavailable")

// recorder is a go-redis hook keeping every command argument, to prove the
// raw token is never one (B01).
type recorder struct {
	mu   sync.Mutex
	args [][]byte
}

func (r *recorder) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *recorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			r.add(c)
		}
		return next(ctx, cmds)
	}
}

func (r *recorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.add(cmd)
		return next(ctx, cmd)
	}
}

func (r *recorder) add(cmd redis.Cmder) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range cmd.Args() {
		r.args = append(r.args, fmt.Appendf(nil, "%v", a))
		if b, ok := a.([]byte); ok {
			r.args = append(r.args, b)
		}
	}
}

func (r *recorder) assertAbsent(t *testing.T, canaries ...string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.args) == 0 {
		t.Fatal("recorder saw no command")
	}
	for _, a := range r.args {
		for _, c := range canaries {
			if bytes.Contains(a, []byte(c)) {
				t.Fatalf("canary %q found in a Redis command argument", c)
			}
		}
	}
}

// backend is one way of running the conformance suite (B08).
type backend struct {
	name string
	// redis returns a fresh client to the same server on each call, nil for
	// the in-memory backend.
	redis func(t *testing.T) redis.UniversalClient
	// forward moves the server's clock (miniredis only).
	forward func(d time.Duration)
}

// eachBackend runs fn once per named backend ("memory", "miniredis",
// "redis-server"), each in its own subtest, so that a skipped real Redis
// does not skip the others.
func eachBackend(t *testing.T, names []string, fn func(t *testing.T, b backend)) {
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			switch name {
			case "memory":
				fn(t, memoryBackend())
			case "miniredis":
				fn(t, miniBackend(t))
			case "redis-server":
				fn(t, realBackend(t))
			default:
				t.Fatalf("unknown backend %q", name)
			}
		})
	}
}

func memoryBackend() backend {
	return backend{name: "memory", redis: func(*testing.T) redis.UniversalClient { return nil }, forward: func(time.Duration) {}}
}

func miniBackend(t *testing.T) backend {
	mr := miniredis.RunT(t)
	return backend{name: "miniredis", redis: func(t *testing.T) redis.UniversalClient {
		return client(t, mr.Addr())
	}, forward: mr.FastForward}
}

func realBackend(t *testing.T) backend {
	addr := redistest.Addr(t)
	return backend{name: "redis-server", redis: func(t *testing.T) redis.UniversalClient {
		return client(t, addr)
	}, forward: func(time.Duration) {}}
}

func client(t testing.TB, addr string) redis.UniversalClient {
	rdb := NewRedisClient(RedisOptions{Addrs: []string{addr}})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// shared holds the secrets and clock common to the instances of one test.
type shared struct {
	kKey, kVal []byte
	clock      *clock
}

func newShared() *shared { return &shared{kKey: secret(), kVal: secret(), clock: newClock()} }

func (s *shared) cache(t testing.TB, rdb redis.UniversalClient, mod ...func(*Config)) *Cache {
	t.Helper()
	cfg := Config{Redis: rdb, KeySecret: s.kKey, ValueSecret: s.kVal, Now: s.clock.Now}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func mustGet(t *testing.T, c *Cache, token string, f *fetcher) (*fcverify.Facts, Source) {
	t.Helper()
	facts, src, err := c.Get(context.Background(), token, f.fetch)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return facts, src
}
