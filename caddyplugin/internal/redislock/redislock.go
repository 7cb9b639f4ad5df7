// Package redislock is the short cluster lock that puts one instance in
// front of a slow call (a FranceConnect checktoken, a provider's token
// endpoint): SET NX PX under a random value, released only by its holder
// with a compare-and-delete. A holder slower than the lock's lifetime thus
// never releases the lock another instance took after it expired, which a
// plain DEL would, letting a third instance call too.
//
// The lock saves calls; it never decides anything: callers fetch without it
// when Redis fails.
package redislock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/redis/go-redis/v9"
)

// Client is what the lock needs of a go-redis client
// (redis.UniversalClient has it).
type Client interface {
	redis.Cmdable
	redis.Scripter
}

// Lock is a lock taken by Acquire.
type Lock struct {
	key   string
	value string // random: this holder's
}

// Acquire takes the lock named key for ttl. It returns nil, and no error,
// when another instance holds it.
func Acquire(ctx context.Context, rdb Client, key string, ttl time.Duration) (*Lock, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	l := &Lock{key: key, value: hex.EncodeToString(b[:])}
	ok, err := rdb.SetNX(ctx, key, l.value, ttl).Result()
	if err != nil {
		return nil, err
	}
	if !ok {
		// A SET NX the client retried (its first reply lost to a read
		// timeout) finds the lock its first try took: ours all the same,
		// rather than waiting on ourselves until it expires.
		if v, err := rdb.Get(ctx, key).Result(); err != nil || v != l.value {
			return nil, nil
		}
	}
	return l, nil
}

// Release deletes the lock if it is still this holder's: once its lifetime
// is over, another instance's lock of the same name stays.
func (l *Lock) Release(ctx context.Context, rdb Client) error {
	_, err := DeleteIfSame(ctx, rdb, l.key, l.value)
	return err
}

// Held reports whether some instance holds the lock named key.
func Held(ctx context.Context, rdb Client, key string) (bool, error) {
	n, err := rdb.Exists(ctx, key).Result()
	return n > 0, err
}

// deleteIfSame deletes KEYS[1] only if it still holds exactly ARGV[1].
var deleteIfSame = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

// DeleteIfSame deletes key only if it holds exactly value, atomically; it
// reports whether it deleted.
func DeleteIfSame(ctx context.Context, rdb Client, key, value string) (bool, error) {
	n, err := deleteIfSame.Run(ctx, rdb, []string{key}, value).Int()
	return n == 1, err
}
