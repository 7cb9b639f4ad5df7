// Package ratelimit enforces quotas (SECURITY.md F03, F04, F06): GCRA in one
// Redis script (github.com/go-redis/redis_rate), shared by every instance,
// or in process (golang.org/x/time/rate) when no Redis is configured.
//
// When Redis fails, each decision falls back to the in-process limiter with
// the same quota: during the outage a cluster of N instances lets through at
// most N times the quota, and limits never vanish (F06). Redis keys are
// "rate:passerelle:v1:rl:" + a caller-chosen key that must hold no personal
// data (hash a client address first: see KeyFor).
package ratelimit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// KeyPrefix namespaces the limiter's keys (redis_rate adds "rate:").
const KeyPrefix = "passerelle:v1:rl:"

// Quota is Requests per Per, with a burst of Requests.
type Quota struct {
	Requests int
	Per      time.Duration
}

// Decision is the outcome of one Allow.
type Decision struct {
	Allowed    bool
	Limit      int
	Remaining  int
	RetryAfter time.Duration // > 0 when refused
	Reset      time.Duration // until the quota is whole again
	Shared     bool          // decided by Redis (false: in process)
}

// Limiter decides quotas. It is safe for concurrent use.
type Limiter struct {
	redis   *redis_rate.Limiter
	timeout time.Duration
	local   *lru.Cache[localKey, *rate.Limiter]
	mu      sync.Mutex // serialises creation of local limiters
	errors  func()     // called on every Redis failure (metrics)
}

// Config configures a Limiter.
type Config struct {
	// Redis shares the quotas across instances; nil: in process only.
	Redis redis.UniversalClient
	// RedisTimeout bounds one decision in Redis (default 50ms).
	RedisTimeout time.Duration
	// MaxLocalKeys bounds the in-process limiters (default 100 000; the
	// least recently used are forgotten).
	MaxLocalKeys int
	// OnRedisError is called when Redis fails and the local limiter
	// decides instead.
	OnRedisError func()
}

// New builds a Limiter. It makes no network call.
func New(cfg Config) (*Limiter, error) {
	if cfg.MaxLocalKeys <= 0 {
		cfg.MaxLocalKeys = 100_000
	}
	if cfg.RedisTimeout <= 0 {
		cfg.RedisTimeout = 50 * time.Millisecond
	}
	local, err := lru.New[localKey, *rate.Limiter](cfg.MaxLocalKeys)
	if err != nil {
		return nil, err
	}
	l := &Limiter{local: local, timeout: cfg.RedisTimeout, errors: cfg.OnRedisError}
	if cfg.Redis != nil {
		l.redis = redis_rate.NewLimiter(cfg.Redis)
	}
	if l.errors == nil {
		l.errors = func() {}
	}
	return l, nil
}

// ErrBadQuota reports a quota that cannot be enforced.
var ErrBadQuota = errors.New("ratelimit: quota must be positive")

// Allow takes one request from key's quota.
func (l *Limiter) Allow(ctx context.Context, key string, q Quota) (Decision, error) {
	if q.Requests <= 0 || q.Per <= 0 {
		return Decision{}, ErrBadQuota
	}
	if l.redis != nil {
		ctx, cancel := context.WithTimeout(ctx, l.timeout)
		res, err := l.redis.Allow(ctx, KeyPrefix+key, redis_rate.Limit{Rate: q.Requests, Burst: q.Requests, Period: q.Per})
		cancel()
		if err == nil {
			return Decision{
				Allowed: res.Allowed > 0, Limit: q.Requests, Remaining: res.Remaining,
				RetryAfter: max(res.RetryAfter, 0), Reset: max(res.ResetAfter, 0), Shared: true,
			}, nil
		}
		l.errors()
	}
	return l.allowLocal(key, q), nil
}

func (l *Limiter) allowLocal(key string, q Quota) Decision {
	lim := l.localLimiter(key, q)
	now := time.Now()
	every := q.Per / time.Duration(q.Requests)
	r := lim.ReserveN(now, 1)
	d := Decision{Limit: q.Requests}
	if delay := r.DelayFrom(now); delay > 0 {
		r.CancelAt(now)
		d.RetryAfter = delay
	} else {
		d.Allowed = true
	}
	tokens := lim.TokensAt(now)
	d.Remaining = max(int(math.Floor(tokens)), 0)
	d.Reset = time.Duration((float64(q.Requests) - tokens) * float64(every))
	return d
}

// localKey names one in-process limiter: a struct, so that a lookup
// allocates nothing.
type localKey struct {
	key string
	q   Quota
}

func (l *Limiter) localLimiter(key string, q Quota) *rate.Limiter {
	lk := localKey{key, q}
	if lim, ok := l.local.Get(lk); ok {
		return lim
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if lim, ok := l.local.Get(lk); ok {
		return lim
	}
	lim := rate.NewLimiter(rate.Every(q.Per/time.Duration(q.Requests)), q.Requests)
	l.local.Add(localKey{strings.Clone(key), q}, lim)
	return lim
}

// Shared reports whether decisions go through Redis (so keys leave the
// process and must hold no personal data).
func (l *Limiter) Shared() bool { return l.redis != nil }

// KeyFor derives a limiter key from a personal value (a client address):
// hex(HMAC-SHA256(secret, value)), truncated to 128 bits, under kind.
func KeyFor(secret []byte, kind, value string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(value))
	return kind + ":" + hex.EncodeToString(m.Sum(nil)[:16])
}
