package dossier

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/passerelle-gw/passerelle/config/audit"
)

// Status is where a MonServiceSécurisé measure stands for a Passerelle
// deployment that follows deploy/.
type Status int

// The statuses.
const (
	// Fait: Passerelle implements the measure; the evidence proves it.
	Fait Status = iota + 1
	// Partiel: Passerelle does its part; the collectivité completes it.
	Partiel
	// Collectivite: the collectivité's (hosting, organisation, contracts).
	Collectivite
)

// Label is the status as the CSV writes it ("Faite" and "Partielle" are
// MSS' own words).
func (s Status) Label() string {
	switch s {
	case Fait:
		return "Faite"
	case Partiel:
		return "Partielle"
	case Collectivite:
		return "À la charge de la collectivité"
	}
	return ""
}

// carrier is the "Mesure portée par" column.
func (s Status) carrier() string {
	switch s {
	case Fait:
		return "Passerelle"
	case Partiel:
		return "Passerelle et collectivité"
	}
	return "Collectivité"
}

// Measure is one measure of MSS' referential V2 (donneesReferentielMesuresV2
// of betagouv/mon-service-securise), with what Passerelle evidences.
type Measure struct {
	// ID is the V2 id (FAMILLE.n); Num its identifiantNumerique.
	ID, Num string
	// Name is MSS' description (the measure's title).
	Name string
	// Theme is MSS' thématique, Ref its référentiel (ANSSI, CNIL).
	Theme, Ref string
	// Type is Indispensable or Recommandée at level Modéré for an API
	// exposed on the internet (MSS' rules engine); "": not proposed at
	// Modéré, kept for its evidence.
	Type string
	// Cat is MSS' catégorie: gouvernance, protection, defense, resilience.
	Cat    string
	Status Status
	// Comment says how Passerelle meets it and what is left to the
	// collectivité.
	Comment string
	// Evidence: "test:TestName" (a test of the repository), "file:path"
	// (from the repository's root) or "rule:PA02" (a rule of `passerelle
	// audit`).
	Evidence []string
}

// MSS' thématiques.
const (
	thGouv   = "Gouvernance et gestion des risques"
	thEco    = "Gestion de l'écosystème"
	thApp    = "Sécurité applicative et protection des données"
	thIAM    = "Gestion des identités et des accès"
	thSurv   = "Surveillance, maintien et réponse aux incidents"
	thSys    = "Protection des systèmes et réseaux"
	ind, rec = "Indispensable", "Recommandée"
)

// Measures returns the measures the dossier states, in the referential's
// family order.
func Measures() []Measure { return slices.Clone(measures) }

// categoryLabel is MSS' categoriesMesures.
var categoryLabel = map[string]string{"gouvernance": "Gouvernance", "protection": "Protection", "defense": "Défense", "resilience": "Résilience"}

// csvHeader is MSS' CSV export of a service's measures (adaptateurCsv.js,
// V2 columns with the statuses), then Passerelle's V2 id and evidence.
var csvHeader = []string{"Identifiant de la mesure", "Nom de la mesure", "Thématique", "Référentiel", "Type", "Catégorie",
	"Mesure portée par", "Description", "Statut", "Commentaires", "Priorité", "Échéance", "Responsables",
	"Identifiant V2", "Preuves"}

// mesuresCSV writes 04-mesures-mss.csv: ';'-separated, UTF-8 with a BOM,
// as MSS exports it.
func mesuresCSV() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("\uFEFF")
	w := csv.NewWriter(&b)
	w.Comma = ';'
	if err := w.Write(csvHeader); err != nil {
		return nil, err
	}
	for _, m := range measures {
		row := []string{"#" + m.Num, m.Name, m.Theme, m.Ref, m.Type, categoryLabel[m.Cat], m.Status.carrier(), "",
			m.Status.Label(), m.Comment, "", "", "", m.ID, strings.Join(m.Evidence, " ; ")}
		if err := w.Write(row); err != nil {
			return nil, err
		}
	}
	w.Flush()
	return b.Bytes(), w.Error()
}

// MeasureCounts counts the measures by status.
func MeasureCounts() map[Status]int {
	out := map[Status]int{}
	for _, m := range measures {
		out[m.Status]++
	}
	return out
}

// CheckEvidence returns a line for every evidence of the measures that
// does not exist: a test no _test.go of src declares, a file src lacks, a
// rule audit.Rules does not list, or an evidence of unknown kind.
func CheckEvidence(src fs.FS) ([]string, error) {
	idx, err := ScanTests(src)
	if err != nil {
		return nil, err
	}
	rules := map[string]bool{}
	for _, r := range audit.Rules() {
		rules[r.ID] = true
	}
	var out []string
	for _, m := range measures {
		if len(m.Evidence) == 0 && m.Status != Collectivite {
			out = append(out, m.ID+": no evidence for a measure Passerelle claims")
		}
		for _, e := range m.Evidence {
			kind, ref, _ := strings.Cut(e, ":")
			switch kind {
			case "test":
				if len(idx.Packages[ref]) == 0 {
					out = append(out, fmt.Sprintf("%s: no test %s in the repository", m.ID, ref))
				}
			case "file":
				if _, err := fs.Stat(src, ref); err != nil {
					out = append(out, fmt.Sprintf("%s: no file %s", m.ID, ref))
				}
			case "rule":
				if !rules[ref] {
					out = append(out, fmt.Sprintf("%s: no audit rule %s", m.ID, ref))
				}
			default:
				out = append(out, fmt.Sprintf("%s: evidence %q is not test:, file: or rule:", m.ID, e))
			}
		}
	}
	return out, nil
}
