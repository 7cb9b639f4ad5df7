package front

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/handoff"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/reconcile"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/session"
)

// proxy serves a request for the app: a protected path needs a Cas 1
// session, whose identity and data go with the request; the one return to
// a Cas 2 page carries the hand-off once; the app's account header is
// taken off its answers.
func (f *Front) proxy(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	s, ticket, _ := f.sessionOf(r)
	protected := false
	if f.protect != nil {
		protected, _ = f.protect.MatchWithError(r)
	}
	switch {
	case protected && (s == nil || !s.LoggedIn() || s.Moment != handoff.MomentLogin):
		f.loginRequired(w, r)
		return nil
	case protected:
		f.handOffLogin(r, s, ticket)
	case s != nil && s.Moment == handoff.MomentTransmit && s.ReturnTo != "" && r.Method == http.MethodGet && r.URL.RequestURI() == s.ReturnTo:
		f.handOffTransmit(r, s, ticket)
		// The session is gone: an account header on this answer opens a
		// new one, it never writes the handed-over data back.
		s, ticket = nil, ""
	}
	return next.ServeHTTP(&accountCapture{ResponseWriter: w, f: f, r: r, s: s, ticket: ticket}, r)
}

// loginRequired answers a protected path without a session: the login
// page for a browser navigating, 401 JSON for scripts (fetch,
// XMLHttpRequest), which cannot follow a login.
func (f *Front) loginRequired(w http.ResponseWriter, r *http.Request) {
	login := f.route(routeLogin)
	if ret, ok := SafeReturnTo(r.URL.RequestURI()); ok && r.Method == http.MethodGet {
		login += "?" + url.Values{"return_to": {ret}}.Encode()
	}
	w.Header().Set("Cache-Control", "no-store")
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "login_required", "login": login})
		return
	}
	http.Redirect(w, r, login, http.StatusSeeOther)
}

// wantsJSON tells a script's request from a browser navigation.
func wantsJSON(r *http.Request) bool {
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" {
		return m != "navigate"
	}
	if r.Header.Get("X-Requested-With") == "XMLHttpRequest" {
		return true
	}
	a := r.Header.Get("Accept")
	return strings.Contains(a, "application/json") && !strings.Contains(a, "text/html")
}

// assertions keeps, per session ticket, the signed assertion and the plain
// headers of a Cas 1 session: signed once, reused until a minute before
// the assertion expires. In process only.
type assertions struct {
	mu sync.Mutex
	m  map[string]*handOff
}

type handOff struct {
	header  http.Header // the plain headers and the assertion
	renewAt time.Time
}

// handOffLogin sets the Cas 1 headers on a request of the session.
func (f *Front) handOffLogin(r *http.Request, s *session.Session, ticket string) {
	now := f.now()
	f.cache.mu.Lock()
	h, ok := f.cache.m[ticket]
	f.cache.mu.Unlock()
	if !ok || !now.Before(h.renewAt) {
		h = f.buildHandOff(s, handoff.MomentLogin, now)
		if h == nil {
			return
		}
		// One record per assertion handed to the app (a Cas 1 session
		// hands off on every request; the assertion is renewed every few
		// minutes).
		f.metric(handoffsTotal, handoff.MomentLogin)
		f.auditEvent("front_handoff", s.Subject, handoff.MomentLogin, nil)
		f.cache.mu.Lock()
		if len(f.cache.m) >= 10000 {
			for t, e := range f.cache.m {
				if !now.Before(e.renewAt) {
					delete(f.cache.m, t)
				}
			}
		}
		if len(f.cache.m) < 10000 {
			f.cache.m[ticket] = h
		}
		f.cache.mu.Unlock()
	}
	for name, vals := range h.header {
		r.Header[name] = vals
	}
}

// handOffTransmit sets the Cas 2 headers once, on the return to the app's
// page, then deletes the session: the data is handed over, not kept.
func (f *Front) handOffTransmit(r *http.Request, s *session.Session, ticket string) {
	// The ticket is dropped first: a second request with the same cookie,
	// even on another instance within the session cache's second, finds
	// no session to hand over.
	if err := f.sessions.Delete(r.Context(), ticket); err != nil {
		f.logger.Error("Cas 2 session not deleted: hand-off skipped", zap.String("reason", "session_store"))
		return
	}
	h := f.buildHandOff(s, handoff.MomentTransmit, f.now())
	if h == nil {
		return
	}
	for name, vals := range h.header {
		r.Header[name] = vals
	}
	f.metric(handoffsTotal, handoff.MomentTransmit)
	f.auditEvent("front_handoff", s.Subject, handoff.MomentTransmit, nil)
}

// buildHandOff signs the assertion of a session and renders its headers.
func (f *Front) buildHandOff(s *session.Session, moment string, now time.Time) *handOff {
	if s.Identity == nil {
		return nil
	}
	c := handoff.Claims{
		Issuer: strings.TrimSuffix(f.BaseURL, "/"), Audience: f.AppID, Subject: s.Subject, ACR: s.ACR,
		Moment: moment, Identity: *s.Identity, Datasets: s.Datasets, Reconciliation: s.Reconciliation,
	}
	ttl := time.Duration(f.AssertionTTL)
	h := http.Header{}
	if f.plain {
		handoff.SetHeaders(h, &c)
	}
	if f.assertion {
		tok, err := f.signer.Sign(c, now, ttl)
		if err != nil {
			f.logger.Error("assertion not signed", zap.String("reason", "signing"))
			return nil
		}
		h.Set(handoff.HeaderAssertion, tok)
	}
	return &handOff{header: h, renewAt: now.Add(ttl - min(time.Minute, ttl/2))}
}

// accountCapture takes the app's account header off its answer before the
// browser sees it, and keeps it in the browser's session for a Cas 2
// login (a session is opened to hold it when there is none).
type accountCapture struct {
	http.ResponseWriter
	f      *Front
	r      *http.Request
	s      *session.Session
	ticket string
	done   bool
}

func (a *accountCapture) WriteHeader(code int) {
	a.capture()
	a.ResponseWriter.WriteHeader(code)
}

func (a *accountCapture) Write(b []byte) (int, error) {
	a.capture()
	return a.ResponseWriter.Write(b)
}

// Flush sends the headers first, the account header taken off.
func (a *accountCapture) Flush() {
	a.capture()
	_ = http.NewResponseController(a.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the writer underneath.
func (a *accountCapture) Unwrap() http.ResponseWriter { return a.ResponseWriter }

func (a *accountCapture) capture() {
	if a.done {
		return
	}
	a.done = true
	h := a.ResponseWriter.Header()
	vals := h.Values(reconcile.AccountHeader)
	if len(vals) == 0 {
		return
	}
	h.Del(reconcile.AccountHeader)
	acct, err := reconcile.ParseAccount(vals[0])
	if err != nil || len(vals) > 1 {
		a.f.metric(accountHeadersTotal, "invalid")
		acct = reconcile.Account{} // kept empty: the verdict says "insufficient"
	} else {
		a.f.metric(accountHeadersTotal, "ok")
	}
	ctx := context.WithoutCancel(a.r.Context())
	if a.s != nil {
		s := *a.s
		s.Account = &acct
		if a.f.sessions.Save(ctx, a.ticket, &s) == nil {
			return
		}
	}
	ticket, err := a.f.sessions.Create(ctx, &session.Session{Account: &acct})
	sessionsCreated.Inc()
	if err != nil {
		a.f.logger.Error("account not kept", zap.String("reason", "session_store"))
		return
	}
	c := &http.Cookie{Name: a.f.cookieName(), Value: ticket, Path: "/", HttpOnly: true, Secure: a.f.secure, SameSite: http.SameSiteLaxMode}
	h.Add("Set-Cookie", c.String())
}
