package dossier

import (
	"slices"
	"strings"

	"github.com/passerelle-gw/passerelle/config/catalogue"
)

// Category is a category of personal data, as the registre des
// traitements (RGPD art. 30) and the AIPD name them.
type Category struct {
	ID    string
	Label string
	// Note says why the category weighs in the AIPD ("" for none): data
	// of a highly personal nature, sensitive data (RGPD art. 9),
	// vulnerable people (EDPB criteria, CNIL list of 2018).
	Note string
}

// The categories. Order is the order of the dossier's tables.
var (
	CatIdentite    = Category{"identite", "Identité, état civil et identifiants", ""}
	CatCoordonnees = Category{"coordonnees", "Coordonnées (adresse, courriel, contact)", ""}
	CatFamille     = Category{"famille", "Situation familiale et composition du foyer", "donnée à caractère hautement personnel"}
	CatMineurs     = Category{"mineurs", "Données concernant des mineurs", "personnes vulnérables (critère CEPD)"}
	CatFinances    = Category{"finances", "Situation économique et financière", "donnée à caractère hautement personnel"}
	CatPrestations = Category{"prestations", "Droits et prestations sociales", "donnée à caractère hautement personnel (précarité)"}
	CatHandicap    = Category{"handicap", "Handicap (donnée concernant la santé)", "donnée sensible (RGPD art. 9)"}
	CatScolarite   = Category{"scolarite", "Scolarité, études et formation", ""}
	CatEmploi      = Category{"emploi", "Emploi, service national et engagement civique", ""}
	CatSport       = Category{"sport", "Statut de sportif de haut niveau", ""}
	CatVehicule    = Category{"vehicule", "Véhicule (immatriculation, caractéristiques, titulaire)", ""}
)

// Categories lists every category, in the dossier's order.
func Categories() []Category {
	return []Category{CatIdentite, CatCoordonnees, CatFamille, CatMineurs, CatFinances, CatPrestations,
		CatHandicap, CatScolarite, CatEmploi, CatSport, CatVehicule}
}

// scopeData is what one scope releases: the response paths it may name in
// any route of the catalogue, and their categories. A path covers itself and
// every path under it: the catalogue's masks name leaves
// (data.allocataires[].sexe), this table the keys a scope releases
// (data.allocataires), as DOMAIN.md §5 does.
type scopeData struct {
	cats   []Category
	fields []string
}

// scopeCategories maps each scope of the catalogue (by its name, not its
// aliases) to the response paths it releases, or the objects and arrays
// holding them, and their data categories. TestEveryScopeFieldHasCategory
// fails for a scope or a path of the embedded catalogue missing here, and
// for an entry covering no path a route releases: a new field cannot reach
// the dossier without a category.
var scopeCategories = map[string]scopeData{
	// DSS (CNAV: CNAF and MSA)
	"cnaf_quotient_familial": {cats(CatFinances, CatFamille), []string{"data.quotient_familial", "quotientFamilial", "annee", "mois"}},
	"cnaf_allocataires":      {cats(CatIdentite, CatFamille), []string{"data.allocataires", "allocataires"}},
	"cnaf_enfants":           {cats(CatIdentite, CatFamille, CatMineurs), []string{"data.enfants", "enfants"}},
	"cnaf_adresse":           {cats(CatCoordonnees), []string{"data.adresse", "adresse"}},
	"cnav_participation_familiale_eaje_allocataires":      {cats(CatIdentite, CatFamille), []string{"data.allocataires"}},
	"cnav_participation_familiale_eaje_enfants":           {cats(CatIdentite, CatFamille, CatMineurs), []string{"data.enfants"}},
	"cnav_participation_familiale_eaje_adresse":           {cats(CatCoordonnees), []string{"data.adresse"}},
	"cnav_participation_familiale_eaje_parametres_calcul": {cats(CatFinances, CatFamille), []string{"data.parametres_calcul_participation_familiale"}},
	"complementaire_sante_solidaire":                      {cats(CatPrestations), []string{"data.est_beneficiaire", "data.avec_participation", "data.date_debut_droit", "status", "dateDebut", "dateFin"}},
	"revenu_solidarite_active":                            {cats(CatPrestations), []string{"data.est_beneficiaire", "data.date_debut_droit", "status", "dateDebut", "dateFin"}},
	"revenu_solidarite_active_majoration":                 {cats(CatPrestations, CatFamille), []string{"data.avec_majoration", "majoration"}},
	"prime_activite":                                      {cats(CatPrestations), []string{"data.est_beneficiaire", "data.date_debut_droit", "status", "dateDebut", "dateFin"}},
	"prime_activite_majoration":                           {cats(CatPrestations, CatFamille), []string{"data.avec_majoration", "majoration"}},
	"allocation_soutien_familial":                         {cats(CatPrestations, CatFamille), []string{"data.est_beneficiaire", "data.date_debut_droit", "status", "dateDebut", "dateFin"}},
	"allocation_adulte_handicape":                         {cats(CatPrestations, CatHandicap), []string{"data.est_beneficiaire", "data.date_debut_droit", "status", "dateDebut"}},
	"cnav_allocation_enfant_handicape":                    {cats(CatPrestations, CatHandicap, CatMineurs), []string{"data.status", "data.date_debut_droit"}},

	// CNOUS
	"cnous_statut_boursier":   {cats(CatScolarite, CatFinances), []string{"data.statut_boursier", "data.est_boursier", "boursier"}},
	"cnous_echelon_bourse":    {cats(CatScolarite, CatFinances), []string{"data.echelon_bourse", "echelonBourse"}},
	"cnous_email":             {cats(CatCoordonnees), []string{"data.email", "email"}},
	"cnous_periode_versement": {cats(CatScolarite, CatFinances), []string{"data.periode_versement_bourse", "dateDeRentree", "dureeVersement"}},
	"cnous_ville_etudes":      {cats(CatScolarite), []string{"data.etablissement_etudes", "villeEtudes", "etablissement"}},
	"cnous_statut_bourse":     {cats(CatScolarite, CatFinances), []string{"statut", "statutLibelle"}},
	"cnous_identite":          {cats(CatIdentite), []string{"data.identite", "nom", "prenom", "prenom2", "dateNaissance", "lieuNaissance", "sexe"}},

	// MESRI
	"mesri_admissions":                     {cats(CatScolarite), []string{"data.admissions[].date_debut", "data.admissions[].date_fin"}},
	"mesri_admission_inscrit":              {cats(CatScolarite), []string{"data.admissions[].est_inscrit"}},
	"mesri_admission_commune_etudes":       {cats(CatScolarite), []string{"data.admissions[].code_cog_insee_commune"}},
	"mesri_admission_regime_formation":     {cats(CatScolarite), []string{"data.admissions[].regime_formation"}},
	"mesri_admission_etablissement_etudes": {cats(CatScolarite), []string{"data.admissions[].etablissement_etudes"}},
	"mesri_identite":                       {cats(CatIdentite), []string{"data.identite", "nom", "prenom", "dateNaissance"}},
	"mesri_identifiant":                    {cats(CatIdentite), []string{"ine"}},
	"mesri_inscription_etudiant":           {cats(CatScolarite), []string{"inscriptions[].statut", "inscriptions[].regime", "inscriptions[].dateDebutInscription", "inscriptions[].dateFinInscription"}},
	"mesri_inscription_autre":              {cats(CatScolarite), []string{"inscriptions[].statut", "inscriptions[].regime", "inscriptions[].dateDebutInscription", "inscriptions[].dateFinInscription"}},
	"mesri_admission":                      {cats(CatScolarite), []string{"inscriptions[].statut", "inscriptions[].regime", "inscriptions[].dateDebutAdmission", "inscriptions[].dateFinAdmission"}},
	"mesri_etablissements":                 {cats(CatScolarite), []string{"inscriptions[].etablissement", "inscriptions[].codeCommune"}},

	// DSNJ, GIP-MDS
	"dsnj_statut_service_national":              {cats(CatEmploi), []string{"data.statut_service_national", "data.commentaires"}},
	"gip_mds_service_civique_statut_actuel":     {cats(CatEmploi), []string{"data.statut_actuel.contrat_trouve"}},
	"gip_mds_service_civique_statut_passe":      {cats(CatEmploi), []string{"data.statut_passe.contrat_trouve"}},
	"gip_mds_service_civique_organisme_accueil": {cats(CatEmploi), []string{"data.statut_actuel.organisme_accueil", "data.statut_passe.organisme_accueil"}},
	"gip_mds_service_civique_dates": {cats(CatEmploi), []string{"data.statut_actuel.date_debut_contrat", "data.statut_actuel.date_fin_contrat",
		"data.statut_passe.date_debut_contrat", "data.statut_passe.date_fin_contrat"}},

	// MEN: pupils, mostly minors
	"men_statut_identite":                     {cats(CatIdentite, CatMineurs), []string{"data.identite"}},
	"men_statut_scolarite":                    {cats(CatScolarite, CatMineurs), []string{"data.annee_scolaire", "data.est_scolarise", "data.statut_eleve"}},
	"men_statut_etablissement":                {cats(CatScolarite, CatMineurs), []string{"data.etablissement"}},
	"men_statut_module_elementaire_formation": {cats(CatScolarite, CatMineurs), []string{"data.module_elementaire_formation"}},
	"men_statut_boursier":                     {cats(CatScolarite, CatFinances, CatMineurs), []string{"data.est_boursier"}},
	"men_echelon_bourse":                      {cats(CatScolarite, CatFinances, CatMineurs), []string{"data.echelon_bourse"}},

	// France Travail
	"pole_emploi_paiements":   {cats(CatIdentite, CatEmploi, CatFinances, CatPrestations), []string{"data.identifiant", "data.paiements"}},
	"pole_emploi_identifiant": {cats(CatIdentite, CatEmploi), []string{"data.identifiant"}},
	"pole_emploi_identite":    {cats(CatIdentite), []string{"data.identite"}},
	"pole_emploi_contact":     {cats(CatCoordonnees), []string{"data.contact"}},
	"pole_emploi_adresse":     {cats(CatCoordonnees), []string{"data.adresse"}},
	"pole_emploi_inscription": {cats(CatEmploi), []string{"data.inscription"}},

	// SDH
	"sdh_statut_sportif_identite":                        {cats(CatIdentite), []string{"data.identite"}},
	"sdh_statut_sportif_est_sportif_de_haut_niveau":      {cats(CatSport), []string{"data.est_sportif_de_haut_niveau"}},
	"sdh_statut_sportif_a_ete_sportif_de_haut_niveau":    {cats(CatSport), []string{"data.a_ete_sportif_de_haut_niveau"}},
	"sdh_statut_sportif_informations_statut":             {cats(CatSport), []string{"data.informations_statut"}},
	"sdh_statut_sportif_informations_statuts_precedents": {cats(CatSport), []string{"data.informations_statuts_precedents"}},

	// ANTS: meta.identity_matching says how the holder's identity matched
	// (its scores with identite_particulier, its verdict with the others)
	"ants_extrait_immatriculation_vehicule_identite_particulier":                 {cats(CatIdentite, CatVehicule), []string{"data.identite_particulier", "meta.identity_matching"}},
	"ants_extrait_immatriculation_vehicule_adresse_particulier":                  {cats(CatCoordonnees, CatVehicule), []string{"data.adresse_particulier", "meta.identity_matching.overall_match"}},
	"ants_extrait_immatriculation_vehicule_statut_rattachement":                  {cats(CatVehicule), []string{"data.statut_rattachement", "meta.identity_matching.overall_match"}},
	"ants_extrait_immatriculation_vehicule_donnees_immatriculation_vehicule":     {cats(CatVehicule), []string{"data.donnees_immatriculation_vehicule", "meta.identity_matching.overall_match"}},
	"ants_extrait_immatriculation_vehicule_caracteristiques_techniques_vehicule": {cats(CatVehicule), []string{"data.caracteristiques_techniques_vehicule", "meta.identity_matching.overall_match"}},
}

func cats(c ...Category) []Category { return c }

// Classify returns the categories of a response path released by a scope
// (its catalogue name), and whether the pair is known: the scope's entry
// lists the path or a path above it.
func Classify(scope, field string) ([]Category, bool) {
	d, ok := scopeCategories[scope]
	if !ok || !slices.ContainsFunc(d.fields, func(p string) bool { return covers(p, field) }) {
		return nil, false
	}
	return d.cats, true
}

// covers reports whether the response path p is field or a path above it:
// data.allocataires covers data.allocataires[].sexe, not
// data.allocataires_x.
func covers(p, field string) bool {
	rest, ok := strings.CutPrefix(field, p)
	return ok && (rest == "" || rest[0] == '.' || rest[0] == '[')
}

// ScopeCategories returns the categories of what a scope of an endpoint
// releases, in the dossier's order, and the fields no category covers.
func ScopeCategories(s *catalogue.Scope) (out []Category, unknown []string) {
	for _, f := range s.Fields {
		cs, ok := Classify(s.Name, f)
		if !ok {
			unknown = append(unknown, f)
			continue
		}
		for _, c := range cs {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	order := Categories()
	slices.SortFunc(out, func(a, b Category) int { return slices.Index(order, a) - slices.Index(order, b) })
	return out, unknown
}
