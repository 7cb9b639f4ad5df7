package tokencache

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// req: B01
func TestB01_RedisKeyFormat(t *testing.T) {
	k1 := codec{keySecret: secret(), valSecret: secret()}
	k2 := codec{keySecret: secret(), valSecret: k1.valSecret}
	tok := canaryToken(t)

	key := k1.redisKey(tok)
	if !strings.HasPrefix(key, KeyPrefix) || KeyPrefix != "passerelle:v1:fc:" {
		t.Fatalf("key %q lacks prefix %q", key, KeyPrefix)
	}
	sum := strings.TrimPrefix(key, KeyPrefix)
	if b, err := hex.DecodeString(sum); err != nil || len(b) != 32 || strings.ToLower(sum) != sum {
		t.Fatalf("key suffix %q is not lowercase hex of 32 bytes", sum)
	}
	if strings.Contains(key, tok) || strings.Contains(key, strings.TrimPrefix(tok, "CANARYTOKEN-")) {
		t.Fatal("key contains the token")
	}
	if k1.redisKey(tok) != key {
		t.Fatal("key is not stable")
	}
	if k2.redisKey(tok) == key {
		t.Fatal("key does not depend on the key secret")
	}
	if k1.redisKey(tok+"x") == key {
		t.Fatal("key does not depend on the token")
	}
	// Two caches sharing secrets agree on the key (B08 depends on it).
	s := newShared()
	a, b := s.cache(t, nil), s.cache(t, nil)
	if a.codec.redisKey(tok) != b.codec.redisKey(tok) {
		t.Fatal("two instances with one secret disagree on the key")
	}
}

// req: B01
func TestB01_TokenNeverARedisArgument(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := client(t, mr.Addr())
	rec := &recorder{}
	rdb.AddHook(rec)
	s := newShared()
	tok := canaryToken(t)
	f := returns(activeFacts(s.clock.Now().Add(time.Hour)))

	mustGet(t, s.cache(t, rdb), tok, f) // GET miss, fetch, SET
	mustGet(t, s.cache(t, rdb), tok, f) // GET hit
	if got := f.calls.Load(); got != 1 {
		t.Fatalf("fetch calls = %d, want 1", got)
	}
	rec.assertAbsent(t, tok, strings.TrimPrefix(tok, "CANARYTOKEN-"), canaryFamily, canaryBirthdate, canarySub)
	for _, k := range mr.Keys() {
		if !strings.HasPrefix(k, KeyPrefix) {
			t.Fatalf("key %q outside prefix", k)
		}
	}
}

// req: B02
func TestB02_RoundTrip(t *testing.T) {
	c := codec{keySecret: secret(), valSecret: secret()}
	tok := canaryToken(t)
	key := c.redisKey(tok)
	now := time.Now()
	in := activeFacts(now.Add(time.Hour))
	val, err := c.seal(tok, key, in, now.Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if val[0] != valueVersion {
		t.Fatalf("version byte = %d", val[0])
	}
	for _, canary := range []string{tok, canaryFamily, canaryBirthdate, canarySub, "family_name", "eidas1"} {
		if bytes.Contains(val, []byte(canary)) {
			t.Fatalf("sealed value shows %q", canary)
		}
	}
	env, err := c.open(tok, key, val)
	if err != nil {
		t.Fatal(err)
	}
	if env.Until != now.Add(30*time.Second).UnixMilli() {
		t.Fatalf("until = %d", env.Until)
	}
	got := env.Facts
	if got.Sub != in.Sub || !got.ExpiresAt.Equal(in.ExpiresAt) || !reflect.DeepEqual(got.Identity, in.Identity) ||
		got.ACR != in.ACR || got.ClientID != in.ClientID || len(got.Scopes) != 3 || !got.Active {
		t.Fatalf("round trip mismatch: %+v", got)
	}
	// Two seals of the same facts differ (random nonce).
	val2, _ := c.seal(tok, key, in, now.Add(30*time.Second))
	if bytes.Equal(val, val2) {
		t.Fatal("nonce reused")
	}
}

// req: B02
func TestB02_BitFlipKeySwapWrongSecret(t *testing.T) {
	c := codec{keySecret: secret(), valSecret: secret()}
	tok, other := canaryToken(t), canaryToken(t)
	key, otherKey := c.redisKey(tok), c.redisKey(other)
	now := time.Now()
	val, err := c.seal(tok, key, activeFacts(now.Add(time.Hour)), now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("bit flip", func(t *testing.T) {
		for i := range len(val) * 8 {
			v := bytes.Clone(val)
			v[i/8] ^= 1 << (i % 8)
			if _, err := c.open(tok, key, v); err == nil {
				t.Fatalf("value with bit %d flipped opened", i)
			}
		}
		for _, v := range [][]byte{nil, val[:1], val[:len(val)-1], append(bytes.Clone(val), 0)} {
			if _, err := c.open(tok, key, v); err == nil {
				t.Fatalf("truncated/extended value (%d bytes) opened", len(v))
			}
		}
	})
	t.Run("key swap", func(t *testing.T) {
		// The value moved under another token's key: wrong AAD and wrong
		// derived key, whichever token the reader holds.
		if _, err := c.open(tok, otherKey, val); err == nil {
			t.Fatal("value opened under another key")
		}
		if _, err := c.open(other, otherKey, val); err == nil {
			t.Fatal("value opened for another token")
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		wrongVal := codec{keySecret: c.keySecret, valSecret: secret()}
		if _, err := wrongVal.open(tok, key, val); err == nil {
			t.Fatal("value opened with the wrong k_val")
		}
		// Written by someone holding k_key (so the right key name) but not k_val.
		forged, _ := wrongVal.seal(tok, key, activeFacts(now.Add(time.Hour)), now.Add(time.Minute))
		if _, err := c.open(tok, key, forged); err == nil {
			t.Fatal("value sealed without k_val opened")
		}
		// Written by someone holding k_val but not k_key: lands under a key
		// we never read; and read under ours the AAD differs.
		wrongKey := codec{keySecret: secret(), valSecret: c.valSecret}
		forged, _ = wrongKey.seal(tok, wrongKey.redisKey(tok), activeFacts(now.Add(time.Hour)), now.Add(time.Minute))
		if _, err := c.open(tok, key, forged); err == nil {
			t.Fatal("value sealed under a key made without k_key opened")
		}
	})
}

// req: B02
func FuzzB02_OpenValue(f *testing.F) {
	c := codec{keySecret: []byte("fuzz-key-secret-0123456789abcdef"), valSecret: []byte("fuzz-val-secret-0123456789abcdef")}
	wrong := codec{keySecret: c.keySecret, valSecret: []byte("fuzz-val-secret-WRONG-6789abcdef")}
	const tok = "CANARYTOKEN-fuzz"
	key := c.redisKey(tok)
	now := time.Unix(1_800_000_000, 0)
	// Deterministic: every fuzz worker process rebuilds the same value.
	good, err := c.sealWithNonce(tok, key, activeFacts(now.Add(time.Hour)), now.Add(time.Minute), [nonceLen]byte{1, 2, 3})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{valueVersion})
	f.Add(append([]byte{valueVersion}, make([]byte, 40)...))
	f.Add([]byte(`{"until":1,"facts":{"active":true}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := wrong.open(tok, key, data); err == nil {
			t.Fatal("opened without the right value secret")
		}
		if _, err := c.open("CANARYTOKEN-other", key, data); err == nil {
			t.Fatal("opened without the right token")
		}
		env, err := c.open(tok, key, data)
		if err == nil {
			if !bytes.Equal(data, good) {
				t.Fatalf("forged value opened: %x", data)
			}
			if env.Facts == nil {
				t.Fatal("opened to nil facts")
			}
		}
	})
}
