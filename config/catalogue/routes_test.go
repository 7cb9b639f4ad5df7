package catalogue

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// route is what DOMAIN.md §4–§6 says of one FranceConnect route.
type route struct {
	id, op, provider, upstream string
	prefix, notFound           string // error prefix; not-found code
	identity                   string // key of identitySets
	params                     []string
	scopes                     []scopeWant
}

type scopeWant struct {
	name    string
	aliases []string
	basis   Basis
	fields  []string
}

func s(name string, basis Basis, fields ...string) scopeWant {
	return scopeWant{name: name, basis: basis, fields: fields}
}

func (w scopeWant) alias(a ...string) scopeWant { w.aliases = a; return w }

// releasesKeys reports whether a scope's leaf paths are exactly the leaves
// of keys, the keys DOMAIN.md §5 says it releases (data.allocataires):
// every field is a key or under one (data.allocataires[].sexe), every key
// has a field, in the order of keys.
func releasesKeys(fields, keys []string) bool {
	k := 0
	for _, f := range fields {
		for k < len(keys) && !under(keys[k], f) {
			k++
		}
		if k == len(keys) {
			return false
		}
	}
	for _, key := range keys {
		if !slices.ContainsFunc(fields, func(f string) bool { return under(key, f) }) {
			return false
		}
	}
	return true
}

// under reports whether the response path field is key or a path under it.
func under(key, field string) bool {
	rest, ok := strings.CutPrefix(field, key)
	return ok && (rest == "" || rest[0] == '.' || rest[0] == '[')
}

var (
	dssIdentity   = []string{"nomNaissance", "prenoms[]", "anneeDateNaissance", "moisDateNaissance", "jourDateNaissance", "sexeEtatCivil", "codeCogInseePaysNaissance", "codeCogInseeCommuneNaissance"}
	identitySets  = map[string][]string{"dss": dssIdentity, "dsnj": dssIdentity, "ants": dssIdentity, "cnous": {"nomNaissance", "prenoms", "anneeDateNaissance", "moisDateNaissance", "jourDateNaissance", "sexeEtatCivil", "codeCogInseeCommuneNaissance"}, "mesri": {"nomNaissance", "prenoms[]", "anneeDateNaissance", "moisDateNaissance", "jourDateNaissance", "sexeEtatCivil", "codeCogInseeCommuneNaissance"}, "gip_mds": {"nomNaissance", "prenoms[]", "anneeDateNaissance", "moisDateNaissance", "jourDateNaissance"}}
	benefit       = []string{"data.est_beneficiaire", "data.date_debut_droit"}
	cnousCommon   = []scopeWant{s("cnous_echelon_bourse", BasisDoc, "data.echelon_bourse"), s("cnous_email", BasisDoc, "data.email"), s("cnous_periode_versement", BasisDoc, "data.periode_versement_bourse"), s("cnous_ville_etudes", BasisDoc, "data.etablissement_etudes")}
	wantedRoutes  = map[string]route{}
	wantedOrdered []string
)

func want(path string, r route) {
	wantedRoutes[path] = r
	wantedOrdered = append(wantedOrdered, path)
}

func init() {
	dss := func(name string, scopes ...scopeWant) route {
		return route{id: "dss_" + name + "_fc", op: "api_particulier_v3_cnav_" + name + "_with_france_connect", provider: "CNAV",
			upstream: "/v3/dss/" + name + "/identite", prefix: "37", notFound: "37003", identity: "dss", scopes: scopes}
	}
	qf := dss("quotient_familial", s("cnaf_quotient_familial", BasisDoc, "data.quotient_familial"), s("cnaf_allocataires", BasisDoc, "data.allocataires"),
		s("cnaf_enfants", BasisDoc, "data.enfants"), s("cnaf_adresse", BasisDoc, "data.adresse"))
	qf.params = []string{"annee", "mois"}
	want("/v3/dss/quotient_familial/france_connect", qf)
	want("/v3/dss/participation_familiale_eaje/france_connect", dss("participation_familiale_eaje",
		s("cnav_participation_familiale_eaje_allocataires", BasisDoc, "data.allocataires").alias("eaje_allocataires"),
		s("cnav_participation_familiale_eaje_enfants", BasisDoc, "data.enfants").alias("eaje_enfants"),
		s("cnav_participation_familiale_eaje_adresse", BasisDoc, "data.adresse").alias("eaje_adresse"),
		s("cnav_participation_familiale_eaje_parametres_calcul", BasisDoc, "data.parametres_calcul_participation_familiale").alias("eaje_parametres_calcul_participation_familial")))
	c2s := dss("complementaire_sante_solidaire", s("complementaire_sante_solidaire", BasisDoc, "data.est_beneficiaire", "data.avec_participation", "data.date_debut_droit"))
	c2s.notFound = "40003"
	want("/v3/dss/complementaire_sante_solidaire/france_connect", c2s)
	want("/v3/dss/revenu_solidarite_active/france_connect", dss("revenu_solidarite_active",
		s("revenu_solidarite_active", BasisDoc, "data.est_beneficiaire", "data.date_debut_droit"),
		s("revenu_solidarite_active_majoration", BasisDoc, "data.avec_majoration")))
	want("/v3/dss/prime_activite/france_connect", dss("prime_activite",
		s("prime_activite", BasisDoc, benefit...), s("prime_activite_majoration", BasisDoc, "data.avec_majoration")))
	want("/v3/dss/allocation_soutien_familial/france_connect", dss("allocation_soutien_familial", s("allocation_soutien_familial", BasisDoc, benefit...)))
	want("/v3/dss/allocation_adulte_handicape/france_connect", dss("allocation_adulte_handicape", s("allocation_adulte_handicape", BasisDoc, benefit...)))
	want("/v3/dss/allocation_enfant_handicape/france_connect", dss("allocation_enfant_handicape",
		s("cnav_allocation_enfant_handicape", BasisDer, "data.status", "data.date_debut_droit").alias("allocation_enfant_handicape")))
	for _, v := range []string{"v4", "v3"} {
		statut := s("cnous_statut_boursier", BasisDoc, "data.statut_boursier")
		if v == "v3" {
			statut = s("cnous_statut_boursier", BasisDoc, "data.est_boursier")
		}
		want("/"+v+"/cnous/etudiant_boursier/france_connect", route{id: "cnous_etudiant_boursier_" + v + "_fc",
			op: "api_particulier_" + v + "_cnous_etudiant_boursier_with_france_connect", provider: "CNOUS", prefix: "26", notFound: "26003",
			upstream: "/" + v + "/cnous/etudiant_boursier/identite", identity: "cnous", scopes: append([]scopeWant{statut}, cnousCommon...)})
	}
	want("/v3/mesri/statut_etudiant/france_connect", route{id: "mesri_statut_etudiant_fc", op: "api_particulier_v3_mesri_statut_etudiant_with_france_connect",
		provider: "MESRI", prefix: "25", notFound: "25003", upstream: "/v3/mesri/statut_etudiant/identite", identity: "mesri", scopes: []scopeWant{
			s("mesri_admissions", BasisDoc, "data.admissions[].date_debut", "data.admissions[].date_fin"),
			s("mesri_admission_inscrit", BasisDoc, "data.admissions[].est_inscrit").alias("mesri_inscription"),
			s("mesri_admission_commune_etudes", BasisDoc, "data.admissions[].code_cog_insee_commune"),
			s("mesri_admission_regime_formation", BasisDoc, "data.admissions[].regime_formation").alias("mesri_regime"),
			s("mesri_admission_etablissement_etudes", BasisDoc, "data.admissions[].etablissement_etudes").alias("mesri_admission_etablissement_etude", "mesri_etablissements"),
		}})
	want("/v3/dsnj/service_national/france_connect", route{id: "dsnj_service_national_fc", op: "api_particulier_v3_dsnj_service_national_with_france_connect",
		provider: "DSNJ", prefix: "39", notFound: "39003", upstream: "/v3/dsnj/service_national/identite", identity: "dsnj", scopes: []scopeWant{
			s("dsnj_statut_service_national", BasisDoc, "data.statut_service_national", "data.commentaires")}})
	want("/v3/gip_mds/service_civique/france_connect", route{id: "gip_mds_service_civique_fc", op: "api_particulier_v3_gip_mds_service_civique_with_france_connect",
		provider: "GIP-MDS", prefix: "31", notFound: "31003", upstream: "/v3/gip_mds/service_civique/identite", identity: "gip_mds", scopes: []scopeWant{
			s("gip_mds_service_civique_statut_actuel", BasisDoc, "data.statut_actuel.contrat_trouve").alias("service_civique_actuel"),
			s("gip_mds_service_civique_statut_passe", BasisDoc, "data.statut_passe.contrat_trouve").alias("service_civique_passe"),
			s("gip_mds_service_civique_organisme_accueil", BasisDoc, "data.statut_actuel.organisme_accueil", "data.statut_passe.organisme_accueil"),
			s("gip_mds_service_civique_dates", BasisDoc, "data.statut_actuel.date_debut_contrat", "data.statut_actuel.date_fin_contrat",
				"data.statut_passe.date_debut_contrat", "data.statut_passe.date_fin_contrat"),
		}})
	// The holder's identity and its match scores with identite_particulier,
	// the match verdict alone with the others.
	ants := []scopeWant{s("ants_extrait_immatriculation_vehicule_identite_particulier", BasisDer, "data.identite_particulier", "meta.identity_matching")}
	for _, k := range []string{"adresse_particulier", "statut_rattachement", "donnees_immatriculation_vehicule", "caracteristiques_techniques_vehicule"} {
		ants = append(ants, s("ants_extrait_immatriculation_vehicule_"+k, BasisDer, "data."+k, "meta.identity_matching.overall_match"))
	}
	want("/v3/ants/extrait_immatriculation_vehicule/france_connect", route{id: "ants_extrait_immatriculation_vehicule_fc",
		op: "api_particulier_v3_ants_extrait_immatriculation_vehicule_with_france_connect", provider: "ANTS", prefix: "42", notFound: "42003",
		upstream: "/v3/ants/extrait_immatriculation_vehicule/identite", identity: "ants", params: []string{"immatriculation"}, scopes: ants})
	addCallerRoutes() // caller_routes_test.go: derived from the routes above
}

func mustDefault(t *testing.T) *Catalogue {
	t.Helper()
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDefaultCatalogueRoutes: every v3/v4 FranceConnect route of DOMAIN.md
// §4 is in the default catalogue, and nothing else, with its provider, codes,
// provider path, identity parameters, pass-through parameters and masks. The
// legacy v2 routes are checked by TestV2Routes.
func TestDefaultCatalogueRoutes(t *testing.T) {
	c := mustDefault(t)
	fc := 0
	for i := range c.Endpoints {
		if c.Endpoints[i].Modality == ModalityFranceConnect && c.Endpoints[i].API == APIv3 {
			fc++
		}
	}
	if fc != len(wantedRoutes) {
		t.Errorf("%d FranceConnect endpoints, want %d", fc, len(wantedRoutes))
	}
	for _, path := range wantedOrdered {
		w := wantedRoutes[path]
		t.Run(w.id, func(t *testing.T) {
			ep := lookupBoth(t, c, path, w.id)
			if ep.OperationID != w.op || ep.ProviderName != w.provider || ep.Provider.ErrorPrefix != w.prefix || ep.UpstreamPath != w.upstream {
				t.Errorf("op/provider/prefix/upstream = %s %s %s %s", ep.OperationID, ep.ProviderName, ep.Provider.ErrorPrefix, ep.UpstreamPath)
			}
			if p, n := ep.NotFoundError(); p+"003" != w.notFound || n == "" {
				t.Errorf("not-found code %s003 (%s), want %s", p, n, w.notFound)
			}
			if ep.Method != "GET" || ep.Modality != ModalityFranceConnect || ep.MinACR != "eidas1" || !ep.RecipientRequired() {
				t.Errorf("method/modality/acr/recipient = %s %s %s %s", ep.Method, ep.Modality, ep.MinACR, ep.Recipient)
			}
			var params []string
			for _, ip := range ep.Identity {
				params = append(params, ip.Param)
			}
			if !slices.Equal(params, identitySets[w.identity]) {
				t.Errorf("identity params %v, want %v", params, identitySets[w.identity])
			}
			var passed []string
			for _, p := range ep.Params {
				passed = append(passed, p.Name)
			}
			if !slices.Equal(passed, w.params) {
				t.Errorf("pass-through params %v, want %v", passed, w.params)
			}
			if len(ep.Scopes) != len(w.scopes) {
				t.Fatalf("%d scopes, want %d", len(ep.Scopes), len(w.scopes))
			}
			for i, ws := range w.scopes {
				got := ep.Scopes[i]
				if got.Name != ws.name || !slices.Equal(got.Aliases, ws.aliases) || got.Basis != ws.basis || !releasesKeys(got.Fields, ws.fields) {
					t.Errorf("scope %d = %+v, want %+v", i, got, ws)
				}
			}
		})
	}
}

// TestDefaultCatalogueInvariants checks the rules every route follows, so
// that a route added to default.yaml is held to them without a test change.
func TestDefaultCatalogueInvariants(t *testing.T) {
	c := mustDefault(t)
	pathRe := regexp.MustCompile(`^/(v[34])/([a-z_]+)/([a-z_]+)/france_connect$`)
	for i := range c.Endpoints {
		ep := &c.Endpoints[i]
		if ep.Modality != ModalityFranceConnect || ep.API == APIv2 {
			continue // TestIdentiteRoutesMirrorTheirTwin, TestV2Routes
		}
		t.Run(ep.ID, func(t *testing.T) {
			m := pathRe.FindStringSubmatch(ep.Path)
			if m == nil {
				t.Fatalf("path %s is not a v3/v4 FranceConnect route", ep.Path)
			}
			if !strings.HasPrefix(ep.OperationID, "api_particulier_"+m[1]+"_") || !strings.HasSuffix(ep.OperationID, "_"+m[3]+"_with_france_connect") {
				t.Errorf("operation_id %s does not name %s", ep.OperationID, ep.Path)
			}
			if ep.UpstreamPath != strings.TrimSuffix(ep.Path, "/france_connect")+"/identite" {
				t.Errorf("upstream_path %s is not the /identite twin", ep.UpstreamPath)
			}
			if ep.Provider.ErrorPrefix == "" || !strings.HasSuffix(ep.ID, "_fc") {
				t.Errorf("provider %q / id %q", ep.ProviderName, ep.ID)
			}
			seen := map[string]bool{}
			for _, sc := range ep.Scopes {
				for _, f := range sc.Fields {
					if strings.HasPrefix(f, "meta.identity_matching") && ep.ProviderName == "ANTS" {
						continue // every ANTS scope, its verdict at least: the official schema requires it
					}
					if !strings.HasPrefix(f, "data.") {
						t.Errorf("%s releases %s, outside data", sc.Name, f)
					}
					if seen[f] {
						t.Errorf("%s released by two scopes", f)
					}
					seen[f] = true
				}
				for _, n := range sc.Names() {
					if got, ok := ep.Scope(n); !ok || got.Name != sc.Name {
						t.Errorf("Scope(%s) = %v, %v", n, got, ok)
					}
				}
			}
			if _, ok := ep.Scope("cnous_identite"); ok {
				t.Error("an identity scope is listed")
			}
			if _, ok := ep.Scope("openid"); ok {
				t.Error("Scope(openid) found")
			}
		})
	}
}

// Alias resolution across routes: a name resolves to the scope of that
// route only.
func TestAliasResolution(t *testing.T) {
	c := mustDefault(t)
	for _, tc := range []struct{ path, name, want string }{
		{"/v3/dss/participation_familiale_eaje/france_connect", "eaje_allocataires", "cnav_participation_familiale_eaje_allocataires"},
		{"/v3/dss/participation_familiale_eaje/france_connect", "eaje_parametres_calcul_participation_familial", "cnav_participation_familiale_eaje_parametres_calcul"},
		{"/v3/dss/participation_familiale_eaje/france_connect", "cnav_participation_familiale_eaje_enfants", "cnav_participation_familiale_eaje_enfants"},
		{"/v3/dss/allocation_enfant_handicape/france_connect", "allocation_enfant_handicape", "cnav_allocation_enfant_handicape"},
		{"/v3/mesri/statut_etudiant/france_connect", "mesri_admission_etablissement_etude", "mesri_admission_etablissement_etudes"},
		{"/v3/mesri/statut_etudiant/france_connect", "mesri_etablissements", "mesri_admission_etablissement_etudes"},
		{"/v3/mesri/statut_etudiant/france_connect", "mesri_inscription", "mesri_admission_inscrit"},
		{"/v3/mesri/statut_etudiant/france_connect", "mesri_regime", "mesri_admission_regime_formation"},
		{"/v3/gip_mds/service_civique/france_connect", "service_civique_actuel", "gip_mds_service_civique_statut_actuel"},
		{"/v3/gip_mds/service_civique/france_connect", "service_civique_passe", "gip_mds_service_civique_statut_passe"},
		{"/v4/cnous/etudiant_boursier/france_connect", "cnous_statut_boursier", "cnous_statut_boursier"},
		{"/v3/dss/quotient_familial/france_connect", "eaje_enfants", ""},
		{"/v3/dss/quotient_familial/france_connect", "cnaf_enfants", "cnaf_enfants"},
		{"/v4/cnous/etudiant_boursier/france_connect", "cnous_identite", ""},
		{"/v4/cnous/etudiant_boursier/france_connect", "cnous_statut_bourse", ""},
		{"/v3/mesri/statut_etudiant/france_connect", "mesri_identite", ""},
		{"/v3/mesri/statut_etudiant/france_connect", "MESRI_REGIME", ""},
		// Routes where the caller gives the citizen: identity scopes, and the
		// FranceConnect routes' aliases kept.
		{"/v4/cnous/etudiant_boursier/identite", "cnous_identite", "cnous_identite"},
		{"/v4/cnous/etudiant_boursier/ine", "cnous_identite", "cnous_identite"},
		{"/v3/cnous/etudiant_boursier/ine", "cnous_statut_boursier", "cnous_statut_boursier"},
		{"/v4/cnous/etudiant_boursier/ine", "cnous_statut_bourse", ""},
		{"/v4/cnous/etudiant_boursier/ine", "cnous_ine", ""},
		{"/v3/mesri/statut_etudiant/identite", "mesri_identite", "mesri_identite"},
		{"/v3/mesri/statut_etudiant/ine", "mesri_etablissements", "mesri_admission_etablissement_etudes"},
		{"/v3/mesri/statut_etudiant/ine", "mesri_admission_etablissement_etude", "mesri_admission_etablissement_etudes"},
		{"/v3/mesri/statut_etudiant/identite", "mesri_inscription", "mesri_admission_inscrit"},
		{"/v3/mesri/statut_etudiant/ine", "cnous_identite", ""},
		{"/v3/gip_mds/service_civique/identite", "service_civique_passe", "gip_mds_service_civique_statut_passe"},
		{"/v3/dss/participation_familiale_eaje/identite", "eaje_enfants", "cnav_participation_familiale_eaje_enfants"},
		{"/v3/dss/allocation_enfant_handicape/identite", "allocation_enfant_handicape", "cnav_allocation_enfant_handicape"},
		{"/v3/sdh/statut_sportif/identifiant", "sdh_statut_sportif_informations", "sdh_statut_sportif_informations_statut"},
		{"/v3/sdh/statut_sportif/identifiant", "sdh_statut_sportif_informations_historique", "sdh_statut_sportif_informations_statuts_precedents"},
		{"/v3/france_travail/statut/identifiant", "pole_emploi_paiements", ""},
		{"/v3/france_travail/indemnites/identifiant", "pole_emploi_paiements", "pole_emploi_paiements"},
		{"/v3/france_travail/indemnites/identifiant", "pole_emploi_identite", ""},
		{"/v3/men/scolarites/identite", "men_statut_identite", "men_statut_identite"},
		{"/v4/men/scolarites/identite", "mesri_identite", ""},
	} {
		ep, ok := c.Lookup(tc.path)
		if !ok {
			t.Fatalf("%s missing", tc.path)
		}
		got := ""
		if sc, ok := ep.Scope(tc.name); ok {
			got = sc.Name
		}
		if got != tc.want {
			t.Errorf("%s: Scope(%s) = %q, want %q", tc.path, tc.name, got, tc.want)
		}
	}
}

// TestIdentityMappingPerRoute maps FranceConnect test identities (DOMAIN.md
// §3) through every route of the default catalogue.
func TestIdentityMappingPerRoute(t *testing.T) {
	c := mustDefault(t)
	angela := Pivot{FamilyName: "DUBOIS", GivenName: "Angela Claire Louise", Gender: "female", Birthdate: "1962-08-24", Birthplace: "75107", Birthcountry: "99100"}
	joelle := Pivot{FamilyName: "DUBINÔRE", GivenName: "Joëlle Françoise", Gender: "female", Birthdate: "1992-08-15", Birthplace: "75117", Birthcountry: "99100"}
	vincent := Pivot{FamilyName: "MARTIN", GivenName: "Vincent Guillaume", Gender: "male", Birthdate: "1963-12-05", Birthplace: "", Birthcountry: "99352"}
	type q = url.Values
	sets := map[string]map[*Pivot]url.Values{
		"dss": {
			&angela: q{"nomNaissance": {"DUBOIS"}, "prenoms[]": {"Angela", "Claire", "Louise"}, "anneeDateNaissance": {"1962"}, "moisDateNaissance": {"8"}, "jourDateNaissance": {"24"},
				"sexeEtatCivil": {"F"}, "codeCogInseePaysNaissance": {"99100"}, "codeCogInseeCommuneNaissance": {"75107"}},
			&joelle: q{"nomNaissance": {"DUBINÔRE"}, "prenoms[]": {"Joëlle", "Françoise"}, "anneeDateNaissance": {"1992"}, "moisDateNaissance": {"8"}, "jourDateNaissance": {"15"},
				"sexeEtatCivil": {"F"}, "codeCogInseePaysNaissance": {"99100"}, "codeCogInseeCommuneNaissance": {"75117"}},
			&vincent: q{"nomNaissance": {"MARTIN"}, "prenoms[]": {"Vincent", "Guillaume"}, "anneeDateNaissance": {"1963"}, "moisDateNaissance": {"12"}, "jourDateNaissance": {"5"},
				"sexeEtatCivil": {"M"}, "codeCogInseePaysNaissance": {"99352"}},
		},
		"cnous": {
			&angela: q{"nomNaissance": {"DUBOIS"}, "prenoms": {"Angela, Claire, Louise"}, "anneeDateNaissance": {"1962"}, "moisDateNaissance": {"8"}, "jourDateNaissance": {"24"},
				"sexeEtatCivil": {"F"}, "codeCogInseeCommuneNaissance": {"75107"}},
			&joelle: q{"nomNaissance": {"DUBINÔRE"}, "prenoms": {"Joëlle, Françoise"}, "anneeDateNaissance": {"1992"}, "moisDateNaissance": {"8"}, "jourDateNaissance": {"15"},
				"sexeEtatCivil": {"F"}, "codeCogInseeCommuneNaissance": {"75117"}},
			&vincent: q{"nomNaissance": {"MARTIN"}, "prenoms": {"Vincent, Guillaume"}, "anneeDateNaissance": {"1963"}, "moisDateNaissance": {"12"}, "jourDateNaissance": {"5"},
				"sexeEtatCivil": {"M"}},
		},
		"mesri": {
			&angela: q{"nomNaissance": {"DUBOIS"}, "prenoms[]": {"Angela"}, "anneeDateNaissance": {"1962"}, "moisDateNaissance": {"8"}, "jourDateNaissance": {"24"},
				"sexeEtatCivil": {"F"}, "codeCogInseeCommuneNaissance": {"75107"}},
			&joelle: q{"nomNaissance": {"DUBINÔRE"}, "prenoms[]": {"Joëlle"}, "anneeDateNaissance": {"1992"}, "moisDateNaissance": {"8"}, "jourDateNaissance": {"15"},
				"sexeEtatCivil": {"F"}, "codeCogInseeCommuneNaissance": {"75117"}},
			&vincent: q{"nomNaissance": {"MARTIN"}, "prenoms[]": {"Vincent"}, "anneeDateNaissance": {"1963"}, "moisDateNaissance": {"12"}, "jourDateNaissance": {"5"},
				"sexeEtatCivil": {"M"}},
		},
		"gip_mds": {
			&angela:  q{"nomNaissance": {"DUBOIS"}, "prenoms[]": {"Angela", "Claire", "Louise"}, "anneeDateNaissance": {"1962"}, "moisDateNaissance": {"8"}, "jourDateNaissance": {"24"}},
			&joelle:  q{"nomNaissance": {"DUBINÔRE"}, "prenoms[]": {"Joëlle", "Françoise"}, "anneeDateNaissance": {"1992"}, "moisDateNaissance": {"8"}, "jourDateNaissance": {"15"}},
			&vincent: q{"nomNaissance": {"MARTIN"}, "prenoms[]": {"Vincent", "Guillaume"}, "anneeDateNaissance": {"1963"}, "moisDateNaissance": {"12"}, "jourDateNaissance": {"5"}},
		},
	}
	sets["dsnj"], sets["ants"] = sets["dss"], sets["dss"]
	for _, path := range wantedOrdered {
		w := wantedRoutes[path]
		ep, ok := c.Lookup(path)
		if !ok {
			t.Fatalf("%s missing", path)
		}
		for p, wantQ := range sets[w.identity] {
			got, err := ep.IdentityQuery(p)
			if err != nil {
				t.Errorf("%s(%s): %v", w.id, p.FamilyName, err)
				continue
			}
			if got.Encode() != wantQ.Encode() {
				t.Errorf("%s(%s) = %s\nwant %s", w.id, p.FamilyName, got.Encode(), wantQ.Encode())
			}
		}
		// Every mapping refuses an unusable identity rather than guessing.
		if _, err := ep.IdentityQuery(&Pivot{FamilyName: "X", GivenName: "Y", Gender: "unspecified", Birthdate: "24/08/1962", Birthcountry: "99100", Birthplace: "75107"}); err == nil {
			t.Errorf("%s: unusable identity accepted", w.id)
		}
	}
	// Presumed birth dates: unknown parts are left out on every route.
	ep, _ := c.Lookup("/v4/cnous/etudiant_boursier/france_connect")
	got, err := ep.IdentityQuery(&Pivot{FamilyName: "HUCHE", GivenName: "Anne-Laure", Gender: "female", Birthdate: "1945-00-00", Birthplace: "31555", Birthcountry: "99100"})
	if err != nil || got.Encode() != "anneeDateNaissance=1945&codeCogInseeCommuneNaissance=31555&nomNaissance=HUCHE&prenoms=Anne-Laure&sexeEtatCivil=F" {
		t.Errorf("presumed date: %s, %v", got.Encode(), err)
	}
}

// TestImmatriculationPattern: SIV and FNI plates, upper case only.
func TestImmatriculationPattern(t *testing.T) {
	ep, ok := mustDefault(t).Lookup("/v3/ants/extrait_immatriculation_vehicule/france_connect")
	if !ok {
		t.Fatal("ANTS route missing")
	}
	p, ok := ep.Param("immatriculation")
	if !ok || !p.Required {
		t.Fatalf("immatriculation param = %+v, %v", p, ok)
	}
	for _, v := range []string{"AB-123-CD", "AB123CD", "GH-416-TD", "WW-001-AA", "XX-404-FC", "1234 AB 24", "1234AB24", "123-ABC-2A", "12 A 971", "9999 ZZZ 95", "1 A 01"} {
		if !p.Valid(v) {
			t.Errorf("%q refused", v)
		}
	}
	for _, v := range []string{"", "ab-123-cd", "AI-123-CD", "AB-123-CO", "UB-123-CD", "AB-12-CD", "AB-1234-CD", "AB-123-CD ", " AB-123-CD", "AB--123-CD",
		"AB_123_CD", "1234 AB 96", "12345 AB 75", "1234 ABCD 75", "1234 AB 00", "1234 AB 977", "1234 AB 2C", "AB-123-CD\n", "1234 ab 24", "AB-123-CD&x=1"} {
		if p.Valid(v) {
			t.Errorf("%q accepted", v)
		}
	}
}

func TestNotFoundError(t *testing.T) {
	c := mustDefault(t)
	for path, want := range map[string][2]string{
		"/v3/dss/complementaire_sante_solidaire/france_connect": {"40", "RNCPS"},
		"/v3/dss/quotient_familial/france_connect":              {"37", "CNAV"},
		"/v3/gip_mds/service_civique/france_connect":            {"31", "GIP-MDS"},
	} {
		ep, _ := c.Lookup(path)
		if p, n := ep.NotFoundError(); p != want[0] || n != want[1] {
			t.Errorf("%s: NotFoundError = %s %s, want %v", path, p, n, want)
		}
	}
}

// TestIdentiteRoutesMirrorTheirTwin: a route where the caller gives the
// citizen (identite, identifiant) takes no identity mapping and calls its
// own path; when it has a FranceConnect twin, it has the twin's provider
// and every scope of the twin with the same aliases and fields (it may add
// the identity scope); an identite twin calls the provider path the twin
// calls. Names are normalised the same way on every identite route.
func TestIdentiteRoutesMirrorTheirTwin(t *testing.T) {
	c := mustDefault(t)
	n := 0
	for i := range c.Endpoints {
		ep := &c.Endpoints[i]
		if !ep.Modality.CallerGivesIdentity() {
			continue
		}
		n++
		if ep.UpstreamPath != ep.Path || len(ep.Identity) != 0 {
			t.Errorf("%s: upstream %s identity %v", ep.ID, ep.UpstreamPath, ep.Identity)
		}
		base := ep.Path[:strings.LastIndexByte(ep.Path, '/')] + "/france_connect"
		if ep.API == APIv2 {
			base = ep.Path // legacy v2: both modalities on one path
		}
		if twin, ok := c.Lookup(base); ok && twin.Modality == ModalityFranceConnect {
			if ep.ProviderName != twin.ProviderName {
				t.Errorf("%s: provider %s, twin's %s", ep.ID, ep.ProviderName, twin.ProviderName)
			}
			if ep.Modality == ModalityIdentite && ep.UpstreamPath != twin.UpstreamPath {
				t.Errorf("%s: upstream %s, twin's %s", ep.ID, ep.UpstreamPath, twin.UpstreamPath)
			}
			for j := range twin.Scopes {
				ts := &twin.Scopes[j]
				if sc, ok := ep.Scope(ts.Name); !ok || sc.Name != ts.Name || !slices.Equal(sc.Fields, ts.Fields) || !slices.Equal(sc.Aliases, ts.Aliases) {
					t.Errorf("%s: scope %s differs from the twin's", ep.ID, ts.Name)
				}
			}
		} else if !slices.Contains([]string{"MEN", "France Travail", "SDH"}, ep.ProviderName) {
			t.Errorf("%s: no FranceConnect twin", ep.ID)
		}
		if ep.Modality != ModalityIdentite || len(ep.OneOf) > 0 {
			continue // v2 student routes: nom, prenom(s), dateDeNaissance, or an INE
		}
		p, ok := ep.Param("prenoms[]")
		if !ok || !p.Required || !p.Valid(p.Clean("  Jean   Pierre ")) || p.Clean("  Jean   Pierre ") != "JEAN PIERRE" {
			t.Errorf("%s: prenoms[] missing, optional or badly normalised", ep.ID)
		}
		nom, _ := ep.Param("nomNaissance")
		for v, ok := range map[string]bool{"DUBINÔRE": true, "TROIS-DUPRE": true, "D'ARTAGNAN": true, "": false, "DUPONT1": false, "-DUPONT": false, "<script>": false} {
			if nom.Valid(nom.Clean(v)) != ok {
				t.Errorf("%s: nomNaissance %q valid = %v", ep.ID, v, !ok)
			}
		}
	}
	if n == 0 {
		t.Fatal("no identite route")
	}
}

func lookupBoth(t *testing.T, c *Catalogue, path, id string) *Endpoint {
	t.Helper()
	ep, ok := c.Lookup(path)
	if !ok {
		t.Fatalf("%s missing", path)
	}
	if byID, _ := c.ByID(id); byID != ep {
		t.Errorf("ByID(%s) is not the endpoint of %s", id, path)
	}
	return ep
}
