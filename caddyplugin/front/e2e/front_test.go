package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestFront starts the system once and runs every journey and refusal on it.
func TestFront(t *testing.T) {
	e := startEnv(t, envOptions{})
	t.Run("browser", func(t *testing.T) { testBrowser(t, e) })
	t.Run("refusals", func(t *testing.T) { testRefusals(t, e) })
	t.Run("two instances", func(t *testing.T) { testTwoInstances(t, e) })
	t.Run("metrics", func(t *testing.T) { testMetrics(t, e) })
	t.Run("no refused-dataset warning", func(t *testing.T) {
		// The fronts' habilitation serves their in-process datasets: the
		// load-time check (pipeline.Preflight) must not cry wolf.
		if logs := e.logsText(t); strings.Contains(logs, "dataset's calls will be refused") {
			t.Error("a front warned that its datasets will be refused")
		}
	})
	// Last: everything above wrote logs, audit records and Redis values.
	t.Run("no identity in logs, audit or Redis", func(t *testing.T) { testNoIdentityStored(t, e) })
}

// citizen is a browser without JavaScript: a cookie jar, redirects not
// followed, so that each step can be checked.
type citizen struct {
	t testing.TB
	e *env
	c *http.Client
}

func newCitizen(t testing.TB, e *env) *citizen {
	jar, _ := cookiejar.New(nil)
	return &citizen{t: t, e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (c *citizen) do(req *http.Request) page {
	c.t.Helper()
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{resp.StatusCode, resp.Header.Get("Location"), string(b), resp.Header}
}

func (c *citizen) get(u string, header ...string) page {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return c.do(req)
}

func (c *citizen) post(u string, form url.Values, header ...string) page {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return c.do(req)
}

// start posts the login form from the site's page and returns
// FranceConnect's authorization URL.
func (c *citizen) start(returnTo, moment string) string {
	c.t.Helper()
	p := c.post(c.e.base+"/.passerelle/fc/start", url.Values{"return_to": {returnTo}, "moment": {moment}}, "Origin", c.e.base)
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, c.e.fc+"/api/v2/authorize?") {
		c.t.Fatalf("start: %d %s %s", p.status, p.location, tail(p.body, 300))
	}
	return p.location
}

var formAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)

// choose picks an identity ("" cancels) at the sandbox FranceConnect and
// returns the callback URL it sends the browser to.
func (c *citizen) choose(authURL, identity string) string {
	c.t.Helper()
	p := c.get(authURL)
	m := formAction.FindStringSubmatch(p.body)
	if m == nil {
		c.t.Fatalf("identity page: %d %s", p.status, tail(p.body, 300))
	}
	form := url.Values{"identity": {identity}}
	if identity == "" {
		form = url.Values{"cancel": {"1"}}
	}
	p = c.post(c.e.fc+m[1], form)
	if !strings.HasPrefix(p.location, c.e.base+"/.passerelle/fc/callback?") {
		c.t.Fatalf("FranceConnect returned to %q", p.location)
	}
	return p.location
}

// login runs a whole Cas 1 login and returns the callback's answer.
func (c *citizen) login(returnTo, identity string) page {
	c.t.Helper()
	return c.get(c.choose(c.start(returnTo, "login"), identity))
}

func (c *citizen) cookie(name string) string {
	u, _ := url.Parse(c.e.base)
	for _, k := range c.c.Jar.Cookies(u) {
		if k.Name == name {
			return k.Value
		}
	}
	return ""
}

func testRefusals(t *testing.T, e *env) {
	t.Run("state missing, mismatched, replayed", func(t *testing.T) {
		c := newCitizen(t, e)
		cb := c.choose(c.start("/espace-famille/", "login"), "angela")
		u, _ := url.Parse(cb)
		q := u.Query()
		for name, target := range map[string]string{
			"missing":    e.base + "/.passerelle/fc/callback?code=" + url.QueryEscape(q.Get("code")),
			"mismatched": e.base + "/.passerelle/fc/callback?code=" + url.QueryEscape(q.Get("code")) + "&state=" + url.QueryEscape(q.Get("state")+"x"),
			"repeated":   cb + "&state=other",
		} {
			if p := c.get(target); p.status != http.StatusBadRequest || !strings.Contains(p.body, "Votre connexion a expiré") {
				t.Errorf("state %s: %d %s", name, p.status, tail(p.body, 200))
			}
		}
		if p := c.get(cb); p.status != http.StatusSeeOther || p.location != "/espace-famille/" {
			t.Fatalf("the genuine callback: %d %q", p.status, p.location)
		}
		if p := c.get(cb); p.status != http.StatusBadRequest {
			t.Fatalf("replayed callback: %d", p.status)
		}
	})

	t.Run("FranceConnect errors each get their page", func(t *testing.T) {
		for code, want := range map[string]struct {
			status int
			title  string
		}{
			"access_denied":           {http.StatusOK, "Connexion annulée"},
			"invalid_scope":           {http.StatusBadGateway, "Connexion impossible pour le moment"},
			"invalid_request":         {http.StatusBadGateway, "Connexion impossible pour le moment"},
			"server_error":            {http.StatusServiceUnavailable, "FranceConnect est momentanément indisponible"},
			"temporarily_unavailable": {http.StatusServiceUnavailable, "FranceConnect est momentanément indisponible"},
			"E000001":                 {http.StatusBadGateway, "Connexion impossible pour le moment"},
		} {
			c := newCitizen(t, e)
			auth, _ := url.Parse(c.start("/espace-famille/", "login"))
			q := url.Values{"error": {code}, "error_description": {"<script>alert(1)</script>"}, "state": {auth.Query().Get("state")}}
			p := c.get(e.base + "/.passerelle/fc/callback?" + q.Encode())
			if p.status != want.status || !strings.Contains(p.body, "<h1>"+want.title+"</h1>") || strings.Contains(p.body, "alert(1)") {
				t.Errorf("%s: %d %s", code, p.status, tail(p.body, 300))
			}
		}
	})

	t.Run("callback in another browser", func(t *testing.T) {
		victim, attacker := newCitizen(t, e), newCitizen(t, e)
		// The attacker logs in at FranceConnect and sends the callback to
		// the victim (login CSRF): the victim's browser has no binding.
		cb := attacker.choose(attacker.start("/espace-famille/", "login"), "joelle")
		if p := victim.get(cb); p.status != http.StatusBadRequest || !strings.Contains(p.body, "cookies") {
			t.Fatalf("no binding cookie: %d %s", p.status, tail(p.body, 200))
		}
		// With a binding of its own (a login it started), still refused.
		cb = attacker.choose(attacker.start("/espace-famille/", "login"), "joelle")
		victim.start("/espace-famille/", "login")
		if p := victim.get(cb); p.status != http.StatusBadRequest || victim.cookie("passerelle") != "" {
			t.Fatalf("another browser's binding: %d, session %q", p.status, victim.cookie("passerelle"))
		}
	})

	t.Run("two logins in two tabs", func(t *testing.T) {
		c := newCitizen(t, e)
		first := c.start("/espace-famille/", "login")
		second := c.start("/demarche/", "login")
		// The first tab's login completes although the second started after it.
		if p := c.get(c.choose(first, "angela")); p.status != http.StatusSeeOther || p.location != "/espace-famille/" {
			t.Fatalf("first tab: %d %s", p.status, tail(p.body, 200))
		}
		if p := c.get(c.choose(second, "angela")); p.status != http.StatusSeeOther || p.location != "/demarche/" {
			t.Fatalf("second tab: %d %s", p.status, tail(p.body, 200))
		}
	})

	t.Run("return_to stays on the site", func(t *testing.T) {
		c := newCitizen(t, e)
		for _, bad := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example", "\\\\evil.example",
			"/%2F%2Fevil.example", "/%5Cevil.example", "http:evil.example", "/.passerelle/fc/logout"} {
			p := c.get(e.base + "/.passerelle/connexion?return_to=" + url.QueryEscape(bad))
			if !strings.Contains(p.body, `name="return_to" value="/"`) {
				t.Errorf("return_to %q kept: %s", bad, tail(p.body, 400))
			}
		}
		if p := c.login("//evil.example/", "angela"); p.location != "/" {
			t.Fatalf("after login with return_to //evil.example/: %q", p.location)
		}
	})

	t.Run("client headers never reach the app", func(t *testing.T) {
		c := newCitizen(t, e)
		forged := []string{"X-Passerelle-Sub", "forged-sub", "X-Passerelle-Assertion", "forged.jwt.value",
			"X-Passerelle-Data-Quotient-Familial-B64", "Zm9yZ2Vk", "X-PASSERELLE-ACR", "forged-acr", "X-Passerelle-Reconciliation-B64", "Zm9yZ2Vk"}
		// Anonymous, on an unprotected page…
		if p := c.get(e.base+"/demarche/", forged...); strings.Contains(p.body, "forged") || strings.Contains(p.body, "Zm9yZ2Vk") {
			t.Fatalf("forged headers reached the app: %s", p.body)
		}
		// …and in a Cas 1 session, where the front sets its own.
		c.login("/espace-famille/", "angela")
		p := c.get(e.base+"/espace-famille/", forged...)
		if p.status != 200 || strings.Contains(p.body, "forged") || strings.Contains(p.body, "Zm9yZ2Vk") || !strings.Contains(p.body, "X-Passerelle-Sub: ") {
			t.Fatalf("Cas 1 page: %d %s", p.status, p.body)
		}
	})

	t.Run("session fixation", func(t *testing.T) {
		attacker, victim := newCitizen(t, e), newCitizen(t, e)
		attacker.login("/espace-famille/", "joelle")
		planted := attacker.cookie("passerelle")
		if planted == "" {
			t.Fatal("no attacker session")
		}
		u, _ := url.Parse(e.base)
		victim.c.Jar.SetCookies(u, []*http.Cookie{{Name: "passerelle", Value: planted, Path: "/"}})
		victim.login("/espace-famille/", "angela")
		if got := victim.cookie("passerelle"); got == "" || got == planted {
			t.Fatalf("the login kept the planted ticket")
		}
		if p := attacker.get(e.base + "/espace-famille/"); strings.Contains(p.body, "Angela") {
			t.Fatalf("the planted ticket opens the victim's session: %d", p.status)
		}
	})

	t.Run("cas2 handed over once, on one instance or two", func(t *testing.T) {
		defer e.lb.force.Store(0)
		c := newCitizen(t, e)
		c.post(e.base+"/demarche/connexion", url.Values{"account": {"angela"}})
		c.get(e.base + "/demarche/")
		e.lb.force.Store(1)
		c.get(c.choose(c.start("/demarche/", "transmit"), "angela"))
		e.lb.force.Store(0) // round robin: the requests land on both instances
		var mu sync.Mutex
		var wg sync.WaitGroup
		handed := 0
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if p := c.get(e.base + "/demarche/"); strings.Contains(p.body, "Rapprochement") {
					mu.Lock()
					handed++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if handed != 1 {
			t.Fatalf("handed over %d times", handed)
		}
	})

	t.Run("cas2 verdict names the account compared", func(t *testing.T) {
		c := newCitizen(t, e)
		c.post(e.base+"/demarche/connexion", url.Values{"account": {"angela"}})
		c.get(e.base + "/demarche/")
		cb := c.choose(c.start("/demarche/", "transmit"), "angela")
		// The app's login changes while the citizen is at FranceConnect.
		c.post(e.base+"/demarche/connexion", url.Values{"account": {"paul"}})
		c.get(cb)
		p := c.get(e.base + "/demarche/")
		if !strings.Contains(p.body, "comparées avec un autre compte (angela)") || strings.Contains(p.body, "1380") {
			t.Fatalf("the app could not tell: %s", tail(p.body, 600))
		}
	})

	t.Run("account header never reaches the browser", func(t *testing.T) {
		c := newCitizen(t, e)
		c.post(e.base+"/demarche/connexion", url.Values{"account": {"angela"}})
		p := c.get(e.base + "/demarche/")
		if p.header.Get("X-Passerelle-Account") != "" || c.cookie("passerelle-account") == "" ||
			!strings.Contains(p.header.Get("Cache-Control"), "private") || strings.Contains(strings.Join(p.header.Values("Set-Cookie"), ""), "DUBOIS") {
			t.Fatalf("headers %v", p.header)
		}
		// No server state for it: an anonymous flood opens no session.
		if c.cookie("passerelle") != "" {
			t.Fatal("a session was opened to keep the account")
		}
	})

	t.Run("client trailers never reach the app", func(t *testing.T) {
		c := newCitizen(t, e)
		// Straight to an instance: the test's balancer drops request trailers.
		req, _ := http.NewRequest(http.MethodPost, e.gateways[0]+"/espace-famille/", &chunked{data: "x=1"})
		req.Trailer = http.Header{"X-Passerelle-Sub": {"forged-trailer"}, "X-Passerelle-Assertion": {"forged-trailer"}}
		req.ContentLength = -1
		c.login("/espace-famille/", "angela")
		p := c.do(req)
		if p.status != 200 || strings.Contains(p.body, "forged-trailer") || !strings.Contains(p.body, "X-Passerelle-Sub: ") {
			t.Fatalf("%d %s", p.status, tail(p.body, 500))
		}
	})

	t.Run("app logout reaches the app", func(t *testing.T) {
		c := newCitizen(t, e)
		c.post(e.base+"/demarche/connexion", url.Values{"account": {"angela"}})
		c.login("/espace-famille/", "angela")
		p := c.get(e.base+"/deconnexion", "Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "navigate")
		if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, e.fc+"/api/v2/session/end?") {
			t.Fatalf("app logout: %d %s", p.status, p.location)
		}
		if set := strings.Join(p.header.Values("Set-Cookie"), "\n"); !strings.Contains(set, "demo_account=;") {
			t.Fatalf("the app's own logout did not run: %q", set)
		}
		if p := c.get(e.base+"/deconnexion", "Sec-Fetch-Site", "same-origin", "Sec-Fetch-Mode", "no-cors"); p.status != http.StatusOK || !strings.Contains(p.body, `id="logout"`) {
			t.Fatalf("an <img> on the app's pages logged out: %d", p.status)
		}
	})

	t.Run("cookies: attributes, unknown ticket", func(t *testing.T) {
		c := newCitizen(t, e)
		p := c.get(c.choose(c.start("/espace-famille/", "login"), "angela"))
		set := strings.Join(p.header.Values("Set-Cookie"), "\n")
		if !strings.Contains(set, "HttpOnly") || !strings.Contains(set, "SameSite=Lax") {
			t.Fatalf("Set-Cookie %q", set)
		}
		other := newCitizen(t, e)
		if p := other.get(e.base+"/espace-famille/", "Cookie", "passerelle=forged-ticket-from-another-site"); p.status != http.StatusSeeOther {
			t.Fatalf("unknown ticket: %d", p.status)
		}
		if p := other.get(e.base+"/espace-famille/", "Sec-Fetch-Mode", "cors"); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "login_required") {
			t.Fatalf("script without session: %d %s", p.status, p.body)
		}
	})

	t.Run("login and logout cannot be triggered cross-site", func(t *testing.T) {
		c := newCitizen(t, e)
		form := url.Values{"return_to": {"/espace-famille/"}}
		for name, h := range map[string][]string{
			"other origin":      {"Origin", "https://evil.example"},
			"null origin":       {"Origin", "null"},
			"cross-site fetch":  {"Sec-Fetch-Site", "cross-site"},
			"no origin at all":  nil,
			"referer elsewhere": {"Referer", "https://evil.example/page"},
		} {
			if p := c.post(e.base+"/.passerelle/fc/start", form, h...); p.status != http.StatusForbidden {
				t.Errorf("start, %s: %d %s", name, p.status, p.location)
			}
		}
		c.login("/espace-famille/", "angela")
		if p := c.post(e.base+"/.passerelle/fc/logout", nil, "Origin", "https://evil.example"); p.status != http.StatusForbidden {
			t.Fatalf("cross-site logout: %d", p.status)
		}
		if p := c.get(e.base + "/deconnexion"); p.status != http.StatusOK || !strings.Contains(p.body, `id="logout"`) {
			t.Fatalf("app logout link without a same-site navigation: %d", p.status)
		}
		if p := c.get(e.base + "/espace-famille/"); p.status != http.StatusOK {
			t.Fatalf("the session did not survive the refused logouts: %d", p.status)
		}
	})

	t.Run("logout return without a valid state", func(t *testing.T) {
		c := newCitizen(t, e)
		for _, q := range []string{"", "?state=forged", "?state="} {
			if p := c.get(e.base + "/.passerelle/fc/logout-callback" + q); p.status != http.StatusBadRequest || !strings.Contains(p.body, "Déconnexion non reconnue") {
				t.Errorf("logout return %q: %d", q, p.status)
			}
		}
		// A genuine logout's state is accepted once.
		c.login("/espace-famille/", "angela")
		end := c.post(e.base+"/.passerelle/fc/logout", nil, "Origin", e.base)
		back := c.get(end.location)
		if p := c.get(back.location); p.status != http.StatusSeeOther || p.location != "/" {
			t.Fatalf("logout return: %d %q", p.status, p.location)
		}
		if p := c.get(back.location); p.status != http.StatusBadRequest {
			t.Fatalf("replayed logout return: %d", p.status)
		}
	})
}

// testTwoInstances: the login starts on one instance and FranceConnect's
// callback lands on the other (shared Redis, no stickiness).
func testTwoInstances(t *testing.T, e *env) {
	defer e.lb.force.Store(0)
	for _, order := range [][2]int64{{1, 2}, {2, 1}} {
		c := newCitizen(t, e)
		e.lb.force.Store(order[0])
		auth := c.start("/espace-famille/", "login")
		cb := c.choose(auth, "maelle")
		e.lb.force.Store(order[1])
		if p := c.get(cb); p.status != http.StatusSeeOther || p.location != "/espace-famille/" {
			t.Fatalf("callback on instance %d: %d %s", order[1], p.status, tail(p.body, 200))
		}
		e.lb.force.Store(order[0])
		p := c.get(e.base + "/espace-famille/")
		if p.status != 200 || !strings.Contains(p.body, "Maëlle Le Goff") || !strings.Contains(p.body, "précision : month") {
			t.Fatalf("session read on instance %d: %d %s", order[0], p.status, tail(p.body, 300))
		}
	}
}

// testNoIdentityStored scans every log line, audit record and Redis value
// for the test citizens' identities and the secrets.
func testNoIdentityStored(t *testing.T, e *env) {
	canaries := []string{"DUBOIS", "Angela", "1962-08-24", "Le Goff", "Maëlle", "Ma\\u00eblle", "1987-11",
		"Joëlle", `"valeur":1380`, `\"valeur\":1380`, fsSecret, fdSecret, "e2e-front-secret", "e2e-provider-key"}
	logs := e.logsText(t)
	for _, c := range canaries {
		if strings.Contains(logs, c) {
			i := strings.Index(logs, c)
			t.Errorf("the logs show %q: …%s…", c, logs[max(0, i-200):min(len(logs), i+100)])
		}
	}
	if !strings.Contains(logs, `"event":"front_login"`) || !strings.Contains(logs, `"citizen_key":"`) {
		t.Errorf("no front_login audit record with a citizen key")
	}
	rdb := redis.NewClient(&redis.Options{Addr: e.redis})
	defer rdb.Close()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "passerelle*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("redis keys: %v (%d)", err, len(keys))
	}
	for _, k := range keys {
		v, err := rdb.Dump(ctx, k).Result()
		if err != nil {
			continue
		}
		for _, c := range canaries {
			if strings.Contains(k, c) || strings.Contains(v, c) {
				t.Errorf("redis key %s shows %q", k, c)
			}
		}
	}
	var m map[string]any
	_ = json.Unmarshal(nil, &m)
}

// testMetrics: the front's series are there, with closed-list labels.
func testMetrics(t *testing.T, e *env) {
	resp, err := http.Get(e.internal[0] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(b)
	for _, want := range []string{
		`caddy_passerelle_front_logins_total{result="ok"}`,
		`caddy_passerelle_front_logins_total{result="state_invalid"}`,
		`caddy_passerelle_front_datasets_total{status="ok"}`,
		`caddy_passerelle_front_handoffs_total{moment="login"}`,
		`caddy_passerelle_front_logouts_total{result="franceconnect"}`,
		`caddy_passerelle_front_sessions_active{app_id="demo-app"}`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %s", want)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "caddy_passerelle_front") && (strings.Contains(line, "DUBOIS") || strings.Contains(line, "v1\"")) {
			t.Errorf("a label holds personal data: %s", line)
		}
	}
}

// chunked is a request body sent chunked, with trailers.
type chunked struct {
	data string
	done bool
}

func (c *chunked) Read(p []byte) (int, error) {
	if c.done {
		return 0, io.EOF
	}
	c.done = true
	return copy(p, c.data), nil
}
