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
	cat, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
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
			ep, ok := cat.ByID(tc.id)
			if !ok {
				t.Fatalf("no endpoint %s", tc.id)
			}
			var all []string
			for i := range ep.Scopes {
				all = append(all, ep.Scopes[i].Name)
			}
			var facts *fcverify.Facts
			if ep.Modality == catalogue.ModalityFranceConnect {
				facts = &fcverify.Facts{Scopes: all}
			}
			mask := effectiveMask(ep, &habilitation.Habilitation{ID: "h", Scopes: all}, facts)
			p := &Pipeline{filters: new(sync.Map)}
			paths, err := p.paths(ep, mask)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := respfilter.Filter(nil, []byte(tc.body), paths, respfilter.Options{})
			if err != nil {
				t.Fatal(err)
			}
			out := string(raw)
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
