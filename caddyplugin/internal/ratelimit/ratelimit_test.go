package ratelimit

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/tokencache/redistest"
)

func count(t *testing.T, l *Limiter, key string, q Quota, n int) (allowed int, last Decision) {
	t.Helper()
	for i := 0; i < n; i++ {
		d, err := l.Allow(context.Background(), key, q)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			allowed++
		}
		last = d
	}
	return allowed, last
}

func TestF03_LocalQuota(t *testing.T) {
	l, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	q := Quota{Requests: 10, Per: time.Minute}
	allowed, last := count(t, l, "hab:a", q, 15)
	if allowed != 10 || last.Allowed || last.RetryAfter <= 0 || last.Remaining != 0 || last.Limit != 10 || last.Shared {
		t.Fatalf("allowed %d, last %+v", allowed, last)
	}
	if a, _ := count(t, l, "hab:b", q, 3); a != 3 {
		t.Fatal("quotas are not per key")
	}
}

// TestF03_SharedQuotaAcrossInstances: two limiters on one real Redis
// share one quota.
func TestF03_SharedQuotaAcrossInstances(t *testing.T) {
	addr := redistest.Addr(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	a, _ := New(Config{Redis: rdb})
	b, _ := New(Config{Redis: rdb})
	key := "hab:shared-" + time.Now().Format("150405.000000000")
	q := Quota{Requests: 20, Per: time.Minute}
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for _, l := range []*Limiter{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, last := count(t, l, key, q, 10)
			if !last.Shared {
				t.Error("decision not shared")
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total != 20 {
		t.Fatalf("%d allowed across two instances, want exactly 20", total)
	}
	keys, _ := rdb.Keys(context.Background(), "*"+key+"*").Result()
	for _, k := range keys {
		if !strings.HasPrefix(k, "rate:"+KeyPrefix) {
			t.Errorf("key %q outside the namespace", k)
		}
		if ttl, _ := rdb.PTTL(context.Background(), k).Result(); ttl <= 0 {
			t.Errorf("key %q has no TTL", k)
		}
	}
}

// TestF06_RedisDownFallsBackToLocal: with Redis gone, the quota is still
// enforced, per instance.
func TestF06_RedisDownFallsBackToLocal(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	failures := 0
	l, _ := New(Config{Redis: rdb, OnRedisError: func() { failures++ }})
	srv.Kill()
	allowed, last := count(t, l, "hab:x", Quota{Requests: 5, Per: time.Minute}, 8)
	if allowed != 5 || last.Shared || failures != 8 {
		t.Fatalf("allowed %d, shared %v, failures %d", allowed, last.Shared, failures)
	}
}

func TestKeyForHidesTheValue(t *testing.T) {
	k := KeyFor([]byte("secret-secret-secret-secret-1234"), "ip", "203.0.113.7")
	if strings.Contains(k, "203.0.113.7") || !strings.HasPrefix(k, "ip:") || len(k) != 3+32 {
		t.Fatalf("key %q", k)
	}
	if k == KeyFor([]byte("another-secret-another-secret-12"), "ip", "203.0.113.7") {
		t.Fatal("key independent of the secret")
	}
}

func TestBadQuota(t *testing.T) {
	l, _ := New(Config{})
	if _, err := l.Allow(context.Background(), "k", Quota{}); err == nil {
		t.Fatal("zero quota accepted")
	}
}
