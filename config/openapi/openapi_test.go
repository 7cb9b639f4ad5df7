package openapi_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
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
