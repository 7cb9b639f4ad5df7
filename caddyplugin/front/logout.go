package front

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/rp"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/session"
)

// logout ends the session here and at FranceConnect. A GET shows a
// confirmation page whose button POSTs; a POST must come from this site.
// The app's own logout path (app_logout), reached by a same-site
// navigation, logs out at once. Then: the session is deleted, the access
// token revoked while still valid (RFC 7009), and the browser goes to
// FranceConnect's session/end with id_token_hint, a fresh state and the
// registered return, which checks the state and lands on after_logout.
func (f *Front) logout(w http.ResponseWriter, r *http.Request) error {
	appLogout := f.AppLogout != "" && r.URL.Path == f.AppLogout
	switch {
	case r.Method == http.MethodPost && !f.sameOrigin(r):
		f.metric(logoutsTotal, "cross_site")
		f.writePage(w, "forbidden", pageData{})
		return nil
	case r.Method != http.MethodPost && !(appLogout && f.sameSiteNavigation(r)):
		f.writePage(w, "logout", pageData{Action: f.route(routeLogout), Retry: f.AfterLogout})
		return nil
	}
	s, ticket, _ := f.sessionOf(r)
	f.setCookie(w, f.cookieName(), "", 0)
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
	f.auditEvent("front_logout", s.Subject, "", nil)
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
		return s == "same-origin"
	}
	ref, err := url.Parse(r.Header.Get("Referer"))
	return err == nil && ref.Host == f.base.Host && ref.Scheme == f.base.Scheme
}
