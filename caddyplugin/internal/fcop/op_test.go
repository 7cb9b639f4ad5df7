package fcop

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcissuer"
)

const (
	cid      = "client-1"
	secret   = "secret-1"
	callback = "https://app.example/cb"
	logout   = "https://app.example/bye"
	// otherCID is a second registered client, with the same redirect URI.
	otherCID    = "client-2"
	otherSecret = "secret-2"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newOP(t *testing.T) (*OP, *httptest.Server, *clock) {
	t.Helper()
	signer, err := fcissuer.New("ES256")
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now()}
	var op *OP
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { op.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	op = New(Config{Issuer: srv.URL + "/api/v2", Signer: signer, Now: clk.now,
		Clients: []Client{
			{ID: cid, Secret: secret, RedirectURIs: []string{callback}, PostLogoutRedirectURIs: []string{logout}},
			{ID: otherCID, Secret: otherSecret, RedirectURIs: []string{callback}},
		}})
	return op, srv, clk
}

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func authorizeQuery(mod func(url.Values)) string {
	q := url.Values{"response_type": {"code"}, "client_id": {cid}, "redirect_uri": {callback}, "scope": {"openid identite_pivot"},
		"state": {"state-1"}, "nonce": {strings.Repeat("n", 32)}, "acr_values": {"eidas1"}}
	if mod != nil {
		mod(q)
	}
	return q.Encode()
}

// code logs the identity in and returns the code.
func code(t *testing.T, srv *httptest.Server, identity string) string {
	t.Helper()
	resp, err := noFollow.Get(srv.URL + "/api/v2/authorize?" + authorizeQuery(nil))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`action="([^"]+)"`).FindStringSubmatch(string(page))
	if m == nil {
		t.Fatalf("no identity page: %s", page)
	}
	resp, err = noFollow.PostForm(srv.URL+m[1], url.Values{"identity": {identity}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return loc.Query().Get("code")
}

func token(srv *httptest.Server, code string, mod func(url.Values)) *http.Response {
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {callback}, "client_id": {cid}, "client_secret": {secret}}
	if mod != nil {
		mod(f)
	}
	resp, _ := http.PostForm(srv.URL+"/api/v2/token", f)
	return resp
}

// TestAuthorizeRefusals: the stand-in refuses what FranceConnect refuses,
// so a relying party that passes here does not fail in qualification.
func TestAuthorizeRefusals(t *testing.T) {
	_, srv, _ := newOP(t)
	for name, mod := range map[string]func(url.Values){
		"unregistered redirect_uri": func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") },
		"unknown client":            func(q url.Values) { q.Set("client_id", "other") },
	} {
		resp, _ := noFollow.Get(srv.URL + "/api/v2/authorize?" + authorizeQuery(mod))
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d, redirect %q", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for name, mod := range map[string]func(url.Values){
		"code_challenge":   func(q url.Values) { q.Set("code_challenge", "x") },
		"response_mode":    func(q url.Values) { q.Set("response_mode", "query") },
		"short nonce":      func(q url.Values) { q.Set("nonce", "short") },
		"no acr_values":    func(q url.Values) { q.Del("acr_values") },
		"prompt none":      func(q url.Values) { q.Set("prompt", "none") },
		"no openid":        func(q url.Values) { q.Set("scope", "identite_pivot") },
		"token flow":       func(q url.Values) { q.Set("response_type", "token") },
		"repeated state":   func(q url.Values) { q.Add("state", "again") },
		"login_hint given": func(q url.Values) { q.Set("login_hint", "x") },
	} {
		resp, _ := noFollow.Get(srv.URL + "/api/v2/authorize?" + authorizeQuery(mod))
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), callback) || loc.Query().Get("error") == "" {
			t.Errorf("%s: %d %q", name, resp.StatusCode, loc)
		}
	}
}

func TestTokenRefusals(t *testing.T) {
	op, srv, clk := newOP(t)
	// A refused exchange by the authenticated client burns the code; a
	// request that is not the client's (wrong secret, or another
	// registered client) or not an exchange leaves it: nobody else can
	// burn a citizen's code.
	for name, tc := range map[string]struct {
		mod   func(url.Values)
		burns bool
	}{
		"wrong secret":       {func(f url.Values) { f.Set("client_secret", "nope") }, false},
		"other grant":        {func(f url.Values) { f.Set("grant_type", "client_credentials") }, false},
		"other client":       {func(f url.Values) { f.Set("client_id", otherCID); f.Set("client_secret", otherSecret) }, false},
		"other redirect_uri": {func(f url.Values) { f.Set("redirect_uri", "https://app.example/other") }, true},
	} {
		c := code(t, srv, "angela")
		if resp := token(srv, c, tc.mod); resp.StatusCode == http.StatusOK {
			t.Errorf("%s: accepted", name)
		}
		if resp := token(srv, c, nil); (resp.StatusCode == http.StatusOK) == tc.burns {
			t.Errorf("%s: then the genuine exchange answered %d", name, resp.StatusCode)
		}
	}
	c := code(t, srv, "angela")
	clk.add(CodeTTL + time.Second)
	if resp := token(srv, c, nil); resp.StatusCode == http.StatusOK {
		t.Error("an expired code was accepted")
	}
	c = code(t, srv, "angela")
	resp := token(srv, c, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %d", resp.StatusCode)
	}
	if resp := token(srv, c, nil); resp.StatusCode == http.StatusOK {
		t.Error("a code was used twice")
	}
	_ = op
}

func TestIntrospectLifetimeAndEndSession(t *testing.T) {
	op, srv, clk := newOP(t)
	resp := token(srv, code(t, srv, "maelle"), nil)
	var body struct {
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	ti, ok := op.Introspect(body.AccessToken)
	if !ok || ti["aud"] != cid || ti["family_name"] != "Le Goff" || ti["birthdate"] != "1987-11-01" {
		t.Fatalf("introspection %v", ti)
	}
	if _, has := ti["idp_birthdate"]; has {
		t.Fatal("idp_birthdate released without its scope")
	}
	clk.add(AccessTokenTTL)
	if _, ok := op.Introspect(body.AccessToken); ok {
		t.Fatal("an expired access token is active")
	}
	for name, q := range map[string]url.Values{
		"unregistered return": {"id_token_hint": {body.IDToken}, "state": {"s"}, "post_logout_redirect_uri": {"https://evil.example/"}},
		"no state":            {"id_token_hint": {body.IDToken}, "post_logout_redirect_uri": {logout}},
		"no hint":             {"state": {"s"}, "post_logout_redirect_uri": {logout}},
	} {
		resp, _ := noFollow.Get(srv.URL + "/api/v2/session/end?" + q.Encode())
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("session/end %s: %d", name, resp.StatusCode)
		}
	}
}

// TestFormBodiesBounded: the form routes (token, revocation, the identity
// page's form) read at most maxFormBytes of body, as the checktoken route
// of the sandbox FranceConnect does: Go's own bound is 10 MiB a request,
// each parsed in memory, from anyone who can reach the stand-in.
func TestFormBodiesBounded(t *testing.T) {
	_, srv, _ := newOP(t)
	pad := strings.Repeat("p", maxFormBytes)
	resp := token(srv, code(t, srv, "angela"), func(f url.Values) { f.Set("pad", pad) })
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("token with a padded body: %d, want 400", resp.StatusCode)
	}
	resp, err := http.PostForm(srv.URL+"/api/v2/token/revocation", url.Values{"token": {"x"}, "client_id": {cid}, "client_secret": {secret}, "pad": {pad}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("revocation with a padded body: %d, want 400", resp.StatusCode)
	}
	page, err := noFollow.Get(srv.URL + "/api/v2/authorize?" + authorizeQuery(nil))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	m := regexp.MustCompile(`action="([^"]+)"`).FindStringSubmatch(string(body))
	if m == nil {
		t.Fatalf("no identity page: %s", body)
	}
	resp, err = noFollow.PostForm(srv.URL+m[1], url.Values{"identity": {"angela"}, "pad": {pad}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusSeeOther {
		t.Errorf("identity form with a padded body: %d, a code was issued", resp.StatusCode)
	}
	// Within the bound, the routes still work.
	if resp := token(srv, code(t, srv, "angela"), nil); resp.StatusCode != http.StatusOK {
		t.Errorf("token: %d", resp.StatusCode)
	}
}

// TestFullTableEvictsOldest: once anyone has filled the pending-login table
// with bare authorize requests, a new login still works (the oldest pending
// one is evicted) and the table stays bounded; before, the identity page
// showed and its submit answered "expired".
func TestFullTableEvictsOldest(t *testing.T) {
	op, srv, clk := newOP(t)
	now := clk.now()
	op.mu.Lock()
	for i := range maxPending {
		op.interactions[fmt.Sprint("flood-", i)] = &grant{expires: now.Add(interactionTTL - time.Duration(maxPending-i)*time.Millisecond)}
	}
	op.mu.Unlock()
	if c := code(t, srv, "angela"); c == "" {
		t.Fatal("a login while the table is full got no code")
	}
	op.mu.Lock()
	_, oldest := op.interactions["flood-0"]
	_, newest := op.interactions[fmt.Sprint("flood-", maxPending-1)]
	n := len(op.interactions)
	op.mu.Unlock()
	if oldest || !newest || n != maxPending-1 {
		t.Errorf("oldest kept %v, newest kept %v, %d pending; want false, true, %d", oldest, newest, n, maxPending-1)
	}
}
