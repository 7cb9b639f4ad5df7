package fcop

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// authorizeParams are the parameters FranceConnect's authorize accepts
// (core-fcp authorize-params.dto): any other one, code_challenge or
// response_mode for instance, is refused.
var authorizeParams = map[string]bool{
	"response_type": true, "client_id": true, "redirect_uri": true, "scope": true, "state": true,
	"nonce": true, "acr_values": true, "claims": true, "prompt": true, "idp_hint": true, "ui_locales": true,
}

// minNonce is FranceConnect's minimum nonce length.
const minNonce = 22

// authorize validates an authorization request and shows the identity page.
// Without a registered client and redirect URI it answers an error page;
// after that, errors go back to the service as FranceConnect sends them
// (?error=…&error_description=…&state=…).
func (o *OP) authorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		errorPage(w, http.StatusMethodNotAllowed, "Méthode non permise.")
		return
	}
	q := r.URL.Query()
	c := o.clients[q.Get("client_id")]
	redirect := q.Get("redirect_uri")
	if c == nil || len(q["client_id"]) != 1 || len(q["redirect_uri"]) != 1 || !contains(c.RedirectURIs, redirect) {
		errorPage(w, http.StatusBadRequest, "Fournisseur de service inconnu ou adresse de retour non enregistrée.")
		return
	}
	state := q.Get("state")
	fail := func(code, desc string) {
		v := url.Values{"error": {code}, "error_description": {desc}}
		if state != "" {
			v.Set("state", state)
		}
		http.Redirect(w, r, redirect+sep(redirect)+v.Encode(), http.StatusFound)
	}
	for name, vals := range q {
		if !authorizeParams[name] {
			fail("invalid_request", "unknown parameter "+name)
			return
		}
		if len(vals) != 1 {
			fail("invalid_request", "repeated parameter "+name)
			return
		}
	}
	scope := q.Get("scope")
	switch {
	case q.Get("response_type") != "code":
		fail("invalid_request", "response_type must be code")
	case state == "":
		fail("invalid_request", "state is required")
	case len(q.Get("nonce")) < minNonce:
		fail("invalid_request", "nonce is required, at least 22 characters")
	case !validACR(q.Get("acr_values")):
		fail("invalid_request", "acr_values must be eidas1, eidas2 or eidas3")
	case !hasScope(scope, "openid"):
		fail("invalid_scope", "openid is required")
	case !validPrompt(q.Get("prompt")):
		fail("invalid_request", "prompt accepts login and consent only")
	default:
		now := o.cfg.Now()
		id := randomToken()
		o.put(o.interactions, id, &grant{
			client: c, redirectURI: redirect, state: state, nonce: q.Get("nonce"),
			scope: scope, acr: "eidas1", expires: now.Add(interactionTTL),
		}, now)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = identityPage.Execute(w, struct {
			Action     string
			Identities []Identity
		}{o.basePath + PathInteraction + id, o.cfg.Identities})
	}
}

// validACR accepts the eIDAS levels. The stand-in plays FranceConnect
// (low): whatever is asked, the citizen is authenticated at eidas1, as an
// identity provider may answer a lower level than asked; a relying party
// must check the acr it gets.
func validACR(v string) bool {
	switch v {
	case "eidas1", "eidas2", "eidas3":
		return true
	}
	return false
}

func validPrompt(p string) bool {
	for _, v := range strings.Fields(p) {
		if v != "login" && v != "consent" {
			return false
		}
	}
	return true
}

// interaction takes the citizen's choice: an identity (a code goes back to
// the service) or "Annuler" (access_denied, as when a citizen cancels at
// FranceConnect). An interaction is used once.
func (o *OP) interaction(w http.ResponseWriter, r *http.Request, id string) {
	if r.Method != http.MethodPost || parseForm(w, r) != nil {
		errorPage(w, http.StatusMethodNotAllowed, "Méthode non permise.")
		return
	}
	now := o.cfg.Now()
	o.mu.Lock()
	g, ok := o.interactions[id]
	delete(o.interactions, id)
	o.mu.Unlock()
	if !ok || now.After(g.expires) {
		errorPage(w, http.StatusBadRequest, "Cette connexion a expiré : recommencez depuis le site du service.")
		return
	}
	back := func(v url.Values) {
		v.Set("state", g.state)
		http.Redirect(w, r, g.redirectURI+sep(g.redirectURI)+v.Encode(), http.StatusSeeOther)
	}
	if r.PostForm.Has("cancel") {
		back(url.Values{"error": {"access_denied"}, "error_description": {"User auth aborted"}})
		return
	}
	ident := o.ids[r.PostForm.Get("identity")]
	if ident == nil {
		errorPage(w, http.StatusBadRequest, "Identité de test inconnue.")
		return
	}
	g.identity, g.authTime, g.expires = ident, now, now.Add(CodeTTL)
	code := randomToken()
	o.put(o.codes, code, g, now)
	back(url.Values{"code": {code}})
}

func errorPage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = errorTemplate.Execute(w, msg)
}

var identityPage = template.Must(template.New("identities").Parse(`<!doctype html>
<html lang="fr">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>FranceConnect (bac à sable) — choisir une identité de test</title>
<style>body{font-family:Marianne,Arial,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#161616}
button{display:block;width:100%;text-align:left;margin:.5rem 0;padding:.75rem;border:1px solid #000091;background:#fff;color:#000091;font-size:1rem;cursor:pointer}
button:hover,button:focus{background:#000091;color:#fff}#cancel{border-color:#666;color:#666;text-align:center}</style></head>
<body><main>
<h1>FranceConnect — bac à sable</h1>
<p>Ceci n’est pas FranceConnect : c’est le bouchon de test de Passerelle. Choisissez l’identité avec laquelle vous connecter.</p>
<form method="post" action="{{.Action}}">
<fieldset><legend>Identités de test</legend>
{{range .Identities}}<button type="submit" name="identity" value="{{.Key}}" id="identity-{{.Key}}">{{.Label}}</button>
{{end}}</fieldset>
<button type="submit" name="cancel" value="1" id="cancel">Annuler et revenir au service</button>
</form>
</main></body></html>
`))

var errorTemplate = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>FranceConnect (bac à sable) — erreur</title></head>
<body><main><h1>Une erreur est survenue</h1><p>{{.}}</p></main></body></html>
`))
