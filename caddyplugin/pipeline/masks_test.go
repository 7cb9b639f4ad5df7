package pipeline

import (
	"strings"
	"sync"
	"testing"

	"github.com/passerelle-gw/passerelle/caddyplugin/internal/fcverify"
	"github.com/passerelle-gw/passerelle/caddyplugin/internal/respfilter"
	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// defaultEndpoint returns an endpoint of the embedded catalogue.
func defaultEndpoint(t *testing.T, id string) *catalogue.Endpoint {
	t.Helper()
	cat, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
	ep, ok := cat.ByID(id)
	if !ok {
		t.Fatalf("no endpoint %s", id)
	}
	return ep
}

// released filters a provider answer as the pipeline does for a caller
// whose habilitation holds habScopes and, on a FranceConnect route, whose
// token holds tokenScopes (nil elsewhere); "refused" when no scope of the
// route is left.
func released(t *testing.T, ep *catalogue.Endpoint, tokenScopes, habScopes []string, body string) string {
	t.Helper()
	var facts *fcverify.Facts
	if ep.Modality == catalogue.ModalityFranceConnect {
		facts = &fcverify.Facts{Scopes: tokenScopes}
	}
	mask := effectiveMask(ep, &habilitation.Habilitation{ID: "h", Scopes: habScopes}, facts)
	if mask == 0 {
		return "refused"
	}
	p := &Pipeline{filters: new(sync.Map)}
	paths, err := p.paths(ep, mask)
	if err != nil {
		t.Fatal(err)
	}
	out, err := respfilter.Filter(nil, []byte(body), paths, p.filterOptions())
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// req: C05
// TestNestedUnknownMembersDropped: a member the provider adds inside an
// object or an array element a scope releases (a NIR in allocataires[], a
// birth commune in enfants[], an extra line in the address or the quotient
// familial, a new attribute of an identity block) does not reach the
// caller, even when the caller holds every scope of the route: SECURITY.md
// C05, "unknown or new provider fields are dropped; nested objects and
// arrays are covered". The known members still do. Quotient familial's
// FranceConnect and identite routes, MESRI's identite route (its identity
// block) and the v2 composition familiale route.
func TestNestedUnknownMembersDropped(t *testing.T) {
	const v3QF = `{"data":{"numero_allocataire":"0000354",` +
		`"allocataires":[{"nom_naissance":"CNAF","prenoms":"GEORGES","date_naissance":"2002-01-01","sexe":"M","nir":"1020175102001","code_cog_insee_commune_naissance":"75102"}],` +
		`"enfants":[{"nom_naissance":"CNAF","prenoms":"LUCAS","date_naissance":"2023-09-04","sexe":"M","nir":"2230975102002","code_cog_insee_commune_naissance":"75102"}],` +
		`"adresse":{"destinataire":"Monsieur Georges CNAF","code_postal_ville":"75002 PARIS","pays":"FRANCE","telephone":"0600000000"},` +
		`"quotient_familial":{"fournisseur":"CNAF","valeur":612,"annee":2026,"mois":1,"annee_calcul":2025,"mois_calcul":11,"numero_allocataire":"0000354"}},` +
		`"links":{},"meta":{}}`
	const v3Mesri = `{"data":{"identite":{"nom_naissance":"DELATOUR","prenom":"THOMAS","date_naissance":"1994-04-16","nir":"1940475111001"},` +
		`"admissions":[{"date_debut":"2024-09-01","date_fin":"2025-08-31","est_inscrit":true,"code_cog_insee_commune":"24322",` +
		`"regime_formation":{"libelle":"formation initiale","code":"RF1","numero_dossier":"D-42"},` +
		`"etablissement_etudes":{"uai":"0241234A","nom":"UNIVERSITE","telephone":"0500000000"},"bourse":"echelon 6"}]},"links":{},"meta":{}}`
	const v2QF = `{"quotientFamilial":612,"annee":2026,"mois":1,` +
		`"allocataires":[{"nomNaissance":"CNAF","prenoms":"GEORGES","anneeDateDeNaissance":"2002","sexe":"M","nir":"1020175102001","codeInseeLieuDeNaissance":"75102"}],` +
		`"enfants":[{"nomNaissance":"CNAF","prenoms":"LUCAS","sexe":"M","nir":"2230975102002"}],` +
		`"adresse":{"identite":"Monsieur Georges CNAF","codePostalVille":"75002 PARIS","pays":"FRANCE","telephone":"0600000000"}}`
	for _, tc := range []struct {
		id, body     string
		kept, leaked []string
	}{
		{"dss_quotient_familial_fc", v3QF,
			[]string{`"GEORGES"`, `"LUCAS"`, `"75002 PARIS"`, `"valeur":612`, `"mois_calcul":11`},
			[]string{"nir", "code_cog_insee_commune_naissance", "numero_allocataire", "telephone"}},
		{"dss_quotient_familial_identite", v3QF,
			[]string{`"GEORGES"`, `"LUCAS"`, `"75002 PARIS"`, `"valeur":612`, `"mois_calcul":11`},
			[]string{"nir", "code_cog_insee_commune_naissance", "numero_allocataire", "telephone"}},
		{"mesri_statut_etudiant_identite", v3Mesri,
			[]string{`"DELATOUR"`, `"est_inscrit":true`, `"code":"RF1"`, `"uai":"0241234A"`},
			[]string{"nir", "numero_dossier", "telephone", "bourse"}},
		{"v2_composition_familiale_v2_fc", v2QF,
			[]string{`"GEORGES"`, `"LUCAS"`, `"identite":"Monsieur Georges CNAF"`, `"quotientFamilial":612`},
			[]string{"nir", "codeInseeLieuDeNaissance", "telephone"}},
	} {
		t.Run(tc.id, func(t *testing.T) {
			ep := defaultEndpoint(t, tc.id)
			var all []string
			for i := range ep.Scopes {
				all = append(all, ep.Scopes[i].Name)
			}
			out := released(t, ep, all, all, tc.body)
			for _, k := range tc.kept {
				if !strings.Contains(out, k) {
					t.Errorf("known member %s dropped: %s", k, out)
				}
			}
			for _, leak := range tc.leaked {
				if strings.Contains(out, `"`+leak+`"`) {
					t.Errorf("unknown nested member %q released: %s", leak, out)
				}
			}
		})
	}
}

// req: C05
// TestJointScopesReleaseTogether: on the MESRI v2 routes, where the
// provider's inscriptions mix records of three rights (inscrit in initial
// or continuing education, admis) that a path mask cannot tell apart, a
// caller holding one of the three gets no inscription at all, not every
// record; holding the three, it gets them. Other scopes are not affected.
func TestJointScopesReleaseTogether(t *testing.T) {
	const body = `{"ine":"940416111TD","inscriptions":[` +
		`{"dateDebutInscription":"2024-09-01","dateFinInscription":"2025-08-31","statut":"inscrit","regime":"formation continue","codeCommune":"24322"},` +
		`{"dateDebutAdmission":"2025-09-01","dateFinAdmission":"2026-08-31","statut":"admis","regime":"formation initiale","codeCommune":"24322"}]}`
	all := []string{"mesri_identifiant", "mesri_inscription_etudiant", "mesri_inscription_autre", "mesri_admission"}
	for _, id := range []string{"v2_etudiants_fc", "v2_etudiants_identite"} {
		ep := defaultEndpoint(t, id)
		// The token holds every scope; the habilitation, part of them.
		release := func(scopes ...string) string { return released(t, ep, all, scopes, body) }
		for _, part := range [][]string{{"mesri_inscription_etudiant"}, {"mesri_inscription_autre", "mesri_admission"}} {
			if got := release(append([]string{"mesri_identifiant"}, part...)...); strings.Contains(got, "inscriptions") || !strings.Contains(got, `"ine"`) {
				t.Errorf("%s, %v: %s; want the ine alone", id, part, got)
			}
			if got := release(part...); got != "refused" {
				t.Errorf("%s, %v alone: %s; want refused (no scope left)", id, part, got)
			}
		}
		if got := release(all...); !strings.Contains(got, `"formation continue"`) || !strings.Contains(got, `"admis"`) {
			t.Errorf("%s, the three: %s; want every inscription", id, got)
		}
	}
}

// req: C05
// TestANTSMatchScoresOnlyWithIdentity: on the ANTS route, every scope
// releases the match verdict (overall_match), but the scores per attribute
// of the holder's identity only come with identite_particulier.
func TestANTSMatchScoresOnlyWithIdentity(t *testing.T) {
	ep := defaultEndpoint(t, "ants_extrait_immatriculation_vehicule_fc")
	const body = `{"data":{"identite_particulier":{"nom_naissance":"DELATOUR"},"caracteristiques_techniques_vehicule":{"marque":"DACIA"}},"links":{},` +
		`"meta":{"identity_matching":{"family_name":1.0,"given_name":1.0,"birth_date":0.0,"overall_match":true}}}`
	filter := func(scopes ...string) string { return released(t, ep, scopes, scopes, body) }
	tech := filter("ants_extrait_immatriculation_vehicule_caracteristiques_techniques_vehicule")
	if !strings.Contains(tech, `"overall_match":true`) || strings.Contains(tech, "birth_date") || strings.Contains(tech, "family_name") {
		t.Errorf("technical characteristics: %s; want the verdict alone", tech)
	}
	if id := filter("ants_extrait_immatriculation_vehicule_identite_particulier"); !strings.Contains(id, `"birth_date":0.0`) {
		t.Errorf("identite_particulier: %s; want the scores", id)
	}
}

// req: C05
// TestLeafTurnedStructureDropped: every released path of the catalogue is a
// leaf (TestReleasedPathsAreLeaves, on the sandbox payloads), yet a provider
// may one day answer a structure where a leaf was: an object, or an array of
// objects. Its members are unknown provider fields (SECURITY.md C05), so they
// do not reach the caller, even when the caller holds every scope of the
// route; the leaves around them still do.
func TestLeafTurnedStructureDropped(t *testing.T) {
	const v3QF = `{"data":{` +
		`"allocataires":[{"nom_naissance":"CNAF","prenoms":[{"prenom":"GEORGES","nir":"1020175102001"}],"sexe":"M"}],` +
		`"enfants":[{"nom_naissance":"CNAF","prenoms":["LUCAS",{"nir":"2230975102002"},["CANARYNESTED"]],"sexe":"M"}],` +
		`"adresse":{"code_postal_ville":{"code_postal":"75002","telephone":"0600000000"},"pays":"FRANCE"},` +
		`"quotient_familial":{"fournisseur":"CNAF","valeur":{"montant":612,"numero_allocataire":"0000354"},"annee":2026}},` +
		`"links":{},"meta":{}}`
	const v2QF = `{"quotientFamilial":{"valeur":612,"nir":"1020175102001"},"annee":2026,` +
		`"enfants":[{"nomNaissance":"CNAF","prenoms":{"prenom":"LUCAS","telephone":"0600000000"},"sexe":"M"}]}`
	for _, tc := range []struct {
		id, body     string
		kept, leaked []string
	}{
		{"dss_quotient_familial_fc", v3QF,
			[]string{`"nom_naissance":"CNAF"`, `"prenoms":["LUCAS"]`, `"pays":"FRANCE"`, `"fournisseur":"CNAF"`, `"annee":2026`},
			[]string{"nir", "telephone", "numero_allocataire", "montant", "GEORGES", "CANARYNESTED", "code_postal_ville"}},
		{"v2_composition_familiale_v2_fc", v2QF,
			[]string{`"annee":2026`, `"nomNaissance":"CNAF"`, `"sexe":"M"`},
			[]string{"nir", "telephone", "LUCAS", "quotientFamilial"}},
	} {
		t.Run(tc.id, func(t *testing.T) {
			ep := defaultEndpoint(t, tc.id)
			var all []string
			for i := range ep.Scopes {
				all = append(all, ep.Scopes[i].Name)
			}
			out := released(t, ep, all, all, tc.body)
			for _, k := range tc.kept {
				if !strings.Contains(out, k) {
					t.Errorf("leaf %s dropped: %s", k, out)
				}
			}
			for _, leak := range tc.leaked {
				if strings.Contains(out, leak) {
					t.Errorf("%s, inside a structure where a leaf was, released: %s", leak, out)
				}
			}
		})
	}
}
