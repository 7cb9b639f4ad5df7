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
// a Cas 2 page carries the hand-off once; the front's own cookies never
// reach the app; the app's account header is taken off its answers; an
// answer to a request that carried a hand-off is never cached.
func (f *Front) proxy(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	s, ticket, _ := f.sessionOf(r)
	protected := f.protect.match(r)
	handedOff := false
	switch {
	case protected && (s == nil || !s.LoggedIn() || s.Moment != handoff.MomentLogin):
		f.loginRequired(w, r)
		return nil
	case protected:
		if f.auditRefusing(w, "") {
			return nil
		}
		if !f.handOffLogin(r, s, ticket) {
			f.writePage(w, "unavailable", pageData{})
			return nil
		}
		handedOff = true
	case s != nil && s.Moment == handoff.MomentTransmit && s.ReturnTo != "" && r.Method == http.MethodGet && r.URL.RequestURI() == s.ReturnTo:
		if f.auditRefusing(w, s.ReturnTo) {
			return nil // the data stays in the session until it can be handed over
		}
		var answered bool
		if handedOff, answered = f.handOffTransmit(w, r, ticket); answered {
			return nil
		}
	}
	stripOwnCookies(r.Header)
	a := &accountCapture{ResponseWriter: w, f: f, noStore: handedOff}
	err := next.ServeHTTP(a, r)
	a.finish()
	return err
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

// sweep drops the hand-offs due for renewal by now: they hold the citizen's
// identity and datasets, of sessions that may have ended elsewhere.
func (a *assertions) sweep(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for t, h := range a.m {
		if !now.Before(h.renewAt) {
			delete(a.m, t)
		}
	}
}

// sweepEvery is how often a front drops what has expired from memory.
const sweepEvery = time.Minute

// sweepLoop drops, every sweepEvery until ctx ends (the configuration
// stops), the hand-offs and sessions kept in memory that have expired:
// personal data leaves memory within a minute of its expiry, whether or
// not the instance serves other requests.
func (f *Front) sweepLoop(ctx context.Context) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := f.now()
			f.cache.sweep(now)
			f.sessions.Sweep(now)
		}
	}
}

// handOffLogin sets the Cas 1 headers on a request of the session.
// It returns false when no hand-off could be built (the assertion could not
// be signed): the request must not reach the app without its identity.
func (f *Front) handOffLogin(r *http.Request, s *session.Session, ticket string) bool {
	now := f.now()
	f.cache.mu.Lock()
	h, ok := f.cache.m[ticket]
	f.cache.mu.Unlock()
	if !ok || !now.Before(h.renewAt) {
		h = f.buildHandOff(s, handoff.MomentLogin, now)
		if h == nil {
			return false
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
		// A copy: a later handler editing values in place must not
		// reach the cached ones, nor another request's.
		r.Header[name] = append([]string(nil), vals...)
	}
	return true
}

// handOffTransmit sets the Cas 2 headers once, on the return to the app's
// page: the session is taken (read and deleted at once, on whichever
// instance), so of two requests with the same ticket one only carries the
// data; the browser's account cookie goes. What logout needs of the session
// stays, under a new ticket (session.Transmitted): the citizen can still
// end the FranceConnect session. It reports whether the headers were set,
// and whether the request was answered (the assertion could not be
// signed).
func (f *Front) handOffTransmit(w http.ResponseWriter, r *http.Request, ticket string) (handed, answered bool) {
	s, err := f.sessions.Take(r.Context(), ticket)
	if err != nil {
		return false, false // handed over already, or expired: the app gets no data
	}
	f.keepForLogout(w, r, s)
	f.setCookie(w, f.accountCookie(), "", 0)
	h := f.buildHandOff(s, handoff.MomentTransmit, f.now())
	if h == nil {
		f.writePage(w, "unavailable", pageData{Retry: s.ReturnTo})
		return false, true
	}
	for name, vals := range h.header {
		r.Header[name] = vals
	}
	f.metric(handoffsTotal, handoff.MomentTransmit)
	f.auditEvent("front_handoff", s.Subject, handoff.MomentTransmit, nil)
	return true, false
}

// keepForLogout replaces a Cas 2 session taken for its hand-off with what
// logout needs of it, under a new ticket set as the cookie; without it (the
// store failed), the cookie goes and logout stays local.
func (f *Front) keepForLogout(w http.ResponseWriter, r *http.Request, s *session.Session) {
	ticket, err := f.sessions.Create(r.Context(), s.Transmitted())
	if err != nil {
		f.logger.Error("session not kept for logout", zap.String("reason", "session_store"))
	}
	f.setCookie(w, f.cookieName(), ticket, 0)
}

// buildHandOff signs the assertion of a session and renders its headers:
// only in the session's own moment (a transmitted session hands off
// nothing).
func (f *Front) buildHandOff(s *session.Session, moment string, now time.Time) *handOff {
	if s.Identity == nil || s.Moment != moment {
		return nil
	}
	c := handoff.Claims{
		Issuer: strings.TrimSuffix(f.BaseURL, "/"), Audience: f.AppID, Subject: s.Subject, ACR: s.ACR,
		Moment: moment, Identity: *s.Identity, Datasets: s.Datasets, Reconciliation: s.Reconciliation,
		ExternalID: s.ExternalID,
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
// browser sees it, and gives it to the browser sealed, in a cookie (the
// server keeps nothing: anonymous requests cannot pile up state), for the
// Cas 2 login the page may start. With noStore (the request carried a
// hand-off: the answer may show the citizen's identity), no cache may
// keep the answer, whatever the app said.
type accountCapture struct {
	http.ResponseWriter
	f       *Front
	noStore bool
	done    bool
}

func (a *accountCapture) WriteHeader(code int) {
	if code < 200 && code != http.StatusSwitchingProtocols {
		// An informational answer (100 Continue, 103 Early Hints) sends
		// the header map as it is: the account is set aside meanwhile,
		// and captured from the final answer.
		h := a.ResponseWriter.Header()
		held, ok := h[reconcile.AccountHeader]
		delete(h, reconcile.AccountHeader)
		a.ResponseWriter.WriteHeader(code)
		if ok {
			h[reconcile.AccountHeader] = held
		}
		return
	}
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

// finish runs when the app's answer is over, before net/http sends the
// trailers: reverse_proxy copies the app's trailers into the header map
// after the body, so an account header sent as a trailer is dropped there.
func (a *accountCapture) finish() {
	a.capture() // when the app wrote nothing, net/http sends the header map as it is
	dropAccount(a.ResponseWriter.Header())
}

// capture runs once, just before the answer's header goes out.
func (a *accountCapture) capture() {
	if a.done {
		return
	}
	a.done = true
	h := a.ResponseWriter.Header()
	if a.noStore {
		// Neither the browser's cache nor a shared one keeps a page built
		// from the identity: a CDN reads its own headers first (RFC 9213's
		// targeted fields, CDN-Cache-Control and its vendors'
		// Cloudflare-CDN-Cache-Control…, and the older Surrogate-Control
		// and Edge-Control), so they go.
		h.Set("Cache-Control", "private, no-store")
		for k := range h {
			switch lk := strings.ToLower(k); {
			case lk == "expires", lk == "surrogate-control", lk == "edge-control", strings.HasSuffix(lk, "cdn-cache-control"):
				delete(h, k)
			}
		}
	}
	// Announced as a trailer, a value set after the body would be sent:
	// the announcement goes (finish drops the value).
	unannounce(h)
	vals := h.Values(reconcile.AccountHeader)
	dropAccount(h)
	if len(vals) == 0 {
		return
	}
	acct, err := reconcile.ParseAccount(vals[0])
	if err != nil || len(vals) > 1 {
		a.f.metric(accountHeadersTotal, "invalid")
		acct = reconcile.Account{Invalid: true} // the verdict says why: account_header_invalid
	} else {
		a.f.metric(accountHeadersTotal, "ok")
	}
	sealed, err := a.f.sessions.SealValue("account", &acct, accountTTL)
	if err != nil {
		a.f.logger.Error("account not kept", zap.String("reason", "sealing"))
		return
	}
	a.f.setCookie(a.ResponseWriter, a.f.accountCookie(), sealed, accountTTL)
	// A shared cache must not give one citizen's cookie to another.
	h.Set("Cache-Control", "private, no-store")
}

// dropAccount deletes the account header from a header map, in any letter
// case, and as a trailer (http.TrailerPrefix).
func dropAccount(h http.Header) {
	for k := range h {
		if strings.EqualFold(strings.TrimPrefix(k, http.TrailerPrefix), reconcile.AccountHeader) {
			delete(h, k)
		}
	}
}

// unannounce takes the account header's name out of the Trailer header:
// net/http sends the value of an announced name set after the body.
func unannounce(h http.Header) {
	var keep []string
	found := false
	for _, v := range h["Trailer"] {
		for name := range strings.SplitSeq(v, ",") {
			switch name = strings.TrimSpace(name); {
			case strings.EqualFold(name, reconcile.AccountHeader):
				found = true
			case name != "":
				keep = append(keep, name)
			}
		}
	}
	switch {
	case !found:
	case len(keep) == 0:
		delete(h, "Trailer")
	default:
		h["Trailer"] = []string{strings.Join(keep, ", ")}
	}
}

// accountTTL is how long the app's statement of the account in use holds:
// the time to fill a form and go through FranceConnect.
const accountTTL = 30 * time.Minute

// accountCookie holds the sealed account in use.
func (f *Front) accountCookie() string {
	if f.secure {
		return hostPrefix + accountCookieName
	}
	return accountCookieName
}

// accountOf opens the browser's account cookie; nil when there is none,
// it expired, or it does not open (another secret, tampered).
func (f *Front) accountOf(r *http.Request) *reconcile.Account {
	c, err := r.Cookie(f.accountCookie())
	if err != nil {
		return nil
	}
	var acct reconcile.Account
	if f.sessions.OpenValue("account", c.Value, &acct) != nil {
		return nil
	}
	return &acct
}
