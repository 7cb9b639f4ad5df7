package datapass

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passerelle-gw/passerelle/config/habilitation"
)

const (
	apiClientID     = "passerelle-resync"
	apiClientSecret = "canary-client-secret-0123456789"
)

// fakeDataPass plays DataPass's API: the client-credentials token endpoint
// (checking the grant, the credentials and the scope), /habilitations with
// its filters and pagination, and a webhook's attempts.
type fakeDataPass struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	items    []map[string]any // every habilitation, newest first
	attempts []map[string]any
	down     bool // every API route answers 503
	huge     bool // /habilitations answers more than MaxAPIBody
	anySIRET bool // /habilitations ignores the siret filter
	null     bool // /habilitations answers a JSON null
	refuse   int  // the next n API calls answer 401 (a token DataPass forgot)
	tokens   map[string]string
	issued   int                // tokens issued
	queries  []url.Values       // /habilitations queries
	sinces   []string           // attempts' start_time
	onRead   func(siret string) // called while /habilitations is read
}

func newFakeDataPass(t testing.TB) *fakeDataPass {
	f := &fakeDataPass{t: t, tokens: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/oauth/token", f.token)
	mux.HandleFunc("GET /api/v1/habilitations", f.habilitations)
	mux.HandleFunc("GET /api/v1/webhooks/{id}/attempts", f.webhookAttempts)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeDataPass) api(t testing.TB) *API {
	t.Helper()
	a, err := NewAPI(APIConfig{BaseURL: f.srv.URL, ClientID: apiClientID, ClientSecret: apiClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// add records an authorization of a request (newest first, as DataPass
// sorts them).
func (f *fakeDataPass) add(item map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.items = append([]map[string]any{item}, f.items...)
}

// apiItem is an item of /habilitations in DataPass's shape
// (AuthorizationDetailedSerializer), with personal canaries in data.
func apiItem(id, request int, siret, state string, scopes ...string) map[string]any {
	return map[string]any{
		"id": id, "slug": fmt.Sprintf("slug-%d", id), "revoked": state == "revoked", "state": state,
		"created_at": "2026-03-20T10:01:02.000+01:00", "authorization_request_class": apiParticulierClass,
		"definition_id": DefinitionAPIParticulier, "request_id": request,
		"data": map[string]any{"scopes": scopes, "modalities": []string{ModalityFranceConnect},
			"contact_technique_email": canaryEmail, "contact_technique_family_name": canaryName},
		"organisation": map[string]any{"id": 812, "siret": siret, "insee_payload": map[string]any{"nom": canaryName}},
	}
}

func (f *fakeDataPass) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != apiClientID || secret != apiClientSecret {
		// An answer that echoes the secret: it must not reach an error.
		http.Error(w, `{"error":"invalid_client","secret":"`+secret+`"}`, http.StatusUnauthorized)
		return
	}
	scope := r.PostForm.Get("scope")
	if scope != ScopeReadAuthorizations && scope != ScopeReadWebhooks {
		http.Error(w, `{"error":"invalid_scope"}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.issued++
	tok := fmt.Sprintf("canary-token-%d", f.issued)
	f.tokens[tok] = scope
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 7200, "scope": scope})
}

// authorized checks the bearer token's scope; it answers the refusal.
func (f *fakeDataPass) authorized(w http.ResponseWriter, r *http.Request, scope string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case f.down:
		http.Error(w, `{"errors":[{"detail":"`+canaryEmail+`"}]}`, http.StatusServiceUnavailable)
	case f.refuse > 0:
		f.refuse--
		http.Error(w, `{"errors":[{"status":"401"}]}`, http.StatusUnauthorized)
	case f.tokens[tok] == "":
		http.Error(w, `{"errors":[{"status":"401"}]}`, http.StatusUnauthorized)
	case f.tokens[tok] != scope:
		http.Error(w, `{"errors":[{"status":"403"}]}`, http.StatusForbidden)
	default:
		return true
	}
	return false
}

func (f *fakeDataPass) habilitations(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(w, r, ScopeReadAuthorizations) {
		return
	}
	q := r.URL.Query()
	f.mu.Lock()
	f.queries = append(f.queries, q)
	onRead, huge, anySIRET, null := f.onRead, f.huge, f.anySIRET, f.null
	var list []map[string]any
	for _, it := range f.items {
		org := it["organisation"].(map[string]any)
		if (anySIRET || org["siret"] == q.Get("siret")) && slices.Contains(q["state[]"], it["state"].(string)) {
			list = append(list, it)
		}
	}
	f.mu.Unlock()
	if onRead != nil {
		onRead(q.Get("siret"))
	}
	limit, _ := strconv.Atoi(q.Get("limit"))
	offset, _ := strconv.Atoi(q.Get("offset"))
	limit = min(max(limit, 1), 1000)
	list = list[min(offset, len(list)):min(offset+limit, len(list))]
	w.Header().Set("Content-Type", "application/json")
	if huge {
		_, _ = w.Write([]byte(`[{"id":1,"request_id":1,"padding":"` + strings.Repeat("x", MaxAPIBody) + `"}]`))
		return
	}
	if null {
		_, _ = w.Write([]byte("null\n"))
		return
	}
	if list == nil {
		list = []map[string]any{}
	}
	_ = json.NewEncoder(w).Encode(list)
}

func (f *fakeDataPass) webhookAttempts(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(w, r, ScopeReadWebhooks) {
		return
	}
	if r.PathValue("id") != "7" || r.URL.Query().Get("limit") != "100" {
		http.Error(w, `{"errors":[{"status":"404"}]}`, http.StatusNotFound)
		return
	}
	f.mu.Lock()
	f.sinces = append(f.sinces, r.URL.Query().Get("start_time"))
	list := f.attempts
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}

func TestNewAPIRefusesCleartext(t *testing.T) {
	cases := []struct {
		base, token string
		ok          bool
	}{
		{"https://datapass.api.gouv.fr", "", true},
		{"https://datapass.api.gouv.fr/", "https://auth.example/token", true},
		{"http://127.0.0.1:8083", "", true},
		{"http://localhost:8083", "", true},
		{"http://[::1]:8083", "", true},
		{"http://datapass.api.gouv.fr", "", false},
		{"http://10.0.0.5:8083", "", false},
		{"https://datapass.api.gouv.fr", "http://auth.example/token", false},
		{"https://user:pass@datapass.api.gouv.fr", "", false},
		{"https://datapass.api.gouv.fr?x=1", "", false},
		{"datapass.api.gouv.fr", "", false},
		{"", "", false},
	}
	for _, tc := range cases {
		_, err := NewAPI(APIConfig{BaseURL: tc.base, TokenURL: tc.token, ClientID: "id", ClientSecret: "secret"})
		if (err == nil) != tc.ok {
			t.Errorf("NewAPI(%q, %q): err %v, want ok %v", tc.base, tc.token, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrAPIConfig) {
			t.Errorf("NewAPI(%q): %v is not ErrAPIConfig", tc.base, err)
		}
	}
	if _, err := NewAPI(APIConfig{BaseURL: "https://datapass.api.gouv.fr", ClientID: "id"}); err == nil {
		t.Error("a client without its secret was accepted")
	}
}

// TestHabilitationsPagination: pages are followed until a short one, with
// the documented filters, and an item seen twice (pagination while
// DataPass changes) is kept once.
func TestHabilitationsPagination(t *testing.T) {
	f := newFakeDataPass(t)
	const n = 2*PageLimit + 500
	for i := 1; i <= n; i++ {
		f.add(apiItem(100000+i, 50000+i, siretServed, "active", "cnaf_quotient_familial"))
	}
	f.add(apiItem(99, 98, siretOther, "active", "dgfip_rfr"))
	f.add(apiItem(98, 97, siretServed, "obsolete", "dgfip_rfr")) // filtered out by state[]
	// Shown at the end of page 1 and again at the start of page 2.
	f.mu.Lock()
	f.items = slices.Insert(f.items, PageLimit, f.items[PageLimit-1])
	f.mu.Unlock()

	got, err := f.api(t).Habilitations(context.Background(), siretServed)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d items, want %d", len(got), n)
	}
	ids := map[string]bool{}
	for _, h := range got {
		if ids[h.ID] || h.SIRET != siretServed || h.State != "active" {
			t.Fatalf("item %+v repeated or out of the filter", h)
		}
		ids[h.ID] = true
	}
	if len(f.queries) != 3 {
		t.Fatalf("%d pages read, want 3", len(f.queries))
	}
	for i, q := range f.queries {
		if q.Get("siret") != siretServed || !slices.Equal(q["state[]"], []string{"active", "revoked"}) ||
			q.Get("limit") != "1000" || q.Get("offset") != strconv.Itoa(i*PageLimit) {
			t.Errorf("page %d: query %v", i, q)
		}
	}
	if f.issued != 1 {
		t.Errorf("%d tokens for one read, want 1", f.issued)
	}
}

func TestHabilitationsBodyBound(t *testing.T) {
	f := newFakeDataPass(t)
	f.huge = true
	if _, err := f.api(t).Habilitations(context.Background(), siretServed); !errors.Is(err, ErrAPITooLarge) {
		t.Fatalf("a body over 8 MiB: err %v, want ErrAPITooLarge", err)
	}
}

func TestHabilitationsTooManyPages(t *testing.T) {
	f := newFakeDataPass(t) // for its token endpoint
	// A server that ignores offset and always sends full pages.
	full := make([]map[string]any, PageLimit)
	for i := range full {
		full[i] = map[string]any{"id": i + 1, "request_id": i + 1}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/oauth/token", f.token)
	page, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc("GET /api/v1/habilitations", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(page) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	a, err := NewAPI(APIConfig{BaseURL: srv.URL, ClientID: apiClientID, ClientSecret: apiClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Habilitations(context.Background(), siretServed); !errors.Is(err, ErrAPIPages) || got != nil {
		t.Fatalf("endless pages: %d items, err %v", len(got), err)
	}
}

// TestAPITokens: one token per scope, reused, fetched again after a 401;
// refusals and failures hold neither the secret, nor a token, nor a body.
func TestAPITokens(t *testing.T) {
	f := newFakeDataPass(t)
	a := f.api(t)
	ctx := context.Background()
	for range 2 {
		if _, err := a.Habilitations(ctx, siretServed); err != nil {
			t.Fatal(err)
		}
	}
	if f.issued != 1 {
		t.Fatalf("%d tokens for two reads, want 1", f.issued)
	}
	f.set(func() { f.refuse = 1 })
	if _, err := a.Habilitations(ctx, siretServed); err != nil || f.issued != 2 {
		t.Fatalf("after a 401: err %v, %d tokens, want a fresh one", err, f.issued)
	}
	if _, err := a.FailedDeliveries(ctx, "7", time.Now()); err != nil || f.issued != 3 {
		t.Fatalf("attempts: err %v, %d tokens, want a read_webhooks one", err, f.issued)
	}

	f.set(func() { f.refuse = 2 }) // the fresh token refused too
	_, err1 := a.Habilitations(ctx, siretServed)
	f.set(func() { f.down = true })
	_, err2 := a.Habilitations(ctx, siretServed)
	bad, err := NewAPI(APIConfig{BaseURL: f.srv.URL, ClientID: apiClientID, ClientSecret: "wrong-" + apiClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	_, err3 := bad.Habilitations(ctx, siretServed)
	for i, err := range []error{err1, err2, err3} {
		if err == nil {
			t.Fatalf("error %d: nil", i+1)
		}
		s := err.Error()
		if strings.Contains(s, apiClientSecret) || strings.Contains(s, "canary-token") || strings.Contains(s, canaryEmail) {
			t.Errorf("error %d leaks: %s", i+1, s)
		}
	}
	if !errors.Is(err1, ErrAPIStatus) || !errors.Is(err2, ErrAPIStatus) || !errors.Is(err3, ErrAPIToken) {
		t.Errorf("errors: %v / %v / %v", err1, err2, err3)
	}
}

func TestFailedDeliveries(t *testing.T) {
	f := newFakeDataPass(t)
	f.attempts = []map[string]any{
		{"id": 1, "event": "approve", "status_code": 204, "response_body": canaryEmail, "authorization_request_id": 48213},
		{"id": 2, "event": "revoke", "status_code": 500},
		{"id": 3, "event": "revoke", "status_code": nil},
		{"id": 4, "event": "revoke", "status_code": 200},
		{"id": 5, "event": "revoke", "status_code": 201},
		{"id": 6, "event": "revoke", "status_code": 401},
		{"id": 7, "event": "revoke", "response_code": 503},
		{"id": 8, "event": "revoke", "response_code": 200},
		{"id": 9, "event": "revoke"},
	}
	since := time.Date(2026, 5, 1, 10, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	n, err := f.api(t).FailedDeliveries(context.Background(), "7", since)
	if err != nil || n != 5 {
		t.Fatalf("FailedDeliveries = %d, %v; want 5", n, err)
	}
	if f.sinces[0] != "2026-05-01T08:00:00Z" {
		t.Errorf("start_time %q", f.sinces[0])
	}
	if _, err := f.api(t).FailedDeliveries(context.Background(), "7/../../x", since); !errors.Is(err, ErrAPIConfig) {
		t.Errorf("a webhook id that is not a number: %v", err)
	}
	if _, err := countFailed([]byte(`{"not":"a list"}`)); !errors.Is(err, ErrAPISyntax) {
		t.Errorf("an object: %v", err)
	}
}

// TestDecodeHabilitationsPage: derived fields only, DataPass's variants read.
func TestDecodeHabilitationsPage(t *testing.T) {
	older := apiItem(3, 30, siretOther, "active", "dgfip_rfr")
	delete(older, "definition_id")
	older["organization"] = older["organisation"]
	delete(older, "organisation")
	body, _ := json.Marshal([]any{
		apiItem(1, 10, siretServed, "revoked", "cnaf_quotient_familial", "not a scope", "cnaf_allocataires"),
		map[string]any{"id": 2, "request_id": "not a number"},
		older,
		"not an object",
	})
	got, n, err := DecodeHabilitationsPage(body)
	if err != nil || n != 4 || len(got) != 2 {
		t.Fatalf("%d of %d items, err %v", len(got), n, err)
	}
	want := APIHabilitation{ID: "1", RequestID: "10", State: "revoked", Revoked: true, DefinitionID: DefinitionAPIParticulier,
		Scopes: []string{"cnaf_quotient_familial", "cnaf_allocataires"}, Modalities: []string{ModalityFranceConnect}, SIRET: siretServed}
	if fmt.Sprint(got[0]) != fmt.Sprint(want) {
		t.Errorf("item: %+v\nwant %+v", got[0], want)
	}
	if got[1].SIRET != siretOther || got[1].DefinitionID != DefinitionAPIParticulier {
		t.Errorf("organization and authorization_request_class not read: %+v", got[1])
	}
	if s := fmt.Sprintf("%+v", got); strings.Contains(s, canaryEmail) || strings.Contains(s, canaryName) {
		t.Errorf("personal data kept: %s", s)
	}
	if _, _, err := DecodeHabilitationsPage([]byte(`{"habilitations":[]}`)); !errors.Is(err, ErrAPISyntax) {
		t.Errorf("an object: %v", err)
	}
}

// FuzzHabilitationsPage: any body decodes without a panic into items of
// the documented shape, holding derived fields only.
func FuzzHabilitationsPage(f *testing.F) {
	seed, _ := json.Marshal([]any{apiItem(1, 10, siretServed, "active", "cnaf_quotient_familial"),
		apiItem(2, 10, siretServed, "revoked", "dgfip_rfr")})
	f.Add(seed)
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"id":"1","request_id":"2","state":"active","data":{"scopes":"x"},"organization":{"siret":"21750001600019"}}]`))
	f.Add([]byte(`[{"id":1e3,"request_id":-1}, null, 3]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		items, n, err := DecodeHabilitationsPage(body)
		if err != nil {
			if !errors.Is(err, ErrAPISyntax) || items != nil {
				t.Fatalf("unexpected failure %v with %d items", err, len(items))
			}
			return
		}
		if len(items) > n {
			t.Fatalf("%d items of a page of %d", len(items), n)
		}
		for _, h := range items {
			if !habilitation.ValidDataPassID(h.ID) || !habilitation.ValidDataPassID(h.RequestID) ||
				h.SIRET != "" && !siretRe.MatchString(h.SIRET) ||
				h.State != "" && !nameRe.MatchString(h.State) || h.DefinitionID != "" && !nameRe.MatchString(h.DefinitionID) ||
				len(h.Scopes) > maxScopes || len(h.Modalities) > maxScopes {
				t.Fatalf("item out of shape: %+v", h)
			}
			for _, s := range append(slices.Clone(h.Scopes), h.Modalities...) {
				if !scopeNameRe.MatchString(s) {
					t.Fatalf("name out of shape: %q", s)
				}
			}
			rec := Derive(Event{Name: EventResync, RequestID: h.RequestID, Authorizations: []Authorization{h.Authorization()}}, known)
			for _, s := range rec.Scopes {
				if !known(s) {
					t.Fatalf("Derive grants unknown scope %q", s)
				}
			}
		}
	})
}

// TestIsTestPlatformURL: DataPass's staging and sandbox hosts, and
// loopback stand-ins, in any case, are test platforms; production's is not.
func TestIsTestPlatformURL(t *testing.T) {
	for u, want := range map[string]bool{
		"https://staging.datapass.api.gouv.fr":         true,
		"https://SANDBOX.DataPass.api.gouv.fr./api/v1": true,
		"http://127.0.0.1:9081":                        true,
		"http://localhost:8080":                        true,
		"https://staging．datapass．api．gouv．fr":         true,
		"https://sandbox。datapass。api。gouv。fr":         true,
		"https://datapass.api.gouv.fr":                 false,
		"https://datapass.api.gouv.fr/api/v1/oauth":    false,
		"https://notdatapass.api.gouv.fr":              false,
	} {
		if got := IsTestPlatformURL(u); got != want {
			t.Errorf("IsTestPlatformURL(%q) = %t", u, got)
		}
	}
}
