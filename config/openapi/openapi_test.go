package openapi_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	"github.com/pb33f/libopenapi-validator/schema_validation"

	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/openapi"
	"github.com/passerelle-gw/passerelle/config/openapi/openapitest"
)

const testSIRET = "13002526500013"

func defaultCatalogue(t *testing.T) *catalogue.Catalogue {
	t.Helper()
	c, err := catalogue.Default()
	if err != nil {
		t.Fatalf("default catalogue: %v", err)
	}
	return c
}

func generate(t *testing.T, c *catalogue.Catalogue, utility bool) []byte {
	t.Helper()
	doc, err := openapi.Generate(c, openapi.Options{Title: "Passerelle test", Version: "1.2.3",
		ServerURL: "https://passerelle.example.org", Utility: utility})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return doc
}

func newValidator(t *testing.T, doc []byte) *openapitest.Validator {
	t.Helper()
	v, err := openapitest.NewValidator(doc)
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	return v
}

// endpoint returns the first endpoint of c satisfying ok.
func endpoint(t *testing.T, c *catalogue.Catalogue, what string, ok func(*catalogue.Endpoint) bool) *catalogue.Endpoint {
	t.Helper()
	for i := range c.Endpoints {
		if ok(&c.Endpoints[i]) {
			return &c.Endpoints[i]
		}
	}
	t.Fatalf("the default catalogue has no %s", what)
	return nil
}

func TestDocumentIsValidOpenAPI31(t *testing.T) {
	c := defaultCatalogue(t)
	for _, utility := range []bool{false, true} {
		raw := generate(t, c, utility)
		doc, err := libopenapi.NewDocument(raw)
		if err != nil {
			t.Fatalf("utility=%v: libopenapi cannot parse the document: %v", utility, err)
		}
		info := doc.GetSpecInfo()
		if info.Version != "3.1.0" || info.VersionNumeric != 3.1 {
			t.Fatalf("utility=%v: version %q (%v), want 3.1.0", utility, info.Version, info.VersionNumeric)
		}
		if ok, errs := schema_validation.ValidateOpenAPIDocument(doc); !ok {
			for _, e := range errs {
				t.Errorf("utility=%v: meta-schema: %v", utility, e)
			}
			t.FailNow()
		}
		model, err := doc.BuildV3Model()
		if err != nil {
			t.Fatalf("utility=%v: model: %v", utility, err)
		}
		if model.Model.Servers[0].URL != "https://passerelle.example.org" || model.Model.Info.Title != "Passerelle test" {
			t.Errorf("utility=%v: servers or info not taken from the options", utility)
		}

		ops := map[string]string{} // operationId → path
		for path, item := range model.Model.Paths.PathItems.FromOldest() {
			for method, op := range item.GetOperations().FromOldest() {
				if method != "get" {
					t.Errorf("%s: unexpected method %s", path, method)
				}
				if prev, dup := ops[op.OperationId]; dup {
					t.Errorf("operationId %s on %s and %s", op.OperationId, prev, path)
				}
				ops[op.OperationId] = path
			}
		}
		want := len(c.Endpoints)
		for i := range c.Endpoints {
			if twin, ok := c.CallerTwin(c.Endpoints[i].Path); ok && twin == &c.Endpoints[i] {
				want-- // described by its FranceConnect twin's operation
			}
		}
		if utility {
			want += 4
		}
		if len(ops) != want {
			t.Errorf("utility=%v: %d operations, want %d", utility, len(ops), want)
		}
		for _, e := range c.Endpoints {
			if ops[e.OperationID] != e.Path {
				t.Errorf("endpoint %s: operation %s at %q, want %s", e.ID, e.OperationID, ops[e.OperationID], e.Path)
			}
		}
		for _, p := range []string{openapi.IntrospectPath, openapi.PingsPath, openapi.PingPath, openapi.DocumentPath} {
			if _, ok := model.Model.Paths.PathItems.Get(p); ok != utility {
				t.Errorf("utility=%v: path %s present=%v", utility, p, ok)
			}
		}
	}
}

func TestDeterministic(t *testing.T) {
	a := generate(t, defaultCatalogue(t), true)
	b := generate(t, defaultCatalogue(t), true)
	if !bytes.Equal(a, b) {
		t.Fatal("two generations of the same catalogue differ")
	}
	// Paths are sorted.
	var doc struct {
		Paths json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(a, &doc); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(doc.Paths))
	_, _ = dec.Token() // {
	prev := ""
	for dec.More() {
		tok, _ := dec.Token()
		key := tok.(string)
		if key <= prev {
			t.Fatalf("paths not sorted: %q after %q", key, prev)
		}
		prev = key
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGenerateRefuses(t *testing.T) {
	if _, err := openapi.Generate(nil, openapi.Options{Version: "1"}); err == nil {
		t.Error("nil catalogue accepted")
	}
	if _, err := openapi.Generate(defaultCatalogue(t), openapi.Options{}); err == nil {
		t.Error("empty version accepted")
	}
	c := parseCatalogue(t, strings.Replace(v3Catalogue, "path: /v3/test/quotient/france_connect", "path: /api/introspect", 1))
	if _, err := openapi.Generate(c, openapi.Options{Version: "1"}); err != nil {
		t.Errorf("without utility routes, /api/introspect is a catalogue path like any other: %v", err)
	}
	if _, err := openapi.Generate(c, openapi.Options{Version: "1", Utility: true}); err == nil {
		t.Error("a catalogue path colliding with a utility route accepted")
	}
}

// exchange builds a GET request on path with query q and the answer
// status/body (Content-Type JSON, X-Request-Id set unless noID).
func exchange(path string, q url.Values, status int, body string) (*http.Request, *http.Response) {
	u := "https://passerelle.example.org" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer test-token")
	resp := &http.Response{
		StatusCode: status,
		Header: http.Header{
			"Content-Type": {"application/json; charset=utf-8"},
			"X-Request-Id": {"3f0c7d1e-8a7b-4a57-9a0e-2f4c8d9b6e21"},
		},
		Body:    io.NopCloser(strings.NewReader(body)),
		Request: req,
	}
	return req, resp
}

func TestResponseValidation(t *testing.T) {
	c := defaultCatalogue(t)
	v := newValidator(t, generate(t, c, true))
	qf := endpoint(t, c, "quotient familial FranceConnect route", func(e *catalogue.Endpoint) bool {
		return e.Path == "/v3/dss/quotient_familial/france_connect"
	})
	mesri := endpoint(t, c, "MESRI FranceConnect route", func(e *catalogue.Endpoint) bool {
		return e.Path == "/v3/mesri/statut_etudiant/france_connect"
	})
	retry := func(r *http.Response) { r.Header.Set("Retry-After", "12") }
	noID := func(r *http.Response) { r.Header.Del("X-Request-Id") }
	rateLimit := func(r *http.Response) {
		r.Header.Set("RateLimit-Limit", "20")
		r.Header.Set("RateLimit-Remaining", "19")
		r.Header.Set("RateLimit-Reset", "1767225600")
	}
	for _, tc := range []struct {
		name   string
		path   string
		status int
		body   string
		edit   func(*http.Response)
		valid  bool
		want   string // substring of the error
	}{
		{name: "200 well formed", path: qf.Path, status: 200, edit: rateLimit, valid: true,
			body: `{"data":{"quotient_familial":{"fournisseur":"CNAF","valeur":2550},"enfants":[]},"links":{},"meta":{}}`},
		{name: "200 without any released member", path: qf.Path, status: 200, valid: true,
			body: `{"data":{},"links":{},"meta":{}}`},
		{name: "200 nested mask member", path: mesri.Path, status: 200, valid: true,
			body: `{"data":{"admissions":[{"est_inscrit":true}]},"links":{},"meta":{}}`},
		{name: "200 unknown key under data", path: qf.Path, status: 200,
			body: `{"data":{"quotient_familial":{},"identite":{"nom":"DUPONT"}},"links":{},"meta":{}}`,
			want: "additional properties 'identite' not allowed"},
		{name: "200 unknown top-level key", path: qf.Path, status: 200,
			body: `{"data":{},"links":{},"meta":{},"extra":1}`, want: "additionalProperties"},
		{name: "200 without links", path: qf.Path, status: 200,
			body: `{"data":{"quotient_familial":{}},"meta":{}}`, want: "missing property 'links'"},
		{name: "200 data not an object", path: qf.Path, status: 200,
			body: `{"data":[],"links":{},"meta":{}}`, want: "type"},
		{name: "200 without X-Request-Id", path: qf.Path, status: 200, edit: noID,
			body: `{"data":{},"links":{},"meta":{}}`, want: "X-Request-Id"},
		{name: "200 RateLimit header not an integer", path: qf.Path, status: 200,
			edit: func(r *http.Response) { r.Header.Set("RateLimit-Remaining", "many") },
			body: `{"data":{},"links":{},"meta":{}}`, want: "RateLimit-Remaining"},
		{name: "403 error shape", path: qf.Path, status: 403, valid: true,
			body: `{"errors":[{"code":"00100","title":"Privilèges insuffisants","detail":"…","source":null,"meta":{}}]}`},
		{name: "422 error shape with source", path: qf.Path, status: 422, valid: true,
			body: `{"errors":[{"code":"00203","title":"Entité non traitable","detail":"…","source":{"parameter":"recipient"},"meta":{}}]}`},
		{name: "404 error shape with provider", path: qf.Path, status: 404, valid: true,
			body: `{"errors":[{"code":"37003","title":"Dossier absent","detail":"…","source":null,"meta":{"provider":"CNAV"}}]}`},
		{name: "429 with Retry-After", path: qf.Path, status: 429, edit: retry, valid: true,
			body: `{"errors":[{"code":"00429","title":"Trop de requêtes","detail":"…","source":null,"meta":{}}]}`},
		{name: "429 without Retry-After", path: qf.Path, status: 429,
			body: `{"errors":[{"code":"00429","title":"Trop de requêtes","detail":"…","source":null,"meta":{}}]}`,
			want: "Retry-After"},
		{name: "503 under default", path: qf.Path, status: 503, valid: true,
			body: `{"errors":[{"code":"00503","title":"Service indisponible","detail":"…","source":null,"meta":{}}]}`},
		{name: "422 malformed code", path: qf.Path, status: 422,
			body: `{"errors":[{"code":"SECRET-DUPONT","title":"t","detail":"d","source":null,"meta":{}}]}`,
			want: "pattern"},
		{name: "403 without title", path: qf.Path, status: 403,
			body: `{"errors":[{"code":"00100","detail":"d"}]}`, want: "missing property 'title'"},
		{name: "403 v2 shape on a v3 route", path: qf.Path, status: 403,
			body: `{"error":"access_denied","reason":"r","message":"m"}`, want: "missing property 'errors'"},
		{name: "401 with empty errors", path: qf.Path, status: 401, body: `{"errors":[]}`, want: "minItems"},
		{name: "418 not in the contract", path: qf.Path, status: 418, body: `{}`, valid: false, want: "418"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, resp := exchange(tc.path, url.Values{"recipient": {testSIRET}}, tc.status, tc.body)
			if tc.edit != nil {
				tc.edit(resp)
			}
			err := v.ValidateResponse(req, resp)
			if tc.valid {
				if err != nil {
					t.Fatalf("valid answer refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("invalid answer accepted")
			}
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
				t.Errorf("error does not mention %q: %v", tc.want, err)
			}
			if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "DUPONT") {
				t.Errorf("error quotes body content: %v", err)
			}
			if b, _ := io.ReadAll(resp.Body); string(b) != tc.body {
				t.Error("the response body is not readable after validation")
			}
		})
	}
}

// Every scope field of every default route is released by the document:
// a 200 body holding one member per released first member validates, on
// every route (v3: under data, links or meta; v2: at the root).
func TestEveryReleasedMemberValidates(t *testing.T) {
	c := defaultCatalogue(t)
	v := newValidator(t, generate(t, c, false))
	for _, e := range c.Endpoints {
		value := map[string]any{"any": []any{1, "x", nil}}
		var body any
		if e.API == catalogue.APIv2 {
			root := map[string]any{}
			for _, s := range e.Scopes {
				for _, f := range s.Fields {
					first, _, _ := strings.Cut(f, ".")
					root[strings.TrimSuffix(first, "[]")] = value
				}
			}
			body = root
		} else {
			env := map[string]map[string]any{"data": {}, "links": {}, "meta": {}}
			for _, s := range e.Scopes {
				for _, f := range s.Fields {
					root, rest, _ := strings.Cut(f, ".")
					first, _, _ := strings.Cut(rest, ".")
					env[root][strings.TrimSuffix(first, "[]")] = value
				}
			}
			body = env
		}
		raw, _ := json.Marshal(body)
		req, resp := exchange(e.Path, nil, 200, string(raw))
		if err := v.ValidateResponse(req, resp); err != nil {
			t.Errorf("%s: %v", e.ID, err)
		}
	}
}

func TestRequestValidation(t *testing.T) {
	c := defaultCatalogue(t)
	v := newValidator(t, generate(t, c, true))
	fc := endpoint(t, c, "FranceConnect route with a recipient", func(e *catalogue.Endpoint) bool {
		return e.Modality == catalogue.ModalityFranceConnect && e.RecipientRequired()
	})
	// A parameter checked as sent (no normalisation), not repeatable, and
	// a value its pattern refuses.
	var plain *catalogue.Param
	pe := endpoint(t, c, "parameter with a pattern and no normalisation", func(e *catalogue.Endpoint) bool {
		for i := range e.Params {
			if p := &e.Params[i]; p.Pattern != "" && p.Normalize == "" && !strings.HasSuffix(p.Name, "[]") {
				plain = p
				return true
			}
		}
		return false
	})
	bad := ""
	for _, cand := range []string{"!", "x", "0", "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"} {
		if !regexp.MustCompile(plain.Pattern).MatchString(cand) {
			bad = cand
			break
		}
	}
	if bad == "" {
		t.Fatalf("no malformed candidate for %s (%s)", plain.Name, plain.Pattern)
	}
	// An identite route with its required parameters.
	id := endpoint(t, c, "identite route taking prenoms[]", func(e *catalogue.Endpoint) bool {
		_, ok := e.Param("prenoms[]")
		return e.Modality == catalogue.ModalityIdentite && ok
	})
	idQuery := func() url.Values {
		q := url.Values{}
		if id.RecipientRequired() {
			q.Set("recipient", testSIRET)
		}
		for _, p := range id.Params {
			if !p.Required {
				continue
			}
			val := map[string]string{"sexeEtatCivil": "F", "codeCogInseePaysNaissance": "99100",
				"anneeDateNaissance": "1980", "moisDateNaissance": "6", "jourDateNaissance": "12"}[p.Name]
			q.Add(p.Name, cmp.Or(val, "MARTIN"))
		}
		return q
	}

	request := func(path string, q url.Values, auth bool) *http.Request {
		req, _ := exchange(path, q, 200, "")
		if !auth {
			req.Header.Del("Authorization")
		}
		return req
	}
	for _, tc := range []struct {
		name  string
		req   *http.Request
		valid bool
		want  string
	}{
		{"FranceConnect route with recipient", request(fc.Path, url.Values{"recipient": {testSIRET}}, true), true, ""},
		{"missing recipient", request(fc.Path, nil, true), false, "recipient"},
		{"recipient not 14 digits", request(fc.Path, url.Values{"recipient": {"123"}}, true), false, "recipient"},
		{"no credential", request(fc.Path, url.Values{"recipient": {testSIRET}}, false), false, ""},
		{"malformed parameter", request(pe.Path, func() url.Values {
			q := url.Values{plain.Name: {bad}}
			if pe.RecipientRequired() {
				q.Set("recipient", testSIRET)
			}
			return q
		}(), true), false, plain.Name},
		{"identite route with its required parameters", request(id.Path, idQuery(), true), true, ""},
		{"identite route without a required parameter", request(id.Path, func() url.Values {
			q := idQuery()
			q.Del("prenoms[]")
			return q
		}(), true), false, "prenoms[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := v.ValidateRequest(tc.req)
			if tc.valid {
				if err != nil {
					t.Fatalf("valid request refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("invalid request accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not mention %q: %v", tc.want, err)
			}
			if bad != "" && strings.Contains(err.Error(), "'"+bad+"'") {
				t.Errorf("error quotes the parameter value: %v", err)
			}
		})
	}
}

// v3Catalogue is a small catalogue: a FranceConnect route with aliases, and
// an identite route with normalised parameters.
const v3Catalogue = `
providers:
  CNAV: {error_prefix: "37"}
endpoints:
  - id: test_qf_fc
    path: /v3/test/quotient/france_connect
    modality: france_connect
    operation_id: test_qf_fc
    provider: CNAV
    upstream_path: /v3/test/quotient/identite
    identity:
      - {param: nomNaissance, claim: family_name}
    scopes:
      - {name: cnaf_quotient_familial, aliases: [qf_alias_one, qf_alias_two], basis: doc, fields: [data.quotient_familial, meta.source]}
  - id: test_qf_identite
    path: /v3/test/quotient/identite
    modality: identite
    operation_id: test_qf_identite
    provider: CNAV
    upstream_path: /v3/test/quotient/identite
    recipient: none
    params:
      - {name: nomNaissance, required: true, normalize: name, pattern: "^[\\p{L}][\\p{L}' -]*$", max_length: 100, pivot: family_name}
      - {name: sexeEtatCivil, required: true, normalize: upper, pattern: '^[MF]$'}
      - {name: annee, pattern: '^[0-9]{4}$', pivot: birth_year}
      - {name: "prenoms[]", required: true, max: 3, normalize: name, pattern: "^[\\p{L}][\\p{L}' -]*$", max_length: 100, pivot: given_names}
      - {name: "codesBcnDepartements[]", max: 5, pattern: '^[0-9]{3}$'}
    scopes:
      - {name: cnaf_quotient_familial, basis: doc, fields: [data.quotient_familial]}
`

func parseCatalogue(t *testing.T, yaml string) *catalogue.Catalogue {
	t.Helper()
	c, err := catalogue.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("test catalogue: %v", err)
	}
	return c
}

// operationOf decodes the GET operation at path of a generated document.
func operationOf(t *testing.T, doc []byte, path string) map[string]any {
	t.Helper()
	var d struct {
		Paths map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	op, ok := d.Paths[path]["get"]
	if !ok {
		t.Fatalf("no GET %s", path)
	}
	return op
}

func TestOperationContent(t *testing.T) {
	c := parseCatalogue(t, v3Catalogue)
	doc := generate(t, c, false)

	fc := operationOf(t, doc, "/v3/test/quotient/france_connect")
	desc := fc["description"].(string)
	for _, want := range []string{"france_connect", "CNAV", "No identity parameter is accepted",
		"`cnaf_quotient_familial`", "qf_alias_one", "qf_alias_two", "data.quotient_familial", "meta.source", "422 00366"} {
		if !strings.Contains(desc, want) {
			t.Errorf("FranceConnect description lacks %q:\n%s", want, desc)
		}
	}
	if got, _ := json.Marshal(fc["security"]); string(got) != `[{"franceConnect":[]}]` {
		t.Errorf("FranceConnect security = %s", got)
	}
	if got, _ := json.Marshal(fc["parameters"]); !strings.Contains(string(got), `"name":"recipient"`) ||
		!strings.Contains(string(got), `"required":true`) {
		t.Errorf("FranceConnect route parameters = %s, want a required recipient", got)
	}

	id := operationOf(t, doc, "/v3/test/quotient/identite")
	if got, _ := json.Marshal(id["security"]); string(got) != `[{"apiToken":[]}]` {
		t.Errorf("identite security = %s", got)
	}
	if strings.Contains(id["description"].(string), "No identity parameter") {
		t.Error("identite route described as taking no identity parameter")
	}
	params, _ := json.Marshal(id["parameters"])
	if strings.Contains(string(params), `"recipient"`) {
		t.Errorf("recipient: none route declares a recipient: %s", params)
	}

	// Normalised parameters: the pattern is described, not enforced on the
	// value as sent (the gateway upper-cases "m" before checking ^[MF]$).
	v := newValidator(t, doc)
	valid := func() url.Values {
		return url.Values{"nomNaissance": {"  de la Tour"}, "sexeEtatCivil": {"m"}, "prenoms[]": {"jean ", "Marie"}}
	}
	req, _ := exchange("/v3/test/quotient/identite", valid(), 200, "")
	if err := v.ValidateRequest(req); err != nil {
		t.Errorf("request the gateway normalises refused: %v", err)
	}
	for name, edit := range map[string]func(url.Values){
		"annee":     func(q url.Values) { q.Set("annee", "24") },
		"prenoms[]": func(q url.Values) { q.Del("prenoms[]") },
	} {
		q := valid()
		edit(q)
		req, _ = exchange("/v3/test/quotient/identite", q, 200, "")
		if err := v.ValidateRequest(req); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("malformed %s: %v", name, err)
		}
	}
	q := valid()
	q["codesBcnDepartements[]"] = []string{"075", "971"}
	req, _ = exchange("/v3/test/quotient/identite", q, 200, "")
	if err := v.ValidateRequest(req); err != nil {
		t.Errorf("repeated array parameter refused: %v", err)
	}
	// Parameter schemas, decoded: arrays are exploded forms bounded by max,
	// patterns enforced only on values checked as sent.
	var decoded []map[string]any
	if err := json.Unmarshal(params, &decoded); err != nil {
		t.Fatal(err)
	}
	byName := map[string]string{}
	for _, p := range decoded {
		schema, _ := json.Marshal(p["schema"])
		byName[p["name"].(string)] = fmt.Sprintf("required=%v style=%v explode=%v schema=%s", p["required"], p["style"], p["explode"], schema)
	}
	for name, want := range map[string]string{
		"prenoms[]":              `required=true style=form explode=true schema={"items":{"type":"string"},"maxItems":3,"minItems":1,"type":"array"}`,
		"codesBcnDepartements[]": `required=false style=form explode=true schema={"items":{"pattern":"^[0-9]{3}$","type":"string"},"maxItems":5,"type":"array"}`,
		"annee":                  `required=false style=<nil> explode=<nil> schema={"pattern":"^[0-9]{4}$","type":"string"}`,
		"sexeEtatCivil":          `required=true style=<nil> explode=<nil> schema={"type":"string"}`,
	} {
		if byName[name] != want {
			t.Errorf("parameter %s:\n got %s\nwant %s", name, byName[name], want)
		}
	}
	if !strings.Contains(string(params), "upper-cased before being checked against `^[\\\\p{L}][\\\\p{L}' -]*$`, at most 100 characters.") {
		t.Errorf("max_length of a normalised parameter not described: %s", params)
	}
	if !strings.Contains(string(params), "upper-cased before being checked against `^[MF]$`") {
		t.Errorf("normalised parameter description: %s", params)
	}

	// meta members released by a scope are declared; others are not.
	req, resp := exchange("/v3/test/quotient/france_connect", url.Values{"recipient": {testSIRET}}, 200,
		`{"data":{},"links":{},"meta":{"source":"x"}}`)
	if err := v.ValidateResponse(req, resp); err != nil {
		t.Errorf("released meta member refused: %v", err)
	}
	req, resp = exchange("/v3/test/quotient/france_connect", url.Values{"recipient": {testSIRET}}, 200,
		`{"data":{},"links":{"next":"x"},"meta":{}}`)
	if err := v.ValidateResponse(req, resp); err == nil {
		t.Error("unreleased links member accepted")
	}
}

// v2Catalogue holds a legacy v2 route.
const v2Catalogue = `
providers:
  CNAV: {error_prefix: "37"}
endpoints:
  - id: test_v2_qf
    path: /api/v2/composition-familiale-v2
    modality: france_connect
    api: v2
    operation_id: test_v2_qf
    provider: CNAV
    upstream_path: /v3/dss/quotient_familial/identite
    identity:
      - {param: nomNaissance, claim: family_name}
    params:
      - {name: annee, pattern: '^[0-9]{4}$'}
    scopes:
      - {name: cnaf_quotient_familial, basis: doc, fields: [quotientFamilial, annee, mois]}
      - {name: cnaf_enfants, basis: doc, fields: ["enfants[].nom"]}
`

func TestV2Route(t *testing.T) {
	c, err := catalogue.Parse([]byte(v2Catalogue))
	if err != nil {
		t.Fatalf("v2 test catalogue: %v", err)
	}
	doc := generate(t, c, false)
	if op := operationOf(t, doc, "/api/v2/composition-familiale-v2"); op["deprecated"] != true {
		t.Error("v2 route not deprecated")
	}
	v := newValidator(t, doc)
	const path = "/api/v2/composition-familiale-v2"
	for _, tc := range []struct {
		name   string
		status int
		body   string
		valid  bool
	}{
		{"200 root members", 200, `{"quotientFamilial":2550,"annee":2024,"mois":2,"enfants":[{"nom":"A"}]}`, true},
		{"200 nothing released", 200, `{}`, true},
		{"200 unknown root member", 200, `{"quotientFamilial":1,"allocataires":[]}`, false},
		{"200 v3 envelope", 200, `{"data":{},"links":{},"meta":{}}`, false},
		{"404 v2 error", 404, `{"error":"not_found","reason":"r","message":"m"}`, true},
		{"404 v2 error without message", 404, `{"error":"not_found","reason":"r"}`, false},
		{"404 v3 error", 404, `{"errors":[{"code":"37003","title":"t","detail":"d"}]}`, false},
		{"401 v2 error", 401, `{"error":"access_denied","reason":"r","message":"m"}`, true},
		{"401 FranceConnect token error keeps errors[]", 401, `{"errors":[{"code":"50002","title":"t","detail":"d","source":null,"meta":{}}]}`, true},
		{"401 neither shape", 401, `{"error":"access_denied"}`, false},
		{"400 bad request", 400, `{"error":"bad_request","reason":"r","message":"m"}`, true},
		{"503 provider error", 503, `{"error":"provider_unknown_error","reason":"r","message":"m"}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, resp := exchange(path, url.Values{"recipient": {testSIRET}}, tc.status, tc.body)
			err := v.ValidateResponse(req, resp)
			if tc.valid && err != nil {
				t.Fatalf("valid answer refused: %v", err)
			}
			if !tc.valid && err == nil {
				t.Fatal("invalid answer accepted")
			}
		})
	}
}

func TestUtilityRoutes(t *testing.T) {
	c := defaultCatalogue(t)
	v := newValidator(t, generate(t, c, true))
	ping := `{"status":"ok","last_update":"2026-01-05T10:00:00Z","last_ok_status":"2026-01-05T10:00:00Z"}`
	for _, tc := range []struct {
		name   string
		path   string
		status int
		body   string
		valid  bool
	}{
		{"introspect", openapi.IntrospectPath, 200, `{"_id":"hab-1","name":"Mairie","scopes":["cnaf_quotient_familial"]}`, true},
		{"introspect null name", openapi.IntrospectPath, 200, `{"_id":"hab-1","name":null,"scopes":[]}`, true},
		{"introspect without scopes", openapi.IntrospectPath, 200, `{"_id":"hab-1","name":null}`, false},
		{"introspect 401 v2 shape", openapi.IntrospectPath, 401, `{"error":"access_denied","reason":"r","message":"m"}`, true},
		{"pings", openapi.PingsPath, 200, `{"CNAV":` + ping + `,"MESRI":{"status":"unknown","last_update":null,"last_ok_status":null}}`, true},
		{"pings 502", openapi.PingsPath, 502, `{"CNAV":{"status":"bad_gateway","last_update":"2026-01-05T10:00:00Z","last_ok_status":null}}`, true},
		{"pings bad status", openapi.PingsPath, 200, `{"CNAV":{"status":"down","last_update":null,"last_ok_status":null}}`, false},
		{"ping one provider", "/api/pings/cnav", 200, ping, true},
		{"ping a provider with a composed name", "/api/pings/france-travail", 502, `{"status":"bad_gateway","last_update":"2026-01-05T10:00:00Z","last_ok_status":null}`, true},
		{"ping without last_update", "/api/pings/cnav", 200, `{"status":"ok","last_ok_status":null}`, false},
		{"ping unknown provider", "/api/pings/cnav", 404, `{"errors":[{"code":"00404","title":"Route inconnue","detail":"d","source":null,"meta":{}}]}`, true},
		{"ping with a query string", "/api/pings/cnav", 422, `{"errors":[{"code":"00366","title":"t","detail":"d","source":null,"meta":{}}]}`, true},
		{"pings rate limited", openapi.PingsPath, 429, `{"errors":[{"code":"00429","title":"t","detail":"d","source":null,"meta":{}}]}`, false}, // no Retry-After
		{"openapi document", openapi.DocumentPath, 200, `{"openapi":"3.1.0","info":{},"paths":{}}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, resp := exchange(tc.path, nil, tc.status, tc.body)
			err := v.ValidateResponse(req, resp)
			if tc.valid && err != nil {
				t.Fatalf("valid answer refused: %v", err)
			}
			if !tc.valid && err == nil {
				t.Fatal("invalid answer accepted")
			}
		})
	}
	for _, p := range []string{"/api/pings/cnav", "/api/pings/france-travail", "/api/pings/gip-mds", "/api/pings/rncps"} {
		if err := v.ValidateRequest(mustRequest(t, p)); err != nil {
			t.Errorf("%s refused: %v", p, err)
		}
	}
	for _, p := range []string{"/api/pings/nobody", "/api/pings/CNAV", "/api/pings/France%20Travail"} {
		if err := v.ValidateRequest(mustRequest(t, p)); err == nil {
			t.Errorf("%s accepted: the route takes provider slugs of the catalogue", p)
		}
	}
}

func mustRequest(t *testing.T, path string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "https://passerelle.example.org"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// The validator is shared by parallel integration tests.
func TestValidatorConcurrentUse(t *testing.T) {
	c := parseCatalogue(t, v3Catalogue)
	v := newValidator(t, generate(t, c, true))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			body := `{"data":{"quotient_familial":{}},"links":{},"meta":{}}`
			if i%2 == 1 {
				body = `{"data":{"unknown":1},"links":{},"meta":{}}`
			}
			req, resp := exchange("/v3/test/quotient/france_connect", url.Values{"recipient": {testSIRET}}, 200, body)
			if err := v.ValidateResponse(req, resp); (err == nil) != (i%2 == 0) {
				t.Errorf("goroutine %d: %v", i, err)
			}
		})
	}
	wg.Wait()
}

// TestParameterRequirementsDescribed: a parameter that needs others says
// so in its description (OpenAPI has no way to express it in a schema).
func TestParameterRequirementsDescribed(t *testing.T) {
	c, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
	doc := generate(t, c, false)
	params, _ := json.Marshal(operationOf(t, doc, "/v3/dss/quotient_familial/identite")["parameters"])
	var list []struct{ Name, Description string }
	if err := json.Unmarshal(params, &list); err != nil {
		t.Fatal(err)
	}
	for _, p := range list {
		if p.Name == "nomCommuneNaissance" {
			if !strings.Contains(p.Description, "Must come with codeCogInseeDepartementNaissance and anneeDateNaissance.") {
				t.Errorf("nomCommuneNaissance description: %q", p.Description)
			}
			return
		}
	}
	t.Fatalf("no nomCommuneNaissance parameter in %s", params)
}

// TestParameterCombinationsDescribed: one_of and exclusive rules, which a
// schema cannot express, are in the operation's description.
func TestParameterCombinationsDescribed(t *testing.T) {
	c, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
	doc := generate(t, c, false)
	men := operationOf(t, doc, "/v4/men/scolarites/identite")["description"].(string)
	if !strings.Contains(men, "Give at most one of codeEtablissement, codesBcnDepartements[], codesBcnRegions[].") {
		t.Errorf("MEN description lacks the exclusive rule:\n%s", men)
	}
	students := operationOf(t, doc, "/api/v2/etudiants")["description"].(string)
	found := strings.Contains(students, "Give exactly one of these groups, whole: (ine) or (")
	if !found {
		t.Errorf("/api/v2/etudiants does not describe its one_of groups:\n%s", students)
	}
}
