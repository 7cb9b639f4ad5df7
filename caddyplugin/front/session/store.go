package session

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store keeps sealed records under opaque keys, with a time to live. The
// memory store serves one instance; the Redis store every instance behind a
// load balancer without stickiness.
type Store interface {
	// Get returns a record, ok false when there is none.
	Get(ctx context.Context, key string) (val []byte, ok bool, err error)
	// Set writes a record that expires after ttl.
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// Replace writes a record only when it exists: a record deleted
	// meanwhile (a logout, a hand-off) is never written back. ok is false
	// when there was none.
	Replace(ctx context.Context, key string, val []byte, ttl time.Duration) (ok bool, err error)
	// Take returns a record and deletes it, atomically: a single-use
	// record is taken once even by two instances at the same instant.
	Take(ctx context.Context, key string) (val []byte, ok bool, err error)
	// Delete removes a record.
	Delete(ctx context.Context, key string) error
}

// Counter is a Store that can count its live records under a key prefix.
type Counter interface {
	Count(ctx context.Context, prefix string) (int, error)
}

// ErrFull is returned by the memory store when it holds MaxEntries live
// records: a flood of logins cannot exhaust the gateway's memory.
var ErrFull = errors.New("session: store full")

// Memory is an in-process Store, bounded.
type Memory struct {
	max int
	now func() time.Time

	mu sync.Mutex
	m  map[string]memEntry
}

type memEntry struct {
	val     []byte
	expires time.Time
}

// NewMemory returns a memory store of at most max live records (default
// 100 000).
func NewMemory(max int, now func() time.Time) *Memory {
	if max <= 0 {
		max = 100000
	}
	if now == nil {
		now = time.Now
	}
	return &Memory{max: max, now: now, m: map[string]memEntry{}}
}

// Get implements Store.
func (s *Memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok || !s.now().Before(e.expires) {
		return nil, false, nil
	}
	return e.val, true, nil
}

// Sweep drops the records expired by now.
func (s *Memory) Sweep(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.m {
		if !now.Before(e.expires) {
			delete(s.m, k)
		}
	}
}

// Set implements Store.
func (s *Memory) Set(_ context.Context, key string, val []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if _, exists := s.m[key]; !exists && len(s.m) >= s.max {
		for k, e := range s.m {
			if !now.Before(e.expires) {
				delete(s.m, k)
			}
		}
		if len(s.m) >= s.max {
			return ErrFull
		}
	}
	s.m[key] = memEntry{val: val, expires: now.Add(ttl)}
	return nil
}

// Replace implements Store.
func (s *Memory) Replace(_ context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if e, ok := s.m[key]; !ok || !now.Before(e.expires) {
		return false, nil
	}
	s.m[key] = memEntry{val: val, expires: now.Add(ttl)}
	return true, nil
}

// Take implements Store.
func (s *Memory) Take(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	delete(s.m, key)
	if !ok || !s.now().Before(e.expires) {
		return nil, false, nil
	}
	return e.val, true, nil
}

// Delete implements Store.
func (s *Memory) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
	return nil
}

// Count implements Counter: the live records whose key starts with prefix.
func (s *Memory) Count(_ context.Context, prefix string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now, n := s.now(), 0
	for k, e := range s.m {
		if strings.HasPrefix(k, prefix) && now.Before(e.expires) {
			n++
		}
	}
	return n, nil
}

// Len is the number of records held, expired ones included until swept.
func (s *Memory) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Redis is a Store on Redis (a node, Sentinel or Cluster through
// go-redis's UniversalClient).
type Redis struct{ c redis.UniversalClient }

// NewRedis returns a Redis store.
func NewRedis(c redis.UniversalClient) *Redis { return &Redis{c: c} }

// Get implements Store.
func (s *Redis) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := s.c.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	return v, err == nil, err
}

// Set implements Store.
func (s *Redis) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return s.c.Set(ctx, key, val, ttl).Err()
}

// Replace implements Store with SET XX.
func (s *Redis) Replace(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	ok, err := s.c.SetXX(ctx, key, val, ttl).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return ok, err
}

// Take implements Store with GETDEL.
func (s *Redis) Take(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := s.c.GetDel(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	return v, err == nil, err
}

// Count implements Counter with SCAN (no KEYS: it never blocks Redis for
// long), on a single node or Sentinel master; on a Cluster, on each master.
func (s *Redis) Count(ctx context.Context, prefix string) (int, error) {
	count := func(ctx context.Context, c redis.Cmdable) (int, error) {
		n := 0
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			n++
		}
		return n, iter.Err()
	}
	if cc, ok := s.c.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		total := 0
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			n, err := count(ctx, c)
			mu.Lock()
			total += n
			mu.Unlock()
			return err
		})
		return total, err
	}
	return count(ctx, s.c)
}

// Delete implements Store.
func (s *Redis) Delete(ctx context.Context, key string) error { return s.c.Del(ctx, key).Err() }
