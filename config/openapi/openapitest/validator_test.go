package openapitest

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// officialFiles returns API Particulier's official OpenAPI files from
// siade_staging_data in the shared folder next to the repository
// (/work/shared from /work/main); tests using them skip when absent.
func officialFiles(t *testing.T) map[string]string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "..", "shared", "reference", "siade_staging_data", "openapi_files")
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if len(files) == 0 {
		t.Skipf("official OpenAPI files not available (%s)", dir)
	}
	out := map[string]string{}
	for _, f := range files {
		out[filepath.Base(f)] = f
	}
	return out
}

func answer(path string, status int, body string) (*http.Request, *http.Response) {
	req, _ := http.NewRequest(http.MethodGet, "https://particulier.api.gouv.fr"+path+"?recipient=13002526500013", nil)
	return req, &http.Response{
		StatusCode: status,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(strings.NewReader(body)),
		Request:    req,
	}
}

func TestOfficialFilesLoad(t *testing.T) {
	files := officialFiles(t)
	for name, f := range files {
		t.Run(name, func(t *testing.T) {
			doc, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := NewValidator(doc); err != nil {
				t.Fatalf("official file refused: %v", err)
			}
		})
	}
	// The v3 file describes the FranceConnect routes and the errors[] shape.
	f, ok := files["api_particulier.yaml"]
	if !ok {
		t.Skip("api_particulier.yaml not available")
	}
	doc, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewValidator(doc)
	if err != nil {
		t.Fatal(err)
	}
	const path = "/v3/dss/quotient_familial/france_connect"
	req, resp := answer(path, 401, `{"errors":[{"code":"50002","title":"Accès non autorisé","detail":"…","source":null,"meta":{}}]}`)
	if err := v.ValidateResponse(req, resp); err != nil {
		t.Errorf("gateway 401 refused by the official file: %v", err)
	}
	req, resp = answer(path, 401, `{"errors":[{"code":"50002"}]}`)
	if err := v.ValidateResponse(req, resp); err == nil {
		t.Error("error without title and detail accepted by the official file")
	}
}

func TestNewValidatorRefuses(t *testing.T) {
	for name, doc := range map[string]string{
		"not a document":       "hello",
		"unresolvable $ref":    `{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{"/a":{"get":{"responses":{"200":{"description":"d","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Missing"}}}}}}}}}`,
		"swagger 2 is refused": `{"swagger":"2.0","info":{"title":"t","version":"1"},"paths":{}}`,
	} {
		if _, err := NewValidator([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Error messages never quote body values, even for pattern failures.
func TestErrorsQuoteNoValue(t *testing.T) {
	v, err := NewValidator([]byte(`{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{"/a":{"get":{
		"parameters":[{"name":"nom","in":"query","required":true,"schema":{"type":"string","pattern":"^[A-Z]+$"}}],
		"responses":{"200":{"description":"d","content":{"application/json":{"schema":{
			"type":"object","required":["code"],"properties":{"code":{"type":"string","pattern":"^[0-9]{5}$"},
			"kind":{"enum":["a","b"]},"at":{"type":"string","format":"date-time"}}}}}}}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "https://x/a?nom=dupont-secret", nil)
	if err := v.ValidateRequest(req); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("request error: %v", err)
	} else if !strings.Contains(err.Error(), "nom") {
		t.Errorf("request error does not name the parameter: %v", err)
	}
	req, _ = http.NewRequest(http.MethodGet, "https://x/a?nom=DUPONT", nil)
	_, resp := answer("/a", 200, `{"code":"SECRET1","kind":"SECRET2","at":"SECRET3"}`)
	err = v.ValidateResponse(req, resp)
	if err == nil {
		t.Fatal("invalid body accepted")
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("response error quotes the body: %v", err)
	}
	if !strings.Contains(err.Error(), "$.code") || !strings.Contains(err.Error(), "pattern") {
		t.Errorf("response error does not locate the failure: %v", err)
	}
}

// TestValidateDocument: the meta-schema check accepts a minimal 3.1
// document and refuses one whose paths are not an object.
func TestValidateDocument(t *testing.T) {
	good := `{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{}}`
	if err := ValidateDocument([]byte(good)); err != nil {
		t.Errorf("valid document refused: %v", err)
	}
	bad := `{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":[1]}`
	if err := ValidateDocument([]byte(bad)); err == nil {
		t.Error("invalid document accepted")
	}
}
