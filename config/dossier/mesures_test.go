package dossier

import (
	"bytes"
	"encoding/csv"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/passerelle-gw/passerelle/config/audit"
	"github.com/passerelle-gw/passerelle/config/catalogue"
)

// TestEveryScopeFieldHasCategory: every response path a scope of the
// embedded catalogue releases has a data category, and every entry of the
// table covers a path a route releases: a field added to the catalogue
// fails here until it is classified, so the dossier never forgets one.
func TestEveryScopeFieldHasCategory(t *testing.T) {
	cat, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]map[string]bool{}
	for _, ep := range cat.Endpoints {
		for _, s := range ep.Scopes {
			for _, f := range s.Fields {
				if cs, ok := Classify(s.Name, f); !ok || len(cs) == 0 {
					t.Errorf("%s: scope %s, field %s has no data category (config/dossier/categories.go)", ep.ID, s.Name, f)
				}
				if used[s.Name] == nil {
					used[s.Name] = map[string]bool{}
				}
				used[s.Name][f] = true
			}
		}
	}
	for name, d := range scopeCategories {
		if used[name] == nil {
			t.Errorf("scopeCategories lists %s, which no route of the catalogue has", name)
			continue
		}
		for _, f := range d.fields {
			found := false
			for g := range used[name] {
				found = found || covers(f, g)
			}
			if !found {
				t.Errorf("scopeCategories lists %s for %s, which no route releases (nor anything under it)", f, name)
			}
		}
	}
	if un := unclassified(cat); len(un) > 0 {
		t.Errorf("unclassified: %v", un)
	}
	// Sensitive categories are where the catalogue says they are.
	if cs, _ := Classify("allocation_adulte_handicape", "data.est_beneficiaire"); !slices.Contains(cs, CatHandicap) {
		t.Error("AAH is not classified as handicap (health data)")
	}
	if cs, _ := Classify("cnaf_enfants", "data.enfants"); !slices.Contains(cs, CatMineurs) {
		t.Error("cnaf_enfants is not classified as data about minors")
	}
	if _, ok := Classify("cnaf_quotient_familial", "data.enfants"); ok {
		t.Error("a field is classified under a scope that does not release it")
	}
	// Leaf paths take the category of the key above them, and of no key
	// that merely shares its first letters.
	if cs, ok := Classify("cnaf_enfants", "data.enfants[].date_naissance"); !ok || !slices.Contains(cs, CatMineurs) {
		t.Error("a leaf of data.enfants is not classified as data about minors")
	}
	if _, ok := Classify("cnous_statut_boursier", "data.est_boursier_x"); ok {
		t.Error("data.est_boursier covers data.est_boursier_x")
	}
}

// TestEvidenceExists: every evidence the MSS measures cite exists in the
// repository: the test is declared by a _test.go file, the file is there,
// the audit rule is one of audit.Rules().
func TestEvidenceExists(t *testing.T) {
	missing, err := CheckEvidence(os.DirFS("../.."))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range missing {
		t.Error(m)
	}
}

// TestCheckEvidenceReportsWhatIsMissing: CheckEvidence itself finds a
// missing test, file and rule, and an evidence of unknown kind.
func TestCheckEvidenceReportsWhatIsMissing(t *testing.T) {
	saved := measures
	t.Cleanup(func() { measures = saved })
	measures = []Measure{
		{ID: "X.1", Status: Fait, Evidence: []string{"test:TestThere", "test:TestNowhere", "file:a/b.md", "file:a/c.md", "rule:PA01", "rule:PA99", "nonsense"}},
		{ID: "X.2", Status: Partiel},
		{ID: "X.3", Status: Collectivite},
	}
	src := fstest.MapFS{
		"pkg/x_test.go": {Data: []byte("package x\n\nfunc TestThere(t *testing.T) {}\n")},
		"a/b.md":        {Data: []byte("b")},
	}
	missing, err := CheckEvidence(src)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"X.1: no test TestNowhere in the repository",
		"X.1: no file a/c.md",
		"X.1: no audit rule PA99",
		`X.1: evidence "nonsense" is not test:, file: or rule:`,
		"X.2: no evidence for a measure Passerelle claims",
	}
	if !slices.Equal(missing, want) {
		t.Errorf("CheckEvidence =\n%q\nwant\n%q", missing, want)
	}
}

// TestMeasuresCSV: the CSV reads back in MSS' export layout (BOM, ';',
// its columns), one row per measure, with MSS' ids, statuses and types; a
// measure Passerelle claims done cites evidence beyond the dossier's own
// prose.
func TestMeasuresCSV(t *testing.T) {
	data, err := mesuresCSV()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("\uFEFF")) {
		t.Fatal("no BOM: spreadsheets would misread the accents")
	}
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\uFEFF"))))
	r.Comma = ';'
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows[0], csvHeader) || !slices.Equal(rows[0][:13], []string{"Identifiant de la mesure", "Nom de la mesure", "Thématique",
		"Référentiel", "Type", "Catégorie", "Mesure portée par", "Description", "Statut", "Commentaires", "Priorité", "Échéance", "Responsables"}) {
		t.Fatalf("header %q", rows[0])
	}
	if len(rows)-1 != len(measures) || len(measures) < 40 {
		t.Fatalf("%d rows for %d measures", len(rows)-1, len(measures))
	}
	id := regexp.MustCompile(`^[A-Z_]+\.[0-9]+$`)
	seen := map[string]bool{}
	for i, row := range rows[1:] {
		m := measures[i]
		switch {
		case !id.MatchString(m.ID) || seen[m.ID]:
			t.Errorf("%q: not a V2 id, or listed twice", m.ID)
		case !regexp.MustCompile(`^#[0-9]{4}$`).MatchString(row[0]):
			t.Errorf("%s: identifiant %q", m.ID, row[0])
		case !slices.Contains([]string{"Indispensable", "Recommandée", ""}, row[4]):
			t.Errorf("%s: type %q", m.ID, row[4])
		case !slices.Contains([]string{"Gouvernance", "Protection", "Défense", "Résilience"}, row[5]):
			t.Errorf("%s: catégorie %q", m.ID, row[5])
		case !slices.Contains([]string{"ANSSI", "CNIL"}, row[3]) || row[2] == "" || row[1] == "" || row[9] == "":
			t.Errorf("%s: référentiel, thématique, nom or commentaire missing: %q", m.ID, row)
		case row[8] != m.Status.Label() || row[8] == "":
			t.Errorf("%s: statut %q", m.ID, row[8])
		case row[13] != m.ID:
			t.Errorf("%s: identifiant V2 %q", m.ID, row[13])
		}
		seen[m.ID] = true
		if m.Status == Fait && !slices.ContainsFunc(m.Evidence, func(e string) bool { return !strings.HasPrefix(e, "file:deploy/homologation/") }) {
			t.Errorf("%s is done by Passerelle but only the dossier's prose evidences it", m.ID)
		}
	}
	c := MeasureCounts()
	if c[Fait] == 0 || c[Partiel] == 0 || c[Collectivite] == 0 || c[Fait]+c[Partiel]+c[Collectivite] != len(measures) {
		t.Errorf("counts %v", c)
	}
	t.Logf("%d measures: %d faites, %d partielles, %d à la charge de la collectivité", len(measures), c[Fait], c[Partiel], c[Collectivite])
}

// TestRuleTitles: every audit rule has its French title, so that a new
// rule cannot reach 06-audit-configuration.md in English only.
func TestRuleTitles(t *testing.T) {
	for _, r := range audit.Rules() {
		if ruleTitles[r.ID] == "" {
			t.Errorf("rule %s (%s) has no French title in ruleTitles", r.ID, r.Title)
		}
	}
	if got := ruleTitle("PA99", "new rule"); got != "new rule" {
		t.Errorf("unknown rule title %q", got)
	}
}
