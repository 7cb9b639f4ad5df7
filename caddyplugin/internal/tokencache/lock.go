package tokencache

import (
	"context"
	"time"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/redislock"
)

// The cluster lock puts one instance of a cluster in front of FranceConnect
// for a new token (issue: "one checktoken call per token for the whole
// cluster"): singleflight collapses misses inside a process, and a short
// Redis lock, SET NX PX on the token's key + ":lock", collapses them across
// processes (package redislock: released only by its holder, with a
// compare-and-delete). The holder fetches, fills L2 and releases the lock;
// the others poll L2 until the entry appears. If the holder fails (errors
// are never cached) or the lock cannot be taken (Redis down), each instance
// fetches for itself: the lock saves calls, it never decides anything.

// lockPoll is how often a waiting instance looks for the holder's entry.
const lockPoll = 10 * time.Millisecond

func lockKey(key string) string { return key + ":lock" }

// clusterLock takes the lock (lock not nil: go and fetch, then unlock),
// or waits for the holder's entry (ok = true: here are the facts). lock nil
// and ok false: fetch without the lock.
func (c *Cache) clusterLock(ctx context.Context, token, key string) (f *fcverify.Facts, lock *redislock.Lock, ok bool) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	lock, err := redislock.Acquire(rctx, c.cfg.Redis, lockKey(key), c.cfg.FetchTimeout)
	cancel()
	if err != nil {
		c.redisFailed("error")
		return nil, nil, false
	}
	if lock != nil {
		// The previous holder may have filled L2 and released the lock
		// between our L2 read and our SET NX: look once more.
		if f, ok := c.l2Get(ctx, token, key); ok {
			c.unlock(lock)
			return f, nil, true
		}
		return nil, lock, false
	}
	c.lockWaits.Add(1)
	t := time.NewTicker(lockPoll)
	defer t.Stop()
	// The wait takes half the lookup's time at most: a holder that never
	// writes nor releases (its Redis commands failing while ours work)
	// leaves the other half for our own checktoken (SECURITY.md B09).
	giveUp := time.NewTimer(c.cfg.FetchTimeout / 2)
	defer giveUp.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, nil, false
		case <-giveUp.C:
			return nil, nil, false
		case <-t.C:
		}
		if f, ok := c.l2Get(ctx, token, key); ok {
			return f, nil, true
		}
		rctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
		held, err := redislock.Held(rctx, c.cfg.Redis, lockKey(key))
		cancel()
		if err != nil || !held {
			// The lock is gone. The holder may have written its entry just
			// after our read: look once more. If there is still none, it
			// failed (or its answer was not cacheable): ask ourselves.
			if f, ok := c.l2Get(ctx, token, key); ok {
				return f, nil, true
			}
			return nil, nil, false
		}
	}
}

// unlock releases the lock once the entry is written, unless its lifetime
// is over and another instance holds the lock now.
func (c *Cache) unlock(lock *redislock.Lock) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RedisTimeout)
	defer cancel()
	if err := lock.Release(ctx, c.cfg.Redis); err != nil {
		c.redisFailed("error")
	}
}
