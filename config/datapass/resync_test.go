package datapass

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// readStart is when the tests' resyncs start reading (Resync.Now); the
// webhooks of the tests are fired before it, in DataPass's seconds.
var readStart = time.Unix(1767261600+86400, 0)

func at(d time.Duration) int64 { return readStart.Add(d).Unix() }

// newResync returns a resync of the processor's bindings and store, on f.
func newResync(t *testing.T, f *fakeDataPass, p *Processor) *Resync {
	t.Helper()
	return &Resync{API: f.api(t), Store: p.Store, Bindings: p.Bindings, KnownScope: known,
		Now: func() time.Time { return readStart }}
}

func (f *fakeDataPass) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

// TestResyncRepairsMissedRevoke: the approve was delivered, the revoke was
// lost; DataPass's API says revoked.
// req: C12, C13
func TestResyncRepairsMissedRevoke(t *testing.T) {
	p, m := newProcessor(t)
	if o := deliver(p, payload(t, "approve", at(-48*time.Hour), siretServed, authz(1, "active", "cnaf_quotient_familial"))); o.Result != ResultApplied {
		t.Fatalf("approve: %+v", o)
	}
	f := newFakeDataPass(t)
	f.add(apiItem(1, 48213, siretServed, "revoked", "cnaf_quotient_familial"))
	r := newResync(t, f, p)
	rep, err := r.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h := effective(t, p, m); !h.Revoked {
		t.Fatal("revoked in DataPass, still usable after the resync")
	}
	rec, _ := m.Live().Record("48213")
	if rec.Active || rec.Event != EventResync || rec.FiredAt != readStart.UnixNano() {
		t.Fatalf("record %+v: a narrowing is applied at the read's start", rec)
	}
	// Sorted, deduplicated: the file's two organisations.
	if rep.SIRETs != 2 || rep.Requests != 1 || rep.Applied != 1 || rep.Narrowed != 1 || rep.Widened != 0 {
		t.Fatalf("report %+v", rep)
	}
	if got := []string{f.queries[0].Get("siret"), f.queries[1].Get("siret")}; !slices.Equal(got, []string{siretServed, siretOther}) {
		t.Fatalf("organisations read: %v", got)
	}
	if !r.LastSuccess().Equal(readStart) {
		t.Fatalf("LastSuccess %v", r.LastSuccess())
	}
	// The old approve, delivered again by DataPass's retries: stale.
	if o := deliver(p, payload(t, "approve", at(-47*time.Hour), siretServed, authz(1, "active", "cnaf_quotient_familial"))); o.Result != ResultStale {
		t.Fatalf("a late approve after the resync: %+v", o)
	}
	if h := effective(t, p, m); !h.Revoked {
		t.Fatal("a late approve undid the resync")
	}
}

// TestResyncRepairsMissedApprove: revoked, then approved again with other
// scopes; the approve was lost. The resync widens, as an approve would.
func TestResyncRepairsMissedApprove(t *testing.T) {
	p, m := newProcessor(t)
	deliver(p, payload(t, "revoke", at(-48*time.Hour), siretServed, authz(1, "revoked", "cnaf_quotient_familial")))
	if h := effective(t, p, m); !h.Revoked {
		t.Fatal("revoke not applied")
	}
	f := newFakeDataPass(t)
	f.add(apiItem(1, 48213, siretServed, "revoked", "cnaf_quotient_familial"))
	f.add(apiItem(2, 48213, siretServed, "active", "cnaf_quotient_familial", "dgfip_rfr", "openid"))
	rep, err := newResync(t, f, p).Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h := effective(t, p, m)
	if h.Revoked || !slices.Equal(h.Scopes, []string{"cnaf_quotient_familial", "dgfip_rfr"}) {
		t.Fatalf("after the resync: revoked %v scopes %v", h.Revoked, h.Scopes)
	}
	rec, _ := m.Live().Record("48213")
	if !rec.Grant || rec.FiredAt != readStart.Add(-DefaultSkew).UnixNano() {
		t.Fatalf("record %+v: a widening is applied at the read's start − Skew", rec)
	}
	if rep.Widened != 1 || rep.Narrowed != 0 || rep.Applied != 1 {
		t.Fatalf("report %+v", rep)
	}
}

// TestResyncAbsentRequestRevokes: a bound request DataPass no longer lists
// (its authorizations obsolete or gone) is revoked — but only when its
// organisation was read completely.
func TestResyncAbsentRequestRevokes(t *testing.T) {
	p, m := newProcessor(t)
	f := newFakeDataPass(t)
	f.add(apiItem(1, 48213, siretServed, "obsolete", "cnaf_quotient_familial")) // not asked for
	f.refuse = 99                                                               // siretOther's read and siretServed's fail
	r := newResync(t, f, p)
	if _, err := r.Once(context.Background()); err == nil {
		t.Fatal("no error while DataPass refuses")
	}
	if recs := m.Live().Records(); len(recs) != 0 {
		t.Fatalf("an unread organisation's request was revoked: %+v", recs)
	}
	f.set(func() { f.refuse = 0 })
	rep, err := r.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h := effective(t, p, m); !h.Revoked {
		t.Fatal("absent from DataPass, still usable")
	}
	if rep.Requests != 1 || rep.Narrowed != 1 {
		t.Fatalf("report %+v", rep)
	}
}

// TestResyncFiltering: a request of an organisation not served is ignored
// even when the API lists it; a request of a served organisation bound to
// no habilitation is pending; a bound request transferred to another
// served organisation is revoked.
func TestResyncFiltering(t *testing.T) {
	p, m := newProcessor(t)
	p.SIRETs = []string{siretOther} // already the file's: deduplicated
	f := newFakeDataPass(t)
	// A DataPass that ignores the siret filter lists every organisation's
	// requests under each one read: each is still taken for its own.
	f.anySIRET = true
	f.add(apiItem(5, 777, siretNobody, "active", "dgfip_rfr"))
	f.add(apiItem(6, 999, siretOther, "active", "dgfip_rfr"))
	f.add(apiItem(7, 48213, siretOther, "active", "cnaf_quotient_familial"))
	r := newResync(t, f, p)
	r.SIRETs = p.SIRETs
	rep, err := r.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range f.queries {
		if q.Get("siret") == siretNobody {
			t.Fatal("an organisation not served was read")
		}
	}
	if _, ok := m.Live().Record("777"); ok {
		t.Fatal("an organisation not served got a record")
	}
	if rec, ok := m.Live().Record("999"); !ok || !rec.Active || rec.SIRET != siretOther {
		t.Fatalf("pending record: %+v %v", rec, ok)
	}
	if h, _ := habilitation.NewOverlaid(p.Bindings, m.Live()).Current().ByID("other"); h.Revoked {
		t.Fatal("a pending record changed an unbound habilitation")
	}
	if h := effective(t, p, m); !h.Revoked {
		t.Fatal("transferred to another organisation, still usable")
	}
	if rep.SIRETs != 2 || rep.Requests != 2 {
		t.Fatalf("report %+v", rep)
	}
}

// TestResyncSkew: a revoke fired shortly before the read, by a DataPass
// clock ahead of ours (the read still shows the authorization active), and
// delivered while the resync reads, is not undone by the resync.
// req: C12
func TestResyncSkew(t *testing.T) {
	for _, tc := range []struct {
		name    string
		skew    time.Duration
		revoked bool
	}{
		{"default skew", 0, true},
		// The rule is what protects: with a skew below the clocks'
		// difference, the read's older view wins.
		{"skew too small", 10 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, m := newProcessor(t)
			deliver(p, payload(t, "approve", at(-48*time.Hour), siretServed, authz(1, "active", "cnaf_quotient_familial")))
			f := newFakeDataPass(t)
			f.add(apiItem(1, 48213, siretServed, "active", "cnaf_quotient_familial"))
			var delivered atomic.Bool
			f.onRead = func(siret string) {
				if siret == siretServed && !delivered.Swap(true) {
					o := deliver(p, payload(t, "revoke", at(-time.Minute), siretServed, authz(1, "revoked", "cnaf_quotient_familial")))
					if o.Result != ResultApplied {
						t.Errorf("revoke: %+v", o)
					}
				}
			}
			r := newResync(t, f, p)
			r.Skew = tc.skew
			if _, err := r.Once(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !delivered.Load() {
				t.Fatal("the revoke was not delivered during the read")
			}
			if h := effective(t, p, m); h.Revoked != tc.revoked {
				t.Fatalf("revoked %v, want %v", h.Revoked, tc.revoked)
			}
		})
	}
	// A revoke fired after the read started: newer than anything the read
	// may write, whatever the skew.
	p, m := newProcessor(t)
	f := newFakeDataPass(t)
	f.add(apiItem(1, 48213, siretServed, "active", "cnaf_quotient_familial"))
	f.onRead = func(siret string) {
		if siret == siretServed {
			deliver(p, payload(t, "revoke", at(time.Second), siretServed, authz(1, "revoked", "cnaf_quotient_familial")))
		}
	}
	r := newResync(t, f, p)
	r.Skew = time.Nanosecond
	if _, err := r.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h := effective(t, p, m); !h.Revoked {
		t.Fatal("a revoke fired after the read started was undone")
	}
}

// TestResyncAPIDown: nothing changes, the error says so, LastSuccess stays.
// req: C13
func TestResyncAPIDown(t *testing.T) {
	p, m := newProcessor(t)
	f := newFakeDataPass(t)
	f.add(apiItem(1, 48213, siretServed, "active", "cnaf_quotient_familial"))
	r := newResync(t, f, p)
	if _, err := r.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := m.Live().Records()
	first := r.LastSuccess()
	f.set(func() {
		f.down = true
		f.items = nil // were it read, the request would be revoked
	})
	r.Now = func() time.Time { return readStart.Add(time.Hour) }
	rep, err := r.Once(context.Background())
	if err == nil || !errors.Is(err, ErrAPIStatus) {
		t.Fatalf("err %v", err)
	}
	if strings.Contains(err.Error(), canaryEmail) || strings.Contains(err.Error(), apiClientSecret) {
		t.Fatalf("the error leaks: %v", err)
	}
	if rep.SIRETs != 0 || rep.Requests != 0 {
		t.Fatalf("report %+v", rep)
	}
	if after := m.Live().Records(); len(after) != len(before) || after[0].Rev != before[0].Rev || !after[0].Active {
		t.Fatalf("records changed: %+v → %+v", before, after)
	}
	if !r.LastSuccess().Equal(first) {
		t.Fatalf("LastSuccess moved to %v", r.LastSuccess())
	}
	// Closed: a transport error.
	f.srv.Close()
	if _, err := r.Once(context.Background()); err == nil {
		t.Fatal("no error with DataPass unreachable")
	}
}

// req: C13
// TestResyncNullPageChangesNothing: DataPass's API answering a JSON null
// where a list of habilitations is due (an incident, a proxy) is not an
// organisation without authorizations: the resync fails and changes
// nothing, instead of revoking every request bound in that organisation.
func TestResyncNullPageChangesNothing(t *testing.T) {
	p, m := newProcessor(t)
	f := newFakeDataPass(t)
	f.add(apiItem(1, 48213, siretServed, "active", "cnaf_quotient_familial"))
	r := newResync(t, f, p)
	if _, err := r.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.set(func() { f.null = true })
	r.Now = func() time.Time { return readStart.Add(time.Hour) }
	if _, err := r.Once(context.Background()); !errors.Is(err, ErrAPISyntax) {
		t.Fatalf("err %v, want ErrAPISyntax", err)
	}
	if h := servedBy(t, p.Bindings, m.Live(), "mairie-qf"); h.Revoked {
		t.Fatal("a null answer revoked the organisation's habilitations")
	}
	if _, _, err := DecodeHabilitationsPage([]byte(" null ")); !errors.Is(err, ErrAPISyntax) {
		t.Fatalf("null page: %v", err)
	}
}

// TestResyncFailedDeliveries: counted since the last success − skew, or a
// week back at first; -1 when the attempts cannot be read.
func TestResyncFailedDeliveries(t *testing.T) {
	p, _ := newProcessor(t)
	f := newFakeDataPass(t)
	f.attempts = []map[string]any{{"status_code": 500}, {"status_code": 204}, {"status_code": nil}}
	r := newResync(t, f, p)
	r.WebhookID = "7"
	rep, err := r.Once(context.Background())
	if err != nil || rep.FailedDeliveries != 2 {
		t.Fatalf("report %+v, err %v", rep, err)
	}
	r.Now = func() time.Time { return readStart.Add(6 * time.Hour) }
	if _, err := r.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{readStart.Add(-DeliveriesLookback).UTC().Format(time.RFC3339), readStart.Add(-DefaultSkew).UTC().Format(time.RFC3339)}
	if !slices.Equal(f.sinces, want) {
		t.Fatalf("start_time %v, want %v", f.sinces, want)
	}
	var logged []string
	r.Log = func(msg string, err error) { logged = append(logged, msg) }
	r.WebhookID = "8" // unknown: 404
	if rep, err := r.Once(context.Background()); err != nil || rep.FailedDeliveries != -1 || len(logged) != 1 {
		t.Fatalf("report %+v, err %v, logged %v", rep, err, logged)
	}
}

// TestResyncRun: at once, then at each interval, until cancelled; failures
// are logged and retried.
func TestResyncRun(t *testing.T) {
	p, _ := newProcessor(t)
	f := newFakeDataPass(t)
	f.down = true
	r := newResync(t, f, p)
	var failures atomic.Int32
	r.Log = func(string, error) { failures.Add(1) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.Run(ctx, 20*time.Millisecond)
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for failures.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	f.set(func() { f.down = false })
	for r.LastSuccess().IsZero() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if failures.Load() < 2 || r.LastSuccess().IsZero() {
		t.Fatalf("%d failures logged, last success %v", failures.Load(), r.LastSuccess())
	}
}

// TestResyncLeavesRedisReadinessAlone: a resync makes a Memory store that
// waits for it ready, never a Redis store: that one is ready once it has
// read every record with its subscription up (a lost subscription makes it
// not ready), or a revocation another instance applies would take up to
// its next reload to reach it (SECURITY.md C13; found by review).
func TestResyncLeavesRedisReadinessAlone(t *testing.T) {
	_, newStore := redisStores(t)
	s := newStore()
	s.live.setReady(false) // as after a lost subscription
	p := processorOn(t, s)
	f := newFakeDataPass(t)
	f.add(apiItem(1, 48213, siretServed, "active", "cnaf_quotient_familial"))
	if _, err := newResync(t, f, p).Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Live().LiveReady() {
		t.Fatal("the resync made the Redis store ready")
	}
}

// req: C12, C13
// TestRedisLossAwaitsResync: every instance restarts while Redis restarted
// empty (a host reboot, no persistence): the revoke is gone from Redis and
// from every instance. A store that reads DataPass's API refuses the bound
// habilitation without a record until its first resync, which brings the
// revoke back; a failed resync opens nothing. (Without an API, the file
// governs again until DataPass's next event: the documented limit.)
func TestRedisLossAwaitsResync(t *testing.T) {
	mr, newStore := redisStores(t)
	a := newStore()
	pa := processorOn(t, a)
	deliver(pa, payload(t, "approve", at(-48*time.Hour), siretServed, authz(1, "active", "cnaf_quotient_familial")))
	if o := deliver(pa, payload(t, "revoke", at(-24*time.Hour), siretServed, authz(1, "revoked", "cnaf_quotient_familial"))); o.Result != ResultApplied {
		t.Fatal(o)
	}
	mr.FlushAll()

	if h := servedBy(t, pa.Bindings, newStore().Live(), "mairie-qf"); h.Revoked {
		t.Fatal("webhooks only: expected the file to govern again (the documented limit)")
	}
	c := newStore()
	c.AwaitResync()
	pc := processorOn(t, c)
	if h := servedBy(t, pc.Bindings, c.Live(), "mairie-qf"); !h.Revoked {
		t.Fatal("Redis lost the revoke: served on the file's word before any resync")
	}
	if h := servedBy(t, pc.Bindings, c.Live(), "other"); h.Revoked {
		t.Fatal("an unbound habilitation was refused while waiting for the resync")
	}
	f := newFakeDataPass(t)
	f.add(apiItem(1, 48213, siretServed, "revoked", "cnaf_quotient_familial"))
	f.down = true
	if _, err := newResync(t, f, pc).Once(context.Background()); err == nil {
		t.Fatal("a resync against a DataPass down succeeded")
	}
	if h := servedBy(t, pc.Bindings, c.Live(), "mairie-qf"); !h.Revoked {
		t.Fatal("a failed resync handed the habilitation back to the file")
	}
	f.set(func() { f.down = false })
	if _, err := newResync(t, f, pc).Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h := servedBy(t, pc.Bindings, c.Live(), "mairie-qf"); !h.Revoked {
		t.Fatal("revoked in DataPass, served after the resync")
	}
	if _, _, r := c.Live().LiveSnapshot(); r != habilitation.LiveRead {
		t.Fatalf("readiness after the resync: %v", r)
	}
	var rec Record
	if err := openStored(mr.HGet(RecordsKey, "48213"), &rec); err != nil || rec.Active {
		t.Fatalf("Redis after the resync: %+v %v", rec, err)
	}

	// Lost again, and DataPass approved the request again meanwhile: the
	// first resync serves it.
	mr.FlushAll()
	d := newStore()
	d.AwaitResync()
	pd := processorOn(t, d)
	if h := servedBy(t, pd.Bindings, d.Live(), "mairie-qf"); !h.Revoked {
		t.Fatal("served before the resync")
	}
	f.set(func() { f.items = nil })
	f.add(apiItem(2, 48213, siretServed, "active", "cnaf_quotient_familial"))
	if _, err := newResync(t, f, pd).Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h := servedBy(t, pd.Bindings, d.Live(), "mairie-qf"); h.Revoked {
		t.Fatal("active in DataPass, refused after the resync")
	}
}
