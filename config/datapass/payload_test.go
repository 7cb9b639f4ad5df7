package datapass

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// The exact sample of DataPass's documentation (HOMOLOGATION.md §4).
const docSample = `{"event":"revoke","fired_at":1767261600,"model_type":"authorization_request/api_particulier","model_id":48213,
 "data":{"id":48213,"public_id":"3f2b8c1e-6d1a-4c55-9a57-2f0d8e6b9c11","type":"AuthorizationRequest::APIParticulier",
  "state":"revoked","form_uid":"api-particulier",
  "data":{"intitule":"Tarification sociale de la restauration scolaire","description":"…","cadre_juridique_nature":"…",
   "cadre_juridique_url":"https://…","modalities":["france_connect"],"france_connect_authorization_id":"48214",
   "scopes":["cnaf_quotient_familial","cnaf_allocataires","cnaf_enfants"],
   "destinataire_donnees_caractere_personnel":"Service enfance","duree_conservation_donnees_caractere_personnel":"12",
   "contact_technique_email":"dsi@ville.example.fr","…":"…"},
  "created_at":"2026-03-02T09:12:44.000+01:00","last_submitted_at":"…","last_validated_at":"…",
  "organization":{"id":812,"name":"COMMUNE D'EXEMPLE","insee_payload":{"…":"…"},"siret":"21750001600019"},
  "applicant":{"id":1201,"uid":"…","email":"…","given_name":"…","family_name":"…","phone_number":"…","job_title":"…"},
  "service_provider":null,
  "authorizations":[{"id":90117,"slug":"…","revoked":true,"state":"revoked","created_at":"2026-03-20T10:01:02.000+01:00",
   "data":{"scopes":["cnaf_quotient_familial","cnaf_allocataires","cnaf_enfants"],"modalities":["france_connect"],
           "france_connect_authorization_id":"48214","…":"…"},
   "authorization_request_class":"AuthorizationRequest::APIParticulier","definition_id":"api_particulier"}]}}`

func TestParseDocumentedSample(t *testing.T) {
	ev, err := Parse([]byte(docSample))
	if err != nil {
		t.Fatal(err)
	}
	want := Event{Name: "revoke", FiredAt: time.Unix(1767261600, 0).UTC(), ModelType: ModelType, RequestID: "48213",
		SIRET: "21750001600019", Authorizations: []Authorization{{ID: "90117", State: "revoked", Revoked: true,
			DefinitionID: DefinitionAPIParticulier, Scopes: []string{"cnaf_quotient_familial", "cnaf_allocataires", "cnaf_enfants"},
			Modalities: []string{"france_connect"}}}}
	if ev.Name != want.Name || !ev.FiredAt.Equal(want.FiredAt) || ev.RequestID != want.RequestID || ev.SIRET != want.SIRET ||
		len(ev.Authorizations) != 1 || !slices.Equal(ev.Authorizations[0].Scopes, want.Authorizations[0].Scopes) ||
		ev.Authorizations[0].ID != "90117" || !ev.Authorizations[0].Revoked || ev.Authorizations[0].State != "revoked" {
		t.Fatalf("Parse = %+v\nwant %+v", ev, want)
	}
}

func TestParse(t *testing.T) {
	if ev, err := Parse([]byte(`{"test": true, "timestamp": "2026-12-06T10:00:00Z"}`)); err != nil || !ev.Test {
		t.Fatalf("ping: %+v %v", ev, err)
	}
	other, err := Parse([]byte(`{"event":"approve","fired_at":1767261600,"model_type":"authorization_request/api_entreprise","data":{}}`))
	if err != nil || other.ModelType != "authorization_request/api_entreprise" || other.RequestID != "" {
		t.Fatalf("another type: %+v %v", other, err)
	}
	// fired_at as an RFC 3339 string, ids as strings.
	ev, err := Parse([]byte(`{"event":"approve","fired_at":"2026-01-01T10:00:00+01:00","model_type":"` + ModelType +
		`","data":{"id":"7","organization":{"siret":"21750001600019"},"authorizations":[{"id":"9","state":"active","definition_id":"api_particulier","data":{"scopes":"not a list"}}]}}`))
	if err != nil || ev.RequestID != "7" || !ev.FiredAt.Equal(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)) ||
		ev.Authorizations[0].Scopes != nil {
		t.Fatalf("strings: %+v %v", ev, err)
	}
	bad := map[string]struct {
		body string
		err  error
	}{
		"not JSON":          {`{"event":`, ErrSyntax},
		"two documents":     {`{"test":true} {"test":true}`, ErrSyntax},
		"a list":            {`[]`, ErrSyntax},
		"no event":          {`{"fired_at":1767261600,"model_type":"` + ModelType + `"}`, ErrEvent},
		"event in capitals": {`{"event":"APPROVE","fired_at":1767261600,"model_type":"` + ModelType + `"}`, ErrEvent},
		"no fired_at":       {`{"event":"approve","model_type":"` + ModelType + `"}`, ErrFiredAt},
		"fired_at negative": {`{"event":"approve","fired_at":-5,"model_type":"` + ModelType + `"}`, ErrFiredAt},
		"fired_at in 1970":  {`{"event":"approve","fired_at":5,"model_type":"` + ModelType + `"}`, ErrFiredAt},
		"fired_at in 2300":  {`{"event":"approve","fired_at":"2300-01-01T00:00:00Z","model_type":"` + ModelType + `"}`, ErrFiredAt},
		"fired_at overflow": {`{"event":"approve","fired_at":1e12,"model_type":"` + ModelType + `"}`, ErrFiredAt},
		"fired_at garbage":  {`{"event":"approve","fired_at":"yesterday","model_type":"` + ModelType + `"}`, ErrFiredAt},
		"no data":           {`{"event":"approve","fired_at":1767261600,"model_type":"` + ModelType + `"}`, ErrRequestID},
		"id zero":           {`{"event":"approve","fired_at":1767261600,"model_type":"` + ModelType + `","data":{"id":0}}`, ErrRequestID},
		"id float":          {`{"event":"approve","fired_at":1767261600,"model_type":"` + ModelType + `","data":{"id":1.5}}`, ErrRequestID},
		"id huge":           {`{"event":"approve","fired_at":1767261600,"model_type":"` + ModelType + `","data":{"id":99999999999999999999}}`, ErrRequestID},
		"no siret":          {`{"event":"approve","fired_at":1767261600,"model_type":"` + ModelType + `","data":{"id":1}}`, ErrSIRET},
		"siret short":       {`{"event":"approve","fired_at":1767261600,"model_type":"` + ModelType + `","data":{"id":1,"organization":{"siret":"123"}}}`, ErrSIRET},
	}
	for name, tc := range bad {
		if _, err := Parse([]byte(tc.body)); !errors.Is(err, tc.err) {
			t.Errorf("%s: err %v, want %v", name, err, tc.err)
		}
	}
}

// FuzzParse: any body either fails with one of the package's errors or
// gives an event whose fields have their documented shape, and what it
// grants is only ever scopes the catalogue knows.
func FuzzParse(f *testing.F) {
	f.Add([]byte(docSample))
	f.Add(payload(f, "approve", 1767261600, "21750001600019", authz(1, "active", "cnaf_quotient_familial")))
	f.Add([]byte(`{"test":true}`))
	f.Add([]byte(`{"event":"approve","fired_at":"2026-01-01T00:00:00Z","model_type":"` + ModelType + `","data":{"id":"1","organization":{"siret":"21750001600019"}}}`))
	known := func(s string) bool { return s == "cnaf_quotient_familial" }
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := Parse(body)
		if err != nil {
			for _, e := range []error{ErrSyntax, ErrEvent, ErrFiredAt, ErrRequestID, ErrSIRET, ErrTooLarge} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("unexpected error %v", err)
		}
		if ev.Test || ev.ModelType != ModelType {
			return
		}
		if !habilitation.ValidDataPassID(ev.RequestID) || !siretRe.MatchString(ev.SIRET) || !nameRe.MatchString(ev.Name) || ev.FiredAt.IsZero() {
			t.Fatalf("event fields out of shape: %+v", ev)
		}
		rec := Derive(ev, known)
		for _, s := range rec.Scopes {
			if !known(s) {
				t.Fatalf("Derive grants unknown scope %q", s)
			}
		}
		if rec.Active != (len(rec.Scopes) > 0) {
			t.Fatalf("active %v with %d scopes", rec.Active, len(rec.Scopes))
		}
	})
}
