package caddyplugin

import (
	"context"
	"fmt"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// redisLogger routes go-redis' internal messages (pool dial failures and the
// like: addresses, never keys or values) into Caddy's logs instead of
// stderr. go-redis has one process-wide logger, so it is set once.
type redisLogger struct{ l *zap.Logger }

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	if c := r.l.Check(zap.WarnLevel, "redis client"); c != nil {
		c.Write(zap.String("detail", fmt.Sprintf(format, v...)))
	}
}

var setRedisLogger sync.Once

func routeRedisLogs() {
	setRedisLogger.Do(func() { redis.SetLogger(redisLogger{caddy.Log().Named("passerelle.redis")}) })
}
