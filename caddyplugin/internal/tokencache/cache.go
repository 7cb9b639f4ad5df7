package tokencache

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/singleflight"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
)

// Source tells which tier answered a Get.
type Source int

// Tiers, in lookup order.
const (
	SourceL1    Source = iota // in-process memory
	SourceL2                  // Redis
	SourceFetch               // live checktoken
)

func (s Source) String() string {
	switch s {
	case SourceL1:
		return "l1"
	case SourceL2:
		return "l2"
	case SourceFetch:
		return "checktoken"
	}
	return "unknown"
}

// Errors returned by Get besides the fetch's own (passed through unwrapped so
// that errors.Is keeps working on them). None of them is an allow.
var (
	ErrEmptyToken = errors.New("tokencache: empty token")
	ErrNilFacts   = errors.New("tokencache: fetch returned no facts")
	ErrFetchPanic = errors.New("tokencache: fetch panicked")
)

// Stats are cumulative counters, for metrics.
type Stats struct {
	L1Hits       uint64 // answered from process memory
	L2Hits       uint64 // answered from Redis
	Misses       uint64 // Get calls that missed L1 and joined or started a lookup
	Fetches      uint64 // fetch calls made (after L1 and L2 missed)
	FetchErrors  uint64 // fetch calls that failed (nothing stored, B05)
	SharedWaits  uint64 // Get calls answered by another caller's lookup (B07)
	LockWaits    uint64 // lookups that waited for another instance's fetch
	RedisErrors  uint64 // Redis command errors and timeouts (treated as misses, B09)
	RedisCorrupt uint64 // Redis values that failed to open or decode (misses, B09)
	L1Entries    int    // current size of the in-process tier
}

// Cache is the two-tier cache. It is safe for concurrent use.
type Cache struct {
	cfg Config
	// tick returns the L1 clock in nanoseconds: monotonic time since base
	// when Config.Now was nil, else Config.Now().UnixNano().
	tick  func() int64
	base  time.Time
	codec codec
	l1    *l1
	group singleflight.Group
	log   *zap.Logger

	misses, l2Hits, fetches, fetchErrors, shared, redisErrors, redisCorrupt, lockWaits atomic.Uint64
}

// New builds a Cache. It makes no network call.
func New(cfg Config) (*Cache, error) {
	injected := cfg.Now != nil
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	c := &Cache{
		cfg:   cfg,
		codec: codec{keySecret: cfg.KeySecret, valSecret: cfg.ValueSecret},
		l1:    newL1(cfg.MaxEntries),
		log:   cfg.Logger,
		base:  time.Now(),
	}
	if injected {
		c.tick = func() int64 { return c.cfg.Now().UnixNano() }
	} else {
		// time.Since on a monotonic base reads only the monotonic clock: about
		// half the cost of time.Now, which reads both clocks.
		c.tick = func() int64 { return int64(time.Since(c.base)) }
	}
	return c, nil
}

// result is what one lookup shares with every caller that joined it.
type result struct {
	facts *fcverify.Facts
	src   Source
}

// Get returns the facts for token from L1, then L2 (Redis), then fetch.
//
// fetch is the live checktoken call. Concurrent misses on one token share a
// single lookup (B07): the first caller's fetch runs detached from its ctx
// (values kept, cancellation dropped) under FetchTimeout, so that a caller
// who goes away does not fail the others; the fetch functions of the other
// callers are not called. A caller whose ctx ends returns ctx's error at
// once while the lookup goes on for the others.
//
// fetch's error is returned as is and nothing is stored (B05). A Redis
// failure is a miss (B09).
//
// The returned *Facts is shared by every caller and by the cache: callers
// must not mutate it.
func (c *Cache) Get(ctx context.Context, token string, fetch func(ctx context.Context) (*fcverify.Facts, error)) (*fcverify.Facts, Source, error) {
	if token == "" {
		return nil, SourceL1, ErrEmptyToken
	}
	// Hot path: one clock read, one map lookup under a shard lock.
	if f, ok := c.l1.get(token, c.tick()); ok {
		return f, SourceL1, nil
	}
	return c.miss(ctx, token, fetch)
}

// Cached returns token's facts when the in-process level holds them: Get's
// hot path, for a caller that builds its fetch function only on a miss (a
// closure allocates). Facts are shared: callers must not mutate them.
func (c *Cache) Cached(token string) (*fcverify.Facts, bool) {
	if token == "" {
		return nil, false
	}
	return c.l1.get(token, c.tick())
}

func (c *Cache) miss(ctx context.Context, token string, fetch func(ctx context.Context) (*fcverify.Facts, error)) (*fcverify.Facts, Source, error) {
	c.misses.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, SourceFetch, fmt.Errorf("tokencache: %w", err)
	}
	key := c.codec.redisKey(token)
	ch := c.group.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.FetchTimeout)
		defer cancel()
		return c.lookup(fctx, token, key, fetch)
	})
	select {
	case r := <-ch:
		if r.Shared {
			c.shared.Add(1)
		}
		if r.Err != nil {
			return nil, SourceFetch, r.Err
		}
		res := r.Val.(result)
		return res.facts, res.src, nil
	case <-ctx.Done():
		return nil, SourceFetch, fmt.Errorf("tokencache: %w", ctx.Err())
	}
}

// lookup runs once per token hash at a time: L2, then fetch, then fill.
func (c *Cache) lookup(ctx context.Context, token, key string, fetch func(ctx context.Context) (*fcverify.Facts, error)) (result, error) {
	// A caller that missed L1 just before the previous flight for this
	// token filled it joins no flight: look again before going further.
	if f, ok := c.l1.get(token, c.tick()); ok {
		return result{facts: f, src: SourceL1}, nil
	}
	if c.cfg.Redis != nil {
		if f, ok := c.l2Get(ctx, token, key); ok {
			c.l2Hits.Add(1)
			return result{facts: f, src: SourceL2}, nil
		}
		f, lock, ok := c.clusterLock(ctx, token, key)
		if ok {
			c.l2Hits.Add(1)
			return result{facts: f, src: SourceL2}, nil
		}
		if lock != nil {
			defer c.unlock(lock)
		}
	}
	c.fetches.Add(1)
	f, err := safeFetch(ctx, fetch)
	if err == nil && f == nil {
		err = ErrNilFacts
	}
	if err != nil {
		c.fetchErrors.Add(1)
		return result{}, err // B05: nothing stored
	}
	now := c.cfg.Now()
	if d := ttl(f.Active, f.ExpiresAt, now, c.cfg.TTLCap, c.cfg.Skew, c.cfg.NegativeTTL); d > 0 {
		until := now.Add(d)
		tick := c.tick()
		c.l1.put(token, f, tick, tick+int64(d))
		if c.cfg.Redis != nil {
			c.l2Set(ctx, token, key, f, until, d)
		}
	}
	return result{facts: f, src: SourceFetch}, nil
}

// safeFetch turns a panicking fetch into an error: singleflight would
// otherwise re-panic it on a goroutine of its own and stop the process.
func safeFetch(ctx context.Context, fetch func(ctx context.Context) (*fcverify.Facts, error)) (f *fcverify.Facts, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, ErrFetchPanic
		}
	}()
	return fetch(ctx)
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	return Stats{
		L1Hits:       c.l1.hits(),
		L2Hits:       c.l2Hits.Load(),
		Misses:       c.misses.Load(),
		Fetches:      c.fetches.Load(),
		FetchErrors:  c.fetchErrors.Load(),
		SharedWaits:  c.shared.Load(),
		LockWaits:    c.lockWaits.Load(),
		RedisErrors:  c.redisErrors.Load(),
		RedisCorrupt: c.redisCorrupt.Load(),
		L1Entries:    c.l1.len(),
	}
}

// debug logs msg with fields at debug level; never pass keys, tokens or facts.
func (c *Cache) debug(msg string, fields ...zap.Field) {
	if ce := c.log.Check(zapcore.DebugLevel, msg); ce != nil {
		ce.Write(fields...)
	}
}

// redisFailed counts a Redis failure and reports it to the hook.
func (c *Cache) redisFailed(kind string) {
	if kind == "corrupt" {
		c.redisCorrupt.Add(1)
	} else {
		c.redisErrors.Add(1)
	}
	if c.cfg.OnRedisError != nil {
		c.cfg.OnRedisError(kind)
	}
}
