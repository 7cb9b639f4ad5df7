package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(DemoApp{})
	httpcaddyfile.RegisterHandlerDirective("passerelle_sandbox_demo_app", parseDemoApp)
	httpcaddyfile.RegisterDirectiveOrder("passerelle_sandbox_demo_app", httpcaddyfile.Before, "respond")
}

// DemoApp is a legacy app for the sandbox, reached through passerelle_front:
// it never speaks FranceConnect and only reads headers. It prints what it
// receives as text, so that a person or a script sees the hand-off.
//
//	/                 home
//	/espace-famille/  the Cas 1 area (the front protects it): the identity,
//	                  the datasets and every X-Passerelle-* header received
//	/demarche/        the Cas 2 form: the app's own login (demo accounts),
//	                  the account in use stated in X-Passerelle-Account, the
//	                  "Transmettre" button (fetched from the front), and on
//	                  the return from FranceConnect, the data and the
//	                  reconciliation verdict
//	/demarche/connexion, /demarche/deconnexion  the app's own login and logout
type DemoApp struct {
	// FrontURL is the front's origin, from which the button fragment is
	// fetched (server side), e.g. http://127.0.0.1:8082.
	FrontURL string `json:"front_url"`

	client *http.Client
}

// CaddyModule returns the Caddy module information.
func (DemoApp) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.passerelle_sandbox_demo_app", New: func() caddy.Module { return new(DemoApp) }}
}

// Provision refuses production mode.
func (a *DemoApp) Provision(ctx caddy.Context) error {
	if _, err := sandboxApp(ctx, "passerelle_sandbox_demo_app"); err != nil {
		return err
	}
	a.client = &http.Client{Timeout: 3 * time.Second}
	return nil
}

// demoAccount is an account of the demo app's own login.
type demoAccount struct {
	Key, Label, Header string
}

// demoAccounts: Angela's account with her first given name only (the
// verdict is probable), Joëlle's without accents (probable), and someone
// else (no_match whoever logs in).
var demoAccounts = []demoAccount{
	{"angela", "Angela DUBOIS (née le 24/08/1962)", "account_ref=angela&family_name=DUBOIS&given_name=Angela&birthdate=1962-08-24&birthplace=75107&gender=F"},
	{"joelle", "Joelle DUBINORE (née le 15/08/1992)", "account_ref=joelle&family_name=DUBINORE&given_name=Joelle+Francoise&birthdate=1992-08-15&birthplace=75117"},
	{"paul", "Paul MARTIN (né le 01/01/1980)", "account_ref=paul&family_name=MARTIN&given_name=Paul&birthdate=1980-01-01&gender=M"},
}

const demoCookie = "demo_account"

// ServeHTTP serves the demo app.
func (a *DemoApp) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	w.Header().Set("Cache-Control", "no-store")
	switch p := r.URL.Path; {
	case p == "/":
		return demoPage.Execute(w, demoData{Title: "Portail famille (démonstration)", Home: true})
	case strings.HasPrefix(p, "/espace-famille/"):
		d := received(r)
		d.Title = "Espace famille"
		return demoPage.Execute(w, d)
	case p == "/demarche/connexion" && r.Method == http.MethodPost:
		_ = r.ParseForm()
		http.SetCookie(w, &http.Cookie{Name: demoCookie, Value: r.PostForm.Get("account"), Path: "/demarche/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, "/demarche/", http.StatusSeeOther)
		return nil
	case p == "/deconnexion":
		// The app's logout (the front's app_logout): its own session
		// goes; the front then logs out of FranceConnect.
		http.SetCookie(w, &http.Cookie{Name: demoCookie, Value: "", Path: "/demarche/", MaxAge: -1})
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	case p == "/demarche/deconnexion":
		http.SetCookie(w, &http.Cookie{Name: demoCookie, Value: "", Path: "/demarche/", MaxAge: -1})
		http.Redirect(w, r, "/demarche/", http.StatusSeeOther)
		return nil
	case p == "/demarche/":
		return a.demarche(w, r)
	}
	w.WriteHeader(http.StatusNotFound)
	return demoPage.Execute(w, demoData{Title: "Page introuvable"})
}

func (a *DemoApp) demarche(w http.ResponseWriter, r *http.Request) error {
	d := received(r)
	d.Title = "Demande d’inscription à la cantine"
	c, err := r.Cookie(demoCookie)
	i := -1
	if err == nil {
		i = slices.IndexFunc(demoAccounts, func(x demoAccount) bool { return x.Key == c.Value })
	}
	if i < 0 {
		d.Accounts = demoAccounts
		return demoPage.Execute(w, d)
	}
	d.Account = demoAccounts[i].Label
	// The app checks that the data was compared with this account: no
	// verdict, or one about another account, and nothing is kept.
	switch {
	case d.Verdict == "" && (d.Identity != "" || d.Datasets != ""):
		d.Verdict = "refusé : données reçues sans rapprochement avec le compte"
		d.Datasets, d.Identity, d.Headers = "", "", nil
	case d.Verdict != "" && d.AccountRef == demoAccounts[i].Key:
		d.Verdict += " (comparé avec ce compte)"
	case d.Verdict != "":
		d.Verdict = "refusé : les données ont été comparées avec un autre compte (" + d.AccountRef + ")"
		d.Datasets, d.Identity, d.Headers = "", "", nil
	}
	// The account in use, for the reconciliation: the front takes this
	// header off before the page reaches the browser.
	w.Header().Set("X-Passerelle-Account", demoAccounts[i].Header)
	d.Button = a.button()
	return demoPage.Execute(w, d)
}

// button fetches the FranceConnect button from the front, as an app
// includes it.
func (a *DemoApp) button() template.HTML {
	resp, err := a.client.Get(strings.TrimSuffix(a.FrontURL, "/") + "/.passerelle/bouton?" +
		url.Values{"return_to": {"/demarche/"}, "moment": {"transmit"}}.Encode())
	if err != nil {
		return "<p>Le bouton FranceConnect est indisponible.</p>"
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil || resp.StatusCode != http.StatusOK {
		return "<p>Le bouton FranceConnect est indisponible.</p>"
	}
	return template.HTML(b) //nolint:gosec // the front's own fragment
}

// demoData is what a page shows.
type demoData struct {
	Title      string
	Home       bool
	Identity   string
	Datasets   string
	Verdict    string
	AccountRef string
	Headers    []string
	Accounts   []demoAccount
	Account    string
	Button     template.HTML
}

// received decodes the hand-off headers as an app would.
func received(r *http.Request) demoData {
	var d demoData
	// Some servers merge request trailers into the headers (Apache's
	// MergeTrailers): the demo app does too, to show none gets through.
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10))
	for name, vals := range r.Trailer {
		if len(vals) > 0 {
			r.Header[name] = append(r.Header[name], vals...)
		}
	}
	for name, vals := range r.Header {
		if strings.HasPrefix(name, "X-Passerelle-") {
			for _, v := range vals {
				d.Headers = append(d.Headers, name+": "+v)
			}
		}
	}
	slices.Sort(d.Headers)
	b64 := func(h string) string {
		v, _ := base64.RawURLEncoding.DecodeString(r.Header.Get(h))
		return string(v)
	}
	if r.Header.Get("X-Passerelle-Sub") != "" {
		d.Identity = strings.TrimSpace(b64("X-Passerelle-Given-Names-B64") + " " + b64("X-Passerelle-Family-Name-B64") +
			", né(e) le " + r.Header.Get("X-Passerelle-Birthdate") + " (précision : " + r.Header.Get("X-Passerelle-Birthdate-Precision") + ")")
	}
	var sets []string
	for name := range r.Header {
		if ds, ok := strings.CutPrefix(name, "X-Passerelle-Data-"); ok {
			sets = append(sets, strings.TrimSuffix(ds, "-B64")+" : "+b64(name))
		}
	}
	slices.Sort(sets)
	d.Datasets = strings.Join(sets, "\n")
	if rec := b64("X-Passerelle-Reconciliation-B64"); rec != "" {
		var v struct {
			Verdict    string `json:"verdict"`
			AccountRef string `json:"account_ref"`
		}
		_ = json.Unmarshal([]byte(rec), &v)
		d.Verdict, d.AccountRef = v.Verdict+" — "+rec, v.AccountRef
	}
	return d
}

var demoPage = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>{{.Title}} — application de démonstration</title>
<style>body{font-family:arial,sans-serif;max-width:52rem;margin:1rem auto;padding:0 1rem}pre{white-space:pre-wrap;word-break:break-all;background:#f6f6f6;padding:.5rem}</style></head>
<body><header><p>Application métier de démonstration (bac à sable Passerelle)</p></header><main>
<h1>{{.Title}}</h1>
{{if .Home}}<ul><li><a href="/espace-famille/" id="cas1">Espace famille (connexion FranceConnect)</a></li>
<li><a href="/demarche/" id="cas2">Démarche avec transmission des données</a></li></ul>{{end}}
{{if .Accounts}}<form method="post" action="/demarche/connexion"><p>Connexion à votre compte de l’application :</p>
{{range .Accounts}}<button type="submit" name="account" value="{{.Key}}" id="account-{{.Key}}">{{.Label}}</button> {{end}}</form>{{end}}
{{if .Account}}<p id="account">Compte utilisé : {{.Account}} — <a href="/demarche/deconnexion">quitter ce compte</a></p>{{end}}
{{if .Identity}}<h2>Identité reçue</h2><p id="identity">{{.Identity}}</p>{{end}}
{{if .Datasets}}<h2>Données reçues</h2><pre id="datasets">{{.Datasets}}</pre>{{end}}
{{if .Verdict}}<h2>Rapprochement avec le compte</h2><pre id="reconciliation">{{.Verdict}}</pre>{{end}}
{{if and .Account (not .Verdict)}}{{.Button}}{{end}}
{{if .Headers}}<h2>En-têtes X-Passerelle reçus</h2><pre id="headers">{{range .Headers}}{{.}}
{{end}}</pre>{{end}}
{{if .Identity}}{{if not .Verdict}}<p><a href="/deconnexion" id="logout">Se déconnecter</a></p>{{end}}{{end}}
</main></body></html>
`))

// parseDemoApp parses:
//
//	passerelle_sandbox_demo_app {
//	    front_url <origin>   # the front's origin, for the button fragment
//	}
func parseDemoApp(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	a := new(DemoApp)
	err := a.UnmarshalCaddyfile(h.Dispenser)
	return a, err
}

// UnmarshalCaddyfile implements caddyfile.Unmarshaler.
func (a *DemoApp) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if d.Val() != "front_url" || !d.AllArgs(&a.FrontURL) {
			return d.Errf("passerelle_sandbox_demo_app: front_url <origin> expected")
		}
	}
	if a.FrontURL == "" {
		return d.Err("passerelle_sandbox_demo_app: front_url is required")
	}
	return nil
}

// Interface guards.
var (
	_ caddyhttp.MiddlewareHandler = (*DemoApp)(nil)
	_ caddy.Provisioner           = (*DemoApp)(nil)
	_ caddyfile.Unmarshaler       = (*DemoApp)(nil)
)
