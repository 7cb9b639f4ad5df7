// Package sandbox reads sandbox case files in the format of API Particulier's
// official sandbox data (etalab/siade_staging_data, MIT) and answers requests
// the way siade's staging backend does (MockService / MockDataBackend).
//
// # Layout
//
// A payloads directory holds one folder per endpoint, named after the OpenAPI
// x-operationId (e.g. api_particulier_v3_cnav_quotient_familial_with_france_connect),
// plus a france_connect/ folder holding fake FranceConnect tokens. Only files
// ending in .yml or .yaml are read; README.md, summary.csv and other files are
// ignored, as are nested folders and names starting with a dot. A case file
// must be a regular file (a symbolic link to one will do): anything else
// named like one, a FIFO for instance, is a load error.
//
// # Case files
//
//	title: "…"            # optional
//	description: "…"      # optional, ignored
//	example: true         # optional, ignored
//	api_path: "/v3/…"     # optional, ignored
//	params:               # required mapping: the request parameters triggering the case
//	  nomNaissance: "DUPONT"
//	  prenoms: ["Paul", "Louis"]
//	  anneeDateNaissance: 1962
//	status: 200           # required HTTP status, 100–599
//	payload: |-           # required JSON text, returned verbatim
//	  {"data": {}, "links": {}, "meta": {}}
//
// Param values are strings, integers or sequences of those. Like Ruby's YAML
// loader, only plain decimal numbers become integers: 08480 or 1.50 are kept as
// written (as strings); booleans become "true"/"false", null becomes "".
// Unknown top-level fields are accepted (the official data carries several).
//
// Token files (france_connect/*.yml) have the same format: params.token is the
// bearer value and payload is the decoded checktoken JWS payload
// ({"aud","iat","iss","token_introspection":{…}}), which must be a JSON object.
//
// # Matching
//
// [Set.Match] reproduces siade's rule: the case params and the request params,
// string values lower-cased (keys are not), keys sorted, must be exactly equal.
// Integers compare as their decimal text, so 2002 equals "2002" but not
// "02002". Sequence values compare element by element, in order; a request key
// "prenoms[]", a repeated "prenoms" or a single "prenoms" all compare with a case
// key "prenoms" (a single value equals a one-element sequence). Empty sequences
// in a case are dropped, as Rails' to_query does. There is no partial match.
package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// TokenFolder is the folder holding fake FranceConnect tokens.
const TokenFolder = "france_connect"

// maxFileSize bounds the size of one case file.
const maxFileSize = 4 << 20

// Case is one sandbox case file. Cases are shared: callers must not modify
// Params or Payload.
type Case struct {
	Operation string         // folder name (x-operationId), or "france_connect" for tokens
	File      string         // file name inside the folder
	Title     string         // optional title
	Params    map[string]any // string, int or []any of string/int
	Status    int            // HTTP status to answer
	Payload   []byte         // JSON, returned verbatim

	key string // canonical match key
}

type operation struct {
	cases    []*Case
	byKey    map[string]*Case // first case (by file name) per canonical key
	notFound *Case
}

// Set is a loaded payloads directory. It is immutable after Load and safe for
// concurrent use.
type Set struct {
	ops    map[string]*operation
	names  []string
	tokens map[string]*Case
	tokenL []*Case
}

// Load reads every case file of the payloads directory fsys. Errors name the
// offending file; all problems are reported together.
func Load(fsys fs.FS) (*Set, error) {
	top, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("sandbox: reading payloads directory: %w", err)
	}
	s := &Set{ops: map[string]*operation{}, tokens: map[string]*Case{}}
	var errs []error
	files := 0
	for _, d := range top {
		name := d.Name()
		if !d.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		entries, err := fs.ReadDir(fsys, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("sandbox: %s: %w", name, err))
			continue
		}
		var op *operation
		if name != TokenFolder {
			op = &operation{byKey: map[string]*Case{}}
		}
		for _, e := range entries {
			fname := e.Name()
			if e.IsDir() || strings.HasPrefix(fname, ".") || !isYAML(fname) {
				continue
			}
			p := path.Join(name, fname)
			data, err := readFile(fsys, p)
			if err != nil {
				errs = append(errs, fmt.Errorf("sandbox: %s: %w", p, err))
				continue
			}
			files++
			c, err := parseCase(name, fname, data)
			if err != nil {
				errs = append(errs, fmt.Errorf("sandbox: %s: %w", p, err))
				continue
			}
			if op == nil {
				tok, err := tokenOf(c)
				if err != nil {
					errs = append(errs, fmt.Errorf("sandbox: %s: %w", p, err))
					continue
				}
				if prev, dup := s.tokens[tok]; dup {
					errs = append(errs, fmt.Errorf("sandbox: %s: params.token already defined by %s", p, prev.File))
					continue
				}
				s.tokens[tok] = c
				s.tokenL = append(s.tokenL, c)
				continue
			}
			op.cases = append(op.cases, c)
			if _, seen := op.byKey[c.key]; !seen {
				op.byKey[c.key] = c
			}
		}
		if op != nil && len(op.cases) > 0 {
			op.notFound = findNotFound(op.cases)
			s.ops[name] = op
			s.names = append(s.names, name)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if files == 0 {
		return nil, errors.New("sandbox: no case file (*.yml, *.yaml) found under <operation>/ folders")
	}
	sort.Strings(s.names)
	return s, nil
}

func isYAML(name string) bool {
	return strings.HasSuffix(name, ".yml") || strings.HasSuffix(name, ".yaml")
}

// readFile reads a case file, which must be a regular file once symbolic
// links are followed: the open of a FIFO would block the load, and with it
// Caddy's start or reload; a device is no case file either.
func readFile(fsys fs.FS, p string) ([]byte, error) {
	fi, err := fs.Stat(fsys, p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("file larger than %d bytes", maxFileSize)
	}
	return data, nil
}

func findNotFound(cases []*Case) *Case {
	for _, c := range cases {
		if c.File == "404.yaml" || c.File == "404.yml" {
			return c
		}
	}
	for _, c := range cases {
		if c.Status == 404 {
			return c
		}
	}
	return nil
}

// Token returns the fake FranceConnect token whose params.token is exactly
// bearer (case-sensitive).
func (s *Set) Token(bearer string) (*Case, bool) {
	c, ok := s.tokens[bearer]
	return c, ok
}

// Tokens returns the token cases, sorted by file name.
func (s *Set) Tokens() []*Case { return slices.Clone(s.tokenL) }

// Operations returns the endpoint folders holding at least one case, sorted.
// The token folder is not an operation.
func (s *Set) Operations() []string { return slices.Clone(s.names) }

// Cases returns the cases of an operation, sorted by file name.
func (s *Set) Cases(operation string) []*Case {
	if op, ok := s.ops[operation]; ok {
		return slices.Clone(op.cases)
	}
	return nil
}

// NotFound returns the operation's not-found case: its 404.yaml (or 404.yml),
// else the first case, by file name, with status 404.
func (s *Set) NotFound(operation string) (*Case, bool) {
	if op, ok := s.ops[operation]; ok && op.notFound != nil {
		return op.notFound, true
	}
	return nil, false
}

// Match returns the first case whose params equal query (see the package
// documentation), searching operations in the given order and, inside an
// operation, files in name order. Request parameters named in ignore (with or
// without a "[]" suffix) are left out of the comparison.
func (s *Set) Match(operations []string, query url.Values, ignore []string) (*Case, bool) {
	key, ok := requestKey(query, ignore)
	if !ok {
		return nil, false
	}
	for _, name := range operations {
		if op, ok := s.ops[name]; ok {
			if c, ok := op.byKey[key]; ok {
				return c, true
			}
		}
	}
	return nil, false
}

// requestKey builds the canonical key of a request. ok is false when the
// request is ambiguous ("prenoms" and "prenoms[]" both present).
func requestKey(query url.Values, ignore []string) (string, bool) {
	norm := make(map[string][]string, len(query))
	for k, vs := range query {
		if len(vs) == 0 {
			continue
		}
		nk := strings.TrimSuffix(k, "[]")
		if ignored(nk, ignore) {
			continue
		}
		if _, dup := norm[nk]; dup {
			return "", false
		}
		low := make([]string, len(vs))
		for i, v := range vs {
			low[i] = strings.ToLower(v)
		}
		norm[nk] = low
	}
	return canonical(norm), true
}

func ignored(k string, ignore []string) bool {
	for _, i := range ignore {
		if strings.TrimSuffix(i, "[]") == k {
			return true
		}
	}
	return false
}

// canonical encodes normalized params unambiguously: keys sorted, every
// string length-prefixed.
func canonical(m map[string][]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		writeLP(&b, k)
		vs := m[k]
		b.WriteString(strconv.Itoa(len(vs)))
		b.WriteByte('#')
		for _, v := range vs {
			writeLP(&b, v)
		}
	}
	return b.String()
}

func writeLP(b *strings.Builder, s string) {
	b.WriteString(strconv.Itoa(len(s)))
	b.WriteByte(':')
	b.WriteString(s)
}

// parseCase decodes one case file. name is the file name, used in Case.File.
func parseCase(op, name string, data []byte) (*Case, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty file")
		}
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("top level must be a mapping")
	}
	root := doc.Content[0]
	c := &Case{Operation: op, File: name}
	seen := map[string]bool{}
	var hasParams, hasStatus, hasPayload bool
	for i := 0; i+1 < len(root.Content); i += 2 {
		kn, vn := root.Content[i], deref(root.Content[i+1])
		if kn.Kind != yaml.ScalarNode {
			return nil, errors.New("top-level keys must be scalars")
		}
		k := kn.Value
		if seen[k] {
			return nil, fmt.Errorf("%s: repeated field", k)
		}
		seen[k] = true
		switch k {
		case "params":
			p, err := parseParams(vn)
			if err != nil {
				return nil, err
			}
			c.Params, hasParams = p, true
		case "status":
			if vn.Kind != yaml.ScalarNode || vn.ShortTag() != "!!int" {
				return nil, errors.New("status: must be an integer")
			}
			st, err := strconv.Atoi(vn.Value)
			if err != nil || st < 100 || st > 599 {
				return nil, errors.New("status: must be an HTTP status between 100 and 599")
			}
			c.Status, hasStatus = st, true
		case "payload":
			if vn.Kind != yaml.ScalarNode || vn.ShortTag() != "!!str" {
				return nil, errors.New("payload: must be a string holding JSON")
			}
			if !json.Valid([]byte(vn.Value)) {
				return nil, errors.New("payload: not valid JSON")
			}
			c.Payload, hasPayload = []byte(vn.Value), true
		case "title":
			if vn.Kind == yaml.ScalarNode {
				c.Title = vn.Value
			}
		}
	}
	switch {
	case !hasParams:
		return nil, errors.New("params: missing")
	case !hasStatus:
		return nil, errors.New("status: missing")
	case !hasPayload:
		return nil, errors.New("payload: missing")
	}
	key, err := caseKey(c.Params)
	if err != nil {
		return nil, err
	}
	c.key = key
	return c, nil
}

// deref resolves one level of YAML alias.
func deref(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

func parseParams(n *yaml.Node) (map[string]any, error) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil, errors.New("params: must be a mapping, got null")
	}
	if n.Kind != yaml.MappingNode {
		return nil, errors.New("params: must be a mapping")
	}
	out := make(map[string]any, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := deref(n.Content[i]), deref(n.Content[i+1])
		if kn.Kind != yaml.ScalarNode {
			return nil, errors.New("params: keys must be scalars")
		}
		k := kn.Value
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("params.%s: repeated key", k)
		}
		switch vn.Kind {
		case yaml.ScalarNode:
			out[k] = scalarValue(vn)
		case yaml.SequenceNode:
			arr := make([]any, 0, len(vn.Content))
			for _, en := range vn.Content {
				en = deref(en)
				if en.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("params.%s: sequence items must be scalars", k)
				}
				arr = append(arr, scalarValue(en))
			}
			out[k] = arr
		default:
			return nil, fmt.Errorf("params.%s: must be a string, an integer or a sequence", k)
		}
	}
	return out, nil
}

// scalarValue mirrors what Ruby's YAML loader followed by to_query produces:
// decimal integers become int, null becomes "", everything else keeps its text.
func scalarValue(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!int", "!!float":
		if isDecimal(n.Value) {
			if v, err := strconv.Atoi(n.Value); err == nil {
				return v
			}
		}
	case "!!null":
		return ""
	case "!!bool":
		if v, err := strconv.ParseBool(strings.ToLower(n.Value)); err == nil {
			return strconv.FormatBool(v)
		}
	}
	return n.Value
}

// isDecimal reports whether s is [-+]?(0|[1-9][0-9]*).
func isDecimal(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func caseKey(params map[string]any) (string, error) {
	norm := make(map[string][]string, len(params))
	for k, v := range params {
		nk := strings.TrimSuffix(k, "[]")
		if _, dup := norm[nk]; dup {
			return "", fmt.Errorf("params: keys %q and %q collide", nk, nk+"[]")
		}
		switch v := v.(type) {
		case []any:
			if len(v) == 0 {
				continue // Rails' to_query drops empty arrays
			}
			vs := make([]string, len(v))
			for i, e := range v {
				vs[i] = valueText(e)
			}
			norm[nk] = vs
		default:
			norm[nk] = []string{valueText(v)}
		}
	}
	return canonical(norm), nil
}

func valueText(v any) string {
	switch v := v.(type) {
	case int:
		return strconv.Itoa(v)
	case string:
		return strings.ToLower(v)
	default:
		return strings.ToLower(fmt.Sprint(v))
	}
}

func tokenOf(c *Case) (string, error) {
	t, ok := c.Params["token"].(string)
	if !ok || t == "" {
		return "", errors.New("params.token: must be a non-empty string")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(c.Payload, &obj); err != nil || obj == nil {
		return "", errors.New("payload: must be a JSON object (the decoded checktoken payload)")
	}
	return t, nil
}
