package openapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/openapi"
)

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
