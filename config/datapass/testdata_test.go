package datapass

import (
	"encoding/json"
	"fmt"
	"testing"
)

// Sample payloads in DataPass's shape (WebhookSerializer), with the
// personal fields DataPass really sends, filled with canaries that must
// never reach a log, a record or an answer.
const (
	canaryEmail = "canary.applicant@mairie.example"
	canaryName  = "Canaryfamilyname"
)

// t0 is the time of the test payloads: a firedAt below 1e9 counts seconds
// after it.
const t0 = 1767261600 // 2026-01-01T10:00:00Z

// payload builds a webhook body for request 48213 of organisation siret,
// fired at firedAt (Unix seconds, or seconds after t0 below 1e9).
func payload(t testing.TB, event string, firedAt int64, siret string, auths ...map[string]any) []byte {
	t.Helper()
	if firedAt < 1e9 {
		firedAt += t0
	}
	if auths == nil {
		auths = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{
		"event": event, "fired_at": firedAt, "model_type": ModelType, "model_id": 48213,
		"data": map[string]any{
			"id": 48213, "public_id": "3f2b8c1e-6d1a-4c55-9a57-2f0d8e6b9c11", "type": "AuthorizationRequest::APIParticulier",
			"state": "validated", "form_uid": "api-particulier",
			"data": map[string]any{"intitule": "Tarification sociale", "scopes": []string{"cnaf_quotient_familial", "dgfip_rfr"},
				"contact_technique_email": canaryEmail, "modalities": []string{"france_connect"}},
			"organization": map[string]any{"id": 812, "name": "COMMUNE D'EXEMPLE", "siret": siret, "insee_payload": map[string]any{"x": 1}},
			"applicant": map[string]any{"id": 1201, "email": canaryEmail, "given_name": "Canary", "family_name": canaryName,
				"phone_number": "0600000000", "job_title": "DSI"},
			"service_provider": nil,
			"authorizations":   auths,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// authz is one authorization of a payload.
func authz(id int, state string, scopes ...string) map[string]any {
	return map[string]any{
		"id": id, "slug": fmt.Sprintf("slug-%d", id), "revoked": state == "revoked", "state": state,
		"created_at":                  "2026-03-20T10:01:02.000+01:00",
		"authorization_request_class": "AuthorizationRequest::APIParticulier", "definition_id": DefinitionAPIParticulier,
		"data": map[string]any{"scopes": scopes, "modalities": []string{"france_connect"}, "france_connect_authorization_id": "48214"},
	}
}
