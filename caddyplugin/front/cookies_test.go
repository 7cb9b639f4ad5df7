package front

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/session"
	"github.com/passerelle-gw/passerelle/caddyplugin/pipeline"
)

// TestOwnCookiesNeverReachTheApp: the session ticket, the sealed account
// and login bindings, in both spellings, are cut from the request the app
// receives; the app's own cookies stay byte for byte.
func TestOwnCookiesNeverReachTheApp(t *testing.T) {
	cases := []struct {
		in, want []string
	}{
		{[]string{"passerelle=TICKET-canary; PHPSESSID=abc"}, []string{"PHPSESSID=abc"}},
		{[]string{`JSESSIONID="q;uoted"; __Host-passerelle=TICKET-canary`}, []string{`JSESSIONID="q; uoted"`}},
		{[]string{"lang=fr", "__Host-passerelle-account=SEALED-canary", "theme=dark; passerelle-login-0a1b2c3d4e5f6a7b=BINDING-canary"}, []string{"lang=fr", "theme=dark"}},
		{[]string{"__Secure-passerelle-login-0a1b2c3d4e5f6a7b=BINDING-canary"}, nil},
		{[]string{"__Host-passerelle-login-0a1b2c3d4e5f6a7b=BINDING-canary; lang=fr"}, []string{"lang=fr"}},
		{[]string{"passerelle-account=SEALED-canary;passerelle=TICKET-canary"}, nil},
		{[]string{"app_passerelle=kept; passerelle2=kept"}, []string{"app_passerelle=kept; passerelle2=kept"}},
		{[]string{"a=1;b=2"}, []string{"a=1;b=2"}}, // untouched: nothing of ours
	}
	for _, tc := range cases {
		h := http.Header{"Cookie": slices.Clone(tc.in)}
		stripOwnCookies(h)
		if got := h["Cookie"]; !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(strings.Join(h["Cookie"], ""), "canary") {
			t.Errorf("%q: a cookie of the front reached the app", tc.in)
		}
	}
}

// FuzzStripOwnCookies: whatever the Cookie fields, no pair named as one of
// the front's cookies is left, and every other non-empty pair is kept, in
// order.
func FuzzStripOwnCookies(f *testing.F) {
	f.Add("passerelle=x; a=1", "b=2")
	f.Add(`__Host-passerelle=x;c="d;e"`, "")
	f.Add(" ; ;passerelle-login-ab=1;; z ", "passerelle-account=2")
	f.Fuzz(func(t *testing.T, a, b string) {
		h := http.Header{"Cookie": {a, b}}
		stripOwnCookies(h)
		var want []string
		for _, field := range []string{a, b} {
			for pair := range strings.SplitSeq(field, ";") {
				name, _, _ := strings.Cut(pair, "=")
				if p := strings.TrimSpace(pair); p != "" && !isOwnCookie(strings.TrimSpace(name)) {
					want = append(want, p)
				}
			}
		}
		var got []string
		for _, field := range h["Cookie"] {
			for pair := range strings.SplitSeq(field, ";") {
				name, _, _ := strings.Cut(pair, "=")
				if isOwnCookie(strings.TrimSpace(name)) {
					t.Fatalf("own cookie %q kept from %q %q", name, a, b)
				}
				if p := strings.TrimSpace(pair); p != "" {
					got = append(got, p)
				}
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("from %q %q: kept %q, want %q", a, b, got, want)
		}
	})
}

// TestProxyStripsOwnCookies: the request the app receives through the
// front carries the app's cookies and none of the front's.
func TestProxyStripsOwnCookies(t *testing.T) {
	sessions := memorySessions(t)
	f := &Front{sessions: sessions}
	var got []string
	app := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		got = r.Header["Cookie"]
		return nil
	})
	r := httptest.NewRequest(http.MethodGet, "/page", nil)
	r.Header.Set("Cookie", "passerelle=TICKET-canary; PHPSESSID=abc; passerelle-account=SEALED-canary")
	if err := f.proxy(httptest.NewRecorder(), r, app); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"PHPSESSID=abc"}) {
		t.Fatalf("the app received the cookies %q", got)
	}
}

// TestAppLogoutStripsOwnCookies: the app's logout path receives the app's
// cookies and none of the front's, and the front still ends its session.
func TestAppLogoutStripsOwnCookies(t *testing.T) {
	sessions := memorySessions(t)
	f := &Front{sessions: sessions, AppLogout: "/deconnexion", AfterLogout: "/", cache: &assertions{}}
	var got []string
	app := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		got = r.Header["Cookie"]
		return nil
	})
	r := httptest.NewRequest(http.MethodGet, "/deconnexion", nil)
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set("Sec-Fetch-Mode", "navigate")
	r.Header.Set("Cookie", "passerelle=TICKET-canary; PHPSESSID=abc")
	w := httptest.NewRecorder()
	if err := f.appLogout(w, r, app); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"PHPSESSID=abc"}) {
		t.Fatalf("the app's logout received the cookies %q", got)
	}
	if !strings.Contains(strings.Join(w.Header().Values("Set-Cookie"), ""), "passerelle=;") || w.Code != http.StatusSeeOther {
		t.Fatalf("the front did not end its session: %d %v", w.Code, w.Header())
	}
}

// TestChunkedRequestClosesConnection: a request framed by
// Transfer-Encoding, proxied to the app, closes its connection after the
// answer (SECURITY.md D11, internal/framing).
func TestChunkedRequestClosesConnection(t *testing.T) {
	sessions := memorySessions(t)
	f := &Front{sessions: sessions}
	app := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusOK)
		return nil
	})
	for _, te := range [][]string{nil, {"chunked"}} {
		r := httptest.NewRequest(http.MethodPost, "/page", strings.NewReader("a=b"))
		r.TransferEncoding = te
		w := httptest.NewRecorder()
		if err := f.ServeHTTP(w, r, app); err != nil {
			t.Fatal(err)
		}
		if got, want := w.Header().Get("Connection"), map[bool]string{false: "", true: "close"}[te != nil]; got != want {
			t.Errorf("Transfer-Encoding %v: Connection %q, want %q", te, got, want)
		}
	}
}

// memorySessions is a session manager on an in-process store.
func memorySessions(t *testing.T) *session.Manager {
	t.Helper()
	sessions, err := session.New(session.Config{Store: session.NewMemory(0, nil), Secret: []byte(strings.Repeat("s", 32))})
	if err != nil {
		t.Fatal(err)
	}
	return sessions
}

// TestLoginBindingIsHostOnly: on HTTPS a login's binding cookie is a
// __Host- cookie (Secure, Path=/, no Domain), so that no sibling host can
// plant it: an attacker who started a login, got FranceConnect's code for
// their own identity and set the binding from x.mairie.fr with
// Domain=mairie.fr (a __Secure- cookie may carry one) would otherwise log
// a victim's browser in as themselves (login CSRF by cookie tossing). The
// callback reads the __Host- cookie only.
func TestLoginBindingIsHostOnly(t *testing.T) {
	base, _ := url.Parse("https://demarches.mairie.example")
	f := &Front{base: base, BaseURL: base.String(), ServiceName: "Test", secure: true, sessions: memorySessions(t),
		pipe: &pipeline.Pipeline{}}
	const state, binding = "state-of-the-attackers-login", "binding-of-the-attackers-login"

	w := httptest.NewRecorder()
	f.setCookie(w, f.bindingCookie(state), binding, pendingTTL)
	set := w.Header().Get("Set-Cookie")
	if !strings.HasPrefix(set, "__Host-passerelle-login-") || !strings.Contains(set, "; Path=/;") ||
		!strings.Contains(set, "; Secure") || strings.Contains(set, "Domain") {
		t.Fatalf("binding cookie %q: want __Host-, Path=/, Secure, no Domain", set)
	}

	callback := func(cookie string) *httptest.ResponseRecorder {
		t.Helper()
		if err := f.sessions.PutPending(t.Context(), state, &session.Pending{Nonce: "n", Binding: binding, ReturnTo: "/"}); err != nil {
			t.Fatal(err)
		}
		// error=access_denied: a bound callback ends on the "cancelled"
		// page without reaching FranceConnect (the front has no client).
		r := httptest.NewRequest(http.MethodGet, "/.passerelle/fc/callback?state="+state+"&error=access_denied", nil)
		r.Header.Set("Cookie", cookie)
		w := httptest.NewRecorder()
		if err := f.callback(w, r); err != nil {
			t.Fatal(err)
		}
		return w
	}
	name := f.bindingCookie(state)
	tossed := "__Secure-" + strings.TrimPrefix(name, "__Host-") + "=" + binding // what a sibling host can set
	if w := callback(tossed); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "Ce site a besoin des cookies") {
		t.Fatalf("a binding planted under __Secure-: %d, want the cookies page", w.Code)
	}
	if w := callback(name + "=" + binding); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Connexion annulée") {
		t.Fatalf("the browser's own binding: %d, want the cancelled page", w.Code)
	}
}
