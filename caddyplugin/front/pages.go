package front

import (
	"bytes"
	"html/template"
	"net/http"
)

// The citizen-facing pages: French, one h1, landmarks, labelled controls,
// visible focus, the State design system's colours (RGAA). They never show
// an error string, a stack trace or anything FranceConnect sent as free
// text: each page is chosen from a closed list.

// pageCSS is the pages' style: DSFR's colours and the FranceConnect button
// (the standalone connect component's look), inline, so that no asset is
// fetched from elsewhere.
const pageCSS = `body{font-family:Marianne,arial,sans-serif;color:#161616;margin:0;line-height:1.5}
header{border-bottom:1px solid #ddd;padding:1rem 2rem}header p{margin:0;font-weight:700}
main{max-width:40rem;margin:2rem auto;padding:0 1rem}h1{font-size:2rem;line-height:1.25}
a{color:#000091}:focus-visible{outline:2px solid #0a76f6;outline-offset:2px}
.fr-callout{border-left:4px solid #6a6af4;background:#eeeeee;padding:1rem 1.5rem;margin:1.5rem 0}
.fr-connect-group{margin:1.5rem 0}.fr-connect-group p{margin:.5rem 0 0;font-size:.875rem}
.fr-connect{display:inline-flex;flex-direction:column;align-items:flex-start;background:#000091;color:#fff;border:0;padding:.75rem 1.5rem .75rem 4rem;min-height:3.5rem;cursor:pointer;font-family:inherit;position:relative}
.fr-connect::before{content:"";position:absolute;left:1rem;top:50%;width:2.25rem;height:2.25rem;margin-top:-1.125rem;background:#fff;border-radius:50%}
.fr-connect:hover{background:#1212ff}.fr-connect__login{font-size:1rem}.fr-connect__brand{font-size:1.25rem;font-weight:700}
.fr-btn{background:#000091;color:#fff;border:0;padding:.5rem 1.5rem;font-size:1rem;cursor:pointer;font-family:inherit}
ul.alternatives li{margin:.5rem 0}`

// buttonFragment is FranceConnect's button, its exact markup (DSFR connect
// component: fixed wording, same tab, "Qu'est-ce que FranceConnect ?"),
// inside a POST form to the front's start route. Apps include it as is:
// GET /.passerelle/bouton?return_to=/demarche/&moment=transmit&external_id=D-2026-0042.
var buttonFragment = template.Must(template.New("button").Parse(
	`<form method="post" action="{{.Start}}" class="passerelle-franceconnect">
{{- if eq .Moment "transmit"}}
<div class="fr-callout"><p>Vos données seront transmises à ce service avec FranceConnect : votre identité{{range .Datasets}}, {{.}}{{end}}. Vous pourrez vérifier qu’elles correspondent à votre compte.</p></div>
{{- end}}
<input type="hidden" name="return_to" value="{{.ReturnTo}}">
<input type="hidden" name="moment" value="{{.Moment}}">
{{- if .ExternalID}}
<input type="hidden" name="external_id" value="{{.ExternalID}}">
{{- end}}
<div class="fr-connect-group">
<button class="fr-connect" type="submit" id="franceconnect"><span class="fr-connect__login">S’identifier avec</span> <span class="fr-connect__brand">FranceConnect</span></button>
<p><a href="https://franceconnect.gouv.fr/" target="_blank" rel="noopener" title="Qu’est-ce que FranceConnect ? - nouvelle fenêtre">Qu’est-ce que FranceConnect ?</a></p>
</div>
</form>`))

// page lays out a whole page around a body.
var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} — {{.Service}}</title><style>` + pageCSS + `</style></head>
<body><header role="banner"><p>{{.Service}}</p></header>
<main role="main" id="contenu"><h1>{{.Title}}</h1>{{.Body}}</main></body></html>
`))

// pageText is the closed list of messages; each is a title and a body.
type pageText struct {
	Status int
	Title  string
	Body   template.HTML
}

// Pages by name. The texts follow FranceConnect's partner documentation
// for its callback errors (FRONT.md §2.1) and API Particulier's usual
// alternatives when a dataset is missing.
var pages = map[string]pageText{
	"cancelled": {http.StatusOK, "Connexion annulée",
		`<p>La connexion avec FranceConnect a été annulée, ou FranceConnect n’a pas pu confirmer votre identité.</p>
<p>Vous pouvez <a href="{{.Retry}}">réessayer</a>, ou utiliser un autre moyen de connexion proposé par le service.</p>`},
	"configuration": {http.StatusBadGateway, "Connexion impossible pour le moment",
		`<p>FranceConnect a refusé la demande de ce service. L’équipe technique en est informée.</p>
<p>Utilisez un autre moyen de connexion proposé par le service, ou réessayez plus tard.</p>`},
	"unavailable": {http.StatusServiceUnavailable, "FranceConnect est momentanément indisponible",
		`<p>Réessayez dans quelques minutes : <a href="{{.Retry}}">revenir au service</a>.</p>`},
	"suspended": {http.StatusServiceUnavailable, "Service momentanément indisponible",
		`<p>Ce service ne peut pas recevoir vos données pour le moment. Réessayez dans quelques minutes.</p>`},
	"cookies": {http.StatusBadRequest, "Ce site a besoin des cookies",
		`<p>Votre navigateur n’a pas renvoyé le cookie qui protège votre connexion. Autorisez les cookies pour ce site, puis <a href="{{.Retry}}">recommencez</a>.</p>`},
	"expired": {http.StatusBadRequest, "Votre connexion a expiré",
		`<p>La demande de connexion n’est plus valable ou a déjà été utilisée. <a href="{{.Retry}}">Recommencez</a> depuis le service.</p>`},
	"refused": {http.StatusBadGateway, "Votre identité n’a pas pu être vérifiée",
		`<p>La réponse de FranceConnect n’a pas pu être vérifiée : par sécurité, la connexion est refusée. <a href="{{.Retry}}">Recommencez</a>, ou utilisez un autre moyen de connexion.</p>`},
	"too_many": {http.StatusTooManyRequests, "Trop de tentatives",
		`<p>Trop de connexions ont été demandées depuis votre adresse. Patientez une minute, puis <a href="{{.Retry}}">recommencez</a>.</p>`},
	"logout_unknown": {http.StatusBadRequest, "Déconnexion non reconnue",
		`<p>Ce retour de déconnexion ne correspond à aucune déconnexion demandée ici. Votre session sur ce service est fermée. <a href="{{.Retry}}">Revenir au service</a>.</p>`},
	"bad_path": {http.StatusBadRequest, "Adresse non valide",
		`<p>Cette adresse n’est pas valide. <a href="{{.Retry}}">Revenir au service</a>.</p>`},
	"forbidden": {http.StatusForbidden, "Demande refusée",
		`<p>Cette demande ne vient pas de ce site. <a href="{{.Retry}}">Revenir au service</a>.</p>`},
	"dataset_missing": {http.StatusOK, "Certaines informations n’ont pas pu être récupérées",
		`<p>Votre identité a bien été vérifiée, mais les administrations n’ont pas transmis toutes les informations demandées (par exemple votre quotient familial).</p>
<p>Pour continuer votre démarche, vous pouvez :</p>
<ul class="alternatives"><li>télécharger votre attestation de quotient familial sur <a href="https://www.caf.fr/allocataires/mon-compte" target="_blank" rel="noopener" title="caf.fr - nouvelle fenêtre">caf.fr</a> ou <a href="https://www.msa.fr" target="_blank" rel="noopener" title="msa.fr - nouvelle fenêtre">msa.fr</a>, puis la déposer dans votre démarche ;</li>
<li>présenter vos justificatifs au guichet de votre collectivité.</li></ul>
<p><a href="{{.Retry}}">Revenir au service</a></p>`},
	"login": {http.StatusOK, "Connectez-vous pour accéder à cet espace",
		`<p>FranceConnect est la solution proposée par l’État pour sécuriser et simplifier la connexion à vos services en ligne.</p>{{.Button}}`},
	"logout": {http.StatusOK, "Se déconnecter",
		`<form method="post" action="{{.Action}}"><p>Vous allez être déconnecté de ce service et de FranceConnect.</p><button class="fr-btn" type="submit" id="logout">Se déconnecter</button></form>`},
}

// pageData is what a page's body may use.
type pageData struct {
	Retry  string        // where "réessayer" / "revenir" goes
	Button template.HTML // the FranceConnect button, on the login page
	Action string        // the form action, on the logout page
}

// bodies are the page bodies, parsed once.
var bodies = func() map[string]*template.Template {
	m := map[string]*template.Template{}
	for name, p := range pages {
		m[name] = template.Must(template.New(name).Parse(string(p.Body)))
	}
	return m
}()

// writePage answers one of the pages.
func (f *Front) writePage(w http.ResponseWriter, name string, d pageData) {
	p, ok := pages[name]
	if !ok {
		name, p = "unavailable", pages["unavailable"]
	}
	if d.Retry == "" {
		d.Retry = "/"
	}
	var body bytes.Buffer
	_ = bodies[name].Execute(&body, d)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' "+f.formActions+"; frame-ancestors 'none'; base-uri 'none'")
	hdr.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(p.Status)
	_ = page.Execute(w, struct {
		Title, Service string
		Body           template.HTML
	}{p.Title, f.ServiceName, template.HTML(body.String())}) //nolint:gosec // bodies are the closed list above
}

// button renders the FranceConnect button fragment.
func (f *Front) button(returnTo, moment, externalID string) template.HTML {
	var b bytes.Buffer
	names := make([]string, 0, len(f.Datasets))
	for _, d := range f.Datasets {
		names = append(names, d.Label)
	}
	_ = buttonFragment.Execute(&b, struct {
		Start, ReturnTo, Moment, ExternalID string
		Datasets                            []string
	}{f.route(routeStart), returnTo, moment, externalID, names})
	return template.HTML(b.String()) //nolint:gosec // rendered by html/template
}
