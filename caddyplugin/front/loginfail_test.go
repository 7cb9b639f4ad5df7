package front

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/handoff"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/session"
)

// TestLoginWithoutSessionRevokesItsToken: a login that ends without a
// session (userinfo refused) asks FranceConnect to revoke its access
// token: no token the citizen got no session for stays usable for the
// rest of its 60 s.
func TestLoginWithoutSessionRevokesItsToken(t *testing.T) {
	fl := newFlow(t)
	fl.noInfo = true
	b := fl.browser(t)
	if resp := b.login("/espace/", handoff.MomentLogin, "angela"); resp.StatusCode == http.StatusSeeOther {
		t.Fatal("a login whose userinfo failed opened a session")
	}
	fl.mu.Lock()
	revoked := append([]string(nil), fl.revoked...)
	fl.mu.Unlock()
	if len(revoked) != 1 || revoked[0] == "" {
		t.Fatalf("%d revocations asked, want the login's access token", len(revoked))
	}
	if _, active := fl.op.Introspect(revoked[0]); active {
		t.Fatal("the access token is still active")
	}
}

// failingTakes is a session store whose Take fails while broken is set
// (Redis down between the start of a login and its callback).
type failingTakes struct {
	session.Store
	broken atomic.Bool
}

func (s *failingTakes) Take(ctx context.Context, key string) ([]byte, bool, error) {
	if s.broken.Load() {
		return nil, false, errors.New("redis: connection refused")
	}
	return s.Store.Take(ctx, key)
}

// TestCallbackStoreFailureIsUnavailable: when the session store fails at
// the callback, the citizen is told the service is unavailable, not that
// the link expired, and the metric says session_store, not state_invalid
// (which would point at a replayed or forged callback).
func TestCallbackStoreFailureIsUnavailable(t *testing.T) {
	fl := newFlow(t)
	store := &failingTakes{Store: session.NewMemory(0, nil)}
	sessions, err := session.New(session.Config{Store: store, Secret: []byte(strings.Repeat("s", 32))})
	if err != nil {
		t.Fatal(err)
	}
	fl.f.sessions = sessions
	b := fl.browser(t)
	site := fl.site.URL
	resp, body := b.do(http.MethodPost, site+"/.passerelle/fc/start", loginAt("/espace/", handoff.MomentLogin), "Origin", site)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start: %d %s", resp.StatusCode, body)
	}
	resp, body = b.do(http.MethodGet, resp.Header.Get("Location"), nil)
	m := flowFormAction.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("FranceConnect's identity page: %d", resp.StatusCode)
	}
	resp, _ = b.do(http.MethodPost, fl.fc.URL+m[1], map[string][]string{"identity": {"angela"}})
	store.broken.Store(true)
	resp, body = b.do(http.MethodGet, resp.Header.Get("Location"), nil)
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(body, "expiré") {
		t.Fatalf("callback with the store down: %d\n%s", resp.StatusCode, body)
	}
}
