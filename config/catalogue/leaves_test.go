package catalogue_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/sandbox"
)

// req: C05
// TestReleasedPathsAreLeaves: every path a scope of the default catalogue
// releases ends at a leaf of the answer: in every 200 sandbox payload of its
// route (config/sandbox/payloads/<operation_id>), it resolves to a string,
// number, boolean, null or an array of those, never to an object or an
// array of objects. The response filter releases a path's whole subtree, so
// a mask naming an object (data.allocataires, data.adresse) would pass a
// member the provider adds inside it (allocataires[].nir) to the caller
// (SECURITY.md C05: unknown or new provider fields are dropped, nested
// objects and arrays included). A path must also have the shape the
// payloads have ("[]" on arrays only) and be present in at least one
// payload, so that a misspelt leaf cannot pass unnoticed.
func TestReleasedPathsAreLeaves(t *testing.T) {
	c, s := mustCatalogue(t), sandbox.Embedded()
	for i := range c.Endpoints {
		ep := &c.Endpoints[i]
		t.Run(ep.ID, func(t *testing.T) {
			var bodies []any
			for _, cs := range s.Cases(ep.OperationID) {
				if cs.Status != 200 {
					continue
				}
				dec := json.NewDecoder(bytes.NewReader(cs.Payload))
				dec.UseNumber()
				var body any
				if err := dec.Decode(&body); err != nil {
					t.Fatalf("%s/%s: %v", ep.OperationID, cs.File, err)
				}
				bodies = append(bodies, body)
			}
			if len(bodies) == 0 {
				t.Fatalf("no 200 sandbox payload for %s", ep.OperationID)
			}
			for _, sc := range ep.Scopes {
				for _, f := range sc.Fields {
					found := false
					for j, body := range bodies {
						for _, r := range resolvePath(body, f) {
							found = found || r.problem == ""
							if r.problem != "" || !isLeaf(r.value) {
								t.Errorf("%s: %s, payload %d: %s", sc.Name, f, j, cmp.Or(r.problem, "an object or an array of objects, not a leaf"))
							}
						}
					}
					if !found {
						t.Errorf("%s: %s is in no 200 payload of %s", sc.Name, f, ep.OperationID)
					}
				}
			}
		})
	}
}

// resolved is one value a path reaches in a body, or why it cannot.
type resolved struct {
	value   any
	problem string
}

// resolvePath returns the values path reaches in body, following the
// respfilter syntax ("a.b[].c"): one per element for "[]". An absent
// member or a null on the way reaches nothing (the filter keeps nothing
// either); a value of the wrong shape on the way ("[]" on a non-array, a
// member of a non-object) is reported.
func resolvePath(body any, path string) []resolved {
	cur := []any{body}
	for _, seg := range strings.Split(path, ".") {
		key := strings.TrimRight(seg, "[]")
		var next []any
		for _, v := range cur {
			switch o := v.(type) {
			case nil:
			case map[string]any:
				if m, ok := o[key]; ok {
					next = append(next, m)
				}
			default:
				return []resolved{{problem: fmt.Sprintf("%s: a member of a %T", key, v)}}
			}
		}
		for range (len(seg) - len(key)) / 2 {
			var elems []any
			for _, v := range next {
				switch a := v.(type) {
				case nil:
				case []any:
					elems = append(elems, a...)
				default:
					return []resolved{{problem: fmt.Sprintf("%s[]: a %T, not an array", key, v)}}
				}
			}
			next = elems
		}
		cur = next
	}
	out := make([]resolved, len(cur))
	for i, v := range cur {
		out[i] = resolved{value: v}
	}
	return out
}

// isLeaf: a scalar, null, or an array of scalars and nulls.
func isLeaf(v any) bool {
	switch a := v.(type) {
	case map[string]any:
		return false
	case []any:
		for _, e := range a {
			switch e.(type) {
			case map[string]any, []any:
				return false
			}
		}
	}
	return true
}

// schemaGaps are released paths the official response schema lacks,
// per operation_id, with why they are released anyway.
var schemaGaps = map[string][]string{
	// siade's StudentStatus::V2 serializer and the sandbox payloads carry
	// them as scalars; the v2 OpenAPI leaves them out.
	"api_particulier_v2_mesri_student_status": {"ine", "inscriptions[].dateDebutAdmission", "inscriptions[].dateFinAdmission"},
}

// updateSchemaLeaves regenerates testdata/schema_leaves.json from the
// official OpenAPI files (siade_staging_data in the shared folder next to
// the repository): go test ./config/catalogue -run
// TestReleasedPathsAreSchemaLeaves -update-schema-leaves.
var updateSchemaLeaves = flag.Bool("update-schema-leaves", false, "regenerate testdata/schema_leaves.json from ../shared's official OpenAPI files")

// schemaLeavesFile holds, for each operation_id of the default catalogue,
// every leaf path (respfilter syntax) of its 200 response schema in API
// Particulier's official OpenAPI files, so that the check below runs on a
// fresh clone too.
const schemaLeavesFile = "testdata/schema_leaves.json"

type schemaLeaves struct {
	Source     string              `json:"source"`
	Operations map[string][]string `json:"operations"`
}

// TestReleasedPathsAreSchemaLeaves: every released path is a leaf of the
// 200 response schema of its route's operation_id (x-operationId) in the
// official OpenAPI files (testdata/schema_leaves.json, made from them): it
// exists there and ends at a scalar or an array of scalars (schemaGaps
// aside). And a route releases every leaf of an object it releases part
// of, below data (or the v2 root): a mask enumerates the keys its scopes
// release, it does not drop members of them.
func TestReleasedPathsAreSchemaLeaves(t *testing.T) {
	c := mustCatalogue(t)
	if *updateSchemaLeaves {
		writeSchemaLeaves(t, c)
	}
	data, err := os.ReadFile(schemaLeavesFile)
	if err != nil {
		t.Fatal(err)
	}
	var sl schemaLeaves
	if err := json.Unmarshal(data, &sl); err != nil {
		t.Fatal(err)
	}
	for i := range c.Endpoints {
		ep := &c.Endpoints[i]
		t.Run(ep.ID, func(t *testing.T) {
			leaves, ok := sl.Operations[ep.OperationID]
			if !ok {
				t.Fatalf("no 200 schema for %s in %s (-update-schema-leaves)", ep.OperationID, schemaLeavesFile)
			}
			under := func(above string) []string {
				return slices.DeleteFunc(slices.Clone(leaves), func(l string) bool {
					rest, ok := strings.CutPrefix(l, above)
					return !ok || rest != "" && rest[0] != '.' && rest[0] != '['
				})
			}
			released := map[string]bool{}
			for _, sc := range ep.Scopes {
				for _, f := range sc.Fields {
					released[f] = true
					switch {
					case slices.Contains(schemaGaps[ep.OperationID], f), slices.Contains(leaves, f):
					case len(under(f)) > 0:
						t.Errorf("%s: %s is an object or an array of objects in the schema, not a leaf", sc.Name, f)
					default:
						t.Errorf("%s: %s is not a leaf of the schema", sc.Name, f)
					}
				}
			}
			// Completeness: for every object above a released leaf, below
			// data (v2: below the root), the route releases its every leaf.
			checked := map[string]bool{}
			for f := range released {
				segs := strings.Split(f, ".")
				first := 1
				if ep.API == catalogue.APIv2 {
					first = 0
				}
				for k := first; k < len(segs)-1; k++ {
					above := strings.Join(segs[:k+1], ".")
					if checked[above] {
						continue
					}
					checked[above] = true
					for _, leaf := range under(above) {
						if !released[leaf] {
							t.Errorf("%s is released in part: %s is not", above, leaf)
						}
					}
				}
			}
		})
	}
}

// writeSchemaLeaves reads the official OpenAPI files and writes the leaf
// paths of the 200 response schema of every operation of c.
func writeSchemaLeaves(t *testing.T, c *catalogue.Catalogue) {
	t.Helper()
	ref := filepath.Join("..", "..", "..", "shared", "reference", "siade_staging_data")
	files, _ := filepath.Glob(filepath.Join(ref, "openapi_files", "*.yaml"))
	if len(files) == 0 {
		t.Fatalf("-update-schema-leaves: no official OpenAPI file in %s", ref)
	}
	schemas := map[string]*oaSchema{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		maps.Copy(schemas, successSchemas(t, doc))
	}
	commit, _ := os.ReadFile(filepath.Join(ref, "SOURCE_COMMIT"))
	sl := schemaLeaves{Source: "siade_staging_data openapi_files, " + strings.TrimSpace(string(commit)), Operations: map[string][]string{}}
	for i := range c.Endpoints {
		op := c.Endpoints[i].OperationID
		if root := schemas[op]; root != nil {
			props, _ := root.m["properties"].(map[string]any)
			var leaves []string
			for k, v := range props {
				leaves = append(leaves, root.child(v).leaves(k)...)
			}
			slices.Sort(leaves)
			sl.Operations[op] = leaves
		}
	}
	out, err := json.MarshalIndent(sl, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(schemaLeavesFile, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// oaSchema is a resolved OpenAPI schema node.
type oaSchema struct {
	doc map[string]any
	m   map[string]any
}

// successSchemas returns the 200 application/json schema of each operation
// of doc, by the x-operationId of the 200 answer (or of the operation).
func successSchemas(t *testing.T, doc map[string]any) map[string]*oaSchema {
	t.Helper()
	out := map[string]*oaSchema{}
	paths, _ := doc["paths"].(map[string]any)
	for _, item := range paths {
		methods, _ := item.(map[string]any)
		for _, op := range methods {
			opm, _ := op.(map[string]any)
			responses, _ := opm["responses"].(map[string]any)
			ok, _ := deref(doc, responses["200"]).(map[string]any)
			id, _ := ok["x-operationId"].(string)
			if id == "" {
				id, _ = opm["x-operationId"].(string)
			}
			content, _ := ok["content"].(map[string]any)
			media, _ := content["application/json"].(map[string]any)
			if id == "" || media == nil {
				continue
			}
			out[id] = &oaSchema{doc, mergeSchema(doc, media["schema"])}
		}
	}
	return out
}

// deref follows local $ref pointers.
func deref(doc map[string]any, v any) any {
	for range 32 {
		m, ok := v.(map[string]any)
		ref, _ := m["$ref"].(string)
		if !ok || !strings.HasPrefix(ref, "#/") {
			return v
		}
		var cur any = doc
		for _, p := range strings.Split(ref[2:], "/") {
			cm, _ := cur.(map[string]any)
			cur = cm[p]
		}
		v = cur
	}
	return v
}

// mergeSchema resolves v and folds allOf, oneOf and anyOf into one node
// whose properties are the union of theirs (a path is a leaf when it is one
// in every alternative the schema allows).
func mergeSchema(doc map[string]any, v any) map[string]any {
	m, _ := deref(doc, v).(map[string]any)
	var subs []any
	for _, k := range []string{"allOf", "oneOf", "anyOf"} {
		if l, ok := m[k].([]any); ok {
			subs = append(subs, l...)
		}
	}
	if len(subs) == 0 {
		return m
	}
	out := map[string]any{}
	props := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	if p, ok := m["properties"].(map[string]any); ok {
		maps.Copy(props, p)
	}
	for _, sub := range subs {
		sm := mergeSchema(doc, sub)
		if sm["type"] == "null" {
			continue
		}
		for k, v := range sm {
			if _, set := out[k]; !set {
				out[k] = v
			}
		}
		if p, ok := sm["properties"].(map[string]any); ok {
			maps.Copy(props, p)
		}
	}
	if len(props) > 0 {
		out["properties"] = props
	}
	return out
}

func (s *oaSchema) typ() string {
	switch t := s.m["type"].(type) {
	case string:
		return t
	case []any: // [x, "null"]
		for _, e := range t {
			if e != "null" {
				return fmt.Sprint(e)
			}
		}
	}
	if _, ok := s.m["properties"]; ok {
		return "object"
	}
	return ""
}

func (s *oaSchema) child(v any) *oaSchema { return &oaSchema{s.doc, mergeSchema(s.doc, v)} }

// leaf: a scalar, or an array of scalars. A free-form object
// (additionalProperties) is no leaf either: no mask may keep one.
func (s *oaSchema) leaf() bool {
	switch s.typ() {
	case "object":
		return false
	case "array":
		return s.child(s.m["items"]).leaf() && s.child(s.m["items"]).typ() != "array"
	}
	return true
}

// leaves lists the leaf paths under s, itself at path.
func (s *oaSchema) leaves(path string) []string {
	switch s.typ() {
	case "object":
		props, _ := s.m["properties"].(map[string]any)
		var out []string
		for k, v := range props {
			out = append(out, s.child(v).leaves(path+"."+k)...)
		}
		return out
	case "array":
		if it := s.child(s.m["items"]); !it.leaf() {
			return it.leaves(path + "[]")
		}
	}
	return []string{path}
}
