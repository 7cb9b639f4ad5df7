package ratelimit

import (
	"context"
	"fmt"
	"net/netip"
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

// TestCallerHangingUpIsNoRedisFailure: a request whose caller already hung
// up is decided in Redis like any other (it counts there), and is no Redis
// failure: a client that half-closes its connections cannot raise the
// Redis alert, nor move decisions to the local share.
func TestCallerHangingUpIsNoRedisFailure(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	failures := 0
	l, _ := New(Config{Redis: rdb, OnRedisError: func() { failures++ }})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	key := "hab:gone-" + time.Now().Format("150405.000000000")
	q := Quota{Requests: 1, Per: time.Minute}
	d, err := l.Allow(ctx, key, q)
	if err != nil || !d.Allowed || !d.Shared || failures != 0 {
		t.Fatalf("a caller that hung up: %+v, %v, %d Redis failures; want allowed in Redis, no failure", d, err, failures)
	}
	if d, _ := l.Allow(context.Background(), key, q); d.Allowed || !d.Shared {
		t.Fatalf("the next request: %+v; want refused in Redis (the first one counted)", d)
	}
}

// TestF06_RedisDownEnforcesItsShare: the review's case, two instances
// with Redis gone let twice the quota through; told they are two
// (SetShare), each enforces half of it, so the cluster stays within the
// quota. A quota smaller than the cluster keeps 1 request per instance.
// req: F06
func TestF06_RedisDownEnforcesItsShare(t *testing.T) {
	redis.SetLogger(quietRedis{}) // this binary only: the dial failures below are expected
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	instances := func(n int) []*Limiter {
		var ls []*Limiter
		for range n {
			l, _ := New(Config{Redis: rdb})
			l.SetShare(n)
			ls = append(ls, l)
		}
		return ls
	}
	srv.Kill()
	for _, tc := range []struct {
		instances, quota, want int
	}{
		{2, 10, 10},
		{3, 10, 9},
		{2, 1, 2},
	} {
		total := 0
		for _, l := range instances(tc.instances) {
			a, _ := count(t, l, "hab:share", Quota{Requests: tc.quota, Per: time.Hour}, tc.quota+5)
			total += a
		}
		if total != tc.want {
			t.Errorf("%d instances, quota %d: %d allowed, want %d", tc.instances, tc.quota, total, tc.want)
		}
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

// TestF04_ClientNetwork: IPv6 addresses count per prefix (/64 unless
// configured), IPv4 ones per address, mapped IPv4 as IPv4, without zone;
// anything unparsable keeps its own quota under its raw text.
func TestF04_ClientNetwork(t *testing.T) {
	for _, tc := range []struct {
		addr string
		bits int
		want string
	}{
		{"203.0.113.7", 64, "203.0.113.7/32"},
		{"203.0.113.7", 48, "203.0.113.7/32"},                         // the IPv6 prefix never applies to IPv4
		{"::ffff:203.0.113.7", 64, "203.0.113.7/32"},                  // mapped IPv4 is IPv4
		{"::ffff:cb00:7107", 64, "203.0.113.7/32"},                    // the same, in hex
		{"2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64"},             // default
		{"2001:DB8:1:2:ffff:ffff:ffff:ffff", 64, "2001:db8:1:2::/64"}, // case and host part do not matter
		{"2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::/48"},
		{"2001:db8:1:ffff:3:4:5:6", 48, "2001:db8:1::/48"},
		{"2001:db8:1:2:3:4:5:6", 56, "2001:db8:1::/56"},
		{"2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6/128"},
		{"2001:db8:1:2:3:4:5:6", 32, "2001:db8::/32"},
		{"fe80::1:2:3:4%eth0", 64, "fe80::/64"}, // zone dropped
		{"fe80::1:2:3:4%eth1", 64, "fe80::/64"},
		{"::1", 64, "::/64"},
		{"2001:db8:1:2:3:4:5:6", 0, "2001:db8:1:2::/64"},   // unset: the default
		{"2001:db8:1:2:3:4:5:6", 16, "2001:db8:1:2::/64"},  // out of bounds: the default
		{"2001:db8:1:2:3:4:5:6", 129, "2001:db8:1:2::/64"}, // out of bounds: the default
		{"not-an-address", 64, "not-an-address"},
		{"[2001:db8::1]", 64, "[2001:db8::1]"},
		{"203.0.113.7:443", 64, "203.0.113.7:443"},
		{"@", 64, "@"}, // Caddy's client IP on a unix socket
		{"", 64, ""},
	} {
		if got := ClientNetwork(tc.addr, tc.bits); got != tc.want {
			t.Errorf("ClientNetwork(%q, %d) = %q, want %q", tc.addr, tc.bits, got, tc.want)
		}
	}
}

// addrsOf returns n addresses of the /64 prefix (e.g. "2001:db8:7:7").
func addrsOf(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s:%x:%x:%x:%x", prefix, (i*7919+1)&0xffff, i, i*31, i+3)
	}
	return out
}

// TestF04_OneIPv6NetworkOneQuota: the attack of the review: 20 addresses
// of one /64 against a 1/h client quota get one request through, in
// process and through Redis; another /64 keeps its own quota; with a /48
// configured, the /64s of one /48 share it.
func TestF04_OneIPv6NetworkOneQuota(t *testing.T) {
	secret := []byte("secret-secret-secret-secret-1234")
	q := Quota{Requests: 1, Per: time.Hour}
	local, _ := New(Config{})
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	shared, _ := New(Config{Redis: rdb})
	run := time.Now().UnixNano() & 0xffff // a fresh /64 per run: Redis outlives the test
	for name, l := range map[string]*Limiter{"in process": local, "redis": shared} {
		t.Run(name, func(t *testing.T) {
			net64 := fmt.Sprintf("2001:db8:%x:%x", run, map[string]int{"in process": 1, "redis": 2}[name])
			allowed := 0
			for _, addr := range addrsOf(net64, 20) {
				key := l.ClientKey(secret, addr, 64)
				if l.Shared() && (strings.Contains(key, "2001") || strings.Contains(key, "db8")) {
					t.Fatalf("shared key %q shows the address", key)
				}
				d, err := l.Allow(context.Background(), key, q)
				if err != nil {
					t.Fatal(err)
				}
				if d.Shared != l.Shared() {
					t.Fatalf("decision shared %v", d.Shared)
				}
				if d.Allowed {
					allowed++
				}
			}
			if allowed != 1 {
				t.Fatalf("%d of 20 addresses of one /64 allowed, want 1", allowed)
			}
			other := fmt.Sprintf("2001:db8:%x:%x::1", run, 100+map[string]int{"in process": 1, "redis": 2}[name])
			if d, _ := l.Allow(context.Background(), l.ClientKey(secret, other, 64), q); !d.Allowed {
				t.Fatal("another /64 is limited too")
			}
			if d, _ := l.Allow(context.Background(), l.ClientKey(secret, "::ffff:198.51.100."+fmt.Sprint(run%250), 64), q); !d.Allowed {
				t.Fatal("a mapped IPv4 address is limited with IPv6 ones")
			}
			if d, _ := l.Allow(context.Background(), l.ClientKey(secret, "198.51.100."+fmt.Sprint(run%250), 64), q); d.Allowed {
				t.Fatal("an IPv4 address and its mapped form have two quotas")
			}
		})
	}

	t.Run("/48", func(t *testing.T) {
		l, _ := New(Config{})
		allowed := 0
		for i := range 20 {
			addr := fmt.Sprintf("2001:db8:48:%x::%x", i, i+1) // 20 /64s of one /48
			if d, _ := l.Allow(context.Background(), l.ClientKey(secret, addr, 48), q); d.Allowed {
				allowed++
			}
		}
		if allowed != 1 {
			t.Fatalf("%d of 20 /64s of one /48 allowed, want 1", allowed)
		}
	})
}

// TestF04_ClientChurnKeepsHabilitationQuotas: without Redis, (or with
// Redis down), a flood of client networks, through any of their quotas,
// fills the client store only: a habilitation's spent quota is not reset
// by eviction.
func TestF04_ClientChurnKeepsHabilitationQuotas(t *testing.T) {
	const size = 16
	redis.SetLogger(quietRedis{}) // this binary only: the dial failures below are expected
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	down, _ := New(Config{Redis: rdb, MaxLocalKeys: size})
	srv.Kill()
	local, _ := New(Config{MaxLocalKeys: size})
	secret := []byte("secret-secret-secret-secret-1234")
	hab := Quota{Requests: 3, Per: time.Hour}
	client := Quota{Requests: 1000, Per: time.Minute}
	for name, l := range map[string]*Limiter{"in process": local, "redis down": down} {
		t.Run(name, func(t *testing.T) {
			if allowed, last := count(t, l, "hab:42", hab, 4); allowed != 3 || last.Allowed {
				t.Fatalf("habilitation quota: %d allowed", allowed)
			}
			for i := range 8 * size { // IPv4 and IPv6 networks, each new
				addr := fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff)
				if i%2 == 1 {
					addr = fmt.Sprintf("2001:db8:%x:%x::1", i>>16, i&0xffff)
				}
				key := l.ClientKey(secret, addr, 64)
				if d, _ := l.Allow(context.Background(), key, client); !d.Allowed {
					t.Fatalf("client %s refused", addr)
				}
				// The client's other quotas (the front's logins, failed
				// authentications) are client keys too.
				_, _ = l.Allow(context.Background(), key+":front-login", client)
				_, _ = l.Allow(context.Background(), key+":failed_auth", client)
			}
			if d, _ := l.Allow(context.Background(), "hab:42", hab); d.Allowed {
				t.Fatal("client churn reset the habilitation's quota")
			}
			if n := l.clients.cache.Len(); n != size {
				t.Fatalf("client store holds %d limiters, want its bound %d", n, size)
			}
			if n := l.local.cache.Len(); n != 1 {
				t.Fatalf("main store holds %d limiters, want 1", n)
			}
		})
	}
}

// TestF04_BorrowGivesBack: Borrow takes one request like Allow, and its
// giveBack returns it, once however often it is called, in process and
// through a real Redis (where at most one stays taken, for one interval);
// a refused Borrow has nothing to give back.
// req: F04
func TestF04_BorrowGivesBack(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	shared, _ := New(Config{Redis: rdb})
	local, _ := New(Config{})
	q := Quota{Requests: 3, Per: time.Minute}
	for name, l := range map[string]*Limiter{"in process": local, "redis": shared} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			key := "ip:borrow-" + time.Now().Format("150405.000000000") + ":failed_auth"
			for range 10 {
				d, giveBack, err := l.Borrow(ctx, key, q)
				if err != nil || !d.Allowed || giveBack == nil || d.Shared != (l == shared) {
					t.Fatalf("borrow: %+v %v", d, err)
				}
				giveBack()
			}
			want := 3
			if l == shared {
				want = 2 // redis_rate's script cannot give back the last one
			}
			if allowed, _ := count(t, l, key, q, 3); allowed < want {
				t.Fatalf("%d of 3 allowed after 10 borrowed and given back", allowed)
			}
			d, giveBack, err := l.Borrow(ctx, key, q)
			if err != nil || d.Allowed || giveBack != nil || d.RetryAfter <= 0 {
				t.Fatalf("borrow from a spent quota: %+v %v", d, err)
			}
		})
	}
	t.Run("given back once", func(t *testing.T) {
		key := "ip:once"
		_, giveBack, _ := local.Borrow(context.Background(), key, q)
		count(t, local, key, q, 2)
		giveBack()
		giveBack()
		if allowed, _ := count(t, local, key, q, 3); allowed != 1 {
			t.Fatalf("%d allowed after giving one back twice, want 1", allowed)
		}
	})
	if _, _, err := local.Borrow(context.Background(), "k", Quota{}); err != ErrBadQuota {
		t.Fatalf("zero quota: %v", err)
	}
}

// TestClientKeyAllocations: in process, deriving a client key costs one
// allocation (the key), on every request.
func TestClientKeyAllocations(t *testing.T) {
	l, _ := New(Config{})
	for _, addr := range []string{"203.0.113.7", "2001:db8:1:2:3:4:5:6", "::ffff:203.0.113.7"} {
		if n := testing.AllocsPerRun(100, func() { _ = l.ClientKey(nil, addr, 64) }); n > 1 {
			t.Errorf("%s: %.0f allocations", addr, n)
		}
	}
	secret := []byte("secret-secret-secret-secret-1234")
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	shared, _ := New(Config{Redis: rdb})
	if shared.ClientKey(secret, "2001:db8:1:2::9", 64) != KeyFor(secret, ClientKind, "2001:db8:1:2::/64") {
		t.Fatal("a shared client key is not the HMAC of its network")
	}
}

// TestF05_CitizenQuotaPerHabilitation: a citizen's quota is one per
// habilitation, keyed by pseudonym (hashed when it leaves for Redis), and
// a flood of citizens evicts citizen limiters only.
func TestF05_CitizenQuotaPerHabilitation(t *testing.T) {
	const size = 16
	l, _ := New(Config{MaxCitizenKeys: size})
	q := Quota{Requests: 2, Per: time.Hour}
	alice, bob := "cz1-alice-pseudonym", "cz1-bob-pseudonym"
	if allowed, last := count(t, l, l.CitizenKey(nil, "hab:a", alice), q, 3); allowed != 2 || last.Allowed || last.RetryAfter <= 0 {
		t.Fatalf("citizen quota: %d allowed, last %+v", allowed, last)
	}
	if a, _ := count(t, l, l.CitizenKey(nil, "hab:a", bob), q, 1); a != 1 {
		t.Fatal("another citizen of the habilitation refused")
	}
	if a, _ := count(t, l, l.CitizenKey(nil, "hab:b", alice), q, 1); a != 1 {
		t.Fatal("the same citizen under another habilitation refused")
	}
	if allowed, _ := count(t, l, "hab:a", Quota{Requests: 3, Per: time.Hour}, 4); allowed != 3 {
		t.Fatalf("habilitation quota: %d allowed", allowed)
	}
	for i := range 4 * size {
		if a, _ := count(t, l, l.CitizenKey(nil, "hab:a", fmt.Sprint("citizen-", i)), q, 1); a != 1 {
			t.Fatalf("citizen %d refused", i)
		}
	}
	if n := l.citizens.cache.Len(); n != size {
		t.Fatalf("citizen store holds %d limiters, want its bound %d", n, size)
	}
	if d, _ := l.Allow(context.Background(), "hab:a", Quota{Requests: 3, Per: time.Hour}); d.Allowed {
		t.Fatal("citizen churn reset the habilitation's quota")
	}

	secret := []byte("secret-secret-secret-secret-1234")
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	shared, _ := New(Config{Redis: rdb})
	key := shared.CitizenKey(secret, "hab:a", alice)
	if strings.Contains(key, alice) || strings.Contains(key, "hab:a") || !strings.HasPrefix(key, CitizenKind+":") {
		t.Fatalf("shared citizen key %q shows its parts", key)
	}
	if key == shared.CitizenKey(secret, "hab:b", alice) || key == shared.CitizenKey(secret, "hab:a", bob) {
		t.Fatal("shared citizen keys collide")
	}
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// FuzzClientNetwork: any input maps to a network containing the address
// (or to itself when it does not parse), and stays the same network for
// every address of it.
func FuzzClientNetwork(f *testing.F) {
	for _, s := range []string{"203.0.113.7", "::ffff:1.2.3.4", "2001:db8::1", "fe80::1%eth0", "x", ""} {
		f.Add(s, 64)
	}
	f.Fuzz(func(t *testing.T, addr string, bits int) {
		got := ClientNetwork(addr, bits)
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			if got != addr {
				t.Fatalf("unparsable %q became %q", addr, got)
			}
			return
		}
		p, err := netip.ParsePrefix(got)
		if err != nil || !p.Contains(ip.WithZone("").Unmap()) || p != p.Masked() {
			t.Fatalf("%q, %d → %q", addr, bits, got)
		}
		if ip.WithZone("").Unmap().Is4() != (p.Bits() == 32 && p.Addr().Is4()) {
			t.Fatalf("%q → %q: family", addr, got)
		}
		if ClientNetwork(p.Addr().String(), bits) != got {
			t.Fatalf("%q and %q are in different networks", addr, p.Addr())
		}
	})
}
