package front

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/rp"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/session"
)

// logout ends the session here and at FranceConnect. A GET shows a
// confirmation page whose button POSTs; a POST must come from this site.
// The app's own logout path: appLogout. Then: the session is deleted, the access
// token revoked while still valid (RFC 7009), and the browser goes to
// FranceConnect's session/end with id_token_hint, a fresh state and the
// registered return, which checks the state and lands on after_logout.
func (f *Front) logout(w http.ResponseWriter, r *http.Request) error {
	switch {
	case r.Method == http.MethodPost && !f.sameOrigin(r):
		f.metric(logoutsTotal, "cross_site")
		f.writePage(w, "forbidden", pageData{})
		return nil
	case r.Method != http.MethodPost:
		f.writePage(w, "logout", pageData{Action: f.route(routeLogout), Retry: f.AfterLogout})
		return nil
	}
	return f.logoutNow(w, r)
}

// appLogout serves the app's own logout path: the request goes to the app,
// which ends its own session (its answer's cookies are kept), then the
// answer is replaced by the front's logout. A GET from another site gets
// the confirmation page, whose button POSTs here.
func (f *Front) appLogout(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	switch {
	case r.Method == http.MethodPost && !f.sameOrigin(r):
		f.metric(logoutsTotal, "cross_site")
		f.writePage(w, "forbidden", pageData{})
		return nil
	case r.Method != http.MethodPost && !f.sameSiteNavigation(r):
		f.writePage(w, "logout", pageData{Action: f.AppLogout, Retry: f.AfterLogout})
		return nil
	}
	// The app gets the request without the front's cookies (as in
	// proxy); logoutNow still reads the session from r.
	toApp := r.Clone(r.Context())
	stripOwnCookies(toApp.Header)
	app := &headerRecorder{header: http.Header{}}
	if err := next.ServeHTTP(app, toApp); err != nil {
		f.logger.Warn("the app's logout failed", zap.String("reason", "app_error"))
	}
	for _, c := range app.header.Values("Set-Cookie") {
		w.Header().Add("Set-Cookie", c)
	}
	return f.logoutNow(w, r)
}

// headerRecorder keeps an answer's headers and drops its body.
type headerRecorder struct{ header http.Header }

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) WriteHeader(int)             {}
func (h *headerRecorder) Write(p []byte) (int, error) { return len(p), nil }

// logoutNow deletes the session and sends the browser to FranceConnect's
// logout (or straight to after_logout without a FranceConnect session).
func (f *Front) logoutNow(w http.ResponseWriter, r *http.Request) error {
	s, ticket, _ := f.sessionOf(r)
	f.setCookie(w, f.cookieName(), "", 0)
	// The sealed account in use goes too: on a shared computer, the next
	// login must not be reconciled with the previous user's account.
	f.setCookie(w, f.accountCookie(), "", 0)
	if ticket != "" {
		_ = f.sessions.Delete(r.Context(), ticket)
	}
	f.cache.mu.Lock()
	delete(f.cache.m, ticket)
	f.cache.mu.Unlock()
	if s == nil || s.IDToken == "" {
		f.metric(logoutsTotal, "no_session")
		http.Redirect(w, r, f.AfterLogout, http.StatusSeeOther)
		return nil
	}
	if !f.auditRefuses() {
		// While the audit trail refuses records, a logout (no data) is
		// counted only: its record would take the place of one of a
		// request that got data (G09, I11).
		f.auditEvent("front_logout", s.Subject, "", nil)
	}
	if s.AccessToken != "" && f.now().Before(s.AccessExpiry) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		if err := f.rp.Revoke(ctx, s.AccessToken); err != nil {
			f.logger.Warn("access token not revoked", zap.String("reason", rp.ReasonOf(err)))
		}
		cancel()
	}
	state := session.NewTicket()
	end, err := f.rp.EndSessionURL(r.Context(), s.IDToken, state)
	if err == nil {
		err = f.sessions.PutLogout(r.Context(), state)
	}
	if err != nil {
		// Logged out here; FranceConnect's session ends by itself (30 min).
		f.logger.Warn("FranceConnect logout skipped", zap.String("reason", rp.ReasonOf(err)))
		f.metric(logoutsTotal, "local_only")
		http.Redirect(w, r, f.AfterLogout, http.StatusSeeOther)
		return nil
	}
	f.metric(logoutsTotal, "franceconnect")
	http.Redirect(w, r, end, http.StatusSeeOther)
	return nil
}

// logoutCallback is FranceConnect's return after logout: only a state this
// front sent, once.
func (f *Front) logoutCallback(w http.ResponseWriter, r *http.Request) error {
	if err := f.sessions.TakeLogout(r.Context(), r.URL.Query().Get("state")); err != nil {
		f.metric(logoutsTotal, "state_invalid")
		f.writePage(w, "logout_unknown", pageData{Retry: f.AfterLogout})
		return nil
	}
	http.Redirect(w, r, f.AfterLogout, http.StatusSeeOther)
	return nil
}

// sameSiteNavigation reports whether a GET comes from a page of this site
// (the app's logout link): Sec-Fetch-Site same-origin, or a Referer on the
// site. A link on another site cannot log the citizen out.
func (f *Front) sameSiteNavigation(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" {
		// A navigation, not an <img> or a fetch in the app's pages.
		m := r.Header.Get("Sec-Fetch-Mode")
		return s == "same-origin" && (m == "" || m == "navigate")
	}
	ref, err := url.Parse(r.Header.Get("Referer"))
	return err == nil && ref.Host == f.base.Host && ref.Scheme == f.base.Scheme
}
