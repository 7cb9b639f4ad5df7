package pipeline

import (
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/ratelimit"
	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// TestF05_CitizenQuotaAcrossKeyRotation: a citizen's quota counts one
// citizen once across a pseudonym key rotation: facts cached before it
// (keyed under the previous version) and facts checked after it share one
// quota, as they share one audit pseudonym.
// req: F05
func TestF05_CitizenQuotaAcrossKeyRotation(t *testing.T) {
	const (
		iss, sub, client, siret = "https://fc.example/api/v2", "sub-rotated", "fs-rotation", "13002526500013"
	)
	cat, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
	ep, ok := cat.ByID("dss_quotient_familial_fc")
	if !ok {
		t.Fatal("no dss_quotient_familial_fc")
	}
	reg, err := habilitation.Parse([]byte(`habilitations:
  - id: hab-rotation
    label: Rotation
    siret: "` + siret + `"
    modalities: [france_connect]
    france_connect_client_ids: [` + client + `]
    scopes: [cnaf_quotient_familial]
`))
	if err != nil {
		t.Fatal(err)
	}
	limiter, err := ratelimit.New(ratelimit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("f05-rotation-key-0123456789abcdef012345")
	previous := NewPseudonymizer([]byte("f05-rotation-old-key-0123456789abcdef01"), "v6", iss)
	current := NewPseudonymizer(key, "v7", iss)
	pipe := New(Config{
		Catalogue: cat, Registry: func() *habilitation.Registry { return reg }, Limiter: limiter,
		ClientIPKey: key, Pseudonymizer: current, Logger: zap.NewNop(), Audit: zap.NewNop(),
		HabilitationQuota: ratelimit.Quota{Requests: 1000, Per: time.Second},
		CitizenQuota:      ratelimit.Quota{Requests: 1, Per: time.Hour},
	}, nil, 0)
	facts := func(p *Pseudonymizer) *fcverify.Facts {
		return &fcverify.Facts{Active: true, Sub: sub, ClientID: client, ACR: "eidas1",
			Scopes:     []string{"openid", "identite_pivot", "cnaf_quotient_familial"},
			CitizenKey: p.CitizenKey(sub), CitizenKeyVersion: p.Version()}
	}
	call := func(f *fcverify.Facts) int {
		r := httptest.NewRequest("GET", "/v3/dss/quotient_familial/france_connect?recipient="+siret, nil)
		c := &Call{rec: auditRecord{start: time.Now()}, ep: ep, facts: f}
		if aerr := pipe.habilitation(r, c); aerr != nil {
			return aerr.Status
		}
		return 200
	}
	if got := call(facts(previous)); got != 200 {
		t.Fatalf("facts cached before the rotation: %d", got)
	}
	if got := call(facts(current)); got != 429 {
		t.Fatalf("the same citizen's facts after the rotation: %d, want 429 (one citizen, one quota)", got)
	}
}
