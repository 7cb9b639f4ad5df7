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

// retriedSetNX is a client whose SET NX reply is lost once: the command
// ran, and the client's retry finds the key set.
type retriedSetNX struct{ *redis.Client }

func (r retriedSetNX) SetNX(ctx context.Context, key string, value any, ttl time.Duration) *redis.BoolCmd {
	r.Client.SetNX(ctx, key, value, ttl)
	return r.Client.SetNX(ctx, key, value, ttl)
}

// TestRetriedAcquireIsOurs: a SET NX retried after a lost reply finds the
// lock its first try took; Acquire still holds it (else the instance would
// wait on its own lock until it expires), and another's lock stays
// another's.
func TestRetriedAcquireIsOurs(t *testing.T) {
	rdb, key := newClient(t)
	ctx := context.Background()
	l, err := Acquire(ctx, retriedSetNX{rdb}, key, time.Minute)
	if err != nil || l == nil {
		t.Fatalf("a retried SET NX lost the lock it took: %v, %v", l, err)
	}
	if other, err := Acquire(ctx, retriedSetNX{rdb}, key, time.Minute); err != nil || other != nil {
		t.Fatalf("another instance's retried SET NX took a held lock: %v, %v", other, err)
	}
	if err := l.Release(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	if held, err := Held(ctx, rdb, key); err != nil || held {
		t.Fatalf("the lock stayed after its release (held %v, %v)", held, err)
	}
}
