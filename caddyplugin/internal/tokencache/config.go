package tokencache

import (
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Shipped defaults and hard bounds (SECURITY.md B03, B06, B09).
const (
	DefaultMaxEntries   = 100_000
	DefaultTTLCap       = 30 * time.Second
	MaxTTLCap           = 60 * time.Second
	DefaultNegativeTTL  = 5 * time.Second
	MaxNegativeTTL      = 10 * time.Second
	DefaultSkew         = 10 * time.Second
	DefaultRedisTimeout = 50 * time.Millisecond
	DefaultFetchTimeout = 3 * time.Second

	// MinSecretLen is the minimum length of KeySecret and ValueSecret.
	MinSecretLen = 32
)

// Config shapes a Cache. Zero values take the defaults above.
type Config struct {
	// MaxEntries bounds the in-process tier (LRU). Default 100 000.
	MaxEntries int
	// TTLCap bounds how long an entry lives in either tier. Default 30 s,
	// at most 60 s.
	TTLCap time.Duration
	// NegativeTTL is how long verified `active: false` facts are kept.
	// Default 5 s, at most 10 s.
	NegativeTTL time.Duration
	// Skew is subtracted from the token expiry: TTL = min(exp − now − skew,
	// cap); nothing is stored when TTL <= 0. Default 10 s.
	Skew time.Duration
	// KeySecret (k_key) keys the HMAC-SHA256 of the token that names the
	// Redis entry. Required, at least 32 bytes, when Redis is set; a random
	// per-process secret is used otherwise.
	KeySecret []byte
	// ValueSecret (k_val) is the HKDF-SHA256 salt of the per-token value key.
	// Required, at least 32 bytes and distinct from KeySecret, when Redis is
	// set.
	ValueSecret []byte
	// Redis is the optional shared tier; nil keeps the cache in process.
	Redis redis.UniversalClient
	// RedisTimeout bounds each Redis command. Default 50 ms.
	RedisTimeout time.Duration
	// FetchTimeout is the deadline of the detached lookup (L2 + fetch + fill).
	// Default 3 s.
	FetchTimeout time.Duration
	// Now is the wall clock; default time.Now. When left nil, L1 deadlines
	// are kept on the monotonic clock, which is cheaper to read on the hot
	// path and immune to wall-clock steps; an injected Now drives both.
	Now func() time.Time
	// Logger receives debug logs only; never keys, tokens or facts.
	Logger *zap.Logger
	// OnRedisError, when set, is called on every Redis failure with
	// "error" (command failed or timed out) or "corrupt" (a value that does
	// not open): the hook for metrics.
	OnRedisError func(kind string)
}

// Configuration errors.
var (
	ErrBadConfig = errors.New("tokencache: invalid configuration")
)

func (cfg *Config) setDefaults() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrBadConfig}, a...)...))
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = DefaultMaxEntries
	} else if cfg.MaxEntries < 0 {
		bad("max_entries must be positive")
	}
	if cfg.TTLCap == 0 {
		cfg.TTLCap = DefaultTTLCap
	} else if cfg.TTLCap < 0 || cfg.TTLCap > MaxTTLCap {
		bad("ttl cap must be in (0, %s]", MaxTTLCap)
	}
	if cfg.NegativeTTL == 0 {
		cfg.NegativeTTL = DefaultNegativeTTL
	} else if cfg.NegativeTTL < 0 || cfg.NegativeTTL > MaxNegativeTTL {
		bad("negative ttl must be in (0, %s]", MaxNegativeTTL)
	}
	if cfg.Skew == 0 {
		cfg.Skew = DefaultSkew
	} else if cfg.Skew < 0 {
		bad("skew must not be negative")
	}
	if cfg.RedisTimeout == 0 {
		cfg.RedisTimeout = DefaultRedisTimeout
	} else if cfg.RedisTimeout < 0 {
		bad("redis timeout must be positive")
	}
	if cfg.FetchTimeout == 0 {
		cfg.FetchTimeout = DefaultFetchTimeout
	} else if cfg.FetchTimeout < 0 {
		bad("fetch timeout must be positive")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Redis != nil {
		if len(cfg.KeySecret) < MinSecretLen {
			bad("key secret of at least %d bytes is required with redis", MinSecretLen)
		}
		if len(cfg.ValueSecret) < MinSecretLen {
			bad("value secret of at least %d bytes is required with redis", MinSecretLen)
		}
		if len(cfg.KeySecret) > 0 && string(cfg.KeySecret) == string(cfg.ValueSecret) {
			bad("key secret and value secret must differ")
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// Without Redis the secrets only name in-process singleflight slots:
	// random per-process values are fine and keep the code path single.
	if len(cfg.KeySecret) == 0 {
		cfg.KeySecret = randomSecret()
	}
	if len(cfg.ValueSecret) == 0 {
		cfg.ValueSecret = randomSecret()
	}
	// Copy the secrets so that a caller reusing its slices cannot change them.
	cfg.KeySecret = append([]byte(nil), cfg.KeySecret...)
	cfg.ValueSecret = append([]byte(nil), cfg.ValueSecret...)
	return nil
}

func randomSecret() []byte {
	b := make([]byte, MinSecretLen)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

// ttl returns how long facts observed at now may be kept (B03, B06). A
// result <= 0 means "do not store".
func ttl(active bool, exp, now time.Time, cap, skew, negative time.Duration) time.Duration {
	if !active {
		return min(negative, MaxNegativeTTL, cap)
	}
	if exp.IsZero() {
		return 0
	}
	return min(exp.Sub(now)-skew, cap)
}
