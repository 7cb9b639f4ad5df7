package tokencache

import (
	"crypto/tls"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Redis client defaults (STYLE.md §12, SECURITY.md B09, B10).
const (
	DefaultRedisDialTimeout  = 200 * time.Millisecond
	DefaultRedisReadTimeout  = 50 * time.Millisecond
	DefaultRedisWriteTimeout = 50 * time.Millisecond
	DefaultRedisPoolSize     = 32
	MaxRedisPoolSize         = 256
)

// RedisOptions shapes NewRedisClient. Zero durations and sizes take the
// defaults above.
type RedisOptions struct {
	// Addrs: one address for a single node, several for a cluster, or the
	// Sentinel addresses when MasterName is set.
	Addrs      []string
	MasterName string
	Username   string
	Password   string
	DB         int
	// TLS enables TLS; MinVersion is raised to TLS 1.2 when lower. The
	// production audit (B10) refuses a nil TLS; this constructor does not.
	TLS          *tls.Config
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// PoolSize bounds the connections (PoolSize and MaxActiveConns).
	// Default 32, at most 256.
	PoolSize int
}

// NewRedisClient builds the shared-tier client: single node, Sentinel or
// Cluster depending on opts (redis.NewUniversalClient). Context deadlines
// bound socket I/O (ContextTimeoutEnabled), there is at most one retry, the
// pool is bounded, and the client sends no identity or maintenance
// notification commands, so an ACL user limited to the commands used
// (GET, SET, EXISTS, and EVALSHA and EVAL for the cluster lock's release,
// which runs GET and DEL; plus the connection handshake) suffices (B10). It
// makes no network call.
func NewRedisClient(opts RedisOptions) redis.UniversalClient {
	pool := opts.PoolSize
	if pool <= 0 {
		pool = DefaultRedisPoolSize
	}
	pool = min(pool, MaxRedisPoolSize)
	var tc *tls.Config
	if opts.TLS != nil {
		tc = opts.TLS.Clone()
		if tc.MinVersion < tls.VersionTLS12 {
			tc.MinVersion = tls.VersionTLS12
		}
	}
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 append([]string(nil), opts.Addrs...),
		MasterName:            opts.MasterName,
		Username:              opts.Username,
		Password:              opts.Password,
		DB:                    opts.DB,
		TLSConfig:             tc,
		ContextTimeoutEnabled: true,
		DialTimeout:           orDefault(opts.DialTimeout, DefaultRedisDialTimeout),
		DialerRetries:         1,
		ReadTimeout:           orDefault(opts.ReadTimeout, DefaultRedisReadTimeout),
		WriteTimeout:          orDefault(opts.WriteTimeout, DefaultRedisWriteTimeout),
		PoolTimeout:           orDefault(opts.DialTimeout, DefaultRedisDialTimeout),
		MaxRetries:            1,
		PoolSize:              pool,
		MaxActiveConns:        pool,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	})
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
