package front

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/handoff"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/reconcile"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/session"
	"github.com/passerelle-gw/passerelle/caddyplugin/pipeline"
)

// TestConnectionCannotDropHandoffHeaders: a review's attack. The citizen
// names a hand-off header in Connection; Caddy's reverse_proxy (the front's
// next handler) deletes every header the Connection field names, after the
// front has set it, so the citizen would choose which of the front's
// headers the app receives: here the Cas 2 reconciliation (verdict
// no_match, account_ref of the account in use) while the identity and the
// data go through. Through a real Caddy server, the app gets them all.
func TestConnectionCannotDropHandoffHeaders(t *testing.T) {
	var got http.Header
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
	}))
	defer app.Close()

	f := &Front{sessions: memorySessions(t), plain: true, BaseURL: "https://demarches.mairie.example", AppID: "app",
		cache: &assertions{m: map[string]*handOff{}}, now: time.Now, logger: zap.NewNop(), audit: zap.NewNop(),
		pipe: &pipeline.Pipeline{}}
	res := reconcile.Compare(reconcile.Account{Ref: "paul", FamilyName: "MARTIN", GivenNames: []string{"Paul"}, Birthdate: "1980-01-01"},
		reconcile.Citizen{FamilyName: "DUBOIS", GivenName: "Angela", Birthdate: "1962-08-24"})
	newTicket := func() string {
		ticket, err := f.sessions.Create(t.Context(), &session.Session{Subject: "sub-angela", Moment: handoff.MomentTransmit,
			ReturnTo: "/demarche/", Reconciliation: &res,
			Identity: &handoff.Identity{FamilyName: "DUBOIS", GivenNames: []string{"Angela"}, Birthdate: "1962-08-24"},
			Datasets: map[string]handoff.Dataset{"quotient_familial": {Status: "ok", Data: json.RawMessage(`{"valeur":312}`)}}})
		if err != nil {
			t.Fatal(err)
		}
		return ticket
	}

	port := serveFront(t, f, app.Listener.Addr().String())

	client := &http.Client{Timeout: 10 * time.Second}
	for _, conn := range []string{"keep-alive", "keep-alive, X-Passerelle-Reconciliation-B64", "X-Passerelle-Data-Quotient-Familial-B64, x-passerelle-sub"} {
		got = nil
		ticket := newTicket()
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/demarche/", port), nil)
		req.AddCookie(&http.Cookie{Name: f.cookieName(), Value: ticket})
		req.Header.Set("Connection", conn)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got == nil {
			t.Fatalf("the app was not reached: %d", resp.StatusCode)
		}
		if got.Get(handoff.HeaderSub) == "" || got.Get(handoff.DataHeader("quotient_familial")) == "" || got.Get(handoff.HeaderReconciliation) == "" {
			t.Fatalf("Connection: %s: the app received Sub %q, data %q, reconciliation %q", conn, got.Get(handoff.HeaderSub),
				got.Get(handoff.DataHeader("quotient_familial")), got.Get(handoff.HeaderReconciliation))
		}
	}
}

// serveFront runs f in a real Caddy server, before reverse_proxy to the app
// at appAddr, until the test ends, and returns the server's port.
func serveFront(t *testing.T, f *Front, appAddr string) int {
	t.Helper()
	hopByHopFront = f
	port := freeTCPPort(t)
	cfg := fmt.Sprintf(`{"admin":{"disabled":true,"config":{"persist":false}},"logging":{"logs":{"default":{"level":"ERROR"}}},"apps":{"http":{"servers":{"s":{"listen":["127.0.0.1:%d"],
		"automatic_https":{"disable":true},
		"routes":[{"handle":[{"handler":"hop_by_hop_front"},{"handler":"reverse_proxy","upstreams":[{"dial":%q}]}]}]}}}}}`,
		port, appAddr)
	if err := caddy.Load([]byte(cfg), true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	return port
}

var hopByHopFront *Front

// hopByHopFrontModule runs hopByHopFront inside a real Caddy server.
type hopByHopFrontModule struct{}

func (hopByHopFrontModule) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.hop_by_hop_front", New: func() caddy.Module { return new(hopByHopFrontModule) }}
}

func (hopByHopFrontModule) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return hopByHopFront.ServeHTTP(w, r, next)
}

func init() { caddy.RegisterModule(hopByHopFrontModule{}) }

func freeTCPPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
