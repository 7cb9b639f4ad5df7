package front

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/passerelle-gw/passerelle/caddyplugin/front/handoff"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/reconcile"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/rp"
	"github.com/passerelle-gw/passerelle/caddyplugin/front/session"
	"github.com/passerelle-gw/passerelle/config/catalogue"
)

// pendingTTL is how long a browser may stay at FranceConnect.
const pendingTTL = 10 * time.Minute

// start begins a login: POST from this site only, within the per-address
// quota. The pending login (nonce, the browser binding, where to return,
// the app's account in Cas 2) is stored under a fresh state, the browser
// gets the binding in a cookie, and goes to FranceConnect in the same tab.
func (f *Front) start(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		http.Redirect(w, r, f.route(routeLogin), http.StatusSeeOther)
		return nil
	}
	if !f.sameOrigin(r) {
		f.metric(loginsTotal, "cross_site")
		f.writePage(w, "forbidden", pageData{})
		return nil
	}
	if f.auditRefusing(w, "") {
		f.metric(loginsTotal, "audit_unavailable")
		return nil
	}
	if f.pipe.MemoryPressure != nil && f.pipe.MemoryPressure() {
		// Near the memory limit no login is begun (SECURITY.md F09, I16).
		f.metric(loginsTotal, "memory_pressure")
		f.writePage(w, "suspended", pageData{})
		return nil
	}
	if !f.allowLogin(r) {
		f.metric(loginsTotal, "rate_limited")
		f.writePage(w, "too_many", pageData{})
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		f.writePage(w, "forbidden", pageData{})
		return nil
	}
	ret, ok := SafeReturnTo(r.PostForm.Get("return_to"))
	if !ok {
		ret = "/"
	}
	p := &session.Pending{Nonce: session.NewTicket(), Binding: session.NewTicket(), Moment: handoff.MomentLogin, ReturnTo: ret}
	if id := r.PostForm.Get("external_id"); handoff.ValidExternalID(id) {
		p.ExternalID = id
	} else if id != "" {
		f.logger.Warn("external_id refused: 1 to 100 letters, digits and ._:- expected") // the value is not logged
	}
	if r.PostForm.Get("moment") == handoff.MomentTransmit {
		p.Moment = handoff.MomentTransmit
		p.Account = f.accountOf(r)
	}
	state := session.NewTicket()
	authURL, err := f.rp.AuthCodeURL(r.Context(), state, p.Nonce)
	if err != nil {
		f.logger.Warn("FranceConnect unavailable at login start", zap.String("reason", rp.ReasonOf(err)))
		f.metric(loginsTotal, "unavailable")
		f.writePage(w, "unavailable", pageData{Retry: ret})
		return nil
	}
	if err := f.sessions.PutPending(r.Context(), state, p); err != nil {
		f.logger.Error("pending login not stored", zap.String("reason", "session_store"))
		f.writePage(w, "unavailable", pageData{Retry: ret})
		return nil
	}
	f.setCookie(w, f.bindingCookie(state), p.Binding, pendingTTL)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, authURL, http.StatusSeeOther)
	return nil
}

// auditRefusing answers the "suspended" page when the audit trail cannot
// take records (SECURITY.md G09, I11): no identity is fetched nor handed
// over without its audit record. retry is where its link goes ("" for /).
func (f *Front) auditRefusing(w http.ResponseWriter, retry string) bool {
	if !f.auditRefuses() {
		return false
	}
	f.writePage(w, "suspended", pageData{Retry: retry})
	return true
}

// auditRefuses reports the pipeline's AuditRefusing (false without it).
func (f *Front) auditRefuses() bool { return f.pipe.AuditRefusing != nil && f.pipe.AuditRefusing() }

// allowLogin takes one login start from the client address's quota.
func (f *Front) allowLogin(r *http.Request) bool {
	// A client network's key, in the client store: a flood of networks
	// evicts client limiters only, never a habilitation's quota.
	key := f.limiter.ClientKey(f.pipe.ClientIPKey, f.pipe.ClientAddr(r), f.pipe.ClientIPv6Prefix) + ":front-login"
	d, err := f.limiter.Allow(r.Context(), key, f.loginQuota)
	return err == nil && d.Allowed
}

// callback is FranceConnect's return: the state must be pending, bound to
// this browser, used once; then the code exchange and the ID token checks,
// and, at the same time, userinfo and every dataset with the fresh access
// token. A failed dataset does not fail the login. The session gets a new
// ticket.
func (f *Front) callback(w http.ResponseWriter, r *http.Request) error {
	spanResult := "refused" // the callback span's result, set on the way
	q := r.URL.Query()
	if len(q["state"]) > 1 || len(q["code"]) > 1 || len(q["error"]) > 1 {
		f.metric(loginsTotal, "bad_request")
		f.writePage(w, "expired", pageData{})
		return nil
	}
	if f.auditRefusing(w, "") {
		f.metric(loginsTotal, "audit_unavailable")
		return nil // the state stays pending: the citizen may come back
	}
	state := q.Get("state")
	p, err := f.sessions.TakePending(r.Context(), state)
	switch {
	case err != nil && !errors.Is(err, session.ErrNotFound) && !errors.Is(err, session.ErrSealed):
		// The store failed (Redis down): not the citizen's link.
		f.logger.Error("pending login not read", zap.String("reason", "session_store"))
		f.metric(loginsTotal, "session_store")
		f.writePage(w, "unavailable", pageData{})
		return nil
	case err != nil:
		// Unknown, replayed or expired state: nothing was asked here, or
		// it was answered already.
		f.metric(loginsTotal, "state_invalid")
		f.writePage(w, "expired", pageData{})
		return nil
	}
	f.setCookie(w, f.bindingCookie(state), "", 0)
	binding, cerr := r.Cookie(f.bindingCookie(state))
	switch {
	case cerr != nil:
		f.metric(loginsTotal, "no_cookie")
		f.writePage(w, "cookies", pageData{Retry: p.ReturnTo})
		return nil
	case subtle.ConstantTimeCompare([]byte(binding.Value), []byte(p.Binding)) != 1:
		// A state from another browser: a login CSRF, or a link shared.
		f.metric(loginsTotal, "state_other_browser")
		f.writePage(w, "expired", pageData{Retry: p.ReturnTo})
		return nil
	}
	if ce := rp.ParseCallbackError(q.Get("error")); ce != nil {
		f.metric(loginsTotal, "fc_"+ce.Kind)
		if ce.Kind == rp.KindConfiguration {
			f.logger.Error("FranceConnect refused the login request", zap.String("error", ce.Code))
		}
		f.writePage(w, ce.Kind, pageData{Retry: p.ReturnTo})
		return nil
	}
	ctx, sp := span(r.Context(), "callback")
	defer func() { endSpan(sp, spanResult) }()
	r = r.WithContext(ctx)
	_, exSpan := span(ctx, "exchange")
	login, err := f.rp.Exchange(ctx, q.Get("code"), p.Nonce, p.Created)
	endSpan(exSpan, resultOf(err))
	if err != nil {
		spanResult = rp.ReasonOf(err)
		reason := rp.ReasonOf(err)
		f.logger.Warn("FranceConnect login refused", zap.String("reason", reason))
		f.metric(loginsTotal, reason)
		f.auditLogin("", reason, nil)
		page := "refused"
		if reason == rp.ReasonUnavailable {
			page = "unavailable"
		}
		f.writePage(w, page, pageData{Retry: p.ReturnTo})
		return nil
	}

	// Userinfo and the datasets, at the same time: the callback lasts as
	// long as the slowest call, within the access token's 60 s.
	var (
		wg       sync.WaitGroup
		identity *rp.Identity
		idErr    error
		datasets map[string]handoff.Dataset
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		uctx, usp := span(ctx, "userinfo")
		identity, idErr = f.rp.UserInfo(uctx, login.AccessToken, login.Subject)
		endSpan(usp, resultOf(idErr))
	}()
	go func() {
		defer wg.Done()
		dctx, dsp := span(ctx, "datasets")
		datasets = f.fetchDatasets(r.WithContext(dctx), login.AccessToken)
		endSpan(dsp, "ok")
	}()
	wg.Wait()
	if idErr != nil {
		f.revoke(r, login)
		f.countDatasets(datasets)
		spanResult = rp.ReasonOf(idErr)
		reason := rp.ReasonOf(idErr)
		f.logger.Warn("FranceConnect userinfo refused", zap.String("reason", reason))
		f.metric(loginsTotal, reason)
		f.auditLogin(login.Subject, reason, nil)
		f.writePage(w, "refused", pageData{Retry: p.ReturnTo})
		return nil
	}

	s := &session.Session{
		Subject: login.Subject, ACR: login.ACR, IDToken: login.IDToken,
		AccessToken: login.AccessToken, AccessExpiry: login.AccessExpiry,
		Moment: p.Moment, Identity: handoffIdentity(identity), Datasets: datasets,
		ExternalID: p.ExternalID,
	}
	if p.Moment == handoff.MomentTransmit {
		s.ReturnTo = p.ReturnTo
		res := reconcile.Invalid()
		if p.Account != nil && !p.Account.Invalid {
			res = reconcile.Compare(*p.Account, citizenOf(identity))
		}
		s.Reconciliation = &res
	}
	f.fitHandOff(s, f.now())
	f.countDatasets(datasets)
	// A new ticket: whatever ticket the browser had (a pre-login session
	// holding the app's account) is dropped, never promoted.
	if c, err := r.Cookie(f.cookieName()); err == nil {
		_ = f.sessions.Delete(r.Context(), c.Value)
	}
	ticket, err := f.sessions.Create(r.Context(), s)
	if err != nil {
		f.revoke(r, login)
		f.logger.Error("session not stored", zap.String("reason", "session_store"))
		f.writePage(w, "unavailable", pageData{Retry: p.ReturnTo})
		return nil
	}
	f.setCookie(w, f.cookieName(), ticket, 0)
	f.metric(loginsTotal, "ok")
	sessionsCreated.Inc()
	spanResult = "ok"
	f.auditLogin(login.Subject, "ok", datasets)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, p.ReturnTo, http.StatusSeeOther)
	return nil
}

// revoke asks FranceConnect to revoke the access token of a login that
// ends without a session (userinfo refused, the store failed): no token
// the citizen did not get a session for stays usable for the rest of its
// 60 s. Best effort, bounded by 2 s.
func (f *Front) revoke(r *http.Request, login *rp.Login) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Second)
	defer cancel()
	if err := f.rp.Revoke(ctx, login.AccessToken); err != nil {
		f.logger.Warn("access token not revoked", zap.String("reason", rp.ReasonOf(err)))
	}
}

// handoffIdentity is the identity as the app receives it.
func handoffIdentity(id *rp.Identity) *handoff.Identity {
	known := knownBirthdate(id)
	names := id.GivenNameArray
	if len(names) == 0 && id.GivenName != "" {
		names = splitNames(id.GivenName)
	}
	return &handoff.Identity{
		FamilyName: id.FamilyName, GivenName: id.GivenName, GivenNames: names,
		Birthdate: id.Birthdate, BirthdatePrecision: handoff.Precision(known),
		Gender: id.Gender, Birthplace: id.Birthplace, Birthcountry: id.Birthcountry,
	}
}

func citizenOf(id *rp.Identity) reconcile.Citizen {
	return reconcile.Citizen{
		FamilyName: id.FamilyName, GivenName: id.GivenName, GivenNameArray: id.GivenNameArray,
		Birthdate: id.Birthdate, IdpBirthdate: id.IdpBirthdate, Birthplace: id.Birthplace,
		Birthcountry: id.Birthcountry, Gender: id.Gender,
	}
}

// knownBirthdate is what FranceConnect knows of the birth date (a presumed
// day or month dropped, catalogue.KnownBirthdate).
func knownBirthdate(id *rp.Identity) string {
	return catalogue.KnownBirthdate(id.Birthdate, id.IdpBirthdate)
}

// splitNames splits space-separated given names.
func splitNames(s string) []string { return strings.Fields(s) }

// resultOf is a span result: ok, or the error's closed-list reason.
func resultOf(err error) string {
	if err == nil {
		return "ok"
	}
	return rp.ReasonOf(err)
}
