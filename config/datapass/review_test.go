package datapass

// Regressions of the security review of the DataPass synchronisation:
// each test tries a failure or an attack the review found, and expects it
// refused.

import (
	"context"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// redisStores returns a miniredis and a constructor of Redis stores (one
// per instance) on it, each read once.
func redisStores(t *testing.T) (*miniredis.Miniredis, func() *Redis) {
	mr := miniredis.RunT(t)
	return mr, func() *Redis {
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
		t.Cleanup(func() { rdb.Close() })
		s := NewRedis(rdb, testSealKey)
		if err := s.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func processorOn(t *testing.T, st Store) *Processor {
	reg := testRegistry(t)
	return &Processor{Secrets: [][]byte{[]byte(secret)}, Store: st, Bindings: func() *habilitation.Registry { return reg }, KnownScope: known}
}

func servedBy(t *testing.T, reg func() *habilitation.Registry, l *Live, id string) *habilitation.Habilitation {
	t.Helper()
	h, ok := habilitation.NewOverlaid(reg, l).Current().ByID(id)
	if !ok {
		t.Fatal(id + " gone")
	}
	return h
}

// req: C12, C13
// TestRedisLossKeepsRevocation: Redis restarts empty, DataPass delivers an
// old approve again: it is stale on the instance that holds the revoke,
// which writes the revoke back; a new instance refuses.
func TestRedisLossKeepsRevocation(t *testing.T) {
	mr, newStore := redisStores(t)
	a := newStore()
	pa := processorOn(t, a)
	approve := payload(t, "approve", 1000, siretServed, authz(1, "active", "cnaf_quotient_familial"))
	deliver(pa, approve)
	if o := deliver(pa, payload(t, "revoke", 2000, siretServed, authz(1, "revoked", "cnaf_quotient_familial"))); o.Result != ResultApplied {
		t.Fatal(o)
	}
	mr.FlushAll()
	if o := deliver(pa, approve); o.Result != ResultStale {
		t.Fatalf("old approve after the Redis loss: %s", o.Result)
	}
	var r Record
	if err := openStored(mr.HGet(RecordsKey, "48213"), &r); err != nil || r.Active {
		t.Fatalf("Redis after the stale approve: %+v %v", r, err)
	}
	c := newStore()
	if h := servedBy(t, pa.Bindings, c.Live(), "mairie-qf"); !h.Revoked {
		t.Fatal("a new instance serves the revoked habilitation")
	}
}

// req: C13
// TestLostSubscriptionRefuses: an instance whose subscription is lost
// (Redis gone, or a partition) would miss the revocations other instances
// apply: it refuses the habilitations bound to DataPass until it has read
// Redis again, and serves them once it has. Unbound ones stay served.
func TestLostSubscriptionRefuses(t *testing.T) {
	mr, newStore := redisStores(t)
	s := newStore()
	p := processorOn(t, s)
	if o := deliver(p, payload(t, "approve", 1000, siretServed, authz(1, "active", "cnaf_quotient_familial"))); o.Result != ResultApplied {
		t.Fatal(o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { s.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	served := func() bool { return !servedBy(t, p.Bindings, s.Live(), "mairie-qf").Revoked }
	waitUntil(t, "not served while subscribed", served)

	mr.Close() // the subscription's connection fails
	waitUntil(t, "served after the subscription was lost", func() bool { return !served() && !s.Live().LiveReady() })
	if h := servedBy(t, p.Bindings, s.Live(), "other"); h.Revoked {
		t.Fatal("an unbound habilitation refused")
	}
	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "still refused after Redis was read again", served)
}

// req: C13
// TestSilentPartitionRefuses: the subscription's connection stops carrying
// anything without being closed (a partition): the ping left unanswered
// makes the instance refuse the bound habilitations until Redis answers
// again and has been read.
func TestSilentPartitionRefuses(t *testing.T) {
	mr := miniredis.RunT(t)
	px := newFreezer(t, mr.Addr())
	rdb := redis.NewClient(&redis.Options{Addr: px.addr, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	s := NewRedis(rdb, testSealKey)
	p := processorOn(t, s)
	if o := deliver(p, payload(t, "approve", 1000, siretServed, authz(1, "active", "cnaf_quotient_familial"))); o.Result != ResultApplied {
		t.Fatal(o)
	}
	old := pingEvery
	pingEvery = 100 * time.Millisecond
	t.Cleanup(func() { pingEvery = old })
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { s.Run(ctx); close(stopped) }()
	t.Cleanup(func() { px.frozen.Store(false); cancel(); <-stopped })
	served := func() bool { return !servedBy(t, p.Bindings, s.Live(), "mairie-qf").Revoked }
	waitUntil(t, "not served while subscribed", served)

	px.frozen.Store(true)
	waitUntil(t, "served through a silent partition", func() bool { return !served() })
	px.frozen.Store(false)
	waitUntil(t, "still refused after Redis answered again", served)
}

// freezer is a TCP proxy to Redis that can stop carrying bytes without
// closing anything, as a partition does.
type freezer struct {
	addr   string
	frozen atomic.Bool
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f := &freezer{addr: ln.Addr().String()}
	pipe := func(dst, src net.Conn) {
		defer dst.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			for f.frozen.Load() {
				time.Sleep(5 * time.Millisecond)
			}
			if n > 0 {
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
	return f
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
	}
}

// req: C13
// TestRedisRollbackRepaired: Redis comes back older than an instance's
// copy: the reload writes the later copy back, and every instance agrees.
func TestRedisRollbackRepaired(t *testing.T) {
	mr, newStore := redisStores(t)
	a, b := newStore(), newStore()
	pa, pb := processorOn(t, a), processorOn(t, b)
	ctx := context.Background()
	deliver(pa, payload(t, "approve", 1000, siretServed, authz(1, "active", "cnaf_quotient_familial")))
	old := mr.HGet(RecordsKey, "48213")
	if err := b.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	deliver(pb, payload(t, "revoke", 2000, siretServed, authz(1, "revoked", "cnaf_quotient_familial")))
	mr.HSet(RecordsKey, "48213", old) // back to a persistence point before the revoke
	for _, s := range []*Redis{b, a} {
		if err := s.Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var r Record
	_ = openStored(mr.HGet(RecordsKey, "48213"), &r)
	if !servedBy(t, pa.Bindings, a.Live(), "mairie-qf").Revoked || !servedBy(t, pb.Bindings, b.Live(), "mairie-qf").Revoked || r.Active {
		t.Fatalf("split state after the reloads: Redis %+v", r)
	}
}

// req: C13
// TestRedisDownRevokeAppliedLocally: Redis is down when a revoke arrives:
// 503 (DataPass delivers again), and the receiving instance refuses at
// once; an approve in the same outage changes nothing.
func TestRedisDownRevokeAppliedLocally(t *testing.T) {
	mr, newStore := redisStores(t)
	a := newStore()
	pa := processorOn(t, a)
	deliver(pa, payload(t, "approve", 1000, siretServed, authz(1, "active", "cnaf_quotient_familial")))
	mr.Close()
	if o := deliver(pa, payload(t, "approve", 1500, siretServed, authz(1, "active", "cnaf_quotient_familial", "dgfip_rfr"))); o.Status != 503 {
		t.Fatalf("approve with Redis down: %+v", o)
	}
	if h := servedBy(t, pa.Bindings, a.Live(), "mairie-qf"); h.HasScope("dgfip_rfr") {
		t.Fatal("an approve widened access while Redis was down")
	}
	o := deliver(pa, payload(t, "revoke", 2000, siretServed, authz(1, "revoked", "cnaf_quotient_familial")))
	if o.Status != 503 || !servedBy(t, pa.Bindings, a.Live(), "mairie-qf").Revoked {
		t.Fatalf("revoke with Redis down: status %d, still served", o.Status)
	}
}

// TestPendingRecordOfAnotherOrganisation: a pending request later bound to
// a habilitation of another organisation refuses it.
func TestPendingRecordOfAnotherOrganisation(t *testing.T) {
	m := NewMemory()
	cur, err := habilitation.Parse([]byte("habilitations:\n  - {id: h, label: H, siret: \"" + siretOther + "\", modalities: [france_connect], scopes: [dgfip_rfr]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := &Processor{Secrets: [][]byte{[]byte(secret)}, Store: m, Bindings: func() *habilitation.Registry { return cur },
		KnownScope: known, SIRETs: []string{siretServed}}
	if o := deliver(p, payload(t, "approve", 1000, siretServed, authz(1, "active", "cnaf_quotient_familial"))); o.Result != ResultPending {
		t.Fatal(o)
	}
	cur, err = habilitation.Parse([]byte("habilitations:\n  - {id: h, datapass_id: \"48213\", label: H, siret: \"" + siretOther + "\", modalities: [france_connect], scopes: [dgfip_rfr]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if h := servedBy(t, func() *habilitation.Registry { return cur }, m.Live(), "h"); !h.Revoked {
		t.Fatalf("bound across organisations: %+v", h)
	}
}

// TestPendingTransferAway: a pending request transferred to an
// organisation not served is revoked, not ignored.
func TestPendingTransferAway(t *testing.T) {
	m := NewMemory()
	reg, err := habilitation.Parse([]byte("habilitations:\n  - {id: other, label: A, siret: \"" + siretOther + "\", modalities: [france_connect], scopes: [dgfip_rfr]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := &Processor{Secrets: [][]byte{[]byte(secret)}, Store: m, Bindings: func() *habilitation.Registry { return reg },
		KnownScope: known, SIRETs: []string{siretServed}}
	deliver(p, payload(t, "approve", 1000, siretServed, authz(1, "active", "cnaf_quotient_familial")))
	deliver(p, payload(t, "transfer", 2000, siretNobody, authz(1, "active", "cnaf_quotient_familial")))
	if rec, _ := m.Live().Record("48213"); rec.Active {
		t.Fatalf("a request transferred away stays active: %+v", rec)
	}
}

// TestGrantLeavesOtherModalities: DataPass's FranceConnect authorization
// does not widen a habilitation's other modalities.
func TestGrantLeavesOtherModalities(t *testing.T) {
	m := NewMemory()
	reg, err := habilitation.Parse([]byte("habilitations:\n  - {id: h, datapass_id: \"48213\", label: H, siret: \"" + siretServed +
		"\", modalities: [france_connect, identite], france_connect_client_ids: [client-a], scopes: [dgfip_rfr]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := &Processor{Secrets: [][]byte{[]byte(secret)}, Store: m, Bindings: func() *habilitation.Registry { return reg }, KnownScope: known}
	deliver(p, payload(t, "approve", 1000, siretServed, authz(1, "active", "cnaf_quotient_familial", "dgfip_rfr")))
	if h := servedBy(t, p.Bindings, m.Live(), "h"); h.Revoked || !slices.Equal(h.Scopes, []string{"dgfip_rfr"}) {
		t.Fatalf("a mixed habilitation took DataPass's FranceConnect scopes: %+v", h.Scopes)
	}
}

// TestMemoryUntilResync: a Memory store that waits for its resync refuses
// the bound habilitations until then.
func TestMemoryUntilResync(t *testing.T) {
	m := NewMemoryUntilResync()
	p := processorOn(t, m)
	if h := servedBy(t, p.Bindings, m.Live(), "mairie-qf"); !h.Revoked {
		t.Fatal("served before the first resync")
	}
	if h := servedBy(t, p.Bindings, m.Live(), "other"); h.Revoked {
		t.Fatal("an unbound habilitation refused")
	}
}

// TestFutureEventRefused: a signed event dated ahead of this clock is
// refused (it would make every later event stale) and accepted once its
// time has come.
func TestFutureEventRefused(t *testing.T) {
	m := NewMemory()
	p := processorOn(t, m)
	future := payload(t, "approve", time.Now().Add(365*24*time.Hour).Unix(), siretServed, authz(1, "active", "cnaf_quotient_familial"))
	if o := deliver(p, future); o.Status != 400 || o.Result != ResultFuture {
		t.Fatalf("future approve: %+v", o)
	}
	if o := deliver(p, payload(t, "revoke", time.Now().Unix(), siretServed, authz(1, "revoked", "cnaf_quotient_familial"))); o.Result != ResultApplied {
		t.Fatalf("the revoke after it: %s", o.Result)
	}
	p.Now = func() time.Time { return time.Now().Add(366 * 24 * time.Hour) }
	if o := deliver(p, future); o.Result != ResultApplied {
		t.Fatalf("once its time has come: %s", o.Result)
	}
}

// req: C13
// TestAdoptedRevocationWrittenBack: a revoke applied by a store alone while
// Redis was down is adopted by the store of the next configuration, which
// writes it back once Redis answers; adopting does not make Live ready.
func TestAdoptedRevocationWrittenBack(t *testing.T) {
	mr, newStore := redisStores(t)
	old := newStore()
	p := processorOn(t, old)
	deliver(p, payload(t, "approve", 1000, siretServed, authz(1, "active", "cnaf_quotient_familial")))
	addr := mr.Addr()
	mr.Close()
	if o := deliver(p, payload(t, "revoke", 2000, siretServed, authz(1, "revoked", "cnaf_quotient_familial"))); o.Status != 503 {
		t.Fatalf("revoke with Redis down: %+v", o)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	next := NewRedis(rdb, testSealKey) // the store of the reloaded configuration
	next.Adopt(old)
	if next.Live().LiveReady() {
		t.Fatal("adopted records made Live ready before Redis was read")
	}
	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := next.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	var r Record
	if err := openStored(mr.HGet(RecordsKey, "48213"), &r); err != nil || r.Active {
		t.Fatalf("Redis after the new store's reload: %+v %v (the revocation was lost)", r, err)
	}
	if !servedBy(t, p.Bindings, next.Live(), "mairie-qf").Revoked {
		t.Fatal("the new store serves the revoked habilitation")
	}
}

// TestAdoptTakesOnlyLocalNarrowings: what a store read from Redis, or has
// written back since, is not adopted: a configuration pointed at another
// Redis gets no approval from the old one, and a narrowing written back
// once Redis answered is no longer carried.
func TestAdoptTakesOnlyLocalNarrowings(t *testing.T) {
	_, newStore := redisStores(t)
	old := newStore()
	p := processorOn(t, old)
	deliver(p, payload(t, "approve", 1000, siretServed, authz(1, "active", "cnaf_quotient_familial")))

	other, newOther := redisStores(t)
	next := newOther()
	next.Adopt(old)
	if err := next.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if other.Exists(RecordsKey) {
		t.Fatal("an approval read from the old Redis was written to the new one")
	}

	// A narrowing applied alone, then written back by the store's own
	// reload: nothing is left to adopt.
	mr2, newStore2 := redisStores(t)
	a := newStore2()
	pa := processorOn(t, a)
	deliver(pa, payload(t, "approve", 1000, siretServed, authz(1, "active", "cnaf_quotient_familial")))
	addr := mr2.Addr()
	mr2.Close()
	deliver(pa, payload(t, "revoke", 2000, siretServed, authz(1, "revoked", "cnaf_quotient_familial")))
	if err := mr2.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	b := NewRedis(rdb, testSealKey)
	b.Adopt(a)
	if _, ok := b.Live().Record("48213"); ok {
		t.Fatal("a narrowing already written back was adopted")
	}
}

// req: C13
// TestTiedCopiesMergeRestrictive: two instances change one request's record
// while cut off from each other, with events of the same second: a revoke
// applied on one alone (Redis down), a narrowing written to Redis by the
// other. Both copies carry the same fired_at and revision. Once Redis is
// back, the revoke is not dropped by either: the reload merges the two
// copies, the more restrictive winning, writes the merge back, and every
// instance converges on it without DataPass delivering the revoke again.
func TestTiedCopiesMergeRestrictive(t *testing.T) {
	o := revokedAloneDuringOutage(t)
	mr, a, b, pa, pb := o.mr, o.a, o.b, o.pa, o.pb
	ctx := context.Background()
	if res := deliver(pb, payload(t, "update", 2000, siretServed, authz(1, "active", "cnaf_quotient_familial"))); res.Result != ResultApplied {
		t.Fatalf("update on the other instance: %+v", res)
	}
	ra, _ := a.Live().Record("48213")
	rb, _ := b.Live().Record("48213")
	if ra.FiredAt != rb.FiredAt || ra.Rev != rb.Rev || ra.Active == rb.Active {
		t.Fatalf("not the tie this test needs: %+v and %+v", ra, rb)
	}

	for _, s := range []*Redis{a, b} {
		if err := s.Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var r Record
	if err := openStored(mr.HGet(RecordsKey, "48213"), &r); err != nil || r.Active || r.Rev != ra.Rev+1 {
		t.Fatalf("Redis after the reloads: %+v %v", r, err)
	}
	for name, s := range map[string]*Redis{"a": a, "b": b} {
		if got, _ := s.Live().Record("48213"); got.Active || got.Rev != r.Rev {
			t.Errorf("instance %s keeps %+v, Redis %+v", name, got, r)
		}
	}
	if !servedBy(t, pb.Bindings, b.Live(), "mairie-qf").Revoked {
		t.Fatal("the instance that did not take the revoke serves the habilitation")
	}
	if c := o.newStore(); !servedBy(t, pa.Bindings, c.Live(), "mairie-qf").Revoked {
		t.Fatal("a new instance serves the habilitation")
	}
	if len(a.pending) != 0 {
		t.Fatalf("pending after the write-back: %v", a.pending)
	}
}

// TestNewestTied: the merge of two tied copies is the more restrictive of
// the two, later than both, and the same in either order; copies that are
// not tied, or the same, keep the later one.
func TestNewestTied(t *testing.T) {
	base := Record{RequestID: "48213", FiredAt: 2e12, Event: "update", SIRET: siretServed, Active: true, Grant: true,
		Scopes: []string{"cnaf_allocataires", "cnaf_quotient_familial"}, Rev: 3}
	narrow := base
	narrow.Event, narrow.Grant, narrow.Scopes = "approve", false, []string{"cnaf_quotient_familial", "dgfip_rfr"}
	m := newest(base, narrow)
	if !m.Active || m.Grant || !slices.Equal(m.Scopes, []string{"cnaf_quotient_familial"}) || m.Rev != 4 || m.Event != "approve" {
		t.Fatalf("merge: %+v", m)
	}
	if n := newest(narrow, base); !n.same(m) || n.Rev != m.Rev {
		t.Fatalf("not the same merge in the other order: %+v and %+v", m, n)
	}
	moved := base
	moved.SIRET = siretOther
	if m := newest(base, moved); m.Active {
		t.Fatalf("copies of two organisations merged active: %+v", m)
	}
	disjoint := base
	disjoint.Scopes = []string{"dgfip_rfr"}
	if m := newest(base, disjoint); m.Active || len(m.Scopes) != 0 {
		t.Fatalf("no scope in common, merged active: %+v", m)
	}
	next := narrow
	next.Rev = 4
	if got := newest(base, next); got.Rev != 4 || !got.same(next) {
		t.Fatalf("a later revision is not kept as it is: %+v", got)
	}
	if got := newest(base, base); got.Rev != base.Rev {
		t.Fatalf("the same copy twice changed: %+v", got)
	}
}

// req: C13
// TestPendingMergedIntoLaterRevision: the second review's case. An
// instance applies a revoke alone while Redis is down; meanwhile another
// applies two other events of the same second, so Redis's copy is one
// revision later. Once Redis is back, the revoke is merged into that copy
// (the more restrictive wins) rather than dropped for its revision.
func TestPendingMergedIntoLaterRevision(t *testing.T) {
	o := revokedAloneDuringOutage(t)
	mr, a, b, pa, pb := o.mr, o.a, o.b, o.pa, o.pb
	ctx := context.Background()
	for _, event := range []string{"update", "reopen"} {
		if res := deliver(pb, payload(t, event, 2000, siretServed, authz(1, "active", "cnaf_quotient_familial"))); res.Result != ResultApplied {
			t.Fatalf("%s on the other instance: %+v", event, res)
		}
	}
	ra, _ := a.Live().Record("48213")
	rb, _ := b.Live().Record("48213")
	if ra.FiredAt != rb.FiredAt || rb.Rev <= ra.Rev || !rb.Active || ra.Active {
		t.Fatalf("not the case this test needs: %+v and %+v", ra, rb)
	}
	for _, s := range []*Redis{a, b} {
		if err := s.Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var r Record
	if err := openStored(mr.HGet(RecordsKey, "48213"), &r); err != nil || r.Active {
		t.Fatalf("Redis after the reloads: %+v %v", r, err)
	}
	for name, s := range map[string]*Redis{"a": a, "b": b} {
		if !servedBy(t, pa.Bindings, s.Live(), "mairie-qf").Revoked {
			t.Errorf("instance %s serves the revoked habilitation", name)
		}
	}
	if len(a.pendingRecords()) != 0 {
		t.Fatalf("pending after the merge: %v", a.pendingRecords())
	}
}

// outage is two instances (stores a, b and their processors) on one Redis
// (mr; newStore adds an instance).
type outage struct {
	mr       *miniredis.Miniredis
	newStore func() *Redis
	a, b     *Redis
	pa, pb   *Processor
}

// revokedAloneDuringOutage sets up an outage: a request approved at 1000
// and read by both instances, then revoked at 2000 on a alone while Redis
// was down (503, applied locally), Redis back since.
func revokedAloneDuringOutage(t *testing.T) outage {
	t.Helper()
	var o outage
	o.mr, o.newStore = redisStores(t)
	o.a, o.b = o.newStore(), o.newStore()
	o.pa, o.pb = processorOn(t, o.a), processorOn(t, o.b)
	deliver(o.pa, payload(t, "approve", 1000, siretServed, authz(1, "active", "cnaf_quotient_familial", "cnaf_allocataires")))
	if err := o.b.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr := o.mr.Addr()
	o.mr.Close()
	if out := deliver(o.pa, payload(t, "revoke", 2000, siretServed, authz(1, "revoked", "cnaf_quotient_familial"))); out.Status != 503 {
		t.Fatalf("revoke with Redis down: %+v", out)
	}
	if err := o.mr.StartAddr(addr); err != nil {
		t.Fatal(err)
	}
	return o
}
