package datapass

import (
	"slices"
	"testing"
	"time"
)

var known = func(s string) bool {
	return s == "cnaf_quotient_familial" || s == "cnaf_allocataires" || s == "dgfip_rfr"
}

func ev(name string, at int64, auths ...Authorization) Event {
	return Event{Name: name, FiredAt: time.Unix(at, 0), ModelType: ModelType, RequestID: "48213", SIRET: "21750001600019", Authorizations: auths}
}

func fc(state string, scopes ...string) Authorization {
	return Authorization{ID: "1", State: state, Revoked: state == "revoked", DefinitionID: DefinitionAPIParticulier,
		Scopes: scopes, Modalities: []string{ModalityFranceConnect}}
}

func TestDerive(t *testing.T) {
	cases := []struct {
		name   string
		auths  []Authorization
		active bool
		scopes []string
	}{
		{"active", []Authorization{fc("active", "cnaf_quotient_familial", "dgfip_rfr")}, true, []string{"cnaf_quotient_familial", "dgfip_rfr"}},
		{"unknown scopes dropped", []Authorization{fc("active", "cnaf_quotient_familial", "openid", "family_name", "not_a_scope")}, true, []string{"cnaf_quotient_familial"}},
		{"only unknown scopes", []Authorization{fc("active", "openid")}, false, nil},
		{"revoked", []Authorization{fc("revoked", "cnaf_quotient_familial")}, false, nil},
		{"obsolete", []Authorization{fc("obsolete", "cnaf_quotient_familial")}, false, nil},
		{"active but flagged revoked", []Authorization{{State: "active", Revoked: true, DefinitionID: DefinitionAPIParticulier,
			Scopes: []string{"dgfip_rfr"}, Modalities: []string{ModalityFranceConnect}}}, false, nil},
		{"another definition", []Authorization{{State: "active", DefinitionID: "api_entreprise",
			Scopes: []string{"dgfip_rfr"}, Modalities: []string{ModalityFranceConnect}}}, false, nil},
		{"without the FranceConnect modality", []Authorization{{State: "active", DefinitionID: DefinitionAPIParticulier,
			Scopes: []string{"dgfip_rfr"}, Modalities: []string{"params"}}}, false, nil},
		{"reapproved: the obsolete one does not count", []Authorization{fc("obsolete", "dgfip_rfr"), fc("active", "cnaf_quotient_familial")},
			true, []string{"cnaf_quotient_familial"}},
		{"no authorization (a draft)", nil, false, nil},
	}
	for _, tc := range cases {
		r := Derive(ev("approve", 100, tc.auths...), known)
		if r.Active != tc.active || !slices.Equal(r.Scopes, tc.scopes) {
			t.Errorf("%s: active %v scopes %v, want %v %v", tc.name, r.Active, r.Scopes, tc.active, tc.scopes)
		}
	}
}

// TestMergeOrder: the order rules of webhooks, which DataPass may deliver
// late, twice, or days later byte for byte.
// req: C12
func TestMergeOrder(t *testing.T) {
	approve := func(at int64, scopes ...string) Record {
		return Derive(ev("approve", at, fc("active", scopes...)), known)
	}
	revoke := func(at int64) Record { return Derive(ev("revoke", at, fc("revoked", "cnaf_quotient_familial")), known) }
	other := func(name string, at int64, scopes ...string) Record {
		return Derive(ev(name, at, fc("active", scopes...)), known)
	}

	apply := func(recs ...Record) Record {
		var cur *Record
		for _, r := range recs {
			m, _ := Merge(cur, r)
			cur = &m
		}
		return *cur
	}
	cases := []struct {
		name   string
		got    Record
		active bool
		scopes []string
		grant  bool
	}{
		{"approve", apply(approve(100, "cnaf_quotient_familial")), true, []string{"cnaf_quotient_familial"}, true},
		{"approve then revoke", apply(approve(100, "cnaf_quotient_familial"), revoke(200)), false, []string{}, true},
		{"an old approve replayed after a revoke", apply(approve(100, "cnaf_quotient_familial"), revoke(200), approve(100, "cnaf_quotient_familial")), false, []string{}, true},
		{"revoke delivered before the older approve", apply(revoke(200), approve(100, "cnaf_quotient_familial")), false, []string{}, false},
		{"revoke and approve at the same second: the revoke wins", apply(approve(200, "cnaf_quotient_familial"), revoke(200)), false, []string{}, true},
		{"same second, the other way round", apply(revoke(200), approve(200, "cnaf_quotient_familial")), false, []string{}, false},
		{"a new approve after a revoke", apply(approve(100, "cnaf_quotient_familial"), revoke(200), approve(300, "dgfip_rfr")), true, []string{"dgfip_rfr"}, true},
		{"an update never widens", apply(approve(100, "cnaf_quotient_familial"), other("update", 200, "cnaf_quotient_familial", "dgfip_rfr")), true, []string{"cnaf_quotient_familial"}, true},
		{"an update may narrow", apply(approve(100, "cnaf_quotient_familial", "dgfip_rfr"), other("update", 200, "dgfip_rfr")), true, []string{"dgfip_rfr"}, true},
		{"reopen after a revoke stays revoked", apply(revoke(100), other("reopen", 200, "dgfip_rfr")), false, []string{}, false},
		{"a first non-approve event only caps", apply(other("update", 100, "dgfip_rfr")), true, []string{"dgfip_rfr"}, false},
		{"an unknown future event never widens", apply(revoke(100), other("unrevoke", 200, "dgfip_rfr")), false, []string{}, false},
		{"a resync widens", apply(revoke(100), Record{RequestID: "48213", FiredAt: 200e9, Event: EventResync, Active: true, Scopes: []string{"dgfip_rfr"}}), true, []string{"dgfip_rfr"}, true},
	}
	for _, tc := range cases {
		if tc.got.Active != tc.active || !slices.Equal(tc.got.Scopes, tc.scopes) || tc.got.Grant != tc.grant {
			t.Errorf("%s: active %v scopes %v grant %v, want %v %v %v", tc.name, tc.got.Active, tc.got.Scopes, tc.got.Grant, tc.active, tc.scopes, tc.grant)
		}
	}
}

func TestMergeIdempotent(t *testing.T) {
	a := Derive(ev("approve", 100, fc("active", "dgfip_rfr")), known)
	first, changed := Merge(nil, a)
	if !changed || first.Rev != 1 {
		t.Fatalf("first: %+v %v", first, changed)
	}
	again, changed := Merge(&first, a)
	if changed || again.Rev != 1 {
		t.Fatalf("the same event again changed the record: %+v", again)
	}
	r := Derive(ev("revoke", 200, fc("revoked", "dgfip_rfr")), known)
	second, changed := Merge(&first, r)
	if !changed || second.Rev != 2 || second.Active {
		t.Fatalf("revoke: %+v %v", second, changed)
	}
	if !later(second, first) || later(first, second) {
		t.Fatal("later does not order the copies")
	}
}
