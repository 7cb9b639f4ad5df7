package sandbox

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/passerelle-gw/passerelle/config/datapass"
)

func TestDataPassCaddyfile(t *testing.T) {
	d := new(DataPass)
	err := d.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`passerelle_sandbox_datapass {
		webhook http://127.0.0.1:8080/datapass/webhook
		secret sandbox-datapass-secret
		client_id sandbox-datapass-client
		client_secret {env.DATAPASS_CLIENT_SECRET}
		webhook_id 7
		retry_after off
		request 48213 siret 13002526500013 scopes cnaf_quotient_familial cnaf_allocataires state active authorization 90117
		request 48214 {
			siret 13002526500013
			state revoked
			scopes cnaf_quotient_familial
			scopes cnaf_enfants
			modalities france_connect params
		}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &DataPass{Webhook: "http://127.0.0.1:8080/datapass/webhook", Secret: "sandbox-datapass-secret",
		ClientID: "sandbox-datapass-client", ClientSecret: "{env.DATAPASS_CLIENT_SECRET}", WebhookID: "7", RetryAfter: -1,
		Requests: []DataPassRequest{
			{ID: "48213", SIRET: "13002526500013", Authorization: "90117", State: "active", Scopes: []string{"cnaf_quotient_familial", "cnaf_allocataires"}},
			{ID: "48214", SIRET: "13002526500013", State: "revoked", Scopes: []string{"cnaf_quotient_familial", "cnaf_enfants"},
				Modalities: []string{"france_connect", "params"}},
		}}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", d, want)
	}
	for name, bad := range map[string]string{
		"unknown option": `passerelle_sandbox_datapass { nope 1 }`,
		"no webhook":     `passerelle_sandbox_datapass { secret s client_id c client_secret x }`,
		"request without scopes": `passerelle_sandbox_datapass {
			webhook http://x/y
			secret s
			client_id c
			client_secret x
			request 1 siret 13002526500013
		}`,
		"unknown request keyword": `passerelle_sandbox_datapass {
			webhook http://x/y
			request 1 siret 13002526500013 color blue scopes a
		}`,
		"retry_after zero": `passerelle_sandbox_datapass {
			retry_after 0s
		}`,
	} {
		if err := new(DataPass).UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestDataPassModule: provisioned standalone, it serves its routes, signs
// its webhooks, and passes other paths on.
func TestDataPassModule(t *testing.T) {
	var verified atomic.Bool
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := datapass.Parse(body)
		verified.Store(datapass.Verify(r.Header.Get(datapass.SignatureHeader), body, []byte("s3cret")) &&
			err == nil && ev.Name == "revoke" && ev.RequestID == "48213")
		w.WriteHeader(http.StatusNoContent)
	}))
	defer gw.Close()
	t.Setenv("SANDBOX_DATAPASS_SECRET", "s3cret")
	d := &DataPass{Webhook: gw.URL, Secret: "{env.SANDBOX_DATAPASS_SECRET}", ClientID: "c", ClientSecret: "x",
		Requests: []DataPassRequest{{ID: "48213", SIRET: "13002526500013", Scopes: []string{"cnaf_quotient_familial"}}}}
	if err := d.Provision(caddy.Context{Context: context.Background()}); err != nil {
		t.Fatal(err)
	}
	defer d.Cleanup()
	var passed bool
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { passed = true; return nil })

	rec := httptest.NewRecorder()
	if err := d.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/sandbox/datapass/requests/48213/revoke", nil), next); err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &res)
	if rec.Code != http.StatusOK || res["delivered_status"] != float64(204) || !verified.Load() || passed {
		t.Fatalf("revoke: %d %v, verified %v", rec.Code, res, verified.Load())
	}
	if err := d.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/other", nil), next); err != nil || !passed {
		t.Fatalf("another path not passed on: %v", err)
	}
	// The requests of a habilitations file's bindings.
	file := filepath.Join(t.TempDir(), "habilitations.yaml")
	if err := os.WriteFile(file, []byte(`habilitations:
  - id: bound
    datapass_id: "48215"
    label: Liée
    siret: "13002526500013"
    modalities: [france_connect, identite]
    france_connect_client_ids: [client-a]
    scopes: [cnaf_quotient_familial, cnaf_enfants]
  - id: listed
    datapass_id: "48213"
    label: Déjà décrite
    siret: "13002526500013"
    modalities: [france_connect]
    scopes: [dgfip_rfr]
  - id: unbound
    label: Non liée
    siret: "13002526500013"
    modalities: [france_connect]
    scopes: [dgfip_rfr]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	d2 := &DataPass{Webhook: gw.URL, Secret: "s", ClientID: "c", ClientSecret: "x", Habilitations: file,
		Requests: []DataPassRequest{{ID: "48213", SIRET: "13002526500013", Scopes: []string{"cnaf_quotient_familial"}}}}
	if err := d2.Provision(caddy.Context{Context: context.Background()}); err != nil {
		t.Fatal(err)
	}
	defer d2.Cleanup()
	rec = httptest.NewRecorder()
	_ = d2.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/sandbox/datapass/requests", nil), next)
	var list []struct {
		ID             int64
		SIRET          string
		Authorizations []struct{ Scopes []string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list) != 2 || list[0].ID != 48213 || list[1].ID != 48215 ||
		!reflect.DeepEqual(list[1].Authorizations[0].Scopes, []string{"cnaf_quotient_familial", "cnaf_enfants"}) ||
		!reflect.DeepEqual(list[0].Authorizations[0].Scopes, []string{"cnaf_quotient_familial"}) {
		t.Fatalf("requests from the file: %s", rec.Body)
	}

	if err := (&DataPass{Webhook: "ftp://x", Secret: "s", ClientID: "c", ClientSecret: "x"}).Provision(caddy.Context{Context: context.Background()}); err == nil {
		t.Fatal("a bad webhook URL was accepted")
	}
}
