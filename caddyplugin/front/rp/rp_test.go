package rp

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcissuer"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcop"
)

const (
	clientID     = "6925fb8143c76eded44d32b40c0cb1006065f7f003de52712b78985704f39950"
	clientSecret = "rp-test-secret-canary-41"
	redirectURL  = "http://127.0.0.1:8082/.passerelle/fc/callback"
	logoutURL    = "http://127.0.0.1:8082/.passerelle/fc/logout-callback"
)

// stand is a FranceConnect stand-in (package fcop, real JOSE) on an
// httptest server, recording the forms posted to it.
type stand struct {
	op     *fcop.OP
	signer *fcissuer.Issuer
	srv    *httptest.Server
	issuer string
	tamper *fcop.Tamper

	mu    sync.Mutex
	forms map[string]url.Values // path → last form
}

func newStand(t *testing.T) *stand {
	t.Helper()
	signer, err := fcissuer.New("ES256")
	if err != nil {
		t.Fatal(err)
	}
	s := &stand{signer: signer, forms: map[string]url.Values{}, tamper: &fcop.Tamper{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			_ = r.ParseForm()
			s.mu.Lock()
			s.forms[r.URL.Path] = r.PostForm
			s.mu.Unlock()
		}
		s.op.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	s.issuer = s.srv.URL + "/api/v2"
	s.op = fcop.New(fcop.Config{
		Issuer: s.issuer, Signer: signer,
		Clients: []fcop.Client{{ID: clientID, Secret: clientSecret,
			RedirectURIs: []string{redirectURL}, PostLogoutRedirectURIs: []string{logoutURL}}},
		Tamper: fcop.Tamper{
			IDToken: func(c map[string]any) string {
				if s.tamper.IDToken != nil {
					return s.tamper.IDToken(c)
				}
				tok, _ := signer.Sign(c)
				return tok
			},
			UserInfo: func(c map[string]any) (string, string) {
				if s.tamper.UserInfo != nil {
					return s.tamper.UserInfo(c)
				}
				tok, _ := signer.Sign(c)
				return "application/jwt", tok
			},
		},
	})
	return s
}

func (s *stand) form(path string) url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forms[path]
}

func (s *stand) client(t *testing.T, mutate ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		Issuer: s.issuer, ClientID: clientID, ClientSecret: clientSecret,
		RedirectURL: redirectURL, PostLogoutRedirectURL: logoutURL,
		Scopes: []string{"openid", "identite_pivot", "cnaf_quotient_familial"},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

var formAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)

// authorize plays the browser: the authorization URL, the identity page,
// the choice (an identity key, or "" to cancel). It returns the callback's
// query.
func (s *stand) authorize(t *testing.T, authURL, identity string) url.Values {
	t.Helper()
	resp, err := noRedirect.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// An error goes back to the callback at once.
		if resp.StatusCode == http.StatusFound {
			return callbackQuery(t, resp)
		}
		t.Fatalf("authorize: %d %s", resp.StatusCode, page)
	}
	m := formAction.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no form in the identity page: %s", page)
	}
	form := url.Values{"identity": {identity}}
	if identity == "" {
		form = url.Values{"cancel": {"1"}}
	}
	resp, err = noRedirect.PostForm(s.srv.URL+string(m[1]), form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return callbackQuery(t, resp)
}

func callbackQuery(t *testing.T, resp *http.Response) url.Values {
	t.Helper()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), redirectURL) {
		t.Fatalf("callback redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query()
}

const (
	testState = "state-0123456789abcdef0123456789abcdef"
	testNonce = "nonce-0123456789abcdef0123456789abcdef"
)

// login runs the flow up to the code and exchanges it.
func (s *stand) login(t *testing.T, c *Client, identity string) (*Login, error) {
	t.Helper()
	started := time.Now()
	u, err := c.AuthCodeURL(context.Background(), testState, testNonce)
	if err != nil {
		t.Fatal(err)
	}
	q := s.authorize(t, u, identity)
	if q.Get("state") != testState || q.Get("code") == "" {
		t.Fatalf("callback query %v", q)
	}
	return c.Exchange(context.Background(), q.Get("code"), testNonce, started)
}

func TestLoginFlow(t *testing.T) {
	s := newStand(t)
	c := s.client(t)
	ctx := context.Background()

	u, err := c.AuthCodeURL(ctx, testState, testNonce)
	if err != nil {
		t.Fatal(err)
	}
	au, _ := url.Parse(u)
	want := []string{"acr_values", "client_id", "nonce", "prompt", "redirect_uri", "response_type", "scope", "state"}
	var got []string
	for k := range au.Query() {
		got = append(got, k)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("authorize parameters %v, want exactly %v", got, want)
	}
	if q := au.Query(); q.Get("acr_values") != "eidas1" || q.Get("prompt") != "login consent" || q.Get("response_type") != "code" ||
		q.Get("scope") != "openid identite_pivot cnaf_quotient_familial" {
		t.Fatalf("authorize query %v", q)
	}

	l, err := s.login(t, c, "angela")
	if err != nil {
		t.Fatal(err)
	}
	if l.ACR != "eidas1" || l.Subject == "" || l.IDToken == "" || l.AccessToken == "" || !slices.Equal(l.AMR, []string{"pwd"}) {
		t.Fatalf("login %+v", l)
	}
	if tf := s.form("/api/v2/token"); tf.Get("client_secret") != clientSecret || tf.Get("client_id") != clientID || tf.Get("grant_type") != "authorization_code" {
		t.Fatalf("token request is not client_secret_post: %v", tf)
	}

	id, err := c.UserInfo(ctx, l.AccessToken, l.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if id.FamilyName != "DUBOIS" || id.GivenName != "Angela Claire Louise" || id.Birthdate != "1962-08-24" ||
		id.Birthplace != "75107" || id.Birthcountry != "99100" || id.Gender != "female" || len(id.GivenNameArray) != 3 {
		t.Fatalf("identity %+v", id)
	}

	if _, ok := s.op.Introspect(l.AccessToken); !ok {
		t.Fatal("the access token is unknown to checktoken before revocation")
	}
	if err := c.Revoke(ctx, l.AccessToken); err != nil {
		t.Fatal(err)
	}
	rf := s.form("/api/v2/token/revocation")
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range rf {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(keys, []string{"client_id", "client_secret", "token"}) || rf.Get("token") != l.AccessToken {
		t.Fatalf("revocation form %v, want exactly token, client_id, client_secret", keys)
	}
	if _, ok := s.op.Introspect(l.AccessToken); ok {
		t.Fatal("a revoked access token is still active")
	}

	end, err := c.EndSessionURL(ctx, l.IDToken, "logout-state-0123456789abcdef0123")
	if err != nil {
		t.Fatal(err)
	}
	eu, _ := url.Parse(end)
	if eu.Query().Get("post_logout_redirect_uri") != logoutURL || eu.Query().Get("id_token_hint") != l.IDToken {
		t.Fatalf("end session URL %s", end)
	}
	resp, err := noRedirect.Get(end)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); loc != logoutURL+"?state=logout-state-0123456789abcdef0123" {
		t.Fatalf("session/end returned to %q", loc)
	}
}

func TestCodeReplayRefused(t *testing.T) {
	s := newStand(t)
	c := s.client(t)
	u, _ := c.AuthCodeURL(context.Background(), testState, testNonce)
	q := s.authorize(t, u, "angela")
	if _, err := c.Exchange(context.Background(), q.Get("code"), testNonce, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, err := c.Exchange(context.Background(), q.Get("code"), testNonce, time.Now())
	if ReasonOf(err) != ReasonExchange {
		t.Fatalf("replayed code: %v, want %s", err, ReasonExchange)
	}
}

func TestNonceMismatchRefused(t *testing.T) {
	s := newStand(t)
	c := s.client(t)
	u, _ := c.AuthCodeURL(context.Background(), testState, testNonce)
	q := s.authorize(t, u, "angela")
	_, err := c.Exchange(context.Background(), q.Get("code"), "another-nonce-0123456789abcdef012345", time.Now())
	if ReasonOf(err) != ReasonNonce {
		t.Fatalf("nonce mismatch: %v", err)
	}
}

func TestACRLowerThanAskedRefused(t *testing.T) {
	s := newStand(t) // answers eidas1 whatever is asked
	c := s.client(t, func(c *Config) { c.ACR = "eidas2" })
	if _, err := s.login(t, c, "angela"); ReasonOf(err) != ReasonACR {
		t.Fatalf("eidas1 answered to an eidas2 request: %v", err)
	}
}

// otherKey is an ES256 key FranceConnect does not publish, with the kid of
// the real one.
func otherKey(t *testing.T, s *stand) *fcissuer.Issuer {
	t.Helper()
	o, err := fcissuer.New("ES256")
	if err != nil {
		t.Fatal(err)
	}
	k := o.SigningKey()
	k.KeyID = s.signer.KeyID()
	o, err = fcissuer.NewWithKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestIDTokenRefused(t *testing.T) {
	s := newStand(t)
	priv := s.signer.SigningKey()
	pub := priv.Public()
	pubJSON, _ := pub.MarshalJSON()
	kid := map[string]any{"kid": s.signer.KeyID()}
	sign := func(c map[string]any) string { tok, _ := s.signer.Sign(c); return tok }
	forge := func(alg jose.SignatureAlgorithm, key any) func(map[string]any) string {
		return func(c map[string]any) string {
			p, _ := json.Marshal(c)
			tok, err := fcissuer.SignJWS(p, alg, key, kid)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
	}
	point, err := pub.Key.(*ecdsa.PublicKey).Bytes() // 0x04 ‖ X ‖ Y
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		tamper func(map[string]any) string
		reason string
	}{
		{"alg none", forge("none", nil), ReasonIDToken},
		{"HS256 keyed with the public JWK", forge(jose.HS256, pubJSON), ReasonIDToken},
		{"HS256 keyed with the public point", forge(jose.HS256, point), ReasonIDToken},
		{"signed by another key, same kid", func(c map[string]any) string { tok, _ := otherKey(t, s).Sign(c); return tok }, ReasonIDToken},
		{"wrong aud", func(c map[string]any) string { c["aud"] = "another-service"; return sign(c) }, ReasonIDToken},
		{"wrong iss", func(c map[string]any) string { c["iss"] = "https://evil.example/api/v2"; return sign(c) }, ReasonIDToken},
		{"expired", func(c map[string]any) string {
			c["iat"], c["exp"] = time.Now().Add(-3*time.Minute).Unix(), time.Now().Add(-2*time.Minute).Unix()
			return sign(c)
		}, ReasonIDToken},
		{"other nonce", func(c map[string]any) string { c["nonce"] = "nonce-of-another-login-0123456789ab"; return sign(c) }, ReasonNonce},
		{"no nonce", func(c map[string]any) string { delete(c, "nonce"); return sign(c) }, ReasonNonce},
		{"at_hash of another token", func(c map[string]any) string { c["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA"; return sign(c) }, ReasonIDToken},
		{"no at_hash", func(c map[string]any) string { delete(c, "at_hash"); return sign(c) }, ReasonIDToken},
		{"several audiences, azp another client", func(c map[string]any) string {
			c["aud"], c["azp"] = []string{clientID, "another-service"}, "another-service"
			return sign(c)
		}, ReasonIDToken},
		{"several audiences, no azp", func(c map[string]any) string {
			c["aud"] = []string{clientID, "another-service"}
			return sign(c)
		}, ReasonIDToken},
		{"no acr", func(c map[string]any) string { delete(c, "acr"); return sign(c) }, ReasonACR},
		{"unknown acr", func(c map[string]any) string { c["acr"] = "eidas0"; return sign(c) }, ReasonACR},
		{"no sub", func(c map[string]any) string { delete(c, "sub"); return sign(c) }, ReasonIDToken},
		// prompt=login: FranceConnect must have authenticated the citizen
		// for this login, not reused an earlier session.
		{"no auth_time", func(c map[string]any) string { delete(c, "auth_time"); return sign(c) }, ReasonAuthTime},
		{"authenticated before the login started", func(c map[string]any) string {
			c["auth_time"] = time.Now().Add(-10 * time.Minute).Unix()
			return sign(c)
		}, ReasonAuthTime},
		{"auth_time in the future", func(c map[string]any) string {
			c["auth_time"] = time.Now().Add(10 * time.Minute).Unix()
			return sign(c)
		}, ReasonAuthTime},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.tamper.IDToken = tc.tamper
			defer func() { s.tamper.IDToken = nil }()
			l, err := s.login(t, s.client(t), "angela")
			if ReasonOf(err) != tc.reason || l != nil {
				t.Fatalf("got %v (login %v), want reason %s", err, l, tc.reason)
			}
			if strings.Contains(err.Error(), "DUBOIS") || strings.Contains(err.Error(), clientSecret) {
				t.Fatalf("error text leaks: %v", err)
			}
		})
	}
	// And the untampered stand-in is accepted: the cases above fail for
	// their own reason.
	if _, err := s.login(t, s.client(t), "angela"); err != nil {
		t.Fatal(err)
	}
}

func TestUserInfoRefused(t *testing.T) {
	s := newStand(t)
	sign := func(c map[string]any) string { tok, _ := s.signer.Sign(c); return tok }
	cases := []struct {
		name   string
		tamper func(map[string]any) (string, string)
		reason string
	}{
		{"unsigned JSON", func(c map[string]any) (string, string) { b, _ := json.Marshal(c); return "application/json", string(b) }, ReasonUserInfo},
		{"alg none as a JWT", func(c map[string]any) (string, string) {
			p, _ := json.Marshal(c)
			tok, _ := fcissuer.SignJWS(p, "none", nil, map[string]any{"kid": s.signer.KeyID()})
			return "application/jwt", tok
		}, ReasonUserInfo},
		{"badly signed", func(c map[string]any) (string, string) {
			tok, _ := otherKey(t, s).Sign(c)
			return "application/jwt", tok
		}, ReasonUserInfo},
		{"signature cut", func(c map[string]any) (string, string) {
			tok := sign(c)
			return "application/jwt", tok[:strings.LastIndexByte(tok, '.')+1]
		}, ReasonUserInfo},
		{"another sub", func(c map[string]any) (string, string) {
			c["sub"] = strings.Repeat("ab", 32) + "v1"
			return "application/jwt", sign(c)
		}, ReasonSubject},
		{"wrong aud", func(c map[string]any) (string, string) {
			c["aud"] = "another-service"
			return "application/jwt", sign(c)
		}, ReasonUserInfo},
		{"wrong iss", func(c map[string]any) (string, string) {
			c["iss"] = "https://evil.example"
			return "application/jwt", sign(c)
		}, ReasonUserInfo},
		{"expired", func(c map[string]any) (string, string) {
			c["exp"] = time.Now().Add(-time.Minute).Unix()
			return "application/jwt", sign(c)
		}, ReasonUserInfo},
	}
	c := s.client(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := s.login(t, c, "angela")
			if err != nil {
				t.Fatal(err)
			}
			s.tamper.UserInfo = tc.tamper
			defer func() { s.tamper.UserInfo = nil }()
			id, err := c.UserInfo(context.Background(), l.AccessToken, l.Subject)
			if ReasonOf(err) != tc.reason || id != nil {
				t.Fatalf("got %v (identity %v), want reason %s", err, id, tc.reason)
			}
		})
	}
}

func TestCancelAndRefusedRequests(t *testing.T) {
	s := newStand(t)
	c := s.client(t)
	u, _ := c.AuthCodeURL(context.Background(), testState, testNonce)
	q := s.authorize(t, u, "")
	if q.Get("error") != "access_denied" || q.Get("state") != testState {
		t.Fatalf("cancel: %v", q)
	}
	if e := ParseCallbackError(q.Get("error")); e == nil || e.Kind != KindCancelled {
		t.Fatalf("access_denied → %+v", e)
	}
	// FranceConnect refuses parameters it does not list: the stand-in does
	// too, so a client adding one would fail here.
	q = s.authorize(t, u+"&code_challenge=abc&code_challenge_method=S256", "angela")
	if q.Get("error") != "invalid_request" {
		t.Fatalf("code_challenge accepted: %v", q)
	}
}

func TestParseCallbackError(t *testing.T) {
	for code, kind := range map[string]string{
		"access_denied": KindCancelled, "invalid_scope": KindConfiguration, "invalid_request": KindConfiguration,
		"server_error": KindUnavailable, "temporarily_unavailable": KindUnavailable, "Y000007": KindConfiguration,
		"<script>": KindConfiguration,
	} {
		e := ParseCallbackError(code)
		if e == nil || e.Kind != kind {
			t.Errorf("%q → %+v, want %s", code, e, kind)
		}
		if e != nil && e.Code != code && e.Code != "unknown" {
			t.Errorf("%q → code %q", code, e.Code)
		}
	}
	if ParseCallbackError("") != nil {
		t.Error("no error → nil")
	}
	if e := ParseCallbackError("<script>"); e.Code != "unknown" {
		t.Errorf("an unlisted code is echoed: %q", e.Code)
	}
}

func TestDiscoveryDownThenUp(t *testing.T) {
	s := newStand(t)
	var down sync.Mutex
	isDown := true
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		down.Lock()
		d := isDown
		down.Unlock()
		if d {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		s.srv.Config.Handler.ServeHTTP(w, r)
	}))
	defer front.Close()
	now := time.Now()
	clock := func() time.Time { return now }
	c, err := New(Config{Issuer: s.issuer, ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURL,
		HTTPClient: &http.Client{Transport: rewrite{front.URL}}, RetryAfter: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AuthCodeURL(context.Background(), testState, testNonce); ReasonOf(err) != ReasonUnavailable {
		t.Fatalf("discovery down: %v", err)
	}
	down.Lock()
	isDown = false
	down.Unlock()
	if _, err := c.AuthCodeURL(context.Background(), testState, testNonce); ReasonOf(err) != ReasonUnavailable {
		t.Fatalf("retried before RetryAfter: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := c.AuthCodeURL(context.Background(), testState, testNonce); err != nil {
		t.Fatalf("after RetryAfter: %v", err)
	}
}

// TestCallerHangingUpDoesNotFailDiscovery: the first login start's caller
// hangs up while FranceConnect's discovery is under way (its request's
// context is cancelled). The discovery serves every login to come: it
// goes on and succeeds, and the next login is not refused for RetryAfter
// while FranceConnect is up.
func TestCallerHangingUpDoesNotFailDiscovery(t *testing.T) {
	s := newStand(t)
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration") {
			select {
			case arrived <- struct{}{}:
			default:
			}
			<-release
		}
		s.srv.Config.Handler.ServeHTTP(w, r)
	}))
	defer front.Close()
	c := s.client(t, func(cfg *Config) { cfg.HTTPClient = &http.Client{Transport: rewrite{front.URL}} })

	ctx, hangUp := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := c.AuthCodeURL(ctx, testState, testNonce)
		first <- err
	}()
	<-arrived
	hangUp()
	time.Sleep(50 * time.Millisecond) // a cancelled call would give up meanwhile
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("the caller who hung up: %v", err)
	}
	if _, err := c.AuthCodeURL(context.Background(), testState, testNonce); err != nil {
		t.Fatalf("the next login, FranceConnect up: %v (%s)", err, ReasonOf(err))
	}
}

// rewrite sends every request to another host (the test's front server).
type rewrite struct{ base string }

func (r rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	u, _ := url.Parse(r.base)
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host = u.Scheme, u.Host
	return http.DefaultTransport.RoundTrip(req)
}

func TestConfigRefused(t *testing.T) {
	base := Config{Issuer: "https://fc.example/api/v2", ClientID: "id", ClientSecret: "s", RedirectURL: "https://app.example/cb"}
	for name, m := range map[string]func(*Config){
		"HS256 allowed":  func(c *Config) { c.SigningAlgs = []string{"HS256"} },
		"none allowed":   func(c *Config) { c.SigningAlgs = []string{"none"} },
		"prompt none":    func(c *Config) { c.Prompt = "none" },
		"prompt consent": func(c *Config) { c.Prompt = "consent" },
		"unknown acr":    func(c *Config) { c.ACR = "eidas9" },
		"no secret":      func(c *Config) { c.ClientSecret = "" },
		"no redirection": func(c *Config) { c.RedirectURL = "" },
	} {
		cfg := base
		m(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(base); err != nil {
		t.Fatal(err)
	}
	var e *Error
	if errors.As(errors.New("x"), &e) {
		t.Fatal("unreachable")
	}
}
