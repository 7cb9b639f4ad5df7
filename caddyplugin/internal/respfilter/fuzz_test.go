package respfilter

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// fuzzPathSets are the allow-lists FuzzC05_Filter picks from.
var fuzzPathSets = [][]string{
	{"data.quotient_familial", "data.enfants"},
	{"data.admissions[].date_debut", "data.admissions[].est_inscrit", "data.admissions[].etablissement_etudes.uai"},
	{"data.statut_actuel.contrat_trouve", "data.statut_actuel.organisme_accueil", "data.statut_passe.organisme_accueil"},
	{"data"},
	nil,
	{"data.a", "data.b.c[]", "data.x[][].y", "data.x[][].z.w", "links.l", "meta.m.n", "meta.o"},
	{"links", "meta", "data.a.b.c.d.e"},
}

// FuzzC05_Filter checks, for any body (SECURITY.md C05, C06):
//   - Filter never panics;
//   - it accepts exactly the bodies that are valid JSON (one value, no
//     duplicate names, valid UTF-8), within the size and depth limits, whose
//     top level is an object with an object "data";
//   - an accepted output parses as JSON, has exactly data, links and meta as
//     objects, and every leaf path in it is at or under a released path;
//     every empty object or array lies on the way to, or under, one;
//   - filtering is idempotent;
//   - a refusal wraps ErrUnfilterable, leaves dst unchanged and quotes
//     nothing from the body;
//   - with Options.Leaves, the same bodies are accepted and every value at
//     a released path is a leaf (checkLeaves).
func FuzzC05_Filter(f *testing.F) {
	for i, b := range []string{
		qfBody, mesriBody, gipBody,
		`{"data":{"a":1,"b":{"c":[1,{"d":2}]},"x":[[{"y":1,"z":{"w":2,"v":3}}],{"y":2},[]]},"links":{"l":1,"k":2},"meta":{"m":{"n":1,"p":2},"o":null}}`,
		`{"data":{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}},"links":[],"meta":"x"}`,
		`{"data":{},"data":{}}`,
		`{"data":{"a":"\u00e9\ud83d\ude00"}}`,
		`{"d\u0061ta":{"\u0061":1}}`,
		"{\"data\":{\"a\":\"\xff\"}}",
		`{"data":[]}`,
		`[]`,
		`{"data":{}} {}`,
		`{"data":{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}`,
	} {
		f.Add([]byte(b), uint8(i))
		f.Add([]byte(b), uint8(0x80|i<<4|i))
	}
	f.Fuzz(func(t *testing.T, body []byte, sel uint8) {
		paths := fuzzPathSets[int(sel&0x0f)%len(fuzzPathSets)]
		o := Options{MaxBytes: 1 << 16}
		if sel&0x80 != 0 {
			o.MaxDepth = int(sel>>4&7) + 1
		}
		p, err := Compile(paths)
		if err != nil {
			t.Fatal(err)
		}
		dst := []byte("pre")
		out, err := Filter(dst, body, p, o)
		wantOK := referenceAccepts(body, o)
		if err != nil {
			if wantOK {
				t.Fatalf("refused an acceptable body: %v", err)
			}
			if !errors.Is(err, ErrUnfilterable) {
				t.Fatalf("error %v does not wrap ErrUnfilterable", err)
			}
			if string(out) != "pre" {
				t.Fatalf("dst changed on error: %q", out)
			}
			if strings.ContainsAny(err.Error(), "\"{[") {
				t.Fatalf("error quotes input: %q", err)
			}
			return
		}
		if !wantOK {
			t.Fatalf("accepted a body the reference refuses: %q", body)
		}
		if !bytes.HasPrefix(out, []byte("pre")) {
			t.Fatalf("dst prefix lost: %q", out)
		}
		out = out[3:]
		checkReleased(t, out, paths)
		again, err := Filter(nil, out, p, o)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %s -> %s, %v", out, again, err)
		}
		out = checkLeaves(t, body, p, o, paths, false)
		checkReleased(t, out, paths)
	})
}

// checkLeaves filters an accepted body again with Options.Leaves: it must
// be accepted, idempotently, and every value at a released path must be a
// leaf (a scalar or an array of scalars); a top-level member of the
// envelope released whole must be empty. It returns the output.
func checkLeaves(t *testing.T, body []byte, p *Paths, o Options, released []string, bare bool) []byte {
	t.Helper()
	o.Leaves = true
	out, err := Filter(nil, body, p, o)
	if err != nil {
		t.Fatalf("Leaves refused a body accepted without: %v", err)
	}
	if again, err := Filter(nil, out, p, o); err != nil || !bytes.Equal(again, out) {
		t.Fatalf("Leaves not idempotent: %s -> %s, %v", out, again, err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		t.Fatalf("Leaves output is not an object: %s", out)
	}
	for k, v := range top {
		if !bare && slices.Contains(released, k) {
			if m, ok := v.(map[string]any); !ok || len(m) != 0 {
				t.Fatalf("Leaves: %s released whole is not {} in %s", k, out)
			}
			continue
		}
		walkReleasedValues(t, k, v, released, out)
	}
	return out
}

// walkReleasedValues asserts that the values at released paths within v
// (at path) are leaves.
func walkReleasedValues(t *testing.T, path string, v any, released []string, out []byte) {
	t.Helper()
	if slices.Contains(released, path) {
		if a, ok := v.([]any); ok {
			for _, e := range a {
				switch e.(type) {
				case map[string]any, []any:
					t.Fatalf("Leaves: a structure inside the array at %s in %s", path, out)
				}
			}
		} else if _, ok := v.(map[string]any); ok {
			t.Fatalf("Leaves: an object at %s in %s", path, out)
		}
		return
	}
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			walkReleasedValues(t, path+"."+k, c, released, out)
		}
	case []any:
		for _, c := range v {
			walkReleasedValues(t, path+"[]", c, released, out)
		}
	}
}

// referenceAccepts is the acceptance rule of Filter, written independently
// of its walk: the library parses the whole value, then shape and depth are
// checked on the result; the envelope's "data" must be an object.
func referenceAccepts(body []byte, o Options) bool {
	if !referenceValid(body, o) {
		return false
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return false // not an object
	}
	if _, ok := top["error"]; ok {
		return false // an error answer
	}
	if _, ok := top["errors"]; ok {
		return false
	}
	data, ok := top["data"]
	if !ok {
		return false
	}
	var obj map[string]json.RawMessage
	return json.Unmarshal(data, &obj) == nil && obj != nil
}

// referenceValid reports a body that is one JSON value, parsed whole by the
// library, within o's size and depth limits.
func referenceValid(body []byte, o Options) bool {
	maxBytes, maxDepth := o.MaxBytes, o.MaxDepth
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	if len(body) > maxBytes {
		return false
	}
	d := jsontext.NewDecoder(bytes.NewReader(body))
	deepest := 0
	for {
		_, err := d.ReadToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return false
		}
		deepest = max(deepest, d.StackDepth())
		if d.StackDepth() == 0 {
			// One top-level value only.
			if _, err := d.ReadToken(); err != io.EOF {
				return false
			}
			break
		}
	}
	return deepest <= maxDepth
}

// checkReleased asserts the output shape and that every path in it is
// released. Paths use the catalogue syntax: "a.b[].c".
func checkReleased(t *testing.T, out []byte, released []string) {
	t.Helper()
	if !jsontext.Value(out).IsValid() {
		t.Fatalf("output is not valid JSON: %s", out)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		t.Fatalf("output is not an object: %s", out)
	}
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != "data,links,meta" {
		t.Fatalf("top-level members %q in %s", keys, out)
	}
	for _, k := range keys {
		m, ok := top[k].(map[string]any)
		if !ok {
			t.Fatalf("%s is not an object in %s", k, out)
		}
		for mk, v := range m {
			walkLeaves(t, k+"."+mk, v, released, out)
		}
	}
}

func walkLeaves(t *testing.T, path string, v any, released []string, out []byte) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 && !under(path, released) && !onTheWay(path, released) {
			t.Fatalf("empty object at unreleased %s in %s", path, out)
		}
		for k, c := range v {
			walkLeaves(t, path+"."+k, c, released, out)
		}
	case []any:
		if len(v) == 0 && !under(path, released) && !onTheWay(path, released) {
			t.Fatalf("empty array at unreleased %s in %s", path, out)
		}
		for _, c := range v {
			walkLeaves(t, path+"[]", c, released, out)
		}
	default:
		if !under(path, released) {
			t.Fatalf("leaf at unreleased %s in %s", path, out)
		}
	}
}

// under reports whether path is at or under a released path.
func under(path string, released []string) bool {
	for _, r := range released {
		if path == r || strings.HasPrefix(path, r) && (path[len(r)] == '.' || path[len(r)] == '[') {
			return true
		}
	}
	return false
}

// onTheWay reports whether path is a strict ancestor of a released path.
func onTheWay(path string, released []string) bool {
	for _, r := range released {
		if strings.HasPrefix(r, path) && len(r) > len(path) && (r[len(path)] == '.' || r[len(path)] == '[') {
			return true
		}
	}
	return false
}

// fuzzBarePathSets are the allow-lists FuzzC05_FilterBare picks from
// (legacy v2 answers, without envelope).
var fuzzBarePathSets = [][]string{
	{"quotientFamilial", "annee", "mois", "enfants[].prenoms", "adresse.codePostalVille"},
	{"statut", "inscriptions[].regime", "inscriptions[].etablissement.uai"},
	{"a", "b.c[]", "x[][].y", "x[][].z.w"},
	nil,
}

// FuzzC05_FilterBare checks the filter of legacy v2 answers, which every v2
// route uses, for any body (SECURITY.md C05, C06):
//   - Filter never panics;
//   - it accepts exactly the bodies that are valid JSON (one value, no
//     duplicate names, valid UTF-8), within the size and depth limits,
//     whose top level is an object;
//   - an accepted output is an object whose every leaf path is at or under
//     a released path, every empty object or array on the way to or under
//     one;
//   - filtering is idempotent;
//   - a refusal wraps ErrUnfilterable, leaves dst unchanged and quotes
//     nothing from the body;
//   - with Options.Leaves, the same bodies are accepted and every value at
//     a released path is a leaf (checkLeaves).
func FuzzC05_FilterBare(f *testing.F) {
	for i, b := range []string{
		`{"regime":"CNAF","allocataires":[{"nomNaissance":"CANARY"}],"enfants":[{"prenoms":"LEA","sexe":"F"}],"adresse":{"identite":"M","codePostalVille":"75002 PARIS"},"quotientFamilial":2550,"annee":2024,"mois":2}`,
		`{"statut":"boursier","inscriptions":[{"regime":"formation initiale","etablissement":{"uai":"0751717J","nom":"X"}},null,[]]}`,
		`{"a":1,"b":{"c":[1,{"d":2}]},"x":[[{"y":1,"z":{"w":2,"v":3}}],{"y":2},[]]}`,
		`{"error":"not_found","reason":"x","message":"y"}`,
		`{"a":1,"a":2}`,
		`{"\u0061":1,"b":{"\u0063":[]}}`,
		"{\"a\":\"\xff\"}",
		`[]`,
		`{"a":1} {}`,
		`{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
	} {
		f.Add([]byte(b), uint8(i))
		f.Add([]byte(b), uint8(0x80|i<<4|i))
	}
	f.Fuzz(func(t *testing.T, body []byte, sel uint8) {
		paths := fuzzBarePathSets[int(sel&0x0f)%len(fuzzBarePathSets)]
		o := Options{MaxBytes: 1 << 16}
		if sel&0x80 != 0 {
			o.MaxDepth = int(sel>>4&7) + 1
		}
		p, err := CompileBare(paths)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Filter([]byte("pre"), body, p, o)
		wantOK := referenceAcceptsBare(body, o, paths)
		if err != nil {
			if wantOK {
				t.Fatalf("refused an acceptable body: %v", err)
			}
			if !errors.Is(err, ErrUnfilterable) || string(out) != "pre" || strings.ContainsAny(err.Error(), "\"{[") {
				t.Fatalf("refusal %v, dst %q", err, out)
			}
			return
		}
		if !wantOK {
			t.Fatalf("accepted a body the reference refuses: %q", body)
		}
		out = bytes.TrimPrefix(out, []byte("pre"))
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		var top map[string]any
		if err := dec.Decode(&top); err != nil || top == nil {
			t.Fatalf("output is not an object: %s", out)
		}
		for k, v := range top {
			walkLeaves(t, k, v, paths, out)
		}
		again, err := Filter(nil, out, p, o)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %s -> %s, %v", out, again, err)
		}
		checkLeaves(t, body, p, o, paths, true)
	})
}

// referenceAcceptsBare is FuzzC05_FilterBare's acceptance rule: the
// envelope rule's JSON, size and depth checks, and an object at the top.
func referenceAcceptsBare(body []byte, o Options, released []string) bool {
	if !referenceValid(body, o) {
		return false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil || top == nil {
		return false
	}
	// An error answer: an error or errors member that no path releases.
	for _, name := range []string{"error", "errors"} {
		if _, ok := top[name]; ok && !slices.ContainsFunc(released, func(r string) bool {
			return r == name || strings.HasPrefix(r, name+".") || strings.HasPrefix(r, name+"[")
		}) {
			return false
		}
	}
	return true
}
