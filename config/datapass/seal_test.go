package datapass

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// testSealKey seals the records of the tests' stores.
var testSealKey = bytes.Repeat([]byte{7}, 32)

// openStored decodes a value the tests' stores wrote (sealed).
func openStored(raw string, r *Record) error {
	var err error
	var id struct {
		RequestID string `json:"request_id"`
	}
	_, body, _ := bytes.Cut([]byte(raw)[len(sealVersion):], []byte("."))
	if err = json.Unmarshal(body, &id); err != nil {
		return err
	}
	o, err := openRecord([][]byte{testSealKey}, id.RequestID, []byte(raw))
	*r = o.Record
	return err
}

// TestSealedRecords (SECURITY.md §2, a review's attack): whoever can write
// to Redis without the seal key cannot grant access. A revoked
// habilitation's record replaced by a forged grant (later fired_at, more
// scopes), or a sealed grant moved to another request number, is refused
// as corrupt and serves nothing; a record written before records were
// sealed is read only when it revokes.
func TestSealedRecords(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	s := NewRedis(rdb, testSealKey)
	revoked := Record{RequestID: "48213", FiredAt: time.Now().UnixNano(), Event: "revoke", SIRET: "21930048000015"}
	if _, _, err := s.Apply(ctx, revoked); err != nil {
		t.Fatal(err)
	}
	forged := Record{RequestID: "48213", FiredAt: time.Now().Add(100 * 365 * 24 * time.Hour).UnixNano(), Event: "approve",
		SIRET: "21930048000015", Active: true, Grant: true, Scopes: []string{"cnaf_quotient_familial", "dgfip_rfr"}}
	bare, _ := json.Marshal(forged)
	otherKey, _ := sealRecord(bytes.Repeat([]byte{8}, 32), forged)
	moved := forged
	moved.RequestID = "99999"
	sealedMoved, _ := sealRecord(testSealKey, moved)
	for name, raw := range map[string][]byte{
		"bare JSON grant":          bare,
		"sealed with another key":  otherKey,
		"sealed for another id":    sealedMoved,
		"seal cut":                 otherKey[:len(sealVersion)+10],
		"seal of the wrong length": append([]byte(sealVersion+"abcd."), bare...),
	} {
		t.Run(name, func(t *testing.T) {
			mr.HSet(RecordsKey, "48213", string(raw))
			fresh := NewRedis(rdb, testSealKey)
			err := fresh.Reload(ctx)
			if r, ok := fresh.Live().Record("48213"); ok && r.Active {
				t.Fatalf("the forged grant is served: %+v", r)
			}
			if name != "bare JSON grant" && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Reload = %v, want ErrCorrupt", err)
			}
			if got, err := fresh.readRecord(ctx, rdb, "48213"); got != nil && got.Active {
				t.Fatalf("readRecord = %+v, %v", got, err)
			}
		})
	}
	// A revocation written before the seal still applies.
	bareRevoked, _ := json.Marshal(revoked)
	mr.HSet(RecordsKey, "48213", string(bareRevoked))
	fresh := NewRedis(rdb, testSealKey)
	if err := fresh.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if r, ok := fresh.Live().Record("48213"); !ok || r.Active {
		t.Fatalf("an unsealed revocation was dropped: %+v %v", r, ok)
	}
}

// TestSealKeyRotation: during a rotation (the webhook secret and its
// previous one), a record sealed under the previous key is read, and the
// reload seals it again under the new one, so that the previous key can
// go.
func TestSealKeyRotation(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	rec := Record{RequestID: "48213", FiredAt: time.Now().UnixNano(), Event: "approve", SIRET: "21930048000015",
		Active: true, Scopes: []string{"cnaf_quotient_familial"}}
	if _, _, err := NewRedis(rdb, oldKey).Apply(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rotating := NewRedis(rdb, newKey, oldKey)
	if err := rotating.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if r, ok := rotating.Live().Record("48213"); !ok || !r.Active {
		t.Fatalf("the record sealed under the previous key was not read: %+v", r)
	}
	after := NewRedis(rdb, newKey) // the previous key gone
	if err := after.Reload(ctx); err != nil {
		t.Fatalf("not sealed again under the new key: %v", err)
	}
	if r, ok := after.Live().Record("48213"); !ok || !r.Active {
		t.Fatalf("after the rotation: %+v", r)
	}
}

// FuzzOpenRecord: whatever Redis holds (whoever wrote it), a record opens
// for its own request number only, an active one only under a seal that
// checks, and a claim read from a record that does not open is of that
// request number; nothing panics.
func FuzzOpenRecord(f *testing.F) {
	active := Record{RequestID: "48213", FiredAt: 1, Event: "approve", SIRET: "21930048000015", Active: true, Grant: true,
		Scopes: []string{"cnaf_quotient_familial"}, Rev: 1}
	sealed, _ := sealRecord(testSealKey, active)
	other, _ := sealRecord(bytes.Repeat([]byte{8}, 32), active)
	bare, _ := json.Marshal(Record{RequestID: "48213", FiredAt: 1, Event: "revoke"})
	for _, raw := range [][]byte{sealed, other, bare, []byte(sealVersion), []byte(sealVersion + "00."), []byte("null")} {
		f.Add("48213", raw)
	}
	f.Fuzz(func(t *testing.T, id string, raw []byte) {
		o, err := openRecord([][]byte{testSealKey}, id, raw)
		if err == nil {
			if o.RequestID != id {
				t.Fatalf("record of %q opened for %q", o.RequestID, id)
			}
			if o.use && o.Active {
				mac, body, _ := bytes.Cut(bytes.TrimPrefix(raw, []byte(sealVersion)), []byte("."))
				want := hex.EncodeToString(recordMAC(testSealKey, id, body))
				if !bytes.HasPrefix(raw, []byte(sealVersion)) || string(mac) != want {
					t.Fatalf("an active record served without its seal: %q", raw)
				}
			}
			return
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v", err)
		}
		if c, ok := claimed(id, raw); ok && c.RequestID != id {
			t.Fatalf("claim of %q read for %q", c.RequestID, id)
		}
	})
}
