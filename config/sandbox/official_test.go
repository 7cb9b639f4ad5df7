package sandbox

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// officialRoot locates siade_staging_data in the shared folder next to the
// repository (/work/shared from /work/main); tests using it skip when absent.
func officialRoot(t *testing.T) string {
	t.Helper()
	root := filepath.Join("..", "..", "..", "shared", "reference", "siade_staging_data")
	if _, err := os.Stat(filepath.Join(root, "payloads")); err != nil {
		t.Skipf("official sandbox data not available (%s): %v", root, err)
	}
	return root
}

func TestOfficialPayloadsLoad(t *testing.T) {
	dir := filepath.Join(officialRoot(t), "payloads")
	s, err := Load(os.DirFS(dir))
	if err != nil {
		t.Fatalf("official payloads must load unchanged: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var wantOps []string
	nCases := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, e.Name(), "*.y*ml"))
		if e.Name() == TokenFolder {
			for _, f := range files {
				c := tokenFile(t, s, f)
				if err := checkTokenSchema(c.Payload); err != nil {
					t.Errorf("official token %s: schema: %v", c.File, err)
				}
			}
			if got := len(s.Tokens()); got != len(files) {
				t.Errorf("%d tokens loaded, %d files", got, len(files))
			}
			continue
		}
		wantOps = append(wantOps, e.Name())
		nCases += len(files)
		if got := len(s.Cases(e.Name())); got != len(files) {
			t.Errorf("%s: %d cases loaded, %d files", e.Name(), got, len(files))
		}
	}
	if got := s.Operations(); !slices.Equal(got, wantOps) {
		t.Errorf("Operations = %v, want %v", got, wantOps)
	}
	if len(wantOps) < 40 || nCases < 500 {
		t.Errorf("only %d folders / %d cases", len(wantOps), nCases)
	}
	// Quirky files (DOMAIN §7) are loaded, not rejected.
	for _, q := range []struct{ op, file string }{
		{"api_particulier_v3_cnav_allocation_adulte_handicape_with_france_connect", "france_connect_cnaf.yaml"},
		{"api_particulier_v3_cnav_revenu_solidarite_active_with_france_connect", "404.yaml"},
		{"api_particulier_v4_cnous_etudiant_boursier_with_france_connect", "france_connect.yaml"},
		{qfOp, "fake_france_connect_cnaf.yml"},
	} {
		if !slices.ContainsFunc(s.Cases(q.op), func(c *Case) bool { return c.File == q.file }) {
			t.Errorf("%s/%s not loaded", q.op, q.file)
		}
	}
	// Shadowed cases (same params as an earlier file of the folder) are
	// reported for information only.
	for _, op := range s.Operations() {
		seen := map[string]string{}
		for _, c := range s.Cases(op) {
			if prev, dup := seen[c.key]; dup {
				t.Logf("note: %s/%s has the same params as %s (first wins)", op, c.File, prev)
			}
			seen[c.key] = c.File
		}
	}

	// Behaviour on the official QF folder.
	if c, ok := s.NotFound(qfOp); !ok || c.File != "404.yaml" {
		t.Errorf("NotFound(QF) = %v", c)
	}
	// FC test identity sans_nom_dusage (DUPONT Paul Louis) hits its case.
	q := qfParams(introspection{FamilyName: "DUPONT", GivenName: "Paul Louis", Gender: "male", Birthdate: "1962-08-24", Birthplace: "75107", Birthcountry: "99100"})
	q.Set("recipient", "13002526500013")
	if c, ok := s.Match([]string{qfOp}, q, []string{"recipient", "annee", "mois"}); !ok || c.File != "france_connect_200_cnaf_2_parents_3_mineurs.yml" {
		t.Errorf("DUPONT: %v %v", c, ok)
	}
	// Known inconsistency: the official cnaf_qfv2 case carries a nomUsage the
	// FC v2 identity cannot supply, so the token falls to the 404 default.
	tok, ok := s.Token("cnaf_qfv2")
	if !ok {
		t.Fatal("official cnaf_qfv2 token missing")
	}
	var ct checktoken
	if err := json.Unmarshal(tok.Payload, &ct); err != nil {
		t.Fatal(err)
	}
	if c, ok := s.Match([]string{qfOp}, qfParams(ct.TI), nil); ok {
		t.Errorf("official cnaf_qfv2 unexpectedly matched %s", c.File)
	}
}

func tokenFile(t *testing.T, s *Set, path string) *Case {
	t.Helper()
	for _, c := range s.Tokens() {
		if c.File == filepath.Base(path) {
			return c
		}
	}
	t.Fatalf("token file %s not loaded", path)
	return nil
}

// The Go copy of the schema's required lists matches the official schema.
func TestOfficialSchemaRequiredFields(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(officialRoot(t), "spec", "france_connect_json_schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Required   []string `json:"required"`
		Properties struct {
			TI struct {
				Required []string `json:"required"`
			} `json:"token_introspection"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(schema.Required, schemaTopRequired) || !slices.Equal(schema.Properties.TI.Required, schemaInnerRequired) {
		t.Errorf("schema required lists changed: %v / %v", schema.Required, schema.Properties.TI.Required)
	}
}

// The embedded cases do not copy official files.
func TestEmbeddedDiffersFromOfficial(t *testing.T) {
	dir := filepath.Join(officialRoot(t), "payloads")
	official := map[string]bool{}
	_ = fs.WalkDir(os.DirFS(dir), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && isYAML(p) {
			b, _ := fs.ReadFile(os.DirFS(dir), p)
			official[strings.TrimSpace(string(b))] = true
		}
		return nil
	})
	emb := Embedded()
	all := emb.Tokens()
	for _, op := range emb.Operations() {
		all = append(all, emb.Cases(op)...)
	}
	for _, c := range all {
		b, _ := fs.ReadFile(EmbeddedFS(), c.Operation+"/"+c.File)
		if official[strings.TrimSpace(string(b))] {
			t.Errorf("%s/%s is a copy of an official file", c.Operation, c.File)
		}
	}
}
