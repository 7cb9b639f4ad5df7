package datapassop

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passerelle-gw/passerelle/config/datapass"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

const (
	siret        = "13002526500013"
	secret       = "sandbox-datapass-secret"
	clientID     = "sandbox-datapass-client"
	clientSecret = "sandbox-datapass-client-secret"
)

var known = func(s string) bool {
	return s == "cnaf_quotient_familial" || s == "cnaf_allocataires" || s == "dgfip_rfr"
}

// receiver plays Passerelle's webhook endpoint: a datapass.Processor on a
// Memory store, bound to request 48213; status, when set, overrides its
// answer.
type receiver struct {
	srv  *httptest.Server
	proc *datapass.Processor
	mem  *datapass.Memory

	mu      sync.Mutex
	status  int
	bodies  [][]byte
	headers []http.Header
}

// testClient bounds every request of the tests: a stand-in that hangs
// fails the test instead of blocking it.
var testClient = &http.Client{Timeout: 10 * time.Second}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	reg, err := habilitation.Parse([]byte(`habilitations:
  - id: sandbox
    datapass_id: "48213"
    label: Bac à sable
    siret: "` + siret + `"
    modalities: [france_connect]
    france_connect_client_ids: [client-a]
    scopes: [cnaf_quotient_familial, cnaf_allocataires]
`))
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{mem: datapass.NewMemory()}
	rc.proc = &datapass.Processor{Secrets: [][]byte{[]byte(secret)}, Environment: "sandbox", Store: rc.mem,
		Bindings: func() *habilitation.Registry { return reg }, KnownScope: known}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.bodies, rc.headers = append(rc.bodies, body), append(rc.headers, r.Header.Clone())
		status := rc.status
		rc.mu.Unlock()
		if status != 0 {
			w.WriteHeader(status)
			return
		}
		o := rc.proc.Deliver(r.Context(), r.Header.Get(datapass.SignatureHeader), r.Header.Get("X-App-Environment"), body)
		w.WriteHeader(o.Status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) setStatus(status int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.status = status
}

// delivery returns the i-th delivery's body and headers.
func (rc *receiver) delivery(t *testing.T, i int) ([]byte, http.Header) {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if i >= len(rc.bodies) {
		t.Fatalf("delivery %d not received", i)
	}
	return rc.bodies[i], rc.headers[i]
}

// habilitation returns the bound habilitation as the request path sees it.
func (rc *receiver) habilitation(t *testing.T) *habilitation.Habilitation {
	t.Helper()
	h, _ := habilitation.NewOverlaid(rc.proc.Bindings, rc.mem.Live()).Current().ByID("sandbox")
	return h
}

func newStandIn(t *testing.T, webhook string, now func() time.Time, extra ...Request) (*Server, *httptest.Server) {
	t.Helper()
	reqs := append([]Request{{ID: "48213", SIRET: siret, AuthorizationID: "90117",
		Scopes: []string{"cnaf_quotient_familial", "cnaf_allocataires"}}}, extra...)
	s, err := New(Config{WebhookURL: webhook, Secret: secret, ClientID: clientID, ClientSecret: clientSecret,
		WebhookID: "7", Requests: reqs, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs
}

func post(t *testing.T, u, body string) (int, map[string]any) {
	t.Helper()
	resp, err := testClient.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func getToken(t *testing.T, base string, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.PostForm(base+PathToken, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out.AccessToken
}

func get(t *testing.T, u, tok string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func creds(scope string) url.Values {
	v := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {clientSecret}}
	if scope != "" {
		v.Set("scope", scope)
	}
	return v
}

func TestTokenRequired(t *testing.T) {
	_, hs := newStandIn(t, "http://127.0.0.1:1/webhook", nil)
	if st := get(t, hs.URL+PathHabilitation, "", nil); st != http.StatusUnauthorized {
		t.Fatalf("no token: %d", st)
	}
	if st := get(t, hs.URL+PathHabilitation, "forged", nil); st != http.StatusUnauthorized {
		t.Fatalf("unknown token: %d", st)
	}
	bad := creds("")
	bad.Set("client_secret", "wrong")
	if st, tok := getToken(t, hs.URL, bad); st != http.StatusUnauthorized || tok != "" {
		t.Fatalf("wrong secret: %d %q", st, tok)
	}
	authCode := creds("")
	authCode.Set("grant_type", "authorization_code")
	if st, _ := getToken(t, hs.URL, authCode); st != http.StatusBadRequest {
		t.Fatalf("another grant: %d", st)
	}
	if st, _ := getToken(t, hs.URL, creds("admin")); st != http.StatusBadRequest {
		t.Fatalf("unknown scope: %d", st)
	}
	_, hooks := getToken(t, hs.URL, creds(datapass.ScopeReadWebhooks))
	if st := get(t, hs.URL+PathHabilitation, hooks, nil); st != http.StatusForbidden {
		t.Fatalf("a read_webhooks token on habilitations: %d", st)
	}
	_, def := getToken(t, hs.URL, creds("")) // DataPass's default scopes: public read_authorizations
	var items []map[string]any
	if st := get(t, hs.URL+PathHabilitation, def, &items); st != http.StatusOK || len(items) != 1 {
		t.Fatalf("default token: %d %v", st, items)
	}
	if st := get(t, hs.URL+PathWebhooks+"7/attempts", def, nil); st != http.StatusForbidden {
		t.Fatalf("attempts without read_webhooks: %d", st)
	}
	if st := get(t, hs.URL+PathWebhooks+"8/attempts", hooks, nil); st != http.StatusNotFound {
		t.Fatalf("another webhook: %d", st)
	}
	// HTTP Basic client authentication, as x/oauth2 tries first.
	req, _ := http.NewRequest(http.MethodPost, hs.URL+PathToken, strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, clientSecret)
	resp, err := testClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("basic auth: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestHabilitationsPagination(t *testing.T) {
	var extra []Request
	for i := range 24 {
		extra = append(extra, Request{ID: itoa(1000 + i), SIRET: siret, AuthorizationID: itoa(5000 + i), Scopes: []string{"dgfip_rfr"}})
	}
	extra = append(extra, Request{ID: "777", SIRET: "21750001600019", Scopes: []string{"dgfip_rfr"}},
		Request{ID: "778", SIRET: siret, State: "revoked", Scopes: []string{"dgfip_rfr"}})
	_, hs := newStandIn(t, "http://127.0.0.1:1/webhook", nil, extra...)
	_, tok := getToken(t, hs.URL, creds(datapass.ScopeReadAuthorizations))
	seen := map[float64]bool{}
	var sizes []int
	for offset := 0; ; offset += 10 {
		var page []map[string]any
		u := hs.URL + PathHabilitation + "?siret=" + siret + "&state[]=active&limit=10&offset=" + itoa(offset)
		if st := get(t, u, tok, &page); st != http.StatusOK {
			t.Fatalf("page at %d: %d", offset, st)
		}
		sizes = append(sizes, len(page))
		for _, h := range page {
			org := h["organisation"].(map[string]any)
			if org["siret"] != siret || h["state"] != "active" || seen[h["id"].(float64)] {
				t.Fatalf("item out of the filters or repeated: %v", h)
			}
			seen[h["id"].(float64)] = true
		}
		if len(page) < 10 {
			break
		}
	}
	if !slices.Equal(sizes, []int{10, 10, 5}) || len(seen) != 25 {
		t.Fatalf("pages %v, %d items", sizes, len(seen))
	}
	var all []map[string]any
	get(t, hs.URL+PathHabilitation+"?siret="+siret+"&state[]=active&state[]=revoked&limit=5000", tok, &all)
	if len(all) != 26 {
		t.Fatalf("active and revoked: %d items, want 26", len(all))
	}
	// Passerelle's client reads the stand-in.
	api, err := datapass.NewAPI(datapass.APIConfig{BaseURL: hs.URL, ClientID: clientID, ClientSecret: clientSecret})
	if err != nil {
		t.Fatal(err)
	}
	got, err := api.Habilitations(context.Background(), siret)
	if err != nil || len(got) != 26 {
		t.Fatalf("datapass.API: %d items, %v", len(got), err)
	}
	if h := got[len(got)-1]; h.RequestID != "48213" || h.ID != "90117" || h.SIRET != siret || h.State != "active" ||
		h.DefinitionID != datapass.DefinitionAPIParticulier || !slices.Equal(h.Modalities, []string{"france_connect"}) {
		t.Fatalf("oldest item: %+v", h)
	}
}

// TestRevokeDeliversSignedWebhook: the webhook is DataPass's (signed, its
// headers, its shape), Passerelle's processor applies it, and the API then
// agrees with it.
func TestRevokeDeliversSignedWebhook(t *testing.T) {
	rc := newReceiver(t)
	s, hs := newStandIn(t, rc.srv.URL, nil)
	st, res := post(t, hs.URL+PathSandbox+"requests/48213/revoke", "")
	if st != http.StatusOK || res["event"] != "revoke" || res["delivered_status"] != float64(204) || res["delivered"] != true {
		t.Fatalf("revoke: %d %v", st, res)
	}
	body, hdr := rc.delivery(t, 0)
	if !datapass.Verify(hdr.Get(datapass.SignatureHeader), body, []byte(secret)) {
		t.Fatal("the webhook's signature does not verify")
	}
	if hdr.Get("X-App-Environment") != "sandbox" || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", hdr)
	}
	ev, err := datapass.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Name != "revoke" || ev.RequestID != "48213" || ev.SIRET != siret || ev.ModelType != datapass.ModelType ||
		len(ev.Authorizations) != 1 || !ev.Authorizations[0].Revoked || ev.Authorizations[0].ID != "90117" ||
		ev.FiredAt.Unix() != int64(res["fired_at"].(float64)) {
		t.Fatalf("event %+v", ev)
	}
	var raw map[string]any
	_ = json.Unmarshal(body, &raw)
	if _, ok := raw["fired_at"].(float64); !ok {
		t.Fatalf("fired_at is not Unix seconds: %v", raw["fired_at"])
	}
	if !rc.habilitation(t).Revoked {
		t.Fatal("the habilitation survived the revoke")
	}
	if at := s.Attempts(); len(at) != 1 || at[0].StatusCode != 204 || at[0].Event != "revoke" {
		t.Fatalf("attempts %+v", at)
	}
	// A second revoke has nothing to revoke.
	if st, _ := post(t, hs.URL+PathSandbox+"requests/48213/revoke", ""); st != http.StatusConflict {
		t.Fatalf("revoke again: %d", st)
	}
	if st, _ := post(t, hs.URL+PathSandbox+"requests/1/revoke", ""); st != http.StatusNotFound {
		t.Fatalf("unknown request: %d", st)
	}
	if st, _ := post(t, hs.URL+PathSandbox+"requests/48213/approve", `{"scopes":"x"}`); st != http.StatusBadRequest {
		t.Fatalf("bad body: %d", st)
	}

	// Approve with other scopes: a new authorization; the API and the
	// resync agree.
	st, res = post(t, hs.URL+PathSandbox+"requests/48213/approve", `{"scopes":["dgfip_rfr","cnaf_quotient_familial"]}`)
	if st != http.StatusOK || res["delivered_status"] != float64(204) {
		t.Fatalf("approve: %d %v", st, res)
	}
	second, _ := rc.delivery(t, 1)
	ev, _ = datapass.Parse(second)
	if ev.Name != "approve" || len(ev.Authorizations) != 2 || ev.Authorizations[1].State != "active" || ev.Authorizations[1].ID != "90118" {
		t.Fatalf("approve event %+v", ev)
	}
	if h := rc.habilitation(t); h.Revoked || !slices.Equal(h.Scopes, []string{"cnaf_quotient_familial", "dgfip_rfr"}) {
		t.Fatalf("after approve: %+v", h)
	}
	api, _ := datapass.NewAPI(datapass.APIConfig{BaseURL: hs.URL, ClientID: clientID, ClientSecret: clientSecret})
	rs := &datapass.Resync{API: api, Store: rc.mem, Bindings: rc.proc.Bindings, KnownScope: known, WebhookID: "7"}
	rep, err := rs.Once(context.Background())
	if err != nil || rep.Narrowed != 0 || rep.Widened != 0 || rep.FailedDeliveries != 0 {
		t.Fatalf("resync after the webhooks: %+v %v", rep, err)
	}
}

// TestFiredAtIncreases: two actions in one second still order.
func TestFiredAtIncreases(t *testing.T) {
	rc := newReceiver(t)
	now := time.Unix(1767261600, 500)
	_, hs := newStandIn(t, rc.srv.URL, func() time.Time { return now })
	var fired []int64
	for _, act := range []string{"revoke", "approve", "revoke"} {
		_, res := post(t, hs.URL+PathSandbox+"requests/48213/"+act, "")
		fired = append(fired, int64(res["fired_at"].(float64)))
	}
	if !slices.Equal(fired, []int64{now.Unix(), now.Unix() + 1, now.Unix() + 2}) {
		t.Fatalf("fired_at %v", fired)
	}
	_, res := post(t, hs.URL+PathSandbox+"requests/48213/approve", "")
	if res["delivered_status"] != float64(204) {
		t.Fatalf("approve: %v", res)
	}
	if h := rc.habilitation(t); h.Revoked {
		t.Fatal("revoke then approve within a second: the approve, later, must win")
	}
}

// TestFailedDelivery: a refused or unreachable delivery is a failed
// attempt, listed by the API (status_code, null without an answer),
// counted by Passerelle's client, and retried once when configured.
func TestFailedDelivery(t *testing.T) {
	rc := newReceiver(t)
	rc.setStatus(http.StatusInternalServerError)
	s, hs := newStandIn(t, rc.srv.URL, nil)
	_, res := post(t, hs.URL+PathSandbox+"requests/48213/revoke", "")
	if res["delivered_status"] != float64(500) || res["delivered"] != false {
		t.Fatalf("refused delivery: %v", res)
	}
	rc.srv.Close()
	_, res = post(t, hs.URL+PathSandbox+"requests/48213/approve", "")
	if res["delivered_status"] != nil || res["error"] == nil {
		t.Fatalf("unreachable receiver: %v", res)
	}
	_, tok := getToken(t, hs.URL, creds(datapass.ScopeReadWebhooks))
	var attempts []map[string]any
	get(t, hs.URL+PathWebhooks+"7/attempts?start_time="+url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339)), tok, &attempts)
	if len(attempts) != 2 || attempts[0]["event"] != "approve" || attempts[0]["status_code"] != nil ||
		attempts[1]["status_code"] != float64(500) || attempts[1]["authorization_request_id"] != float64(48213) {
		t.Fatalf("attempts %v", attempts)
	}
	api, _ := datapass.NewAPI(datapass.APIConfig{BaseURL: hs.URL, ClientID: clientID, ClientSecret: clientSecret})
	if n, err := api.FailedDeliveries(context.Background(), "7", time.Now().Add(-time.Hour)); err != nil || n != 2 {
		t.Fatalf("FailedDeliveries = %d, %v", n, err)
	}
	if n, _ := api.FailedDeliveries(context.Background(), "7", time.Now().Add(time.Hour)); n != 0 {
		t.Fatalf("start_time not applied: %d", n)
	}
	if len(s.Attempts()) != 2 {
		t.Fatal("no retry configured, yet retried")
	}

	// Retried once later: the second try reaches a receiver back up.
	rc2 := newReceiver(t)
	rc2.setStatus(http.StatusServiceUnavailable)
	s2, err := New(Config{WebhookURL: rc2.srv.URL, Secret: secret, ClientID: clientID, ClientSecret: clientSecret,
		Requests: []Request{{ID: "48213", SIRET: siret, Scopes: []string{"dgfip_rfr"}}}, RetryAfter: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	hs2 := httptest.NewServer(s2)
	defer hs2.Close()
	post(t, hs2.URL+PathSandbox+"requests/48213/revoke", "")
	rc2.setStatus(0)
	deadline := time.Now().Add(5 * time.Second)
	for len(s2.Attempts()) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	at := s2.Attempts()
	if len(at) != 2 || at[0].StatusCode != 503 || at[1].StatusCode != 204 {
		t.Fatalf("attempts %+v", at)
	}
	first, _ := rc2.delivery(t, 0)
	retried, _ := rc2.delivery(t, 1)
	if !bytes.Equal(first, retried) {
		t.Fatal("a retry must resend the same bytes")
	}
	if !rc2.habilitation(t).Revoked {
		t.Fatal("the retried revoke was not applied")
	}
	time.Sleep(50 * time.Millisecond)
	if len(s2.Attempts()) != 2 {
		t.Fatal("retried more than once")
	}
}

func TestNewRefuses(t *testing.T) {
	ok := Config{WebhookURL: "http://127.0.0.1:8080/datapass/webhook", Secret: secret, ClientID: clientID, ClientSecret: clientSecret}
	bad := map[string]func(c *Config){
		"no webhook":  func(c *Config) { c.WebhookURL = "" },
		"ftp webhook": func(c *Config) { c.WebhookURL = "ftp://x/y" },
		"no secret":   func(c *Config) { c.Secret = "" },
		"no client":   func(c *Config) { c.ClientSecret = "" },
		"bad id":      func(c *Config) { c.Requests = []Request{{ID: "x", SIRET: siret, Scopes: []string{"a"}}} },
		"bad siret":   func(c *Config) { c.Requests = []Request{{ID: "1", SIRET: "123", Scopes: []string{"a"}}} },
		"no scopes":   func(c *Config) { c.Requests = []Request{{ID: "1", SIRET: siret}} },
		"bad state": func(c *Config) {
			c.Requests = []Request{{ID: "1", SIRET: siret, State: "draft", Scopes: []string{"a"}}}
		},
		"twice": func(c *Config) {
			c.Requests = []Request{{ID: "1", SIRET: siret, Scopes: []string{"a"}}, {ID: "1", SIRET: siret, Scopes: []string{"a"}}}
		},
		"shared auth id": func(c *Config) {
			c.Requests = []Request{{ID: "1", SIRET: siret, Scopes: []string{"a"}}, {ID: "2", AuthorizationID: "1", SIRET: siret, Scopes: []string{"a"}}}
		},
		"bad webhook id":  func(c *Config) { c.WebhookID = "../x" },
		"bad scope names": func(c *Config) { c.Requests = []Request{{ID: "1", SIRET: siret, Scopes: []string{"a b"}}} },
	}
	if _, err := New(ok); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, change := range bad {
		c := ok
		change(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestApprovalsBounded: the actions take no credentials, and each approval
// adds an authorization to the request: past maxAuthorizations, the oldest
// are forgotten, and the new one stays the active one.
func TestApprovalsBounded(t *testing.T) {
	rc := newReceiver(t)
	rc.setStatus(http.StatusNoContent)
	s, hs := newStandIn(t, rc.srv.URL, nil)
	for range maxAuthorizations + 2 {
		if st, res := post(t, hs.URL+PathSandbox+"requests/48213/approve", ""); st != http.StatusOK {
			t.Fatalf("approve: %d %v", st, res)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	auths := s.requests["48213"].auths
	if len(auths) != maxAuthorizations {
		t.Fatalf("%d authorizations kept, want %d", len(auths), maxAuthorizations)
	}
	if last := auths[len(auths)-1]; last.state != "active" || last.id != 90117+maxAuthorizations+2 {
		t.Fatalf("last authorization %d %s", last.id, last.state)
	}
	if auths[0].id != 90117+3 {
		t.Fatalf("oldest kept %d, want %d", auths[0].id, 90117+3)
	}
}
