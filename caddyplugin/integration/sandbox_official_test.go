package integration

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/openapi/openapitest"
	"github.com/passerelle-gw/passerelle/config/sandbox"
)

// knownSchemaGaps are our sandbox cases whose provider payload deliberately
// leaves the official response schema.
var knownSchemaGaps = map[string]string{
	"api_particulier_v3_cnav_revenu_solidarite_active_with_civility/200_paul_louis_dupont_martin_rsa.yaml": "date_fin_droit: returned by some siade versions, absent from the v3 schema; no mask releases it, the gateway drops it",
}

// TestSandboxCallerCasesOfficialSchema: for every case of every v3/v4
// identite or identifiant route, the caller's request is valid for the
// official OpenAPI, and so is the provider stand-in's answer as written in
// the case (200 schema; 404 Error where the route documents a 404). The
// gateway's own answers are checked by TestConformance_EverySandboxCase.
// Skipped when ../shared is absent.
func TestSandboxCallerCasesOfficialSchema(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(officialOpenAPI, "api_particulier.yaml"))
	if err != nil {
		t.Skipf("official OpenAPI file not available: %v", err)
	}
	v, err := openapitest.NewValidator(doc)
	if err != nil {
		t.Fatal(err)
	}
	s := sandbox.Embedded()
	for _, ep := range callerRoutes(t) {
		if ep.API != catalogue.APIv3 {
			continue
		}
		t.Run(ep.ID, func(t *testing.T) {
			var req *http.Request
			for _, c := range s.Cases(ep.OperationID) {
				if c.Status == 200 {
					req, err = http.NewRequest(http.MethodGet, "https://particulier.api.gouv.fr"+ep.Path+"?"+callerQueryOf(ep, c).Encode(), nil)
					if err != nil {
						t.Fatal(err)
					}
					req.Header.Set("Authorization", "Bearer sandbox_all_scopes")
					if err := v.ValidateRequest(req); err != nil {
						t.Errorf("%s: caller request: %v", c.File, err)
					}
				}
				if req == nil || c.Status == 404 && strings.HasPrefix(ep.OperationID, "api_particulier_v4_cnous_") {
					continue // v4 CNOUS documents no 404 (DOMAIN.md §6)
				}
				if gap, ok := knownSchemaGaps[ep.OperationID+"/"+c.File]; ok {
					t.Logf("%s: not checked (%s)", c.File, gap)
					continue
				}
				resp := &http.Response{StatusCode: c.Status, Header: http.Header{"Content-Type": {"application/json"}},
					Body: io.NopCloser(bytes.NewReader(c.Payload)), Request: req}
				if err := v.ValidateResponse(req, resp); err != nil {
					t.Errorf("%s: answer: %v", c.File, err)
				}
			}
		})
	}
}
