package datapass

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// req: C12, C13
// TestRotationUnreadableRecordKept: during a rolling rotation of the
// webhook secret, an instance not reloaded yet holds only the previous
// key and cannot open a record another instance sealed under the new one
// (a revoke). It must not write its older copy over that record, nor merge
// a late approve DataPass delivers again into its older copy and write
// that over it: either would undo the revoke in Redis, for every instance
// that reads it then. Nor may it keep serving its older copy: it refuses
// the habilitations bound to that record until it can read it.
func TestRotationUnreadableRecordKept(t *testing.T) {
	mr := miniredis.RunT(t)
	ctx := context.Background()
	client := func() redis.UniversalClient {
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
		t.Cleanup(func() { _ = rdb.Close() })
		return rdb
	}
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	a := NewRedis(client(), newKey, oldKey) // reloaded with the new secret and the previous one
	b := NewRedis(client(), oldKey)         // not reloaded yet
	for _, s := range []*Redis{a, b} {
		if err := s.Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}
	pa, pb := processorOn(t, a), processorOn(t, b)
	if o := deliver(pb, payload(t, "approve", 1000, siretServed, authz(1, "active", "cnaf_quotient_familial"))); o.Result != ResultApplied {
		t.Fatalf("approve: %+v", o)
	}
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if o := deliver(pa, payload(t, "revoke", 2000, siretServed, authz(1, "revoked", "cnaf_quotient_familial"))); o.Result != ResultApplied {
		t.Fatalf("revoke: %+v", o)
	}
	revokedInRedis := func(when string) {
		t.Helper()
		fresh := NewRedis(client(), newKey, oldKey)
		_ = fresh.Reload(ctx)
		if r, ok := fresh.Live().Record("48213"); !ok || r.Active {
			t.Fatalf("%s: Redis no longer holds the revoke (%+v, %v)", when, r, ok)
		}
		if !servedBy(t, pa.Bindings, fresh.Live(), "mairie-qf").Revoked {
			t.Fatalf("%s: a new instance serves the revoked habilitation", when)
		}
	}
	revokedInRedis("after the revoke")

	_ = b.Reload(ctx) // its periodic reload: the revoke is not readable with the previous key alone
	revokedInRedis("after the reload of the instance holding the previous key only")
	if !servedBy(t, pb.Bindings, b.Live(), "mairie-qf").Revoked {
		t.Fatal("the instance holding the previous key only serves its copy, older than a record it cannot read")
	}

	// DataPass delivers the approve again, late, to that instance.
	if o := deliver(pb, payload(t, "approve", 1500, siretServed, authz(1, "active", "cnaf_quotient_familial"))); o.Status != 503 {
		t.Fatalf("late approve: %+v, want 503 (DataPass delivers again)", o)
	}
	revokedInRedis("after a late approve delivered to the instance holding the previous key only")
	if !servedBy(t, pb.Bindings, b.Live(), "mairie-qf").Revoked {
		t.Fatal("a late approve delivered to the instance holding the previous key only is served")
	}

	// Reloaded with both keys, the instance reads the revoke.
	b2 := NewRedis(client(), newKey, oldKey)
	if err := b2.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if !servedBy(t, pb.Bindings, b2.Live(), "mairie-qf").Revoked {
		t.Fatal("reloaded with both keys, the instance serves the revoked habilitation")
	}
}

// req: C12, C13
// TestForgedRecordRefusesOnlyItsRequest: whoever can write to Redis writes
// a record with the seal's prefix and a wrong seal. The instance stays
// ready: that request's habilitations are refused (its record cannot be
// trusted, nor the instance's older copy), every other decision goes on.
// Before, one such record made every instance not ready, for good. A
// forged record that claims a time later than any event the webhook
// accepts orders nothing: the instance's own copy replaces it.
func TestForgedRecordRefusesOnlyItsRequest(t *testing.T) {
	mr := miniredis.RunT(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	key := bytes.Repeat([]byte{3}, 32)
	a := NewRedis(rdb, key)
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	pa := processorOn(t, a)
	if o := deliver(pa, payload(t, "approve", 1000, siretServed, authz(1, "active", "cnaf_quotient_familial"))); o.Result != ResultApplied {
		t.Fatalf("approve: %+v", o)
	}
	forge := func(firedAt time.Time) {
		b, _ := json.Marshal(Record{RequestID: "48213", FiredAt: firedAt.UnixNano(), Active: true})
		mr.HSet(RecordsKey, "48213", sealVersion+strings.Repeat("0", 64)+"."+string(b))
	}

	forge(time.Now()) // later than the instance's copy
	if err := a.Reload(ctx); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("reload over a forged record: %v, want ErrCorrupt", err)
	}
	if !a.Live().LiveReady() {
		t.Fatal("one forged record made the instance not ready")
	}
	if !servedBy(t, pa.Bindings, a.Live(), "mairie-qf").Revoked {
		t.Fatal("the habilitation of the forged record is served from the instance's own copy")
	}
	if servedBy(t, pa.Bindings, a.Live(), "other").Revoked {
		t.Fatal("a habilitation the forged record does not concern is refused")
	}

	forge(time.Now().Add(24 * time.Hour)) // later than any event the webhook accepts
	if err := a.Reload(ctx); err != nil {
		t.Fatalf("reload over a forged record from the future: %v", err)
	}
	if r, ok := readingRedis(t, rdb, key).Record("48213"); !ok || !r.Active {
		t.Fatalf("Redis after the reload: %+v, %v; want the instance's copy back", r, ok)
	}
	if servedBy(t, pa.Bindings, a.Live(), "mairie-qf").Revoked {
		t.Fatal("the habilitation is still refused once its record is readable again")
	}
}

// readingRedis returns the records Redis holds, as a new instance holding
// key reads them.
func readingRedis(t *testing.T, rdb redis.UniversalClient, key []byte) *Live {
	t.Helper()
	s := NewRedis(rdb, key)
	if err := s.Reload(context.Background()); err != nil {
		t.Fatalf("reading Redis: %v", err)
	}
	return s.Live()
}
