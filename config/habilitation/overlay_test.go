package habilitation

import (
	"slices"
	"testing"
)

func overlayRegistry(t *testing.T) *Registry {
	t.Helper()
	r, err := Parse([]byte(`habilitations:
  - {id: bound, datapass_id: "48213", label: A, siret: "21750001600019", modalities: [france_connect], france_connect_client_ids: [client-a], scopes: [a, b]}
  - {id: revoked-here, datapass_id: "48214", label: B, siret: "21750001600019", modalities: [france_connect], scopes: [a], revoked: true}
  - {id: unbound, label: C, siret: "21750001600019", modalities: [france_connect], scopes: [a]}
`))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDataPassIDParsing(t *testing.T) {
	for _, bad := range []string{`"0"`, `"012"`, `"abc"`, `"12345678901234567890"`, `[1]`} {
		_, err := Parse([]byte(`habilitations:
  - {id: x, datapass_id: ` + bad + `, label: A, siret: "21750001600019", modalities: [france_connect], scopes: [a]}
`))
		if err == nil {
			t.Errorf("datapass_id %s accepted", bad)
		}
	}
	_, err := Parse([]byte(`habilitations:
  - {id: x, datapass_id: "7", label: A, siret: "21750001600019", modalities: [france_connect], scopes: [a]}
  - {id: y, datapass_id: "7", label: A, siret: "21750001600019", modalities: [france_connect], scopes: [a]}
`))
	if err == nil {
		t.Error("a DataPass request bound twice")
	}
	r := overlayRegistry(t)
	if h, ok := r.ByDataPassID("48213"); !ok || h.ID != "bound" {
		t.Fatalf("ByDataPassID: %v %v", h, ok)
	}
}

// req: C13
func TestOverlay(t *testing.T) {
	r := overlayRegistry(t)
	get := func(reg *Registry, id string) *Habilitation {
		h, ok := reg.ByID(id)
		if !ok {
			t.Fatalf("%s gone", id)
		}
		return h
	}
	if r.Overlay(nil, LiveRead) != r || r.Overlay(map[string]Live{"999": {Active: true, Scopes: []string{"z"}, Grant: true}}, LiveRead) != r {
		t.Fatal("no state, or a pending one, changed the registry")
	}
	cases := []struct {
		name    string
		live    Live
		revoked bool
		scopes  []string
	}{
		{"grant replaces the scopes", Live{Active: true, Scopes: []string{"b", "c"}, Grant: true}, false, []string{"b", "c"}},
		{"cap keeps the file's scopes it holds", Live{Active: true, Scopes: []string{"b", "c"}}, false, []string{"b"}},
		{"cap with nothing in common", Live{Active: true, Scopes: []string{"c"}}, true, []string{}},
		{"inactive", Live{Active: false, Scopes: []string{}, Grant: true}, true, []string{}},
	}
	for _, tc := range cases {
		o := r.Overlay(map[string]Live{"48213": tc.live, "48214": {Active: true, Scopes: []string{"a"}, Grant: true}}, LiveRead)
		h := get(o, "bound")
		if h.Revoked != tc.revoked || !slices.Equal(h.Scopes, tc.scopes) {
			t.Errorf("%s: revoked %v scopes %v, want %v %v", tc.name, h.Revoked, h.Scopes, tc.revoked, tc.scopes)
		}
		// Indexes follow the copy; the file's registry is untouched.
		if byClient, _ := o.ByClientID("client-a"); byClient != h {
			t.Errorf("%s: ByClientID serves the file's copy", tc.name)
		}
		if f := get(r, "bound"); f.Revoked || !slices.Equal(f.Scopes, []string{"a", "b"}) {
			t.Fatalf("%s: the file's registry was modified", tc.name)
		}
		if !get(o, "revoked-here").Revoked {
			t.Errorf("%s: DataPass reopened what the file revokes", tc.name)
		}
		if u := get(o, "unbound"); u != get(r, "unbound") {
			t.Errorf("%s: an unbound habilitation was copied", tc.name)
		}
	}
	notReady := r.Overlay(nil, LiveNotRead)
	if !get(notReady, "bound").Revoked || get(notReady, "unbound").Revoked {
		t.Fatal("before the live state is known, bound habilitations must be refused and only they")
	}
	// Read, but not resynced yet: a bound habilitation without a record
	// (a Redis restarted empty) is refused; one with a record, or unbound,
	// is served as when resynced.
	grant := Live{Active: true, Scopes: []string{"a", "b"}, Grant: true}
	for _, states := range []map[string]Live{nil, {"999": grant}} {
		if h := get(r.Overlay(states, LiveUnresynced), "bound"); !h.Revoked {
			t.Errorf("unresynced, no record (%v): the file's word served a bound habilitation", states)
		}
		if h := get(r.Overlay(states, LiveRead), "bound"); h.Revoked {
			t.Errorf("resynced, no record (%v): the file's word refused", states)
		}
	}
	unresynced := r.Overlay(map[string]Live{"48213": grant}, LiveUnresynced)
	if get(unresynced, "bound").Revoked || get(unresynced, "unbound").Revoked {
		t.Error("unresynced: a habilitation with a record, or an unbound one, was refused")
	}
}

type fakeLive struct {
	version uint64
	states  map[string]Live
	ready   LiveReadiness
}

func (f *fakeLive) LiveSnapshot() (uint64, map[string]Live, LiveReadiness) {
	return f.version, f.states, f.ready
}

func TestOverlaidFollowsBothSources(t *testing.T) {
	file := overlayRegistry(t)
	live := &fakeLive{ready: LiveRead}
	o := NewOverlaid(func() *Registry { return file }, live)
	first := o.Current()
	if first != file || o.Current() != first {
		t.Fatal("nothing live: the file's registry itself, cached")
	}
	live.states, live.version = map[string]Live{"48213": {Active: false, Grant: true}}, 1
	second := o.Current()
	if h, _ := second.ByID("bound"); !h.Revoked {
		t.Fatal("a new live version was not applied")
	}
	if o.Current() != second {
		t.Fatal("unchanged sources recomputed the overlay")
	}
	file = overlayRegistry(t) // a file reload
	if third := o.Current(); third == second {
		t.Fatal("a new file registry was not overlaid")
	} else if h, _ := third.ByID("bound"); !h.Revoked {
		t.Fatal("the live state did not survive a file reload")
	}
}

func BenchmarkOverlaidCurrent(b *testing.B) {
	file := overlayRegistry(&testing.T{})
	live := &fakeLive{ready: LiveRead, version: 1, states: map[string]Live{"48213": {Active: true, Scopes: []string{"a"}, Grant: true}}}
	o := NewOverlaid(func() *Registry { return file }, live)
	b.ReportAllocs()
	for b.Loop() {
		_ = o.Current()
	}
}
