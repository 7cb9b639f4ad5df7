package redislock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/tokencache/redistest"
)

func newClient(t *testing.T) (*redis.Client, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	var b [8]byte
	_, _ = rand.Read(b[:])
	return rdb, "passerelle:v1:test:" + hex.EncodeToString(b[:]) + ":lock"
}

// req: B08, B11
// TestLateHolderKeepsTheNextLock: a holder slower than its lock's lifetime
// releases after another instance took the lock; the other's lock stays,
// so a third instance still waits. A plain DEL would have let it in.
func TestLateHolderKeepsTheNextLock(t *testing.T) {
	rdb, key := newClient(t)
	ctx := context.Background()
	slow, err := Acquire(ctx, rdb, key, time.Minute)
	if err != nil || slow == nil {
		t.Fatalf("first Acquire: %v, %v", slow, err)
	}
	if l, err := Acquire(ctx, rdb, key, time.Minute); err != nil || l != nil {
		t.Fatalf("a held lock was taken again: %v, %v", l, err)
	}
	if err := rdb.Del(ctx, key).Err(); err != nil { // the slow holder's lock expires
		t.Fatal(err)
	}
	next, err := Acquire(ctx, rdb, key, time.Minute)
	if err != nil || next == nil {
		t.Fatalf("an expired lock could not be taken: %v, %v", next, err)
	}
	if err := slow.Release(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	if held, err := Held(ctx, rdb, key); err != nil || !held {
		t.Fatalf("the late holder released the next holder's lock (held %v, %v)", held, err)
	}
	if l, err := Acquire(ctx, rdb, key, time.Second); err != nil || l != nil {
		t.Fatalf("a third instance took the lock: %v, %v", l, err)
	}
	if err := next.Release(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	if held, err := Held(ctx, rdb, key); err != nil || held {
		t.Fatalf("the holder's release left the lock (held %v, %v)", held, err)
	}
}

func TestDeleteIfSame(t *testing.T) {
	rdb, key := newClient(t)
	ctx := context.Background()
	if err := rdb.Set(ctx, key, "mine", time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	if ok, err := DeleteIfSame(ctx, rdb, key, "theirs"); err != nil || ok {
		t.Fatalf("another value deleted: %v, %v", ok, err)
	}
	if ok, err := DeleteIfSame(ctx, rdb, key, "mine"); err != nil || !ok {
		t.Fatalf("the same value not deleted: %v, %v", ok, err)
	}
	if ok, err := DeleteIfSame(ctx, rdb, key, "mine"); err != nil || ok {
		t.Fatalf("a missing key reported deleted: %v, %v", ok, err)
	}
}
