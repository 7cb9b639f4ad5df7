package front

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/handoff"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/reconcile"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/session"
	"github.com/passerelle-gw/passerelle/caddyplugin/pipeline"
)

// req: D10
// TestIdentityPagesNeverCached: an answer to a request that carried a
// hand-off (a Cas 1 protected page, the Cas 2 return) may show the
// citizen's identity: it goes out with Cache-Control: private, no-store
// and without what would let a shared cache keep it (Expires,
// CDN-Cache-Control and its vendors', Surrogate-Control, Edge-Control),
// whatever the app said. Pages without a hand-off keep the app's caching.
func TestIdentityPagesNeverCached(t *testing.T) {
	f := &Front{sessions: memorySessions(t), plain: true, BaseURL: "https://demarches.mairie.example", AppID: "app",
		cache: &assertions{m: map[string]*handOff{}}, now: time.Now, logger: zap.NewNop(), audit: zap.NewNop(),
		pipe: &pipeline.Pipeline{}, protect: protectMatcher{paths: caddyhttp.MatchPath{"/espace/*"}}}
	app := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		h := w.Header()
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("Expires", "Thu, 01 Jan 2099 00:00:00 GMT")
		h.Set("CDN-Cache-Control", "max-age=3600")
		h.Set("Surrogate-Control", "max-age=3600")
		h.Set("Cloudflare-CDN-Cache-Control", "max-age=3600")
		h.Set("Edge-Control", "cache-maxage=3600")
		h.Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
		_, _ = io.WriteString(w, "Bonjour "+r.Header.Get(handoff.HeaderFamilyName))
		return nil
	})
	identity := &handoff.Identity{FamilyName: "DUBOIS", GivenNames: []string{"Angela"}, Birthdate: "1962-08-24"}
	cas1, _ := f.sessions.Create(t.Context(), &session.Session{Subject: "sub-1", Moment: handoff.MomentLogin, Identity: identity})
	cas2, _ := f.sessions.Create(t.Context(), &session.Session{Subject: "sub-2", Moment: handoff.MomentTransmit, ReturnTo: "/demarche/", Identity: identity})
	get := func(target, ticket string) http.Header {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, target, nil)
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		if ticket != "" {
			r.AddCookie(&http.Cookie{Name: f.cookieName(), Value: ticket})
		}
		w := httptest.NewRecorder()
		if err := f.ServeHTTP(w, r, app); err != nil || w.Code != http.StatusOK || !strings.HasPrefix(w.Body.String(), "Bonjour") {
			t.Fatalf("%s: %d %v", target, w.Code, err)
		}
		return w.Result().Header
	}
	for name, h := range map[string]http.Header{"Cas 1 protected page": get("/espace/", cas1), "Cas 2 return": get("/demarche/", cas2)} {
		if got := h.Values("Cache-Control"); len(got) != 1 || got[0] != "private, no-store" {
			t.Errorf("%s: Cache-Control %q", name, got)
		}
		for _, k := range []string{"Expires", "CDN-Cache-Control", "Surrogate-Control", "Cloudflare-CDN-Cache-Control", "Edge-Control"} {
			if v := h.Get(k); v != "" {
				t.Errorf("%s: %s %q", name, k, v)
			}
		}
	}
	if h := get("/accueil", ""); h.Get("Cache-Control") != "public, max-age=3600" || h.Get("Expires") == "" {
		t.Errorf("a page without a hand-off: Cache-Control %q, Expires %q", h.Get("Cache-Control"), h.Get("Expires"))
	}
}

// req: D10
// TestAccountTrailerNeverSent: the app's account header sent as a trailer
// never reaches the browser. Through a real Caddy server, reverse_proxy
// announces the app's trailers (Trailer:) before the body and copies their
// values into the header map after it, when the front's capture has run:
// the name is taken out of the announcement, the value dropped, announced
// by the app or not. The app's other trailers go through.
func TestAccountTrailerNeverSent(t *testing.T) {
	const account = "account_ref=42&family_name=DUBOIS&given_name=Angela&birthdate=1962-08-24"
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prefix := http.TrailerPrefix
		if r.URL.Path == "/announced" {
			w.Header().Set("Trailer", reconcile.AccountHeader+", X-App-Checksum")
			prefix = ""
		}
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "form page")
		_ = http.NewResponseController(w).Flush() // chunked: room for trailers
		w.Header().Set(prefix+reconcile.AccountHeader, account)
		w.Header().Set(prefix+"X-App-Checksum", "c0ffee")
	}))
	defer app.Close()
	f := &Front{sessions: memorySessions(t), BaseURL: "https://demarches.mairie.example", AppID: "app",
		cache: &assertions{m: map[string]*handOff{}}, now: time.Now, logger: zap.NewNop(), audit: zap.NewNop(),
		pipe: &pipeline.Pipeline{}}
	port := serveFront(t, f, app.Listener.Addr().String())

	client := &http.Client{Timeout: 10 * time.Second}
	for _, path := range []string{"/announced", "/undeclared"} {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "form page" {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, body)
		}
		if _, ok := resp.Trailer[reconcile.AccountHeader]; ok || resp.Header.Get(reconcile.AccountHeader) != "" {
			t.Errorf("%s: the account reached the browser: header %q, trailer %q", path,
				resp.Header.Get(reconcile.AccountHeader), resp.Trailer.Get(reconcile.AccountHeader))
		}
		if got := resp.Trailer.Get("X-App-Checksum"); got != "c0ffee" {
			t.Errorf("%s: the app's other trailer: %q", path, got)
		}
	}
}

// TestSweepDropsDueHandOffs: a Cas 1 hand-off (the citizen's identity and
// datasets) leaves memory once due for renewal, whether or not its session
// comes back (it may have ended on another instance).
func TestSweepDropsDueHandOffs(t *testing.T) {
	now := time.Now()
	a := &assertions{m: map[string]*handOff{
		"due":  {header: http.Header{"X-Passerelle-Sub": {"x"}}, renewAt: now},
		"live": {header: http.Header{"X-Passerelle-Sub": {"y"}}, renewAt: now.Add(time.Minute)},
	}}
	a.sweep(now)
	if _, ok := a.m["due"]; ok || a.m["live"] == nil {
		t.Fatalf("after the sweep: %v", a.m)
	}
}
