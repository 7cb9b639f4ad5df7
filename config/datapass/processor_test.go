package datapass

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/passerelle-gw/passerelle/config/habilitation"
)

const (
	siretServed = "21750001600019"
	siretOther  = "21930048000015"
	siretNobody = "13002526500013"
	secret      = "sandbox-datapass-secret"
)

func testRegistry(t testing.TB) *habilitation.Registry {
	t.Helper()
	r, err := habilitation.Parse([]byte(`habilitations:
  - id: mairie-qf
    datapass_id: "48213"
    label: Mairie — quotient familial
    siret: "` + siretServed + `"
    modalities: [france_connect]
    france_connect_client_ids: [client-a]
    scopes: [cnaf_quotient_familial, cnaf_allocataires]
  - id: other
    label: Autre
    siret: "` + siretOther + `"
    modalities: [france_connect]
    scopes: [dgfip_rfr]
`))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newProcessor(t testing.TB) (*Processor, *Memory) {
	m := NewMemory()
	reg := testRegistry(t)
	return &Processor{Secrets: [][]byte{[]byte(secret)}, Store: m, Bindings: func() *habilitation.Registry { return reg },
		KnownScope: known}, m
}

func deliver(p *Processor, body []byte) Outcome {
	return p.Deliver(context.Background(), Sign([]byte(secret), body), "production", body)
}

// effective returns the bound habilitation as the request path sees it.
func effective(t *testing.T, p *Processor, m *Memory) *habilitation.Habilitation {
	t.Helper()
	o := habilitation.NewOverlaid(p.Bindings, m.Live())
	h, ok := o.Current().ByID("mairie-qf")
	if !ok {
		t.Fatal("habilitation gone")
	}
	return h
}

// req: C12
func TestDeliver(t *testing.T) {
	p, m := newProcessor(t)
	h := effective(t, p, m)
	if h.Revoked || !slices.Equal(h.Scopes, []string{"cnaf_quotient_familial", "cnaf_allocataires"}) {
		t.Fatalf("before any webhook, the file governs: %+v", h)
	}

	approve := payload(t, "approve", 100, siretServed, authz(1, "active", "cnaf_quotient_familial", "dgfip_rfr", "openid"))
	if o := deliver(p, approve); o.Status != http.StatusNoContent || o.Result != ResultApplied || o.Habilitation != "mairie-qf" {
		t.Fatalf("approve: %+v", o)
	}
	if h := effective(t, p, m); h.Revoked || !slices.Equal(h.Scopes, []string{"cnaf_quotient_familial", "dgfip_rfr"}) {
		t.Fatalf("after approve: scopes are DataPass's ∩ the catalogue's: %+v", h.Scopes)
	}
	if o := deliver(p, approve); o.Result != ResultDuplicate || o.Status != http.StatusNoContent {
		t.Fatalf("duplicate: %+v", o)
	}

	revoke := payload(t, "revoke", 200, siretServed, authz(1, "revoked", "cnaf_quotient_familial"))
	if o := deliver(p, revoke); o.Result != ResultApplied || o.Record.Active {
		t.Fatalf("revoke: %+v", o)
	}
	if h := effective(t, p, m); !h.Revoked {
		t.Fatal("revoked by DataPass, still usable")
	}
	// The old approve, re-sent by DataPass's retries with other bytes
	// (another serialisation): stale, nothing reopened.
	replay := payload(t, "approve", 100, siretServed, authz(1, "active", "dgfip_rfr", "cnaf_quotient_familial"))
	if o := deliver(p, replay); o.Result != ResultStale {
		t.Fatalf("replayed approve: %+v", o)
	}
	if h := effective(t, p, m); !h.Revoked {
		t.Fatal("a replayed approve undid a revoke")
	}
	// Other events never widen.
	if o := deliver(p, payload(t, "reopen", 300, siretServed, authz(1, "active", "dgfip_rfr"))); o.Result != ResultUnchanged && o.Result != ResultApplied {
		t.Fatalf("reopen: %+v", o)
	}
	if h := effective(t, p, m); !h.Revoked {
		t.Fatal("reopen widened access")
	}
	// A genuine new approval.
	if o := deliver(p, payload(t, "approve", 400, siretServed, authz(2, "active", "cnaf_allocataires"))); o.Result != ResultApplied {
		t.Fatalf("new approve: %+v", o)
	}
	if h := effective(t, p, m); h.Revoked || !slices.Equal(h.Scopes, []string{"cnaf_allocataires"}) {
		t.Fatalf("after the new approve: %+v", h)
	}
	// Transferred to an organisation Passerelle does not serve: inactive.
	if o := deliver(p, payload(t, "transfer", 500, siretNobody, authz(2, "active", "cnaf_allocataires"))); o.Result != ResultApplied || o.Record.Active {
		t.Fatalf("transfer: %+v", o)
	}
	if h := effective(t, p, m); !h.Revoked {
		t.Fatal("transferred away, still usable")
	}
}

// req: C11
func TestDeliverRefusals(t *testing.T) {
	p, m := newProcessor(t)
	body := payload(t, "approve", 100, siretServed, authz(1, "active", "dgfip_rfr"))
	cases := []struct {
		name      string
		sig, env  string
		body      []byte
		status    int
		result    string
		secretsTo [][]byte
	}{
		{"no signature", "", "production", body, 401, ResultUnauthorized, nil},
		{"wrong secret", Sign([]byte("wrong"), body), "production", body, 401, ResultUnauthorized, nil},
		{"altered body", Sign([]byte(secret), body), "production", append([]byte(" "), body...), 401, ResultUnauthorized, nil},
		{"signed garbage", Sign([]byte(secret), []byte("not json")), "production", []byte("not json"), 400, ResultMalformed, nil},
	}
	for _, tc := range cases {
		o := p.Deliver(context.Background(), tc.sig, tc.env, tc.body)
		if o.Status != tc.status || o.Result != tc.result {
			t.Errorf("%s: %d %s, want %d %s", tc.name, o.Status, o.Result, tc.status, tc.result)
		}
		if tc.status == 401 && (o.BodySHA256 != "" || o.Event != "" || o.RequestID != "") {
			t.Errorf("%s: an unverified body was read: %+v", tc.name, o)
		}
	}
	p.Environment = "production"
	if o := p.Deliver(context.Background(), Sign([]byte(secret), body), "staging", body); o.Status != 403 || o.Result != ResultWrongEnvironment {
		t.Errorf("staging delivery: %+v", o)
	}
	if len(m.Live().Records()) != 0 {
		t.Fatalf("refused deliveries changed the records: %+v", m.Live().Records())
	}
	if o := deliver(p, []byte(`{"test":true,"timestamp":"2026-12-06T10:00:00Z"}`)); o.Status != 204 || o.Result != ResultTest {
		t.Errorf("ping: %+v", o)
	}
}

func TestDeliverFiltering(t *testing.T) {
	p, m := newProcessor(t)
	// A request of an organisation Passerelle does not serve: ignored,
	// nothing stored.
	unknown := payload(t, "approve", 100, siretNobody, authz(1, "active", "dgfip_rfr"))
	unknown = []byte(strings.Replace(string(unknown), "48213", "777", -1))
	if o := deliver(p, unknown); o.Result != ResultIgnored || o.Status != 204 {
		t.Fatalf("unknown SIRET: %+v", o)
	}
	// A request of a served organisation, bound to no habilitation: pending.
	pending := []byte(strings.Replace(string(payload(t, "approve", 100, siretOther, authz(1, "active", "dgfip_rfr"))), "48213", "999", -1))
	if o := deliver(p, pending); o.Result != ResultPending {
		t.Fatalf("unbound: %+v", o)
	}
	if h, _ := habilitation.NewOverlaid(p.Bindings, m.Live()).Current().ByID("other"); h.Revoked || !slices.Equal(h.Scopes, []string{"dgfip_rfr"}) {
		t.Fatalf("a pending record changed an unbound habilitation: %+v", h)
	}
	if recs := m.Live().Records(); len(recs) != 1 || recs[0].RequestID != "999" {
		t.Fatalf("records: %+v", recs)
	}
	// Another authorization type: ignored.
	other := []byte(strings.Replace(string(payload(t, "approve", 100, siretServed)), ModelType, "authorization_request/api_entreprise", 1))
	if o := deliver(p, other); o.Result != ResultIgnored {
		t.Fatalf("API Entreprise: %+v", o)
	}
}

// TestOutcomeHoldsNothingPersonal: the body's personal fields never reach
// what the handler logs or answers.
// req: C11
func TestOutcomeHoldsNothingPersonal(t *testing.T) {
	p, _ := newProcessor(t)
	for _, body := range [][]byte{
		payload(t, "approve", 100, siretServed, authz(1, "active", "dgfip_rfr")),
		payload(t, "approve", 100, siretNobody, authz(1, "active", "dgfip_rfr")),
		[]byte(`{"event":"approve","applicant":{"email":"` + canaryEmail + `"}}`),
	} {
		o := deliver(p, body)
		s := fmt.Sprintf("%+v %+v", o, o.Record)
		if strings.Contains(s, canaryEmail) || strings.Contains(s, canaryName) || strings.Contains(s, "COMMUNE") {
			t.Fatalf("outcome holds personal data: %s", s)
		}
	}
}
