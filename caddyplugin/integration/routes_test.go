package integration

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/respfilter"
	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/sandbox"
)

// These tests walk the default catalogue: a route added to default.yaml,
// with its sandbox cases, is covered without a change here.

func defaultCatalogue(t testing.TB) *catalogue.Catalogue {
	t.Helper()
	c, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sandboxToken returns the scopes and the identity pivot of an embedded
// sandbox token.
func sandboxToken(t testing.TB, name string) ([]string, catalogue.Pivot) {
	t.Helper()
	c, ok := sandbox.Embedded().Token(name)
	if !ok {
		t.Fatalf("sandbox token %s missing", name)
	}
	var ct struct {
		TI struct {
			Scope        string `json:"scope"`
			Gender       string `json:"gender"`
			FamilyName   string `json:"family_name"`
			GivenName    string `json:"given_name"`
			Birthdate    string `json:"birthdate"`
			Birthplace   string `json:"birthplace"`
			Birthcountry string `json:"birthcountry"`
		} `json:"token_introspection"`
	}
	if err := json.Unmarshal(c.Payload, &ct); err != nil {
		t.Fatal(err)
	}
	ti := ct.TI
	return strings.Fields(ti.Scope), catalogue.Pivot{FamilyName: ti.FamilyName, GivenName: ti.GivenName, Gender: ti.Gender,
		Birthdate: ti.Birthdate, Birthplace: ti.Birthplace, Birthcountry: ti.Birthcountry}
}

// effective returns the route's scopes a token names (the sandbox
// habilitation grants every scope name and alias).
func effective(ep *catalogue.Endpoint, scopes []string) []*catalogue.Scope {
	var out []*catalogue.Scope
	for i := range ep.Scopes {
		if slices.ContainsFunc(ep.Scopes[i].Names(), func(n string) bool { return slices.Contains(scopes, n) }) {
			out = append(out, &ep.Scopes[i])
		}
	}
	return out
}

// passThrough returns the route's pass-through parameters for an identity:
// the values of the route's 200 sandbox case that identity reaches.
func passThrough(t testing.TB, ep *catalogue.Endpoint, p catalogue.Pivot) url.Values {
	t.Helper()
	out := url.Values{}
	if len(ep.Params) == 0 {
		return out
	}
	s := sandbox.Embedded()
	for _, c := range s.Cases(ep.OperationID) {
		if c.Status != 200 {
			continue
		}
		q, err := ep.IdentityQuery(&p)
		if err != nil {
			t.Fatal(err)
		}
		vals := url.Values{}
		for _, prm := range ep.Params {
			if v, ok := c.Params[prm.Name].(string); ok {
				vals.Set(prm.Name, v)
				q.Set(prm.Name, v)
			}
		}
		if got, ok := s.Match([]string{ep.OperationID}, q, nil); ok && got == c {
			return vals
		}
	}
	t.Fatalf("%s: no 200 case for this identity", ep.ID)
	return nil
}

func routeTarget(ep *catalogue.Endpoint, extra url.Values) string {
	q := url.Values{"recipient": {siret}}
	for k, v := range extra {
		q[k] = v
	}
	return ep.Path + "?" + q.Encode()
}

// onPath reports whether a node at path p (dot-separated, "[]" for array
// elements) may appear in an answer releasing fields: on the way to a
// released path, or inside one.
func onPath(p string, fields []string) bool {
	for _, f := range fields {
		if f == p || strings.HasPrefix(f, p+".") || strings.HasPrefix(f, p+"[]") ||
			strings.HasPrefix(p, f+".") || strings.HasPrefix(p, f+"[]") {
			return true
		}
	}
	return false
}

// unreleased returns the paths of the answer that no field releases.
func unreleased(v any, p string, fields []string) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			kp := p + "." + k
			if !onPath(kp, fields) {
				out = append(out, kp)
				continue
			}
			out = append(out, unreleased(e, kp, fields)...)
		}
	case []any:
		for _, e := range v {
			out = append(out, unreleased(e, p+"[]", fields)...)
		}
	}
	return out
}

// present reports whether a field path holds a value in the answer.
func present(v any, path []string) bool {
	if len(path) == 0 {
		return true
	}
	key, each := strings.CutSuffix(path[0], "[]")
	obj, ok := v.(map[string]any)
	if !ok {
		return false
	}
	next, ok := obj[key]
	if !ok {
		return false
	}
	if !each {
		return present(next, path[1:])
	}
	arr, _ := next.([]any)
	if arr != nil && len(arr) == 0 {
		return true // an empty list answers the key: masks name leaves (data.enfants[].sexe)
	}
	return slices.ContainsFunc(arr, func(e any) bool { return present(e, path[1:]) })
}

// checkReleased checks a 200 answer: on a v3 route {data, links, meta} and
// nothing under them that the effective scopes do not release (on a v2
// route, nothing at the root), a value for at least one field of each
// effective scope, and on a FranceConnect route no identity block.
func checkReleased(t *testing.T, a answer, ep *catalogue.Endpoint, scopes []*catalogue.Scope) {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal(a.body, &body); err != nil {
		t.Fatalf("answer is not JSON: %v", err)
	}
	var fields []string
	for _, s := range scopes {
		fields = append(fields, s.Fields...)
	}
	var extra []string
	if ep.API == catalogue.APIv2 {
		rooted := make([]string, len(fields))
		for i, f := range fields {
			rooted[i] = "$." + f
		}
		extra = unreleased(body, "$", rooted)
	} else {
		if _, ok := body["data"].(map[string]any); !ok {
			t.Fatalf("no data object: %s", a.body)
		}
		for _, k := range []string{"links", "meta"} {
			if _, ok := body[k].(map[string]any); !ok {
				t.Errorf("%s missing: %s", k, a.body)
			}
		}
		for _, root := range []string{"data", "links", "meta"} {
			extra = append(extra, unreleased(body[root], root, fields)...)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		t.Errorf("unreleased members in the answer: %v", extra)
	}
	for _, s := range scopes {
		if !slices.ContainsFunc(s.Fields, func(f string) bool { return present(body, strings.Split(f, ".")) }) {
			t.Errorf("scope %s is effective but none of %v is in the answer: %s", s.Name, s.Fields, a.body)
		}
	}
	// v3 FranceConnect routes never carry an identity block (the v2 address
	// has a legitimate "identite" line: the addressee).
	if ep.Modality == catalogue.ModalityFranceConnect && ep.API != catalogue.APIv2 && strings.Contains(string(a.body), `"identite"`) {
		t.Errorf("an identity block was released: %s", a.body)
	}
}

// Every route's masks compile with the gateway's response filter, scope by
// scope and all together (the handler compiles them lazily).
func TestRoutes_MasksCompile(t *testing.T) {
	for _, ep := range defaultCatalogue(t).Endpoints {
		compile := respfilter.Compile
		if ep.API == catalogue.APIv2 {
			compile = respfilter.CompileBare
		}
		var all []string
		for _, s := range ep.Scopes {
			if _, err := compile(s.Fields); err != nil {
				t.Errorf("%s %s: %v", ep.ID, s.Name, err)
			}
			all = append(all, s.Fields...)
		}
		if _, err := compile(all); err != nil {
			t.Errorf("%s: %v", ep.ID, err)
		}
	}
}

// TestRoutes_AllFCEveryRoute: the all_fc token answers 200 on every route of
// the catalogue whose scopes it carries, with only the released fields;
// on the others, 403 00100.
func TestRoutes_AllFCEveryRoute(t *testing.T) {
	start(t, options{MaxEntries: 7001})
	scopes, pivot := sandboxToken(t, "all_fc")
	cat := defaultCatalogue(t)
	served := 0
	for i := range cat.Endpoints {
		ep := &cat.Endpoints[i]
		if ep.Modality != catalogue.ModalityFranceConnect {
			continue // identite routes: identite_test.go
		}
		t.Run(ep.ID, func(t *testing.T) {
			eff := effective(ep, scopes)
			a := get(t, gatewayPort, routeTarget(ep, passThrough(t, ep, pivot)), bearer("all_fc")...)
			if len(eff) == 0 {
				if a.status != 403 || a.code(t) != "00100" {
					t.Fatalf("no scope of the route: status %d, want 403 00100: %s", a.status, a.body)
				}
				return
			}
			if a.status != 200 {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			served++
			checkReleased(t, a, ep, eff)
		})
	}
	fcRoutes := 0
	for i := range cat.Endpoints {
		if cat.Endpoints[i].Modality == catalogue.ModalityFranceConnect {
			fcRoutes++
		}
	}
	if served < fcRoutes-1 { // all_fc carries no AEEH scope
		t.Errorf("all_fc served %d of %d FranceConnect routes", served, fcRoutes)
	}
}

// TestRoutes_CNOUSNoIdentity: on the CNOUS routes, v3 and v4, neither
// cnous (which holds cnous_identite) nor cnous_with_less_scopes gets the
// identity block the provider returns; both get the same answer.
func TestRoutes_CNOUSNoIdentity(t *testing.T) {
	start(t, options{MaxEntries: 7002})
	cat := defaultCatalogue(t)
	for _, path := range []string{"/v3/cnous/etudiant_boursier/france_connect", "/v4/cnous/etudiant_boursier/france_connect"} {
		ep, ok := cat.Lookup(path)
		if !ok {
			t.Fatalf("%s missing", path)
		}
		var bodies []string
		for _, tok := range []string{"cnous_with_less_scopes", "cnous"} {
			scopes, _ := sandboxToken(t, tok)
			a := get(t, gatewayPort, routeTarget(ep, nil), bearer(tok)...)
			if a.status != 200 {
				t.Fatalf("%s %s: status %d: %s", tok, path, a.status, a.body)
			}
			checkReleased(t, a, ep, effective(ep, scopes))
			data := a.data(t)
			for _, k := range []string{"identite", "nom", "prenoms", "date_naissance", "nom_commune_naissance", "sexe"} {
				if _, ok := data[k]; ok {
					t.Errorf("%s %s: identity field %s released", tok, path, k)
				}
			}
			if leak := contains(a.body, "MARTIN", "JEAN", "2001-01-01", "Paris 2e"); leak != "" {
				t.Errorf("%s %s: the answer holds %q", tok, path, leak)
			}
			statut := "statut_boursier"
			if strings.HasPrefix(path, "/v3/") {
				statut = "est_boursier"
			}
			for _, k := range []string{statut, "echelon_bourse", "email", "periode_versement_bourse", "etablissement_etudes"} {
				if _, ok := data[k]; !ok {
					t.Errorf("%s %s: data.%s missing", tok, path, k)
				}
			}
			bodies = append(bodies, string(a.body))
		}
		if bodies[0] != bodies[1] {
			t.Errorf("%s: cnous and cnous_with_less_scopes differ:\n%s\n%s", path, bodies[0], bodies[1])
		}
	}
}

// TestRoutes_ANTSImmatriculation: the required, strictly formatted
// immatriculation parameter of the ANTS route.
func TestRoutes_ANTSImmatriculation(t *testing.T) {
	start(t, options{MaxEntries: 7003})
	const path = "/v3/ants/extrait_immatriculation_vehicule/france_connect"
	base := path + "?recipient=" + siret
	for _, tc := range []struct {
		name, query string
		status      int
		code        string
		plate       string
	}{
		{"missing", "", 422, "00366", ""},
		{"empty", "&immatriculation=", 422, "00366", ""},
		{"lower case", "&immatriculation=gh-416-td", 422, "00366", ""},
		{"letter I (never used by SIV)", "&immatriculation=GI-416-TD", 422, "00366", ""},
		{"too short", "&immatriculation=GH-41-TD", 422, "00366", ""},
		{"repeated", "&immatriculation=GH-416-TD&immatriculation=GH-416-TD", 422, "00366", ""},
		{"SIV", "&immatriculation=GH-416-TD", 200, "", "GH-416-TD"},
		{"FNI, spaces as +", "&immatriculation=8245+TV+24", 200, "", "8245 TV 24"},
		{"FNI, spaces as %20", "&immatriculation=8245%20TV%2024", 200, "", "8245 TV 24"},
		{"SIV without dashes: another plate, unknown", "&immatriculation=GH416TD", 404, "42003", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := get(t, gatewayPort, base+tc.query, bearer("all_fc")...)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if tc.code != "" {
				if got := a.code(t); got != tc.code {
					t.Fatalf("code %s, want %s", got, tc.code)
				}
			}
			if tc.status == 422 {
				e := a.json(t)["errors"].([]any)[0].(map[string]any)
				src, _ := e["source"].(map[string]any)
				if src["parameter"] != "immatriculation" || !strings.Contains(e["detail"].(string), "immatriculation") {
					t.Errorf("the error does not name immatriculation: %s", a.body)
				}
			}
			if tc.status == 404 {
				if m, _ := a.json(t)["errors"].([]any)[0].(map[string]any)["meta"].(map[string]any); m["provider"] != "ANTS" {
					t.Errorf("meta.provider: %s", a.body)
				}
			}
			if tc.plate != "" {
				d, _ := a.data(t)["donnees_immatriculation_vehicule"].(map[string]any)
				if d["numero_immatriculation"] != tc.plate {
					t.Errorf("plate %v, want %s", d["numero_immatriculation"], tc.plate)
				}
				// The match scores come with every ANTS scope (the official
				// schema requires them); nothing else of the provider's meta.
				m, _ := a.json(t)["meta"].(map[string]any)
				if _, ok := m["identity_matching"]; !ok || len(m) != 1 {
					t.Errorf("meta: %v, want identity_matching only", m)
				}
			}
		})
	}
}

// TestRoutes_ScopesLacking403: a token holding none of a route's scopes gets
// 403 00100 on it, whatever its other scopes (the route's required
// parameters supplied, so that only the scopes decide).
// req: C03
func TestRoutes_ScopesLacking403(t *testing.T) {
	start(t, options{MaxEntries: 7004})
	cat := defaultCatalogue(t)
	_, thomas := sandboxToken(t, "all_fc")
	checked := 0
	for _, tok := range []string{"cnaf_qfv2", "cnous", "cnaf_aeeh", "all_fc"} {
		scopes, _ := sandboxToken(t, tok)
		for i := range cat.Endpoints {
			ep := &cat.Endpoints[i]
			if ep.Modality != catalogue.ModalityFranceConnect {
				continue
			}
			if len(effective(ep, scopes)) > 0 {
				continue
			}
			a := get(t, gatewayPort, routeTarget(ep, passThrough(t, ep, thomas)), bearer(tok)...)
			if ep.API == catalogue.APIv2 {
				// v2 answers insufficient privileges with 401 access_denied.
				if a.status != 401 || a.json(t)["error"] != "access_denied" {
					t.Errorf("%s on %s: status %d: %s", tok, ep.Path, a.status, a.body)
				}
			} else if a.status != 403 || a.code(t) != "00100" {
				t.Errorf("%s on %s: status %d: %s", tok, ep.Path, a.status, a.body)
			}
			checked++
		}
	}
	fcRoutes := 0
	for i := range cat.Endpoints {
		if cat.Endpoints[i].Modality == catalogue.ModalityFranceConnect {
			fcRoutes++
		}
	}
	if checked < 3*fcRoutes-5 {
		t.Errorf("only %d refusals checked", checked)
	}
	// The AEEH token reaches its own route (DataPass scope name).
	ep, _ := cat.Lookup("/v3/dss/allocation_enfant_handicape/france_connect")
	a := get(t, gatewayPort, routeTarget(ep, nil), bearer("cnaf_aeeh")...)
	if a.status != 200 || a.data(t)["status"] != "allocataire" {
		t.Errorf("cnaf_aeeh on AEEH: %d %s", a.status, a.body)
	}
}

// TestRoutes_NotFoundCodes: an identity known nowhere gets, on every route,
// 404 with the route's not-found code and meta.provider.
func TestRoutes_NotFoundCodes(t *testing.T) {
	start(t, options{MaxEntries: 7005})
	cat := defaultCatalogue(t)
	_, thomas := sandboxToken(t, "all_fc")
	for i := range cat.Endpoints {
		ep := &cat.Endpoints[i]
		if ep.Modality != catalogue.ModalityFranceConnect {
			continue // identite routes: identite_test.go
		}
		t.Run(ep.ID, func(t *testing.T) {
			a := get(t, gatewayPort, routeTarget(ep, passThrough(t, ep, thomas)), bearer("aucun_dossier")...)
			if a.status != 404 {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			if ep.API == catalogue.APIv2 {
				if e := a.json(t); e["error"] != "not_found" || e["reason"] == "" || e["message"] == "" {
					t.Errorf("v2 not-found answer: %s", a.body)
				}
				return
			}
			prefix, provider := ep.NotFoundError()
			got := a.code(t)
			m, _ := a.json(t)["errors"].([]any)[0].(map[string]any)["meta"].(map[string]any)
			if got != prefix+"003" || m["provider"] != provider {
				t.Errorf("code %s provider %v, want %s003 %s", got, m["provider"], prefix, provider)
			}
		})
	}
}

// TestRoutes_NestedMasks: with a habilitation granting a few scopes (some
// by alias), all_fc gets exactly the nested members those scopes release.
func TestRoutes_NestedMasks(t *testing.T) {
	habs := filepath.Join(t.TempDir(), "habilitations.yaml")
	err := os.WriteFile(habs, []byte(`habilitations:
  - id: "partielle"
    label: "Habilitation partielle"
    siret: "`+siret+`"
    modalities: [france_connect, identite, identifiant]
    france_connect_client_ids: ["`+fsClientID+`"]
    scopes: [mesri_inscription, gip_mds_service_civique_statut_passe, gip_mds_service_civique_dates,
      revenu_solidarite_active_majoration, cnav_participation_familiale_eaje_parametres_calcul,
      ants_extrait_immatriculation_vehicule_statut_rattachement]
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	start(t, options{MaxEntries: 7006, Habilitations: habs})
	for _, tc := range []struct{ target, want string }{
		{"/v3/mesri/statut_etudiant/france_connect?recipient=" + siret,
			`{"admissions":[{"est_inscrit":true},{"est_inscrit":false}]}`},
		{"/v3/gip_mds/service_civique/france_connect?recipient=" + siret,
			`{"statut_actuel":{"date_debut_contrat":null,"date_fin_contrat":null},"statut_passe":{"contrat_trouve":true,"date_debut_contrat":"2015-10-01","date_fin_contrat":"2016-05-31"}}`},
		{"/v3/dss/revenu_solidarite_active/france_connect?recipient=" + siret, `{"avec_majoration":true}`},
		{"/v3/dss/participation_familiale_eaje/france_connect?recipient=" + siret,
			`{"parametres_calcul_participation_familiale":{"nombre_enfants_a_charge":2,"nombre_enfants_beneficiaire_aeeh":0,"base_ressources_annuelles":{"valeur":21480,"annee_calcul":2024}}}`},
		{"/v3/ants/extrait_immatriculation_vehicule/france_connect?immatriculation=GH-416-TD&recipient=" + siret, `{"statut_rattachement":"titulaire"}`},
	} {
		a := get(t, gatewayPort, tc.target, bearer("all_fc")...)
		if a.status != 200 {
			t.Errorf("%s: status %d: %s", tc.target, a.status, a.body)
			continue
		}
		var want map[string]any
		if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
			t.Fatal(err)
		}
		if got := a.data(t); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: data = %v\nwant %v", tc.target, got, want)
		}
	}
	// No scope of the quotient familial in this habilitation.
	if a := get(t, gatewayPort, qf("recipient="+siret), bearer("all_fc")...); a.status != 403 || a.code(t) != "00100" {
		t.Errorf("QF: %d %s", a.status, a.body)
	}
}
