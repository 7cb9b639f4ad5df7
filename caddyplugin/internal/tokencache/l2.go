package tokencache

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
)

// l2Get reads and opens the Redis entry for token. Every failure is a miss
// (B09). A hit re-checks the sealed deadline and the token expiry, then
// fills L1 for no longer than what is left of both (B03).
func (c *Cache) l2Get(ctx context.Context, token, key string) (*fcverify.Facts, bool) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	val, err := c.cfg.Redis.Get(rctx, key).Bytes()
	cancel()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			c.redisFailed("error")
			c.debug("tokencache: redis get failed, treated as a miss", zap.Error(err))
		}
		return nil, false
	}
	env, err := c.codec.open(token, key, val)
	if err != nil {
		c.redisFailed("corrupt")
		c.debug("tokencache: redis value does not open, treated as a miss")
		return nil, false
	}
	now := c.cfg.Now()
	f := env.Facts
	d := min(time.UnixMilli(env.Until).Sub(now),
		ttl(f.Active, f.ExpiresAt, now, c.cfg.TTLCap, c.cfg.Skew, c.cfg.NegativeTTL))
	if d <= 0 {
		c.debug("tokencache: redis entry past its deadline, treated as a miss")
		return nil, false
	}
	tick := c.tick()
	c.l1.put(token, f, tick, tick+int64(d))
	return f, true
}

// l2Set writes the sealed facts with SET key value PX ttl. A failure is only
// logged and counted: the entry simply is not shared.
func (c *Cache) l2Set(ctx context.Context, token, key string, f *fcverify.Facts, until time.Time, d time.Duration) {
	d = d.Truncate(time.Millisecond) // never round the TTL up
	if d <= 0 {
		return
	}
	val, err := c.codec.seal(token, key, f, until)
	if err != nil {
		c.debug("tokencache: sealing failed, entry not shared", zap.Error(err))
		return
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	defer cancel()
	if err := c.cfg.Redis.Set(rctx, key, val, d).Err(); err != nil {
		c.redisFailed("error")
		c.debug("tokencache: redis set failed, entry not shared", zap.Error(err))
	}
}
