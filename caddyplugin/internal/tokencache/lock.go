package tokencache

import (
	"context"
	"time"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
)

// The cluster lock puts one instance of a cluster in front of FranceConnect
// for a new token (issue: "one checktoken call per token for the whole
// cluster"): singleflight collapses misses inside a process, and a short
// Redis lock, SET NX PX on the token's key + ":lock", collapses them across
// processes. The holder fetches, fills L2 and releases the lock; the others
// poll L2 until the entry appears. If the holder fails (errors are never
// cached) or the lock cannot be taken (Redis down), each instance fetches
// for itself: the lock saves calls, it never decides anything.

// lockPoll is how often a waiting instance looks for the holder's entry.
const lockPoll = 10 * time.Millisecond

func lockKey(key string) string { return key + ":lock" }

// clusterLock takes the lock (owner = true: go and fetch), or waits for the
// holder's entry (ok = true: here are the facts). ok and owner both false:
// fetch without the lock.
func (c *Cache) clusterLock(ctx context.Context, token, key string) (f *fcverify.Facts, owner, ok bool) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	got, err := c.cfg.Redis.SetNX(rctx, lockKey(key), "1", c.cfg.FetchTimeout).Result()
	cancel()
	if err != nil {
		c.redisFailed("error")
		return nil, false, false
	}
	if got {
		// The previous holder may have filled L2 and released the lock
		// between our L2 read and our SET NX: look once more.
		if f, ok := c.l2Get(ctx, token, key); ok {
			c.unlock(key)
			return f, false, true
		}
		return nil, true, false
	}
	c.lockWaits.Add(1)
	t := time.NewTicker(lockPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, false, false
		case <-t.C:
		}
		if f, ok := c.l2Get(ctx, token, key); ok {
			return f, false, true
		}
		rctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
		n, err := c.cfg.Redis.Exists(rctx, lockKey(key)).Result()
		cancel()
		if err != nil || n == 0 {
			// The lock is gone. The holder may have written its entry just
			// after our read: look once more. If there is still none, it
			// failed (or its answer was not cacheable): ask ourselves.
			if f, ok := c.l2Get(ctx, token, key); ok {
				return f, false, true
			}
			return nil, false, false
		}
	}
}

// unlock releases the lock once the entry is written.
func (c *Cache) unlock(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RedisTimeout)
	defer cancel()
	if err := c.cfg.Redis.Del(ctx, lockKey(key)).Err(); err != nil {
		c.redisFailed("error")
	}
}
