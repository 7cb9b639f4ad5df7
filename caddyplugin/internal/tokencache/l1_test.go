package tokencache

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
)

// req: B08 — the in-memory tier is size-bounded (LRU).
func TestL1_Bounded(t *testing.T) {
	for _, max := range []int{100, 5000, DefaultMaxEntries} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			c := newL1(max)
			f := &fcverify.Facts{Active: true}
			for i := range 2 * max {
				c.put(fmt.Sprintf("tok-%d", i), f, 0, 1<<62)
				if i == 0 || i%7 == 0 {
					c.get("tok-0", 0) // keep tok-0 recently used
				}
			}
			if n := c.len(); n > max || n < max*9/10 {
				t.Fatalf("len %d, want about %d and never more", n, max)
			}
			if _, ok := c.get("tok-0", 0); !ok {
				t.Fatal("recently used entry evicted")
			}
			if _, ok := c.get("tok-1", 0); ok {
				t.Fatal("least recently used entry kept")
			}
		})
	}
}

func TestL1_ExpiredEntryIsRemoved(t *testing.T) {
	c := newL1(10)
	c.put("t", &fcverify.Facts{}, 0, 100)
	if _, ok := c.get("t", 99); !ok {
		t.Fatal("miss before deadline")
	}
	if _, ok := c.get("t", 100); ok {
		t.Fatal("hit at deadline")
	}
	if c.len() != 0 {
		t.Fatal("expired entry not removed")
	}
}

func TestL1_ReplaceAndReuseFreedSlots(t *testing.T) {
	c := newL1(3)
	a, b := &fcverify.Facts{Sub: "a"}, &fcverify.Facts{Sub: "b"}
	c.put("x", a, 0, 10)
	c.put("x", b, 0, 20) // replace in place
	if f, ok := c.get("x", 15); !ok || f != b || c.len() != 1 {
		t.Fatalf("replace: %v %v len %d", f, ok, c.len())
	}
	c.put("y", a, 0, 10)
	c.put("z", a, 0, 10)
	c.get("x", 11) // y and z expire, x stays
	c.get("y", 11)
	c.get("z", 11)
	if c.len() != 1 {
		t.Fatalf("len %d after expiry", c.len())
	}
	for _, k := range []string{"p", "q"} { // fill the freed slots, no eviction needed
		c.put(k, a, 0, 100)
	}
	if _, ok := c.get("x", 12); !ok || c.len() != 3 {
		t.Fatalf("freed slots not reused: len %d", c.len())
	}
	c.put("r", a, 0, 100) // full: CLOCK evicts one entry without its bit
	if c.len() != 3 {
		t.Fatalf("len %d above bound", c.len())
	}
	if _, ok := c.get("x", 12); !ok {
		t.Fatal("referenced entry evicted before unreferenced ones")
	}
}

// TestL1_ExpiredEntriesMakeRoom: a stream of new tokens, each living a
// while, keeps the cache near the number of entries still alive, not at its
// bound: expired entries are reused as the hand passes them (issue 8 soak:
// 100 000 expired entries held about 100 MB).
func TestL1_ExpiredEntriesMakeRoom(t *testing.T) {
	c := newL1(100_000)
	const ttl = 1000 // ticks; one new token per tick
	f := &fcverify.Facts{}
	for now := int64(0); now < 50_000; now++ {
		c.put(fmt.Sprintf("tok-%d", now), f, now, now+ttl)
	}
	t.Logf("%d entries for %d alive at a time", c.len(), ttl)
	if n := c.len(); n > 3*ttl {
		t.Fatalf("%d entries for %d alive at a time", n, ttl)
	}
	for now := int64(50_000 - ttl/2); now < 50_000; now++ {
		if _, ok := c.get(fmt.Sprintf("tok-%d", now), 50_000); !ok {
			t.Fatalf("live entry tok-%d lost", now)
		}
	}
	// Full cache: an expired entry goes before a referenced live one.
	small := newL1(2)
	small.put("old", f, 0, 10)
	small.put("live", f, 0, 100)
	small.get("old", 5) // referenced, then expires
	small.get("live", 5)
	small.put("new", f, 20, 120)
	if _, ok := small.get("live", 21); !ok {
		t.Fatal("a live entry was evicted while an expired one stayed")
	}
}

func TestL1_HitAllocatesNothing(t *testing.T) {
	s := newShared()
	c := s.cache(t, nil)
	tok := canaryToken(t)
	f := returns(activeFacts(s.clock.Now().Add(time.Hour)))
	mustGet(t, c, tok, f)
	ctx := context.Background()
	fetch := f.fetch
	if n := testing.AllocsPerRun(1000, func() { _, _, _ = c.Get(ctx, tok, fetch) }); n != 0 {
		t.Fatalf("L1 hit allocates %v times", n)
	}
}

func benchCache(b *testing.B) (*Cache, []string, func(context.Context) (*fcverify.Facts, error)) {
	c, err := New(Config{}) // real clock, as in production
	if err != nil {
		b.Fatal(err)
	}
	f := activeFacts(time.Now().Add(time.Hour))
	fetch := func(context.Context) (*fcverify.Facts, error) { return f, nil }
	toks := make([]string, 1024)
	for i := range toks {
		// FranceConnect access tokens are opaque strings of a few dozen bytes.
		toks[i] = fmt.Sprintf("fc-at-%058d", i)
		if _, _, err := c.Get(context.Background(), toks[i], fetch); err != nil {
			b.Fatal(err)
		}
	}
	return c, toks, fetch
}

func BenchmarkL1Hit(b *testing.B) {
	c, toks, fetch := benchCache(b)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, src, _ := c.Get(ctx, toks[i&1023], fetch); src != SourceL1 {
			b.Fatal("miss")
		}
		i++
	}
}

func BenchmarkL1HitParallel(b *testing.B) {
	c, toks, fetch := benchCache(b)
	ctx := context.Background()
	b.ReportAllocs()
	var seq atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1) * 331) // goroutines walk the tokens from different places
		for pb.Next() {
			if _, src, _ := c.Get(ctx, toks[i&1023], fetch); src != SourceL1 {
				b.Fatal("miss")
			}
			i++
		}
	})
}

func TestNewRedisClient(t *testing.T) {
	rdb := NewRedisClient(RedisOptions{
		Addrs:    []string{"127.0.0.1:1"},
		Username: "passerelle", Password: "pw", DB: 2,
		TLS:      &tls.Config{MinVersion: tls.VersionTLS10, ServerName: "redis.internal"},
		PoolSize: 10_000,
	})
	defer rdb.Close()
	c, ok := rdb.(*redis.Client)
	if !ok {
		t.Fatalf("single address built %T", rdb)
	}
	o := c.Options()
	if !o.ContextTimeoutEnabled || o.MaxRetries != 1 || o.DialTimeout != 200*time.Millisecond ||
		o.ReadTimeout != 50*time.Millisecond || o.WriteTimeout != 50*time.Millisecond ||
		o.PoolSize != MaxRedisPoolSize || o.MaxActiveConns != MaxRedisPoolSize ||
		o.Username != "passerelle" || o.DB != 2 || !o.DisableIdentity {
		t.Fatalf("options %+v", o)
	}
	if o.TLSConfig == nil || o.TLSConfig.MinVersion != tls.VersionTLS12 || o.TLSConfig.ServerName != "redis.internal" {
		t.Fatalf("tls %+v", o.TLSConfig)
	}
	// An unreachable Redis fails within the command deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("ping to a closed port succeeded")
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("failed after %s", d)
	}

	if _, ok := NewRedisClient(RedisOptions{Addrs: []string{"a:1", "b:1"}}).(*redis.ClusterClient); !ok {
		t.Fatal("several addresses should build a cluster client")
	}
	if _, ok := NewRedisClient(RedisOptions{Addrs: []string{"a:1"}, MasterName: "m"}).(*redis.Client); !ok {
		t.Fatal("a master name should build a failover client")
	}
}

// BenchmarkL1Clock is the floor of BenchmarkL1Hit: the monotonic clock read
// that the expiry re-check needs on every hit.
func BenchmarkL1Clock(b *testing.B) {
	c, _, _ := benchCache(b)
	var sink int64
	for b.Loop() {
		sink += c.tick()
	}
	_ = sink
}
