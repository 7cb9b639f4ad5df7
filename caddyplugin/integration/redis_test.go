package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/tokencache/redistest"
)

// identityCanaries are values of the sandbox tokens' identities.
var identityCanaries = []string{"CNAF", "Georges", "2002-01-01", "Delatour", "Thomas", "1994-04-16", "DUBOIS", "Angela", "1962-08-24"}

// tokenCanaries are the bearer values used below.
var tokenCanaries = []string{"cnaf_qfv2", "all_fc", "cnaf_qf_partial", "inactive"}

// TestB01_B02_B03_RedisHoldsNothingUsable: through the real runtime and a
// real redis-server, every key is namespaced and carries a TTL no longer
// than the token's remaining life, and a dump of every key and value holds
// no token, no identity value and no secret.
func TestB01_B02_B03_RedisHoldsNothingUsable(t *testing.T) {
	srv := redistest.Start(t) // private: the scan must see only this test's keys
	start(t, options{MaxEntries: 2001, Redis: srv.Addr})
	for _, tok := range tokenCanaries {
		get(t, gatewayPort, qf("recipient="+siret), bearer(tok)...)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 3 {
		t.Fatalf("only %d keys in Redis, want the verified tokens cached", len(keys))
	}
	for _, k := range keys {
		// redis_rate prefixes its keys with "rate:".
		if !strings.HasPrefix(k, "passerelle:v1:") && !strings.HasPrefix(k, "rate:passerelle:v1:") {
			t.Errorf("key outside the namespace: %q", k)
		}
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 || ttl > 60*time.Second {
			t.Errorf("key TTL %v, want within (0, token exp]", ttl)
		}
		val, err := rdb.Get(ctx, k).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		dump := append([]byte(k), val...)
		canaries := append(append(append([]string{}, tokenCanaries...), identityCanaries...),
			"fd-secret-canary", "cache-secret-canary", "sandbox-provider-key-canary", "pseudonym-key-canary", "127.0.0.1")
		if leak := contains(dump, canaries...); leak != "" {
			t.Errorf("Redis holds %q", leak)
		}
	}
}

// TestB08_SharedCacheServesAnotherCore: a token verified by one
// configuration is served from Redis to another (a second instance), with
// no second checktoken call, but never to one checking tokens against
// another FranceConnect issuer (a review's finding).
func TestB08_SharedCacheServesAnotherCore(t *testing.T) {
	srv := redistest.Start(t)
	fc := newFCCounter(t)
	start(t, options{MaxEntries: 2002, Redis: srv.Addr, CheckTokenURL: fc.srv.URL})
	if a := get(t, gatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...); a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	// A new configuration has a new in-process tier: only Redis can answer.
	start(t, options{MaxEntries: 2003, Redis: srv.Addr, CheckTokenURL: fc.srv.URL})
	if a := get(t, gatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...); a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	if n := fc.checktoken.Load(); n != 1 {
		t.Fatalf("%d checktoken calls, want 1 for the two instances", n)
	}
	// Another FranceConnect configuration on the same Redis and cache
	// secret (a staging instance on the integration platform, say) never
	// reads these entries: its own checktoken call.
	start(t, options{MaxEntries: 2005, Redis: srv.Addr, CheckTokenURL: fc.srv.URL, Issuer: "http://127.0.0.1:1/api/v2"})
	get(t, gatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...)
	if n := fc.checktoken.Load(); n != 2 {
		t.Fatalf("%d checktoken calls: an entry verified under another issuer was served", n)
	}
}

// TestB09_RedisStoppedMidTest: with Redis killed, every request is still
// decided correctly (live checktoken), never allowed on a cache error.
func TestB09_RedisStoppedMidTest(t *testing.T) {
	srv := redistest.Start(t)
	start(t, options{MaxEntries: 2004, Redis: srv.Addr})
	check := func(when string) {
		t.Helper()
		for tok, want := range map[string]int{"cnaf_qfv2": 200, "cnaf_qf_partial": 200, "inactive": 401, "nope": 401, "unpaired_service": 403} {
			if a := get(t, gatewayPort, qf("recipient="+siret), bearer(tok)...); a.status != want {
				t.Errorf("%s, %s: status %d, want %d: %s", when, tok, a.status, want, a.body)
			}
		}
	}
	check("redis up")
	srv.Kill()
	check("redis down")
	// A fresh configuration (empty in-process tier) with Redis still down.
	start(t, options{MaxEntries: 2005, Redis: srv.Addr})
	check("redis down, cold in-process cache")
}
