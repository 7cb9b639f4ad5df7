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
// TestJointScopesReleaseTogether: on the MESRI v2 routes, where the
// provider's inscriptions mix records of three rights (inscrit in initial
// or continuing education, admis) that a path mask cannot tell apart, a
// caller holding one of the three gets no inscription at all, not every
// record; holding the three, it gets them. Other scopes are not affected.
func TestJointScopesReleaseTogether(t *testing.T) {
	cat, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
	const body = `{"ine":"940416111TD","inscriptions":[` +
		`{"dateDebutInscription":"2024-09-01","dateFinInscription":"2025-08-31","statut":"inscrit","regime":"formation continue","codeCommune":"24322"},` +
		`{"dateDebutAdmission":"2025-09-01","dateFinAdmission":"2026-08-31","statut":"admis","regime":"formation initiale","codeCommune":"24322"}]}`
	release := func(t *testing.T, ep *catalogue.Endpoint, facts *fcverify.Facts, scopes ...string) string {
		t.Helper()
		hab := &habilitation.Habilitation{ID: "h", Scopes: scopes}
		mask := effectiveMask(ep, hab, facts)
		if mask == 0 {
			return "refused"
		}
		p := &Pipeline{filters: new(sync.Map)}
		paths, err := p.paths(ep, mask)
		if err != nil {
			t.Fatal(err)
		}
		out, err := respfilter.Filter(nil, []byte(body), paths, respfilter.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	all := []string{"mesri_identifiant", "mesri_inscription_etudiant", "mesri_inscription_autre", "mesri_admission"}
	for _, id := range []string{"v2_etudiants_fc", "v2_etudiants_identite"} {
		ep, ok := cat.ByID(id)
		if !ok {
			t.Fatalf("no endpoint %s", id)
		}
		var facts *fcverify.Facts
		if ep.Modality == catalogue.ModalityFranceConnect {
			facts = &fcverify.Facts{Scopes: all}
		}
		for _, part := range [][]string{{"mesri_inscription_etudiant"}, {"mesri_inscription_autre", "mesri_admission"}} {
			if got := release(t, ep, facts, append([]string{"mesri_identifiant"}, part...)...); strings.Contains(got, "inscriptions") || !strings.Contains(got, `"ine"`) {
				t.Errorf("%s, %v: %s; want the ine alone", id, part, got)
			}
			if got := release(t, ep, facts, part...); got != "refused" {
				t.Errorf("%s, %v alone: %s; want refused (no scope left)", id, part, got)
			}
		}
		if got := release(t, ep, facts, all...); !strings.Contains(got, `"formation continue"`) || !strings.Contains(got, `"admis"`) {
			t.Errorf("%s, the three: %s; want every inscription", id, got)
		}
	}
}

// req: C05
// TestANTSMatchScoresOnlyWithIdentity: on the ANTS route, every scope
// releases the match verdict (overall_match), but the scores per attribute
// of the holder's identity only come with identite_particulier.
func TestANTSMatchScoresOnlyWithIdentity(t *testing.T) {
	cat, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
	ep, ok := cat.ByID("ants_extrait_immatriculation_vehicule_fc")
	if !ok {
		t.Fatal("no ANTS route")
	}
	const body = `{"data":{"identite_particulier":{"nom_naissance":"DELATOUR"},"caracteristiques_techniques_vehicule":{"marque":"DACIA"}},"links":{},` +
		`"meta":{"identity_matching":{"family_name":1.0,"given_name":1.0,"birth_date":0.0,"overall_match":true}}}`
	filter := func(scopes ...string) string {
		hab := &habilitation.Habilitation{ID: "h", Scopes: scopes}
		p := &Pipeline{filters: new(sync.Map)}
		paths, err := p.paths(ep, effectiveMask(ep, hab, &fcverify.Facts{Scopes: scopes}))
		if err != nil {
			t.Fatal(err)
		}
		out, err := respfilter.Filter(nil, []byte(body), paths, respfilter.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	tech := filter("ants_extrait_immatriculation_vehicule_caracteristiques_techniques_vehicule")
	if !strings.Contains(tech, `"overall_match":true`) || strings.Contains(tech, "birth_date") || strings.Contains(tech, "family_name") {
		t.Errorf("technical characteristics: %s; want the verdict alone", tech)
	}
	if id := filter("ants_extrait_immatriculation_vehicule_identite_particulier"); !strings.Contains(id, `"birth_date":0.0`) {
		t.Errorf("identite_particulier: %s; want the scores", id)
	}
}
