package catalogue

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// callerRoute is what DOMAIN.md §4–§6 and the official OpenAPI say of one
// route where the caller gives the citizen (identite, identifiant).
type callerRoute struct {
	id, op, provider, notFound string
	invalid                    string // 422 code of a malformed parameter
	modality                   Modality
	params                     string // paramSpec: "name[!][max][:normalize] …" in catalogue order
	civility                   *Civility
	scopes                     []scopeWant
}

// paramWant is one parameter of a paramSpec: "prenoms[]!3:name" is a
// required prenoms[] taking up to 3 values, normalised as a name.
type paramWant struct {
	name, normalize string
	required        bool
	max             int
}

func parseParamSpec(spec string) []paramWant {
	var out []paramWant
	for f := range strings.FieldsSeq(spec) {
		var w paramWant
		f, w.normalize, _ = strings.Cut(f, ":")
		end := strings.IndexAny(f, "!0123456789") // names hold no digit
		if end < 0 {
			end = len(f)
		}
		w.name, f = f[:end], f[end:]
		f, w.required = strings.CutPrefix(f, "!")
		for _, r := range f {
			w.max = w.max*10 + int(r-'0')
		}
		out = append(out, w)
	}
	return out
}

var (
	// DOMAIN.md §4, R/o table; normalisation per the catalogue format.
	dssCallerParams = "nomNaissance!:name nomUsage:name prenoms[]!3:name anneeDateNaissance moisDateNaissance:integer jourDateNaissance:integer " +
		"sexeEtatCivil!:upper codeCogInseePaysNaissance!:upper codeCogInseeCommuneNaissance:upper nomCommuneNaissance:name codeCogInseeDepartementNaissance:upper"
	birthDate      = []string{"anneeDateNaissance", "moisDateNaissance", "jourDateNaissance"}
	fullDateParams = "anneeDateNaissance! moisDateNaissance!:integer jourDateNaissance!:integer"
	frenchPlace    = "codeCogInseeCommuneNaissance:upper nomCommuneNaissance:name codeCogInseeDepartementNaissance:upper"
	callerRoutes   = map[string]callerRoute{}
	// DOMAIN.md §6, provider prefixes.
	providerPrefixes = map[string]string{"CNAV": "37", "RNCPS": "40", "CNOUS": "26", "MESRI": "25", "DSNJ": "39", "GIP-MDS": "31",
		"MEN": "30", "France Travail": "24", "SDH": "41"}
)

// addCallerRoutes derives the caller routes from wantedRoutes: the init of
// routes_test.go calls it once wantedRoutes is filled.
func addCallerRoutes() {
	dssCiv := &Civility{BirthDate: birthDate, BirthCountry: "codeCogInseePaysNaissance",
		BirthPlaceInFrance: []string{"codeCogInseeCommuneNaissance", "nomCommuneNaissance", "codeCogInseeDepartementNaissance"}}
	dateOnly := &Civility{BirthDate: birthDate}
	for _, path := range wantedOrdered {
		w := wantedRoutes[path]
		if w.identity != "dss" || !strings.HasPrefix(path, "/v3/dss/") {
			continue
		}
		name := strings.TrimSuffix(strings.TrimPrefix(path, "/v3/dss/"), "/france_connect")
		r := callerRoute{id: "dss_" + name + "_identite", op: "api_particulier_v3_cnav_" + name + "_with_civility", provider: "CNAV",
			notFound: w.notFound, invalid: "00366", modality: ModalityIdentite, params: dssCallerParams, civility: dssCiv, scopes: w.scopes}
		if name == "quotient_familial" {
			r.params += " annee mois"
		}
		callerRoutes["/v3/dss/"+name+"/identite"] = r
	}
	for _, v := range []string{"v4", "v3"} {
		fc := wantedRoutes["/"+v+"/cnous/etudiant_boursier/france_connect"]
		scopes := append(slices.Clone(fc.scopes), s("cnous_identite", BasisDoc, "data.identite"))
		callerRoutes["/"+v+"/cnous/etudiant_boursier/identite"] = callerRoute{id: "cnous_etudiant_boursier_" + v + "_identite",
			op: "api_particulier_" + v + "_cnous_etudiant_boursier_with_civility", provider: "CNOUS", notFound: "26003", invalid: "00366",
			modality: ModalityIdentite, params: "nomNaissance!:name prenoms[]!3:name " + fullDateParams + " sexeEtatCivil:upper " + frenchPlace,
			civility: dateOnly, scopes: scopes}
		callerRoutes["/"+v+"/cnous/etudiant_boursier/ine"] = callerRoute{id: "cnous_etudiant_boursier_" + v + "_ine",
			op: "api_particulier_" + v + "_cnous_etudiant_boursier_with_ine", provider: "CNOUS", notFound: "26003", invalid: "00360",
			modality: ModalityIdentifiant, params: "ine!:upper", scopes: scopes}
	}
	mesri := append(slices.Clone(wantedRoutes["/v3/mesri/statut_etudiant/france_connect"].scopes), s("mesri_identite", BasisDoc, "data.identite"))
	callerRoutes["/v3/mesri/statut_etudiant/identite"] = callerRoute{id: "mesri_statut_etudiant_identite",
		op: "api_particulier_v3_mesri_statut_etudiant_with_civility", provider: "MESRI", notFound: "25003", invalid: "00366",
		modality: ModalityIdentite, params: "nomNaissance!:name prenoms[]!1:name " + fullDateParams + " sexeEtatCivil!:upper " + frenchPlace,
		civility: dateOnly, scopes: mesri}
	callerRoutes["/v3/mesri/statut_etudiant/ine"] = callerRoute{id: "mesri_statut_etudiant_ine", op: "api_particulier_v3_mesri_statut_etudiant_with_ine",
		provider: "MESRI", notFound: "25003", invalid: "00360", modality: ModalityIdentifiant, params: "ine!:upper", scopes: mesri}
	callerRoutes["/v3/dsnj/service_national/identite"] = callerRoute{id: "dsnj_service_national_identite",
		op: "api_particulier_v3_dsnj_service_national_with_civility", provider: "DSNJ", notFound: "39003", invalid: "00427", modality: ModalityIdentite,
		params:   "nomNaissance!:name prenoms[]!3:name " + fullDateParams + " sexeEtatCivil!:upper codeCogInseeCommuneNaissance:upper codeCogInseePaysNaissance!:upper",
		civility: &Civility{BirthDate: birthDate, BirthCountry: "codeCogInseePaysNaissance", BirthPlaceInFrance: []string{"codeCogInseeCommuneNaissance"}},
		scopes:   wantedRoutes["/v3/dsnj/service_national/france_connect"].scopes}
	callerRoutes["/v3/gip_mds/service_civique/identite"] = callerRoute{id: "gip_mds_service_civique_identite",
		op: "api_particulier_v3_gip_mds_service_civique_with_civility", provider: "GIP-MDS", notFound: "31003", invalid: "00391", modality: ModalityIdentite,
		params: "nomNaissance!:name prenoms[]!3:name " + fullDateParams, civility: dateOnly,
		scopes: wantedRoutes["/v3/gip_mds/service_civique/france_connect"].scopes}
	men := []scopeWant{s("men_statut_identite", BasisDer, "data.identite"),
		s("men_statut_scolarite", BasisDer, "data.annee_scolaire", "data.est_scolarise", "data.statut_eleve"),
		s("men_statut_etablissement", BasisDer, "data.etablissement"),
		s("men_statut_module_elementaire_formation", BasisDer, "data.module_elementaire_formation"),
		s("men_statut_boursier", BasisDer, "data.est_boursier"), s("men_echelon_bourse", BasisDer, "data.echelon_bourse")}
	for _, v := range []string{"v3", "v4"} {
		callerRoutes["/"+v+"/men/scolarites/identite"] = callerRoute{id: "men_scolarites_" + v + "_identite",
			op: "api_particulier_" + v + "_men_scolarites_with_civility", provider: "MEN", notFound: "30003", invalid: "00419", modality: ModalityIdentite,
			params: "nomNaissance!:name prenoms[]!3:name sexeEtatCivil!:upper " + fullDateParams +
				" codeEtablissement:upper anneeScolaire! degreEtablissement:upper codesBcnDepartements[]10:upper codesBcnRegions[]10",
			civility: dateOnly, scopes: men}
	}
	callerRoutes["/v3/france_travail/indemnites/identifiant"] = callerRoute{id: "france_travail_indemnites_identifiant",
		op: "api_particulier_v3_france_travail_indemnites_with_identifiant", provider: "France Travail", notFound: "24003", invalid: "00366",
		modality: ModalityIdentifiant, params: "identifiant!", scopes: []scopeWant{s("pole_emploi_paiements", BasisDer, "data.identifiant", "data.paiements")}}
	callerRoutes["/v3/france_travail/statut/identifiant"] = callerRoute{id: "france_travail_statut_identifiant",
		op: "api_particulier_v3_france_travail_statut_with_identifiant", provider: "France Travail", notFound: "24003", invalid: "00366",
		modality: ModalityIdentifiant, params: "identifiant!", scopes: []scopeWant{s("pole_emploi_identifiant", BasisDer, "data.identifiant"),
			s("pole_emploi_identite", BasisDer, "data.identite"), s("pole_emploi_contact", BasisDer, "data.contact"),
			s("pole_emploi_adresse", BasisDer, "data.adresse"), s("pole_emploi_inscription", BasisDer, "data.inscription")}}
	callerRoutes["/v3/sdh/statut_sportif/identifiant"] = callerRoute{id: "sdh_statut_sportif_identifiant",
		op: "api_particulier_v3_sdh_statut_sportif_with_identifiant", provider: "SDH", notFound: "41003", invalid: "00380",
		modality: ModalityIdentifiant, params: "identifiant!", scopes: []scopeWant{s("sdh_statut_sportif_identite", BasisDer, "data.identite"),
			s("sdh_statut_sportif_est_sportif_de_haut_niveau", BasisDer, "data.est_sportif_de_haut_niveau"),
			s("sdh_statut_sportif_a_ete_sportif_de_haut_niveau", BasisDer, "data.a_ete_sportif_de_haut_niveau"),
			s("sdh_statut_sportif_informations_statut", BasisDer, "data.informations_statut").alias("sdh_statut_sportif_informations"),
			s("sdh_statut_sportif_informations_statuts_precedents", BasisDer, "data.informations_statuts_precedents").alias("sdh_statut_sportif_informations_historique")}}
}

// TestCallerRoutes: every v3/v4 route where the caller gives the citizen
// (DOMAIN.md §4: the /identite and /ine twins, MEN, France Travail, SDH) is
// in the default catalogue, and nothing else, with its modality, provider,
// codes, parameters, civility checks and masks; every scope name and alias
// resolves to its scope.
func TestCallerRoutes(t *testing.T) {
	c := mustDefault(t)
	n := 0
	for i := range c.Endpoints {
		if ep := &c.Endpoints[i]; ep.Modality.CallerGivesIdentity() && ep.API == APIv3 {
			n++
			if _, ok := callerRoutes[ep.Path]; !ok {
				t.Errorf("%s (%s) is not an expected route", ep.ID, ep.Path)
			}
		}
	}
	if n != len(callerRoutes) || n != 21 {
		t.Errorf("%d identite/identifiant endpoints, want %d (21)", n, len(callerRoutes))
	}
	for path, w := range callerRoutes {
		t.Run(w.id, func(t *testing.T) {
			ep := lookupBoth(t, c, path, w.id)
			if ep.OperationID != w.op || ep.Modality != w.modality || ep.ProviderName != w.provider || ep.UpstreamPath != path {
				t.Errorf("op/modality/provider/upstream = %s %s %s %s", ep.OperationID, ep.Modality, ep.ProviderName, ep.UpstreamPath)
			}
			if ep.Provider.ErrorPrefix != providerPrefixes[w.provider] {
				t.Errorf("provider prefix %s, want %s", ep.Provider.ErrorPrefix, providerPrefixes[w.provider])
			}
			if p, name := ep.NotFoundError(); p+"003" != w.notFound || providerPrefixes[name] != p {
				t.Errorf("not-found code %s003 (%s), want %s", p, name, w.notFound)
			}
			if ep.InvalidCode != w.invalid || ep.API != APIv3 || ep.Method != "GET" || !ep.RecipientRequired() || len(ep.Identity) != 0 {
				t.Errorf("invalid_code/api/method/recipient/identity = %s %s %s %s %v", ep.InvalidCode, ep.API, ep.Method, ep.Recipient, ep.Identity)
			}
			want := parseParamSpec(w.params)
			var got []paramWant
			for _, p := range ep.Params {
				got = append(got, paramWant{name: p.Name, normalize: p.Normalize, required: p.Required, max: p.Max})
			}
			if !slices.Equal(got, want) {
				t.Errorf("params\n got %v\nwant %v", got, want)
			}
			if !civilityEqual(ep.Civility, w.civility) {
				t.Errorf("civility %+v, want %+v", ep.Civility, w.civility)
			}
			if len(ep.Scopes) != len(w.scopes) {
				t.Fatalf("%d scopes, want %d", len(ep.Scopes), len(w.scopes))
			}
			for i, ws := range w.scopes {
				got := &ep.Scopes[i]
				if got.Name != ws.name || !slices.Equal(got.Aliases, ws.aliases) || got.Basis != ws.basis || !releasesKeys(got.Fields, ws.fields) {
					t.Errorf("scope %d = %+v, want %+v", i, *got, ws)
				}
				for _, n := range got.Names() {
					if sc, ok := ep.Scope(n); !ok || sc != got {
						t.Errorf("Scope(%s) does not resolve to %s", n, got.Name)
					}
				}
			}
		})
	}
}

func civilityEqual(a, b *Civility) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.BirthDate, b.BirthDate) && a.BirthCountry == b.BirthCountry && slices.Equal(a.BirthPlaceInFrance, b.BirthPlaceInFrance)
}

// TestCallerRouteInvariants: the rules every identite/identifiant route
// follows, so that a route added to default.yaml is held to them.
func TestCallerRouteInvariants(t *testing.T) {
	c := mustDefault(t)
	suffix := map[string]string{"identite": "_with_civility", "ine": "_with_ine", "identifiant": "_with_identifiant"}
	pathRe := regexp.MustCompile(`^/(v[34])/[a-z_]+/[a-z_]+/(identite|ine|identifiant)$`)
	for i := range c.Endpoints {
		ep := &c.Endpoints[i]
		if !ep.Modality.CallerGivesIdentity() || ep.API != APIv3 {
			continue
		}
		t.Run(ep.ID, func(t *testing.T) {
			m := pathRe.FindStringSubmatch(ep.Path)
			if m == nil {
				t.Fatalf("path %s is not a v3/v4 identite/ine/identifiant route", ep.Path)
			}
			if !strings.HasPrefix(ep.OperationID, "api_particulier_"+m[1]+"_") || !strings.HasSuffix(ep.OperationID, suffix[m[2]]) {
				t.Errorf("operation_id %s does not name %s", ep.OperationID, ep.Path)
			}
			if (m[2] == "identite") != (ep.Modality == ModalityIdentite) {
				t.Errorf("modality %s on %s", ep.Modality, ep.Path)
			}
			if ep.Modality == ModalityIdentite && (ep.Civility == nil || len(ep.Civility.BirthDate) != 3) {
				t.Error("identite route without birth date checks")
			}
			if ep.Modality == ModalityIdentifiant && (len(ep.Params) != 1 || !ep.Params[0].Required || ep.Civility != nil) {
				t.Errorf("an identifiant route takes exactly one required parameter: %+v", ep.Params)
			}
			seen := map[string]bool{}
			for _, sc := range ep.Scopes {
				for _, f := range sc.Fields {
					if !strings.HasPrefix(f, "data.") || seen[f] {
						t.Errorf("%s releases %s (outside data or twice)", sc.Name, f)
					}
					seen[f] = true
				}
			}
			for _, p := range ep.Params {
				if p.Pattern == "" {
					t.Errorf("%s: no pattern", p.Name)
				}
			}
		})
	}
}

// TestCallerParamValues: caller values through normalisation and patterns,
// as the gateway checks them (Clean, then Valid).
func TestCallerParamValues(t *testing.T) {
	c := mustDefault(t)
	type v struct {
		in, clean string // clean "" = refused
	}
	for _, tc := range []struct {
		path, param string
		values      []v
	}{
		{"/v4/cnous/etudiant_boursier/ine", "ine", []v{{"1234567890G", "1234567890G"}, {"123456789ab", "123456789AB"}, {"0701234567x", "0701234567X"},
			{"1234567890", ""}, {"1234567890GG", ""}, {"12345-67890", ""}, {" 1234567890G", ""}, {"", ""}}},
		{"/v3/mesri/statut_etudiant/ine", "ine", []v{{"090123456hb", "090123456HB"}, {"090123456H%", ""}}},
		{"/v3/dss/quotient_familial/identite", "moisDateNaissance", []v{{"08", "8"}, {"8", "8"}, {"12", "12"}, {"00", ""}, {"13", ""}, {"+8", ""}}},
		{"/v3/dss/quotient_familial/identite", "jourDateNaissance", []v{{"09", "9"}, {"31", "31"}, {"0", ""}, {"32", ""}}},
		{"/v3/dss/quotient_familial/identite", "anneeDateNaissance", []v{{"1992", "1992"}, {"92", ""}, {"2100", ""}}},
		{"/v3/dss/quotient_familial/identite", "sexeEtatCivil", []v{{"m", "M"}, {"F", "F"}, {"X", ""}, {"male", ""}}},
		{"/v3/dss/quotient_familial/identite", "codeCogInseeCommuneNaissance", []v{{"2a004", "2A004"}, {"75117", "75117"}, {"2C004", ""}, {"7511", ""}}},
		{"/v3/dss/quotient_familial/identite", "codeCogInseeDepartementNaissance", []v{{"2b", "2B"}, {"971", "971"}, {"977", ""}}},
		{"/v3/dsnj/service_national/identite", "codeCogInseePaysNaissance", []v{{"99350", "99350"}, {"99100", "99100"}, {"98100", ""}}},
		{"/v3/mesri/statut_etudiant/identite", "prenoms[]", []v{{"Joëlle", "JOËLLE"}, {"jean  pierre", "JEAN PIERRE"}, {"J0", ""}}},
		{"/v3/men/scolarites/identite", "codeEtablissement", []v{{"0754321k", "0754321K"}, {"0210015C", "0210015C"}, {"021001C", ""}}},
		{"/v4/men/scolarites/identite", "anneeScolaire", []v{{"2025", "2025"}, {"2025-2026", "2025-2026"}, {"25-26", ""}, {"2025/2026", ""}}},
		{"/v4/men/scolarites/identite", "degreEtablissement", []v{{"2d", "2D"}, {"1D", "1D"}, {"3D", ""}}},
		{"/v4/men/scolarites/identite", "codesBcnDepartements[]", []v{{"075", "075"}, {"02a", "02A"}, {"75", ""}}},
		{"/v4/men/scolarites/identite", "codesBcnRegions[]", []v{{"11", "11"}, {"1", ""}}},
		{"/v3/france_travail/statut/identifiant", "identifiant", []v{{"jean.dupont33", "jean.dupont33"}, {"1234567A", "1234567A"}, {"a b", ""}, {"", ""}, {".x", ""}}},
		{"/v3/sdh/statut_sportif/identifiant", "identifiant", []v{{"123456789", "123456789"}, {"12-34", ""}}},
	} {
		ep, ok := c.Lookup(tc.path)
		if !ok {
			t.Fatalf("%s missing", tc.path)
		}
		p, ok := ep.Param(tc.param)
		if !ok {
			t.Fatalf("%s: no parameter %s", tc.path, tc.param)
		}
		for _, val := range tc.values {
			clean := p.Clean(val.in)
			if valid := p.Valid(clean); valid != (val.clean != "") || valid && clean != val.clean {
				t.Errorf("%s %s=%q: cleaned %q valid %v, want %q", tc.path, tc.param, val.in, clean, valid, val.clean)
			}
		}
	}
}

// lookupBoth returns the endpoint of path, and checks that id names the
// same one.
