package respfilter

import (
	"bytes"
	"errors"
	"testing"
)

// TestC05_Leaves: with Options.Leaves a released path releases a leaf only; a
// structure the provider put where a leaf was is dropped, its members with
// it (SECURITY.md C05), while the C06 refusals are unchanged.
func TestC05_Leaves(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		paths []string
		want  string
	}{{
		name:  "scalars, null and arrays of scalars are released",
		body:  `{"data":{"s":"x","n":-1.5e3,"b":false,"z":null,"a":["A",1,null,true],"e":[]}}`,
		paths: []string{"data.s", "data.n", "data.b", "data.z", "data.a", "data.e"},
		want:  `{"data":{"s":"x","n":-1.5e3,"b":false,"z":null,"a":["A",1,null,true],"e":[]},"links":{},"meta":{}}`,
	}, {
		name:  "an object where a leaf was is dropped",
		body:  `{"data":{"valeur":{"montant":612,"nir":"CANARY"},"annee":2024}}`,
		paths: []string{"data.valeur", "data.annee"},
		want:  `{"data":{"annee":2024},"links":{},"meta":{}}`,
	}, {
		name:  "structures inside an array where a leaf was are dropped, its scalars kept",
		body:  `{"data":{"prenoms":["LUCAS",{"nir":"CANARY"},["CANARY"],null]}}`,
		paths: []string{"data.prenoms"},
		want:  `{"data":{"prenoms":["LUCAS",null]},"links":{},"meta":{}}`,
	}, {
		name:  "a leaf under array elements",
		body:  `{"data":{"enfants":[{"prenoms":{"prenom":"CANARY"},"sexe":"M"},{"prenoms":["LEA",{"x":"CANARY"}],"sexe":"F"}]}}`,
		paths: []string{"data.enfants[].prenoms", "data.enfants[].sexe"},
		want:  `{"data":{"enfants":[{"sexe":"M"},{"prenoms":["LEA"],"sexe":"F"}]},"links":{},"meta":{}}`,
	}, {
		name:  "x[] releases elements that are leaves",
		body:  `{"data":{"x":[1,{"a":"CANARY"},[2,{"b":"CANARY"},[3]],null]}}`,
		paths: []string{"data.x[]"},
		want:  `{"data":{"x":[1,[2],null]},"links":{},"meta":{}}`,
	}, {
		name:  "data, links and meta released whole keep no structure",
		body:  `{"data":{"a":"CANARY"},"links":{"l":"CANARY"},"meta":{"m":1}}`,
		paths: []string{"data", "links", "meta"},
		want:  `{"data":{},"links":{},"meta":{}}`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, tc.paths...)
			got, err := Filter(nil, []byte(tc.body), p, Options{Leaves: true})
			if err != nil {
				t.Fatalf("Filter: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("Filter:\n got %s\nwant %s", got, tc.want)
			}
			if bytes.Contains(got, []byte(canary[:6])) {
				t.Errorf("a member inside a structure where a leaf was released: %s", got)
			}
			again, err := Filter(nil, got, p, Options{Leaves: true})
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("second Filter = %s, %v; want %s", again, err, got)
			}
		})
	}

	bare, err := CompileBare([]string{"quotientFamilial", "enfants[].prenoms"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Filter(nil, []byte(`{"quotientFamilial":{"valeur":1,"nir":"CANARY"},"enfants":[{"prenoms":["LEA",{"nir":"CANARY"}]}]}`), bare, Options{Leaves: true})
	if want := `{"enfants":[{"prenoms":["LEA"]}]}`; err != nil || string(got) != want {
		t.Errorf("bare: %s, %v; want %s", got, err, want)
	}

	// Dropped structures are still checked: duplicates, depth.
	for name, body := range map[string]string{
		"duplicate in a dropped object":  `{"data":{"v":{"a":1,"a":2}}}`,
		"duplicate in a dropped element": `{"data":{"v":[1,{"a":1,"a":2}]}}`,
		"too deep in a dropped element":  `{"data":{"v":[` + nest(40) + `]}}`,
		"too deep at a leaf array":       `{"data":{"v":` + nest(40) + `}}`,
	} {
		if _, err := Filter(nil, []byte(body), mustCompile(t, "data.v"), Options{Leaves: true}); !errors.Is(err, ErrUnfilterable) {
			t.Errorf("%s: err = %v, want ErrUnfilterable", name, err)
		}
	}
}
