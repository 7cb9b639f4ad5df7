package front

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/handoff"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/reconcile"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/rp"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcissuer"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcop"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/ratelimit"
	"github.com/passerelle-gw/passerelle/caddyplugin/pipeline"
)

const flowClientID, flowClientSecret = "flow-client", "flow-secret-canary-0123456789"

// flow is the front in process on an httptest server, in front of an app
// that records the requests it receives, with the FranceConnect stand-in
// (package fcop, real JOSE) on another: whole journeys, login to logout.
// /espace/* is protected.
type flow struct {
	f    *Front
	op   *fcop.OP
	fc   *httptest.Server
	site *httptest.Server

	mu      sync.Mutex
	account []string       // the account header values the app's pages carry
	app     []http.Header  // the headers of each request the app received
	fcHits  map[string]int // FranceConnect's paths → requests
	revoked []string       // the tokens FranceConnect was asked to revoke
	noInfo  bool           // FranceConnect's userinfo answers 500
}

func newFlow(t *testing.T) *flow {
	t.Helper()
	fl := &flow{fcHits: map[string]int{}}
	fl.site = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			fl.mu.Lock()
			fl.app = append(fl.app, r.Header.Clone())
			for _, v := range fl.account {
				w.Header().Add(reconcile.AccountHeader, v)
			}
			fl.mu.Unlock()
			_, _ = io.WriteString(w, "app page "+r.URL.Path)
			return nil
		})
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		if err := fl.f.ServeHTTP(w, r, app); err != nil {
			t.Errorf("front: %v", err)
		}
	}))
	t.Cleanup(fl.site.Close)
	fl.fc = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fl.mu.Lock()
		fl.fcHits[r.URL.Path]++
		if r.URL.Path == "/api/v2"+fcop.PathRevocation && r.ParseForm() == nil {
			fl.revoked = append(fl.revoked, r.PostForm.Get("token"))
		}
		noInfo := fl.noInfo && r.URL.Path == "/api/v2"+fcop.PathUserInfo
		fl.mu.Unlock()
		if noInfo {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		fl.op.ServeHTTP(w, r)
	}))
	t.Cleanup(fl.fc.Close)

	signer, err := fcissuer.New("ES256")
	if err != nil {
		t.Fatal(err)
	}
	issuer := fl.fc.URL + "/api/v2"
	fl.op = fcop.New(fcop.Config{Issuer: issuer, Signer: signer, Clients: []fcop.Client{{
		ID: flowClientID, Secret: flowClientSecret,
		RedirectURIs:           []string{fl.site.URL + "/.passerelle/fc/callback"},
		PostLogoutRedirectURIs: []string{fl.site.URL + "/.passerelle/fc/logout-callback"},
	}}})

	key, err := handoff.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	hs, err := handoff.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	lim, err := ratelimit.New(ratelimit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse(fl.site.URL)
	f := &Front{base: base, BaseURL: fl.site.URL, ServiceName: "Test", AppID: "app", AfterLogout: "/",
		AssertionTTL: caddy.Duration(5 * time.Minute), sessions: memorySessions(t), signer: hs, assertion: true,
		limiter: lim, loginQuota: ratelimit.Quota{Requests: 1000, Per: time.Minute},
		pipe:   &pipeline.Pipeline{Config: pipeline.Config{ClientIPKey: []byte("k"), ClientIPv6Prefix: 64}},
		logger: zap.NewNop(), audit: zap.NewNop(), now: time.Now, cache: &assertions{m: map[string]*handOff{}},
		protect: protectMatcher{paths: caddyhttp.MatchPath{"/espace/*"}}}
	f.rp, err = rp.New(rp.Config{Issuer: issuer, ClientID: flowClientID, ClientSecret: flowClientSecret,
		RedirectURL: f.callbackURL(), PostLogoutRedirectURL: f.logoutReturnURL(),
		Scopes: []string{"openid", "identite_pivot"}, HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	fl.f = f
	return fl
}

// appReached returns how many requests the app received, and the headers
// of the last one.
func (fl *flow) appReached() (int, http.Header) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if len(fl.app) == 0 {
		return 0, nil
	}
	return len(fl.app), fl.app[len(fl.app)-1]
}

// flowBrowser keeps cookies and does not follow redirects: each step is
// checked.
type flowBrowser struct {
	t  *testing.T
	fl *flow
	c  *http.Client
}

func (fl *flow) browser(t *testing.T) *flowBrowser {
	jar, _ := cookiejar.New(nil)
	return &flowBrowser{t: t, fl: fl, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request (a form when form is not nil, header as name, value
// pairs) and returns the answer with its body read.
func (b *flowBrowser) do(method, u string, form url.Values, header ...string) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

var flowFormAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)

// login starts a login from the site, picks the identity at FranceConnect
// and returns the callback's answer.
func (b *flowBrowser) login(returnTo, moment, identity string) *http.Response {
	b.t.Helper()
	return b.loginForm(url.Values{"return_to": {returnTo}, "moment": {moment}}, identity)
}

// loginForm is login with the start form's fields as given.
func (b *flowBrowser) loginForm(form url.Values, identity string) *http.Response {
	b.t.Helper()
	site := b.fl.site.URL
	resp, body := b.do(http.MethodPost, site+"/.passerelle/fc/start", form, "Origin", site)
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("start: %d %s", resp.StatusCode, body)
	}
	resp, body = b.do(http.MethodGet, resp.Header.Get("Location"), nil)
	m := flowFormAction.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		b.t.Fatalf("FranceConnect's identity page: %d %s", resp.StatusCode, body)
	}
	resp, _ = b.do(http.MethodPost, b.fl.fc.URL+m[1], url.Values{"identity": {identity}})
	resp, _ = b.do(http.MethodGet, resp.Header.Get("Location"), nil)
	return resp
}

// TestCas2LogoutEndsFranceConnectSession: once a Cas 2 session is handed
// over, the citizen can still log out of FranceConnect (a shared computer
// must not keep the citizen's FranceConnect session open): the logout
// revokes the access token and goes through FranceConnect's session/end
// with the ID token as id_token_hint, then back to after_logout. What the
// hand-off leaves in the session serves logout only: no second hand-off
// on the return page, no protected path.
func TestCas2LogoutEndsFranceConnectSession(t *testing.T) {
	fl := newFlow(t)
	b := fl.browser(t)
	site := fl.site.URL
	if resp := b.login("/demarche/", handoff.MomentTransmit, "angela"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/demarche/" {
		t.Fatalf("callback: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	b.do(http.MethodGet, site+"/demarche/", nil)
	if _, h := fl.appReached(); h.Get(handoff.HeaderAssertion) == "" {
		t.Fatal("the return to the app carried no hand-off")
	}

	// The session kept for logout hands nothing off and opens nothing.
	resp, _ := b.do(http.MethodGet, site+"/demarche/", nil)
	if _, h := fl.appReached(); resp.StatusCode != http.StatusOK || h.Get(handoff.HeaderAssertion) != "" || h.Get(handoff.HeaderSub) != "" {
		t.Fatalf("second return: %d, the app received a hand-off again", resp.StatusCode)
	}
	before, _ := fl.appReached()
	resp, _ = b.do(http.MethodGet, site+"/espace/", nil)
	if n, _ := fl.appReached(); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/.passerelle/connexion") || n != before {
		t.Fatalf("protected path with the transmitted session: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	resp, _ = b.do(http.MethodPost, site+"/.passerelle/fc/logout", nil, "Origin", site)
	// The sealed account in use is dropped too (a shared computer: the
	// next login is not reconciled with this user's account).
	if !slices.ContainsFunc(resp.Cookies(), func(c *http.Cookie) bool { return c.Name == accountCookieName && c.MaxAge < 0 }) {
		t.Errorf("logout kept the account cookie: %v", resp.Header.Values("Set-Cookie"))
	}
	end, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusSeeOther || end.Host != strings.TrimPrefix(fl.fc.URL, "http://") ||
		end.Path != "/api/v2"+fcop.PathEndSession || end.Query().Get("id_token_hint") == "" {
		t.Fatalf("logout after the hand-off went to %q (%d), not to FranceConnect's session/end", resp.Header.Get("Location"), resp.StatusCode)
	}
	fl.mu.Lock()
	revoked := append([]string(nil), fl.revoked...)
	fl.mu.Unlock()
	if len(revoked) != 1 || revoked[0] == "" {
		t.Fatalf("revocations asked: %d", len(revoked))
	}
	if _, active := fl.op.Introspect(revoked[0]); active {
		t.Fatal("the access token is still active")
	}
	resp, _ = b.do(http.MethodGet, end.String(), nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("FranceConnect refused the logout: %d", resp.StatusCode)
	}
	resp, _ = b.do(http.MethodGet, resp.Header.Get("Location"), nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("logout return: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Logged out: a second logout finds no session.
	if resp, _ = b.do(http.MethodPost, site+"/.passerelle/fc/logout", nil, "Origin", site); resp.Header.Get("Location") != "/" {
		t.Fatalf("second logout went to %q", resp.Header.Get("Location"))
	}
}

// TestCas2UnreadableAccountSaysSo: when the app's page states the account
// in use with a header the front cannot read (malformed, or twice), the
// reconciliation handed off says so (account_header_invalid), as it does
// when the page gave none, instead of comparing an empty account and
// leaving the app to guess why every field is absent. A readable header is
// compared.
func TestCas2UnreadableAccountSaysSo(t *testing.T) {
	for _, tc := range []struct {
		name    string
		account []string
		reason  string
	}{
		{"readable", []string{"account_ref=42&family_name=DUBOIS&given_name=Angela&birthdate=1962-08-24"}, ""},
		{"malformed", []string{"family_name=%ZZ"}, reconcile.ReasonAccountInvalid},
		{"twice", []string{"family_name=DUBOIS", "family_name=DURAND"}, reconcile.ReasonAccountInvalid},
		{"none", nil, reconcile.ReasonAccountInvalid},
	} {
		fl := newFlow(t)
		fl.account = tc.account
		b := fl.browser(t)
		b.do(http.MethodGet, fl.site.URL+"/demarche/formulaire", nil) // the page with the button
		fl.mu.Lock()
		fl.account = nil
		fl.mu.Unlock()
		_, c := handedOff(t, b, loginAt("/demarche/", handoff.MomentTransmit), "/demarche/")
		if c.Reconciliation == nil {
			t.Fatalf("%s: no reconciliation handed off", tc.name)
		}
		if got := c.Reconciliation.Reason; got != tc.reason {
			t.Errorf("%s: reconciliation reason %q, want %q", tc.name, got, tc.reason)
		}
		if tc.reason == "" && (c.Reconciliation.AccountRef != "42" || c.Reconciliation.FamilyName.Result != reconcile.Exact) {
			t.Errorf("%s: the account was not compared: %+v", tc.name, c.Reconciliation)
		}
	}
}
