package front

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/handoff"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/reconcile"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/session"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/ratelimit"
	"github.com/passerelle-gw/passerelle/caddyplugin/pipeline"
	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

func TestSameOrigin(t *testing.T) {
	base, _ := url.Parse("https://demarches.mairie.example")
	f := &Front{base: base}
	for _, tc := range []struct {
		header []string
		want   bool
	}{
		{[]string{"Origin", "https://demarches.mairie.example"}, true},
		{[]string{"Origin", "https://evil.example"}, false},
		{[]string{"Origin", "http://demarches.mairie.example"}, false}, // scheme differs
		{[]string{"Origin", "null"}, false},
		{[]string{"Sec-Fetch-Site", "same-origin"}, true},
		{[]string{"Sec-Fetch-Site", "same-site"}, false},
		{[]string{"Referer", "https://demarches.mairie.example/demarche/"}, true},
		{[]string{"Referer", "https://demarches.mairie.example.evil.example/"}, false},
		{nil, false},
		// A page of the site under Referrer-Policy: no-referrer posts its
		// forms with Origin: null (Fetch, "append a request Origin
		// header"); Fetch Metadata still tells where the request comes from.
		{[]string{"Origin", "null", "Sec-Fetch-Site", "same-origin"}, true},
		{[]string{"Origin", "null", "Sec-Fetch-Site", "cross-site"}, false},
		{[]string{"Origin", "null", "Referer", "https://demarches.mairie.example/demarche/"}, false},
		{[]string{"Origin", "https://evil.example", "Sec-Fetch-Site", "same-origin"}, false},
	} {
		r := httptest.NewRequest(http.MethodPost, "/.passerelle/fc/start", nil)
		for i := 0; i+1 < len(tc.header); i += 2 {
			r.Header.Set(tc.header[i], tc.header[i+1])
		}
		if got := f.sameOrigin(r); got != tc.want {
			t.Errorf("%v: %v", tc.header, got)
		}
	}
}

func TestWantsJSON(t *testing.T) {
	for h, want := range map[[2]string]bool{
		{"Sec-Fetch-Mode", "navigate"}:          false,
		{"Sec-Fetch-Mode", "cors"}:              true,
		{"X-Requested-With", "XMLHttpRequest"}:  true,
		{"Accept", "application/json"}:          true,
		{"Accept", "text/html,application/xml"}: false,
	} {
		r := httptest.NewRequest(http.MethodGet, "/espace-famille/", nil)
		r.Header.Set(h[0], h[1])
		if got := wantsJSON(r); got != want {
			t.Errorf("%v: %v", h, got)
		}
	}
}

func TestParseAnswer(t *testing.T) {
	ok := parseAnswer(200, []byte(`{"data":{"quotient_familial":{"valeur":612}},"links":{},"meta":{}}`))
	if ok.Status != handoff.StatusOK || string(ok.Data) != `{"quotient_familial":{"valeur":612}}` {
		t.Fatalf("%+v", ok)
	}
	bare := parseAnswer(200, []byte(` {"quotientFamilial":612} `))
	if bare.Status != handoff.StatusOK || string(bare.Data) != `{"quotientFamilial":612}` {
		t.Fatalf("v2 answer: %+v", bare)
	}
	e := parseAnswer(404, []byte(`{"errors":[{"code":"37003","title":"Dossier allocataire absent","detail":"…"}]}`))
	if e.Status != handoff.StatusError || e.Error.Code != "37003" {
		t.Fatalf("%+v", e)
	}
	for _, broken := range []struct {
		status int
		body   string
	}{{0, ""}, {200, "<html>"}, {502, "Bad Gateway"}, {500, `{"errors":[]}`}} {
		d := parseAnswer(broken.status, []byte(broken.body))
		if d.Status != handoff.StatusError || d.Error == nil || d.Error.Code != "00503" || strings.Contains(d.Error.Detail, broken.body) && broken.body != "" {
			t.Errorf("%d %q: %+v", broken.status, broken.body, d)
		}
	}
}

// TestCaddyfile parses the README's block and a provider subroute.
func TestCaddyfile(t *testing.T) {
	d := caddyfile.NewTestDispenser(`passerelle_front {
		base_url https://demarches.mairie.example
		service_name "Portail famille"
		secret {file./run/credentials/passerelle/front-secret}
		assertion_key {file./run/credentials/passerelle/assertion.pem}
		franceconnect {
			issuer https://oidc.franceconnect.gouv.fr/api/v2
			client_id abc
			client_secret {env.FC_SECRET}
			scopes openid identite_pivot cnaf_quotient_familial
			prompt login consent
		}
		protect /espace-famille/* /factures/*
		dataset quotient_familial /v3/dss/quotient_familial/france_connect {
			recipient 13002526500013
			label "votre quotient familial"
		}
		session_idle 20m
		strip_header Remote-User
		login_rate 5/m
		max_handoff_bytes 16KiB
	}`)
	h, err := parseFront(httpcaddyfile.Helper{Dispenser: d})
	if err != nil {
		t.Fatal(err)
	}
	f := h.(*Front)
	b, _ := json.Marshal(f)
	if f.FranceConnect.Prompt != "login consent" || len(f.Protect) != 2 || len(f.Datasets) != 1 || f.Datasets[0].Recipient != "13002526500013" ||
		f.LoginRate != "5/m" || f.StripHeaders[0] != "Remote-User" || time.Duration(f.SessionIdle) != 20*time.Minute || f.MaxHandoffBytes != 16<<10 {
		t.Fatalf("%s", b)
	}
	for _, bad := range []string{
		"passerelle_front {\n unknown x\n}",
		"passerelle_front {\n franceconnect {\n issuer a b\n }\n}",
		"passerelle_front {\n dataset qf\n}",
		"passerelle_front {\n dataset qf /r {\n nope 1\n }\n}",
		"passerelle_front {\n session_idle forever\n}",
		"passerelle_front extra",
		"passerelle_front {\n max_handoff_bytes 0\n}",
		"passerelle_front {\n max_handoff_bytes lots\n}",
		"passerelle_front {\n max_handoff_bytes 2MiB\n}",
	} {
		if _, err := parseFront(httpcaddyfile.Helper{Dispenser: caddyfile.NewTestDispenser(bad)}); err == nil {
			t.Errorf("accepted: %s", bad)
		}
	}
}

func TestParseECKey(t *testing.T) {
	k, err := handoff.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	j, _ := json.Marshal(k)
	if _, err := parseECKey(j); err != nil {
		t.Fatalf("JWK: %v", err)
	}
	for _, bad := range []string{"", "not a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"} {
		if _, err := parseECKey([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// TestLoginStartRateLimited: login starts count per client network (an
// IPv6 /64 is one client); beyond the quota the citizen gets the French
// "too many" page, FranceConnect is not asked.
func TestLoginStartRateLimited(t *testing.T) {
	lim, err := ratelimit.New(ratelimit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse("http://127.0.0.1:8082")
	f := &Front{base: base, BaseURL: base.String(), ServiceName: "Test", limiter: lim,
		loginQuota: ratelimit.Quota{Requests: 2, Per: time.Minute},
		pipe:       &pipeline.Pipeline{Config: pipeline.Config{ClientIPKey: []byte("k"), ClientIPv6Prefix: 64}}}
	start := func(addr string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/.passerelle/fc/start", nil)
		r.RemoteAddr = addr
		r.Header.Set("Origin", "http://127.0.0.1:8082")
		w := httptest.NewRecorder()
		if !f.allowLogin(r) {
			f.writePage(w, "too_many", pageData{})
		}
		return w
	}
	for i := range 2 {
		if w := start("[2001:db8:1:2::1]:5000"); w.Code != http.StatusOK {
			t.Fatalf("start %d refused", i)
		}
	}
	if w := start("[2001:db8:1:2::99]:5000"); w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), "Trop de tentatives") {
		t.Fatalf("third start in the same /64: %d", w.Code)
	}
	if w := start("[2001:db8:1:3::1]:5000"); w.Code != http.StatusOK {
		t.Fatalf("another network: %d", w.Code)
	}
}

// TestI11_FrontRefusesWhileAuditRefuses (SECURITY.md I11, G09): while the
// audit trail cannot take records, a login start and a FranceConnect
// callback get the French "suspended" page (503): FranceConnect is not
// asked (the front has no client here: reaching it would panic) and the
// pending state is not consumed.
func TestI11_FrontRefusesWhileAuditRefuses(t *testing.T) {
	base, _ := url.Parse("http://127.0.0.1:8082")
	f := &Front{base: base, BaseURL: base.String(), ServiceName: "Test", sessions: memorySessions(t),
		pipe: &pipeline.Pipeline{Config: pipeline.Config{AuditRefusing: func() bool { return true }}}}
	if err := f.sessions.PutPending(t.Context(), "state-1", &session.Pending{Nonce: "n", Binding: "b", ReturnTo: "/"}); err != nil {
		t.Fatal(err)
	}
	start := httptest.NewRequest(http.MethodPost, "/.passerelle/fc/start", nil)
	start.Header.Set("Origin", "http://127.0.0.1:8082")
	w := httptest.NewRecorder()
	if err := f.start(w, start); err != nil || w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "momentanément indisponible") {
		t.Fatalf("login start: %d %v", w.Code, err)
	}
	w = httptest.NewRecorder()
	if err := f.callback(w, httptest.NewRequest(http.MethodGet, "/.passerelle/fc/callback?state=state-1&code=c", nil)); err != nil || w.Code != http.StatusServiceUnavailable {
		t.Fatalf("callback: %d %v", w.Code, err)
	}
	if p, err := f.sessions.TakePending(t.Context(), "state-1"); err != nil || p.Nonce != "n" {
		t.Fatalf("the pending login was consumed: %v", err)
	}

	// The hand-offs: a Cas 1 session on a protected path, the Cas 2
	// return. The app is not reached, the Cas 2 data stays for later.
	f.protect.paths = caddyhttp.MatchPath{"/espace/*"}
	app := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		t.Fatal("the app was reached")
		return nil
	})
	identity := &handoff.Identity{FamilyName: "DUPONT", GivenName: "Paul"}
	cas1, _ := f.sessions.Create(t.Context(), &session.Session{Subject: "sub-1", Moment: handoff.MomentLogin, Identity: identity})
	cas2, _ := f.sessions.Create(t.Context(), &session.Session{Subject: "sub-2", Moment: handoff.MomentTransmit, ReturnTo: "/demarche", Identity: identity})
	for ticket, target := range map[string]string{cas1: "/espace/", cas2: "/demarche"} {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		r.AddCookie(&http.Cookie{Name: f.cookieName(), Value: ticket})
		w := httptest.NewRecorder()
		if err := f.proxy(w, r, app); err != nil || w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "Service momentanément indisponible") {
			t.Fatalf("hand-off on %s: %d %v", target, w.Code, err)
		}
	}
	if s, err := f.sessions.Get(t.Context(), cas2); err != nil || s.Identity == nil {
		t.Fatalf("the Cas 2 data was consumed: %v", err)
	}
}

// TestF09_FrontLoginShedsUnderMemoryPressure (SECURITY.md F09, I16): near
// the memory limit no FranceConnect login is begun: the "suspended" page,
// FranceConnect not asked (the front has no client here).
func TestF09_FrontLoginShedsUnderMemoryPressure(t *testing.T) {
	base, _ := url.Parse("http://127.0.0.1:8082")
	f := &Front{base: base, BaseURL: base.String(), ServiceName: "Test", sessions: memorySessions(t),
		pipe: &pipeline.Pipeline{Config: pipeline.Config{MemoryPressure: func() bool { return true }}}}
	r := httptest.NewRequest(http.MethodPost, "/.passerelle/fc/start", nil)
	r.Header.Set("Origin", "http://127.0.0.1:8082")
	w := httptest.NewRecorder()
	if err := f.start(w, r); err != nil || w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "Service momentanément indisponible") {
		t.Fatalf("login start under memory pressure: %d %v", w.Code, err)
	}
}

// TestAccountHeaderNeverSent: the app's account header is taken off its
// answer, informational answers included (103 Early Hints, 100 Continue,
// which send the header map as it is), and comes back sealed in a cookie.
func TestAccountHeaderNeverSent(t *testing.T) {
	sessions := memorySessions(t)
	f := &Front{sessions: sessions}
	app := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set(reconcile.AccountHeader, "family_name=DUBOIS&given_name=Angela&birthdate=1962-08-24")
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("page"))
		return nil
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = app.ServeHTTP(&accountCapture{ResponseWriter: w, f: f}, r)
	}))
	defer srv.Close()
	var early []http.Header
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			early = append(early, http.Header(h))
			return nil
		},
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(early) != 1 || early[0].Get("Link") == "" {
		t.Fatalf("the 103 was not seen: %v", early)
	}
	for _, h := range append(early, resp.Header) {
		if h.Get(reconcile.AccountHeader) != "" || strings.Contains(strings.Join(h.Values("Set-Cookie"), ""), "DUBOIS") {
			t.Fatalf("the account reached the client: %v", h)
		}
	}
	var sealed string
	for _, c := range resp.Cookies() {
		if c.Name == "passerelle-account" {
			sealed = c.Value
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge != int(accountTTL.Seconds()) {
				t.Fatalf("account cookie attributes: %+v", c)
			}
		}
	}
	var acct reconcile.Account
	if err := sessions.OpenValue("account", sealed, &acct); err != nil || acct.FamilyName != "DUBOIS" {
		t.Fatalf("account cookie: %v %+v", err, acct)
	}
	if err := sessions.OpenValue("other-purpose", sealed, &acct); err == nil {
		t.Fatal("a value sealed for the account opens for another purpose")
	}
}

// TestFrontWarnsWhenHabilitationsRefuseItsDatasets: at provisioning, the
// front names each in-process dataset whose calls are refused whatever the
// token (pipeline.Preflight), with the audit reason the request path gives
// them: nothing paired with its client id, a revoked habilitation (before
// its certificates), one without the france_connect modality, another
// SIRET than the dataset's recipient, none of the route's scopes, one
// bound to client certificates, which the front's in-process calls do not
// present; or the front's own FranceConnect scopes without the identity
// pivot or the route's scopes. A habilitation that serves the route, by a
// scope's name or its alias, gets no warning; nor does a remote dataset.
func TestFrontWarnsWhenHabilitationsRefuseItsDatasets(t *testing.T) {
	cat, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
	qf, _ := cat.Lookup("/v3/dss/quotient_familial/france_connect")
	eaje, _ := cat.Lookup("/v3/dss/participation_familiale_eaje/france_connect")
	if qf == nil || eaje == nil {
		t.Fatal("routes missing")
	}
	const siret, otherSIRET = "13002526500013", "21930048000015"
	entry := func(id, modality, clientID, scope, extra string) string {
		return fmt.Sprintf(`
  - id: "%s"
    label: Mairie
    siret: "%s"
    modalities: [%s]
    france_connect_client_ids: [%s]
    scopes: [%s]
%s`, id, siret, modality, clientID, scope, extra)
	}
	cert := `    client_certificates: ["` + strings.Repeat("ab", 32) + `"]` + "\n"
	reg, err := habilitation.Parse([]byte("habilitations:" +
		entry("h-ok", "france_connect", "fs-ok", "cnaf_quotient_familial, eaje_enfants", "") +
		entry("h-revoked", "france_connect", "fs-revoked", "cnaf_quotient_familial", "    revoked: true\n"+cert) +
		entry("h-identite", "identite", "fs-identite", "cnaf_quotient_familial", "") +
		entry("h-scopes", "france_connect", "fs-scopes", "cnous_statut_boursier", "") +
		entry("h-cert", "france_connect", "fs-cert", "cnaf_quotient_familial", cert)))
	if err != nil {
		t.Fatal(err)
	}
	pipe := &pipeline.Pipeline{Config: pipeline.Config{Registry: func() *habilitation.Registry { return reg }}}
	fcScopes := []string{"openid", "identite_pivot", "cnaf_quotient_familial", "eaje_enfants"}
	for _, tc := range []struct {
		name, clientID, recipient string
		scopes                    []string
		want                      string
	}{
		{"served", "fs-ok", siret, fcScopes, ""},
		{"unpaired", "fs-unpaired", siret, fcScopes, "habilitation_unknown"},
		{"revoked and bound", "fs-revoked", siret, fcScopes, "habilitation_inactive"},
		{"identite only", "fs-identite", siret, fcScopes, "modality_denied"},
		{"other recipient", "fs-ok", otherSIRET, fcScopes, "recipient_mismatch"},
		{"other scopes", "fs-scopes", siret, fcScopes, "scope_denied"},
		{"bound to certificates", "fs-cert", siret, fcScopes, "client_certificate_mismatch"},
		{"front without the pivot", "fs-ok", siret, []string{"openid", "cnaf_quotient_familial", "eaje_enfants"}, "scope_denied"},
		{"front without the route's scopes", "fs-ok", siret, []string{"openid", "identite_pivot", "cnaf_enfants"}, "scope_denied"},
	} {
		core, logs := observer.New(zap.WarnLevel)
		f := &Front{AppID: "app", pipe: pipe, logger: zap.New(core), now: time.Now,
			Datasets: []Dataset{
				{Name: "qf", Route: qf.Path, Recipient: tc.recipient, endpoint: qf},
				{Name: "eaje", Route: eaje.Path, Recipient: tc.recipient, endpoint: eaje}, // the habilitation's alias
				{Name: "remote_qf", Route: qf.Path, Recipient: otherSIRET, Remote: "https://particulier.api.gouv.fr"},
			}}
		f.FranceConnect.ClientID, f.FranceConnect.Scopes = tc.clientID, tc.scopes
		f.warnRefusedDatasets()
		got := logs.All()
		if tc.want == "" {
			for _, e := range got {
				t.Errorf("%s: warned %v", tc.name, e.ContextMap())
			}
			continue
		}
		if len(got) != 2 {
			t.Fatalf("%s: %d warnings, want 2 (the in-process datasets)", tc.name, len(got))
		}
		for i, d := range f.Datasets[:2] {
			if m := got[i].ContextMap(); m["reason"] != tc.want || m["dataset"] != d.Name || m["route"] != d.Route {
				t.Errorf("%s: %v, want reason %s", tc.name, m, tc.want)
			}
		}
	}
}
