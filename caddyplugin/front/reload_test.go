package front

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/handoff"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcissuer"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcop"
)

// TestSessionsSurviveReload: a front without Redis keeps its sessions and
// pending logins in process. A configuration reload (the same
// configuration, or another with the same front) must neither log the
// citizens out nor fail the logins under way at FranceConnect: a citizen
// logged in before the reload still reaches the protected area, and one
// who was at FranceConnect during the reload completes the login.
func TestSessionsSurviveReload(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Had-Assertion", strconv.FormatBool(r.Header.Get(handoff.HeaderAssertion) != ""))
		_, _ = io.WriteString(w, "app page")
	}))
	defer app.Close()
	var op *fcop.OP
	fc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { op.ServeHTTP(w, r) }))
	defer fc.Close()
	site := "http://127.0.0.1:" + strconv.Itoa(freeTCPPort(t))
	signer, err := fcissuer.New("ES256")
	if err != nil {
		t.Fatal(err)
	}
	op = fcop.New(fcop.Config{Issuer: fc.URL + "/api/v2", Signer: signer, Clients: []fcop.Client{{
		ID: flowClientID, Secret: flowClientSecret,
		RedirectURIs:           []string{site + "/.passerelle/fc/callback"},
		PostLogoutRedirectURIs: []string{site + "/.passerelle/fc/logout-callback"},
	}}})
	hab := filepath.Join(t.TempDir(), "habilitations.yaml")
	if err := os.WriteFile(hab, []byte("habilitations:\n  - id: h\n    label: Mairie\n    siret: \"13002526500013\"\n"+
		"    modalities: [france_connect]\n    france_connect_client_ids: ["+flowClientID+"]\n    scopes: [cnaf_quotient_familial]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(`{
	admin off
	auto_https off
	passerelle {
		mode sandbox
		franceconnect {
			issuer `+fc.URL+`/api/v2
			client_id fd-client
			client_secret fd-secret
		}
		habilitations `+hab+`
	}
}
`+site+` {
	passerelle_front {
		base_url `+site+`
		secret front-secret-0123456789abcdef0123456789
		franceconnect {
			issuer `+fc.URL+`/api/v2
			client_id `+flowClientID+`
			client_secret `+flowClientSecret+`
			scopes openid identite_pivot
		}
		protect /espace/*
	}
	reverse_proxy `+strings.TrimPrefix(app.URL, "http://")+`
}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })

	browser := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	do := func(c *http.Client, method, u string, form url.Values, header ...string) (*http.Response, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, u, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	// toCallback starts a login and picks the identity at FranceConnect;
	// it returns the callback URL FranceConnect sends the browser to.
	toCallback := func(c *http.Client) string {
		t.Helper()
		resp, body := do(c, http.MethodPost, site+"/.passerelle/fc/start", url.Values{"return_to": {"/espace/"}}, "Origin", site)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("start: %d %s", resp.StatusCode, body)
		}
		resp, body = do(c, http.MethodGet, resp.Header.Get("Location"), nil)
		m := flowFormAction.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("FranceConnect's identity page: %d %s", resp.StatusCode, body)
		}
		resp, _ = do(c, http.MethodPost, fc.URL+m[1], url.Values{"identity": {"angela"}})
		return resp.Header.Get("Location")
	}
	callback := func(c *http.Client, u string) {
		t.Helper()
		if resp, body := do(c, http.MethodGet, u, nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/espace/" {
			t.Fatalf("callback: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
	}
	inArea := func(c *http.Client, who string) {
		t.Helper()
		if resp, _ := do(c, http.MethodGet, site+"/espace/", nil); resp.StatusCode != http.StatusOK || resp.Header.Get("X-Had-Assertion") != "true" {
			t.Fatalf("%s: the protected area answered %d (Location %q)", who, resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	loggedIn, atFC := browser(), browser()
	callback(loggedIn, toCallback(loggedIn))
	inArea(loggedIn, "before the reload")
	pending := toCallback(atFC)

	if err := caddy.Load(cfg, true); err != nil {
		t.Fatal(err)
	}
	inArea(loggedIn, "logged in before the reload")
	callback(atFC, pending)
	inArea(atFC, "at FranceConnect during the reload")
}
