package catalogue_test

import (
	"encoding/json"
	"errors"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/sandbox"
)

// The sandbox provider leaves these out of the case comparison.
var v2Ignored = []string{"recipient", "annee", "mois"}

// Identity pivots of the sandbox tokens (config/sandbox/payloads/france_connect).
var (
	georges = catalogue.Pivot{FamilyName: "CNAF", GivenName: "Georges", Gender: "male", Birthdate: "2002-01-01", Birthplace: "75002", Birthcountry: "99100"}
	thomas  = catalogue.Pivot{FamilyName: "Delatour", GivenName: "Thomas", Gender: "male", Birthdate: "1994-04-16", Birthplace: "75111", Birthcountry: "99100"}
	jean    = catalogue.Pivot{FamilyName: "MARTIN", GivenName: "Jean", Gender: "male", Birthdate: "2001-01-01", Birthplace: "75002", Birthcountry: "99100"}
	joelle  = catalogue.Pivot{FamilyName: "DUBINÔRE", GivenName: "Joëlle Françoise", Gender: "female", Birthdate: "1992-08-15", Birthplace: "75117", Birthcountry: "99100"}
	angela  = catalogue.Pivot{FamilyName: "DUBOIS", GivenName: "Angela Claire Louise", Gender: "female", Birthdate: "1962-08-24", Birthplace: "75107", Birthcountry: "99100"}
	vincent = catalogue.Pivot{FamilyName: "MARTIN", GivenName: "Vincent Guillaume", Gender: "male", Birthdate: "1963-12-05", Birthplace: "", Birthcountry: "99352"}
)

// v2Route is what DOMAIN.md §4–§5 and the official v2 OpenAPI say of one
// legacy FranceConnect route.
type v2Route struct {
	path, id, op, provider, notFound string
	family                           string   // key of v2Identity
	params                           []string // pass-through parameters
	scopes                           []string // scope names, in catalogue order
	cases                            map[*catalogue.Pivot]string
}

var dssV2 = []string{"nomNaissance", "prenoms[]", "anneeDateDeNaissance", "moisDateDeNaissance", "jourDateDeNaissance", "sexe",
	"codePaysLieuDeNaissance", "codeInseeLieuDeNaissance"}

var v2Routes = []v2Route{
	{path: "/api/v2/composition-familiale-v2", id: "v2_composition_familiale_v2_fc", op: "api_particulier_v2_cnav_quotient_familial_v2",
		provider: "CNAV", notFound: "37003", family: "dss", params: []string{"annee", "mois"},
		scopes: []string{"cnaf_quotient_familial", "cnaf_allocataires", "cnaf_enfants", "cnaf_adresse"},
		cases: map[*catalogue.Pivot]string{&georges: "200_cnaf_georges_cnaf_couple_1_enfant.yaml", &thomas: "200_msa_thomas_delatour_1_parent_2_enfants.yaml",
			&joelle: "200_cnaf_joelle_dubinore_2_parents_2_mineurs.yaml", &angela: "200_cnaf_angela_dubois_1_parent_1_enfant_majeur.yaml",
			&vincent: ""}},
	{path: "/api/v2/allocation-adulte-handicape", id: "v2_allocation_adulte_handicape_fc", op: "api_particulier_v2_cnav_allocation_adulte_handicape",
		provider: "CNAV", notFound: "37003", family: "dss", scopes: []string{"allocation_adulte_handicape"},
		cases: map[*catalogue.Pivot]string{&georges: "", &thomas: "200_thomas_delatour_non_beneficiaire.yaml"}},
	{path: "/api/v2/allocation-soutien-familial", id: "v2_allocation_soutien_familial_fc", op: "api_particulier_v2_cnav_allocation_soutien_familial",
		provider: "CNAV", notFound: "37003", family: "dss", scopes: []string{"allocation_soutien_familial"},
		cases: map[*catalogue.Pivot]string{&georges: "", &thomas: "200_thomas_delatour_beneficiaire.yaml"}},
	{path: "/api/v2/complementaire-sante-solidaire", id: "v2_complementaire_sante_solidaire_fc", op: "api_particulier_v2_cnav_complementaire_sante_solidaire",
		provider: "CNAV", notFound: "40003", family: "dss", scopes: []string{"complementaire_sante_solidaire"},
		cases: map[*catalogue.Pivot]string{&georges: "", &thomas: "200_thomas_delatour_avec_participation.yaml"}},
	{path: "/api/v2/prime-activite", id: "v2_prime_activite_fc", op: "api_particulier_v2_cnav_prime_activite",
		provider: "CNAV", notFound: "37003", family: "dss", scopes: []string{"prime_activite", "prime_activite_majoration"},
		cases: map[*catalogue.Pivot]string{&georges: "", &thomas: "200_thomas_delatour_majoree.yaml"}},
	{path: "/api/v2/revenu-solidarite-active", id: "v2_revenu_solidarite_active_fc", op: "api_particulier_v2_cnav_revenu_solidarite_active",
		provider: "CNAV", notFound: "37003", family: "dss", scopes: []string{"revenu_solidarite_active", "revenu_solidarite_active_majoration"},
		cases: map[*catalogue.Pivot]string{&georges: "", &thomas: "200_thomas_delatour_rsa_majore.yaml"}},
	{path: "/api/v2/etudiants", id: "v2_etudiants_fc", op: "api_particulier_v2_mesri_student_status",
		provider: "MESRI", notFound: "25003", family: "mesri",
		scopes: []string{"mesri_identifiant", "mesri_inscription_etudiant", "mesri_inscription_autre", "mesri_admission", "mesri_etablissements"},
		cases:  map[*catalogue.Pivot]string{&georges: "", &thomas: "200_thomas_delatour_inscrit_puis_admis.yaml"}},
	{path: "/api/v2/etudiants-boursiers", id: "v2_etudiants_boursiers_fc", op: "api_particulier_v2_cnous_student_scholarship",
		provider: "CNOUS", notFound: "26003", family: "cnous",
		scopes: []string{"cnous_statut_boursier", "cnous_echelon_bourse", "cnous_email", "cnous_periode_versement", "cnous_ville_etudes", "cnous_statut_bourse"},
		cases: map[*catalogue.Pivot]string{&georges: "", &thomas: "200_thomas_delatour_boursier_echelon_6.yaml",
			&jean: "200_jean_martin_boursier_provisoire.yaml"}},
}

// v2Identity: the provider query each identity family must produce, per
// pivot (DOMAIN.md §3, §7; official v2 sandbox FranceConnect cases).
var v2Identity = map[string]map[*catalogue.Pivot]url.Values{
	"dss": {
		&thomas: {"nomNaissance": {"Delatour"}, "prenoms[]": {"Thomas"}, "anneeDateDeNaissance": {"1994"}, "moisDateDeNaissance": {"4"},
			"jourDateDeNaissance": {"16"}, "sexe": {"M"}, "codePaysLieuDeNaissance": {"99100"}, "codeInseeLieuDeNaissance": {"75111"}},
		&angela: {"nomNaissance": {"DUBOIS"}, "prenoms[]": {"Angela", "Claire", "Louise"}, "anneeDateDeNaissance": {"1962"}, "moisDateDeNaissance": {"8"},
			"jourDateDeNaissance": {"24"}, "sexe": {"F"}, "codePaysLieuDeNaissance": {"99100"}, "codeInseeLieuDeNaissance": {"75107"}},
		&vincent: {"nomNaissance": {"MARTIN"}, "prenoms[]": {"Vincent", "Guillaume"}, "anneeDateDeNaissance": {"1963"}, "moisDateDeNaissance": {"12"},
			"jourDateDeNaissance": {"5"}, "sexe": {"M"}, "codePaysLieuDeNaissance": {"99352"}},
	},
	"cnous": {
		&thomas:  {"given_name": {"Thomas"}, "family_name": {"Delatour"}, "birthdate": {"16/04/1994"}, "gender": {"M"}, "birthplace": {"75111"}},
		&angela:  {"given_name": {"Angela, Claire, Louise"}, "family_name": {"DUBOIS"}, "birthdate": {"24/08/1962"}, "gender": {"F"}, "birthplace": {"75107"}},
		&vincent: {"given_name": {"Vincent, Guillaume"}, "family_name": {"MARTIN"}, "birthdate": {"05/12/1963"}, "gender": {"M"}},
	},
	"mesri": {
		&thomas:  {"given_name": {"Thomas"}, "family_name": {"Delatour"}, "birthdate": {"1994-04-16"}, "gender": {"male"}, "birthplace": {"75111"}},
		&angela:  {"given_name": {"Angela"}, "family_name": {"DUBOIS"}, "birthdate": {"1962-08-24"}, "gender": {"female"}, "birthplace": {"75107"}},
		&vincent: {"given_name": {"Vincent"}, "family_name": {"MARTIN"}, "birthdate": {"1963-12-05"}, "gender": {"male"}},
	},
}

var v2IdentityParams = map[string][]string{
	"dss":   dssV2,
	"cnous": {"given_name", "family_name", "birthdate", "gender", "birthplace"},
	"mesri": {"given_name", "family_name", "birthdate", "gender", "birthplace"},
}

func mustCatalogue(t *testing.T) *catalogue.Catalogue {
	t.Helper()
	c, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestV2Routes: the legacy FranceConnect routes of DOMAIN.md §4, as v2
// routes whose masks name members of the body root, whose identity mapping
// produces the v2 provider query, and whose sandbox folder answers that
// query with the expected case (or its 404.yaml).
func TestV2Routes(t *testing.T) {
	c, s := mustCatalogue(t), sandbox.Embedded()
	n := 0
	for i := range c.Endpoints {
		if c.Endpoints[i].API == catalogue.APIv2 && c.Endpoints[i].Modality == catalogue.ModalityFranceConnect {
			n++
		}
	}
	if n != len(v2Routes) {
		t.Errorf("%d v2 FranceConnect endpoints, want %d", n, len(v2Routes))
	}
	for _, w := range v2Routes {
		t.Run(w.id, func(t *testing.T) {
			ep, ok := c.Lookup(w.path)
			if !ok {
				t.Fatalf("%s missing", w.path)
			}
			if ep.ID != w.id || ep.API != catalogue.APIv2 || ep.Modality != catalogue.ModalityFranceConnect || ep.OperationID != w.op ||
				ep.ProviderName != w.provider || ep.UpstreamPath != w.path || ep.MinACR != "eidas1" || !ep.RecipientRequired() {
				t.Errorf("id/api/modality/op/provider/upstream/acr/recipient = %s %s %s %s %s %s %s %s",
					ep.ID, ep.API, ep.Modality, ep.OperationID, ep.ProviderName, ep.UpstreamPath, ep.MinACR, ep.Recipient)
			}
			if p, _ := ep.NotFoundError(); p+"003" != w.notFound {
				t.Errorf("not-found code %s003, want %s", p, w.notFound)
			}
			var ids, passed, scopes []string
			for _, ip := range ep.Identity {
				ids = append(ids, ip.Param)
			}
			for _, p := range ep.Params {
				passed = append(passed, p.Name)
			}
			for _, sc := range ep.Scopes {
				scopes = append(scopes, sc.Name)
			}
			if !slices.Equal(ids, v2IdentityParams[w.family]) || !slices.Equal(passed, w.params) || !slices.Equal(scopes, w.scopes) {
				t.Errorf("identity %v, params %v, scopes %v", ids, passed, scopes)
			}
			checkV2Fields(t, ep, s)
			checkV2Identity(t, ep, w.family)
			checkV2Cases(t, ep, s, w.cases)
		})
	}
}

// checkV2Fields: masks are rooted at the body root (no data/links/meta
// envelope), release no identity field and name members the sandbox 200
// cases carry.
func checkV2Fields(t *testing.T, ep *catalogue.Endpoint, s *sandbox.Set) {
	t.Helper()
	roots := map[string]bool{}
	for _, c := range s.Cases(ep.OperationID) {
		var body map[string]json.RawMessage
		if c.Status == 200 && json.Unmarshal(c.Payload, &body) == nil {
			for k := range body {
				roots[k] = true
			}
		}
	}
	identity := []string{"nom", "prenom", "prenom2", "dateNaissance", "lieuNaissance", "sexe", "identite"}
	for _, sc := range ep.Scopes {
		if sc.Name == "cnous_identite" || sc.Name == "mesri_identite" {
			t.Errorf("identity scope %s listed on a FranceConnect route", sc.Name)
		}
		for _, f := range sc.Fields {
			root := strings.TrimSuffix(strings.Split(f, ".")[0], "[]")
			switch {
			case root == "data" || root == "links" || root == "meta":
				t.Errorf("%s: field %s is in the v3 envelope", sc.Name, f)
			case slices.Contains(identity, root):
				t.Errorf("%s: field %s is an identity field", sc.Name, f)
			case !roots[root]:
				t.Errorf("%s: field %s: no sandbox 200 case has a root member %q", sc.Name, f, root)
			}
		}
	}
	if _, ok := ep.Scope("mesri_admissions"); ok {
		t.Error("a v3 MESRI name is accepted on a v2 route")
	}
}

// checkV2Identity: the identity mapping of the route's family, checked on
// several given names, a birth abroad and unusable identities.
func checkV2Identity(t *testing.T, ep *catalogue.Endpoint, family string) {
	t.Helper()
	for p, want := range v2Identity[family] {
		got, err := ep.IdentityQuery(p)
		if err != nil || got.Encode() != want.Encode() {
			t.Errorf("IdentityQuery(%s) = %s, %v\nwant %s", p.GivenName, got.Encode(), err, want.Encode())
		}
	}
	for _, bad := range []catalogue.Pivot{
		{FamilyName: "X", GivenName: "Y", Gender: "unspecified", Birthdate: "1990-01-01", Birthplace: "75107", Birthcountry: "99100"},
		{FamilyName: "X", GivenName: "Y", Gender: "male", Birthdate: "24/08/1962", Birthplace: "75107", Birthcountry: "99100"},
		{FamilyName: "", GivenName: "Y", Gender: "male", Birthdate: "1990-01-01", Birthplace: "75107", Birthcountry: "99100"},
	} {
		if _, err := ep.IdentityQuery(&bad); !errors.Is(err, catalogue.ErrUnusableIdentity) {
			t.Errorf("unusable identity %+v: err %v", bad, err)
		}
	}
	// Presumed birth dates: unknown parts are left out (DSS); MESRI sends
	// the date as FranceConnect gives it; CNOUS cannot build DD/MM/YYYY from
	// a year alone.
	presumed := catalogue.Pivot{FamilyName: "HUCHE", GivenName: "Anne-Laure", Gender: "female", Birthdate: "1945-00-00",
		Birthplace: "31555", Birthcountry: "99100"}
	if family == "cnous" {
		presumed.Birthdate = "1945"
	}
	q, err := ep.IdentityQuery(&presumed)
	switch family {
	case "dss":
		if err != nil || q.Has("moisDateDeNaissance") || q.Has("jourDateDeNaissance") || q.Get("anneeDateDeNaissance") != "1945" {
			t.Errorf("presumed date: %s, %v", q.Encode(), err)
		}
	case "cnous":
		if !errors.Is(err, catalogue.ErrUnusableIdentity) {
			t.Errorf("presumed date: %s, %v", q.Encode(), err)
		}
	case "mesri":
		if err != nil || q.Get("birthdate") != "1945-00-00" {
			t.Errorf("presumed date: %s, %v", q.Encode(), err)
		}
	}
}

// checkV2Cases: the query the gateway sends upstream for each sandbox
// identity equals the params of the expected 200 case ("" = none: the
// folder's 404.yaml answers); the 404.yaml is in the v2 error shape and
// reached by no identity.
func checkV2Cases(t *testing.T, ep *catalogue.Endpoint, s *sandbox.Set, want map[*catalogue.Pivot]string) {
	t.Helper()
	nf, ok := s.NotFound(ep.OperationID)
	if !ok || nf.File != "404.yaml" || nf.Status != 404 {
		t.Fatalf("%s: NotFound = %v, %v", ep.OperationID, nf, ok)
	}
	var v2err struct{ Error, Reason, Message string }
	if err := json.Unmarshal(nf.Payload, &v2err); err != nil || v2err.Error != "not_found" || v2err.Reason == "" || v2err.Message == "" {
		t.Errorf("404.yaml payload %s is not a v2 not_found error", nf.Payload)
	}
	reached := map[string]bool{}
	for p, file := range want {
		q, err := ep.IdentityQuery(p)
		if err != nil {
			t.Fatalf("IdentityQuery(%s): %v", p.FamilyName, err)
		}
		q.Set("recipient", "13002526500013")
		if _, ok := ep.Param("annee"); ok {
			q.Set("annee", "2025") // pass-through, ignored by the case matching
			q.Set("mois", "11")
		}
		c, ok := s.Match([]string{ep.OperationID}, q, v2Ignored)
		got := ""
		if ok {
			got = c.File
			if c.Status != 200 {
				t.Errorf("%s reaches %s with status %d", p.FamilyName, c.File, c.Status)
			}
			reached[c.File] = true
		}
		if got != file {
			t.Errorf("%s reaches %q, want %q", p.FamilyName, got, file)
		}
	}
	for _, c := range s.Cases(ep.OperationID) {
		if !ep.ProducesAll(maps.Keys(c.Params)) {
			continue // a case of the API key twin (sandbox folders are per operation)
		}
		if c.Status == 200 && !reached[c.File] {
			t.Errorf("200 case %s is reached by none of the tested identities", c.File)
		}
	}
}
