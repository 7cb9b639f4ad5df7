package pings

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a fake clock safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := new(clock)
	c.ns.Store(t.UnixNano())
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589_000_000, time.FixedZone("CET", 3600))

func newTracker(stale time.Duration) (*Tracker, *clock) {
	c := newClock(t0)
	return New([]string{"CNAV", "CNOUS", "MESRI", "DSNJ", "CNAF & MSA"}, stale, c.now), c
}

func mustStatus(t *testing.T, tr *Tracker, p string) Status {
	t.Helper()
	s, ok := tr.Status(p)
	if !ok {
		t.Fatalf("Status(%q): not tracked", p)
	}
	return s
}

func TestTransitions(t *testing.T) {
	tr, c := newTracker(time.Hour)

	if s := mustStatus(t, tr, "CNAV"); s != (Status{State: StateUnknown}) {
		t.Fatalf("fresh: %+v", s)
	}

	tr.Record("CNAV", OK)
	okAt := c.now()
	s := mustStatus(t, tr, "CNAV")
	if s.State != StateOK || !s.LastUpdate.Equal(okAt) || !s.LastOK.Equal(okAt) {
		t.Fatalf("after OK: %+v", s)
	}

	c.advance(time.Minute)
	tr.Record("CNAV", Failed)
	failAt := c.now()
	s = mustStatus(t, tr, "CNAV")
	if s.State != StateBadGateway || !s.LastUpdate.Equal(failAt) || !s.LastOK.Equal(okAt) {
		t.Fatalf("after Failed: %+v (want last_ok kept at %v)", s, okAt)
	}

	c.advance(time.Minute)
	tr.Record("CNAV", OK)
	s = mustStatus(t, tr, "CNAV")
	if s.State != StateOK || !s.LastUpdate.Equal(c.now()) || !s.LastOK.Equal(c.now()) {
		t.Fatalf("after recovery: %+v", s)
	}

	// Other providers are untouched.
	if s := mustStatus(t, tr, "CNOUS"); s != (Status{State: StateUnknown}) {
		t.Fatalf("CNOUS: %+v", s)
	}
}

func TestFailedFirstHasNoLastOK(t *testing.T) {
	tr, c := newTracker(time.Hour)
	tr.Record("DSNJ", Failed)
	s := mustStatus(t, tr, "DSNJ")
	if s.State != StateBadGateway || !s.LastUpdate.Equal(c.now()) || !s.LastOK.IsZero() {
		t.Fatalf("%+v", s)
	}
}

func TestStaleness(t *testing.T) {
	for _, outcome := range []Outcome{OK, Failed} {
		tr, c := newTracker(10 * time.Minute)
		tr.Record("MESRI", outcome)
		at := c.now()

		c.advance(10 * time.Minute) // exactly staleAfter: still fresh
		if s := mustStatus(t, tr, "MESRI"); s.State == StateUnknown {
			t.Fatalf("outcome %d at staleAfter: %+v", outcome, s)
		}
		c.advance(time.Nanosecond)
		s := mustStatus(t, tr, "MESRI")
		if s.State != StateUnknown || !s.LastUpdate.Equal(at) {
			t.Fatalf("outcome %d stale: %+v (times must be kept)", outcome, s)
		}
		if (outcome == OK) != s.LastOK.Equal(at) {
			t.Fatalf("outcome %d stale: last_ok %v", outcome, s.LastOK)
		}

		// A fresh outcome revives it.
		tr.Record("MESRI", OK)
		if s := mustStatus(t, tr, "MESRI"); s.State != StateOK {
			t.Fatalf("revived: %+v", s)
		}
	}
}

func TestStalenessDisabled(t *testing.T) {
	tr, c := newTracker(0)
	tr.Record("CNAV", Failed)
	c.advance(1000 * time.Hour)
	if s := mustStatus(t, tr, "CNAV"); s.State != StateBadGateway {
		t.Fatalf("%+v", s)
	}
}

func TestUnknownProviderAndOutcomeIgnored(t *testing.T) {
	tr, _ := newTracker(time.Hour)
	tr.Record("ACME", OK)
	tr.Record("cnav", Failed) // names are exact
	tr.Record("CNAV", Outcome(0))
	tr.Record("CNAV", Outcome(42))
	if _, ok := tr.Status("ACME"); ok {
		t.Fatal("ACME tracked")
	}
	if _, ok := tr.Status("cnav"); ok {
		t.Fatal("cnav tracked")
	}
	if s := mustStatus(t, tr, "CNAV"); s != (Status{State: StateUnknown}) {
		t.Fatalf("CNAV: %+v", s)
	}
	rec := httptest.NewRecorder()
	tr.ServeAll(rec)
	if strings.Contains(rec.Body.String(), "ACME") || strings.Contains(rec.Body.String(), "cnav") {
		t.Fatalf("unknown provider listed: %s", rec.Body)
	}
}

func TestNewDropsDuplicatesAndEmpty(t *testing.T) {
	tr := New([]string{"CNAV", "", "CNAV", "ANTS"}, time.Hour, nil)
	if got := strings.Join(tr.Providers(), ","); got != "ANTS,CNAV" {
		t.Fatalf("Providers() = %q", got)
	}
	if _, ok := tr.Status(""); ok {
		t.Fatal("empty name tracked")
	}
	// nil clock means time.Now.
	before := time.Now().Truncate(time.Second)
	tr.Record("CNAV", OK)
	if s := mustStatus(t, tr, "CNAV"); s.State != StateOK || s.LastUpdate.Before(before) {
		t.Fatalf("%+v", s)
	}
}

// wire is the decoded shape of one provider's answer; pointers tell null
// from absent or empty.
type wire struct {
	Status     *string `json:"status"`
	LastUpdate *string `json:"last_update"`
	LastOK     *string `json:"last_ok_status"`
}

func decodeStrict(t *testing.T, body string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
}

func checkHeaders(t *testing.T, rec *httptest.ResponseRecorder, code int) {
	t.Helper()
	if rec.Code != code {
		t.Errorf("status %d, want %d", rec.Code, code)
	}
	for k, want := range map[string]string{
		"Content-Type":           "application/json; charset=utf-8",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func checkWire(t *testing.T, name string, w wire, state string, lastUpdate, lastOK *string) {
	t.Helper()
	eq := func(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	show := func(p *string) string {
		if p == nil {
			return "null"
		}
		return *p
	}
	if w.Status == nil || *w.Status != state || !eq(w.LastUpdate, lastUpdate) || !eq(w.LastOK, lastOK) {
		t.Errorf("%s: status=%s last_update=%s last_ok_status=%s; want %s %s %s", name,
			show(w.Status), show(w.LastUpdate), show(w.LastOK), state, show(lastUpdate), show(lastOK))
	}
}

func ptr(s string) *string { return &s }

func TestServeProvider(t *testing.T) {
	tr, c := newTracker(time.Hour)

	// unknown: 200, nulls.
	rec := httptest.NewRecorder()
	if !tr.ServeProvider(rec, "CNOUS") {
		t.Fatal("CNOUS not served")
	}
	checkHeaders(t, rec, http.StatusOK)
	if got, want := rec.Body.String(), `{"status":"unknown","last_update":null,"last_ok_status":null}`; got != want {
		t.Fatalf("body %s, want %s", got, want)
	}

	// serve answers CNOUS's status and checks its HTTP status and body.
	serve := func(name string, status int, state string, lastUpdate, lastOK *string) {
		t.Helper()
		rec := httptest.NewRecorder()
		tr.ServeProvider(rec, "CNOUS")
		checkHeaders(t, rec, status)
		var w wire
		decodeStrict(t, rec.Body.String(), &w)
		checkWire(t, name, w, state, lastUpdate, lastOK)
	}

	// ok: 200, UTC, RFC 3339 truncated to the minute.
	tr.Record("CNOUS", OK)
	serve("ok", http.StatusOK, "ok", ptr("2025-03-14T08:26:00Z"), ptr("2025-03-14T08:26:00Z"))

	// bad_gateway: 502, last_ok kept.
	c.advance(90 * time.Second)
	tr.Record("CNOUS", Failed)
	serve("bad_gateway", http.StatusBadGateway, "bad_gateway", ptr("2025-03-14T08:28:00Z"), ptr("2025-03-14T08:26:00Z"))

	// stale: 200 unknown, times kept.
	c.advance(2 * time.Hour)
	serve("stale", http.StatusOK, "unknown", ptr("2025-03-14T08:28:00Z"), ptr("2025-03-14T08:26:00Z"))

	// untracked: nothing written.
	rec = httptest.NewRecorder()
	if tr.ServeProvider(rec, "ACME") {
		t.Fatal("ACME served")
	}
	if rec.Body.Len() != 0 || len(rec.Header()) != 0 || rec.Code != http.StatusOK /* recorder default */ {
		t.Fatalf("untracked wrote something: %d %v %q", rec.Code, rec.Header(), rec.Body)
	}
}

func TestServeAll(t *testing.T) {
	tr, c := newTracker(time.Hour)

	// All unknown: 200, every provider listed, sorted.
	rec := httptest.NewRecorder()
	tr.ServeAll(rec)
	checkHeaders(t, rec, http.StatusOK)
	body := rec.Body.String()
	order := []string{`"CNAF & MSA"`, `"CNAV"`, `"CNOUS"`, `"DSNJ"`, `"MESRI"`}
	last := -1
	for _, k := range order {
		i := strings.Index(body, k+":")
		if i <= last {
			t.Fatalf("key %s missing or out of order in %s", k, body)
		}
		last = i
	}
	var all map[string]wire
	decodeStrict(t, body, &all)
	if len(all) != len(order) {
		t.Fatalf("%d providers, want %d: %s", len(all), len(order), body)
	}
	for p, w := range all {
		checkWire(t, p, w, "unknown", nil, nil)
	}

	// Only ok and unknown: 200.
	tr.Record("CNAV", OK)
	rec = httptest.NewRecorder()
	tr.ServeAll(rec)
	checkHeaders(t, rec, http.StatusOK)

	// One bad_gateway: 502.
	c.advance(time.Second)
	tr.Record("DSNJ", Failed)
	rec = httptest.NewRecorder()
	tr.ServeAll(rec)
	checkHeaders(t, rec, http.StatusBadGateway)
	all = nil
	decodeStrict(t, rec.Body.String(), &all)
	checkWire(t, "CNAV", all["CNAV"], "ok", ptr("2025-03-14T08:26:00Z"), ptr("2025-03-14T08:26:00Z"))
	checkWire(t, "DSNJ", all["DSNJ"], "bad_gateway", ptr("2025-03-14T08:26:00Z"), nil)
	checkWire(t, "MESRI", all["MESRI"], "unknown", nil, nil)

	// A stale bad_gateway no longer makes the whole answer 502.
	c.advance(2 * time.Hour)
	rec = httptest.NewRecorder()
	tr.ServeAll(rec)
	checkHeaders(t, rec, http.StatusOK)
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"CNAF & MSA":     "cnaf-msa",
		"France Travail": "france-travail",
		"GIP-MDS":        "gip-mds",
		"CNAV":           "cnav",
		"a__b":           "a-b",
		" x_y ":          "x-y",
		"Pôle 2":         "p-le-2",
		"&&":             "",
	} {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBySlugRoundTrip(t *testing.T) {
	providers := []string{"CNAV", "CNOUS", "MESRI", "DSNJ", "GIP-MDS", "ANTS", "CNAF & MSA", "France Travail"}
	tr := New(providers, time.Hour, nil)
	for _, p := range providers {
		got, ok := tr.BySlug(Slug(p))
		if !ok || got != p {
			t.Errorf("BySlug(Slug(%q)) = %q, %v", p, got, ok)
		}
	}
	for _, s := range []string{"", "CNAV", "acme", "cnaf & msa", "cnaf-msa/"} {
		if p, ok := tr.BySlug(s); ok {
			t.Errorf("BySlug(%q) = %q", s, p)
		}
	}
}

func TestBySlugAmbiguous(t *testing.T) {
	tr := New([]string{"A B", "A-B", "A_B", "C"}, time.Hour, nil)
	if p, ok := tr.BySlug("a-b"); ok {
		t.Fatalf("ambiguous slug resolved to %q", p)
	}
	if p, ok := tr.BySlug("c"); !ok || p != "C" {
		t.Fatalf("BySlug(c) = %q, %v", p, ok)
	}
	if len(tr.Providers()) != 4 {
		t.Fatalf("Providers() = %q", tr.Providers())
	}
}

func TestConcurrentRecord(t *testing.T) {
	tr, c := newTracker(time.Hour)
	providers := append(tr.Providers(), "ACME")
	const goroutines, calls = 32, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				p := providers[(g+i)%len(providers)]
				if (i/7)%2 == 0 { // outcomes vary over time for every provider
					tr.Record(p, Failed)
				} else {
					tr.Record(p, OK)
				}
				c.advance(time.Millisecond)
				if i%50 == 0 {
					tr.Status(p)
					tr.ServeAll(httptest.NewRecorder())
				}
			}
		}()
	}
	wg.Wait()
	for _, p := range tr.Providers() {
		s := mustStatus(t, tr, p)
		if s.State == StateUnknown || s.LastUpdate.IsZero() || s.LastOK.IsZero() {
			t.Errorf("%s after concurrent records: %+v", p, s)
		}
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	tr := New([]string{"CNAV", "CNOUS"}, time.Hour, nil) // real clock
	provider := strings.Clone("CNAV")                    // not the map's own string
	for _, o := range []Outcome{OK, Failed} {
		if n := testing.AllocsPerRun(1000, func() { tr.Record(provider, o) }); n != 0 {
			t.Errorf("Record(%d) allocates %v per call", o, n)
		}
	}
	if n := testing.AllocsPerRun(1000, func() { tr.Record("ACME", OK) }); n != 0 {
		t.Errorf("Record(unknown) allocates %v per call", n)
	}
	if n := testing.AllocsPerRun(1000, func() { tr.BySlug("cnous") }); n != 0 {
		t.Errorf("BySlug allocates %v per call", n)
	}
}

func BenchmarkRecordParallel(b *testing.B) {
	tr := New([]string{"CNAV", "CNOUS", "MESRI", "DSNJ"}, time.Hour, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tr.Record("CNAV", OK)
		}
	})
}
