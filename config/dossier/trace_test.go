package dossier

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// traceFS is a small repository: four requirements, tests named after
// them or tagged, a waiver list.
func traceFS(untested string) fstest.MapFS {
	return fstest.MapFS{
		SecurityPath: {Data: []byte("# Req\n\n| ID | Requirement | Test |\n|---|---|---|\n" +
			"| A01 | The token is read from the header. More text. | U |\n" +
			"| A02 | **Exactly one** credential: never two. | U |\n" +
			"| B01 | Keys are HMACs; never raw | U |\n" +
			"| C09 | SHOULD: a pipe \\| here | U |\n" +
			"| A01 | duplicate row, ignored | U |\n")},
		UntestedPath:                {Data: []byte(untested)},
		"pkg/a_test.go":             {Data: []byte("package pkg\n\nfunc TestA01_B01_Both(t *testing.T) {}\n\n// req: A02, B01\nfunc TestTagged(t *testing.T) {}\n\nfunc TestPlain(t *testing.T) {}\nfunc FuzzA02_F(f *testing.F) {}\n")},
		"pkg/testdata/skip_test.go": {Data: []byte("func TestC09_Ignored(t *testing.T) {}\n")},
		"x.go":                      {Data: []byte("func TestC09_NotATestFile(t *testing.T) {}\n")},
	}
}

// TestTrace: ids come from test names and req comments, testdata and
// non-test files are skipped, waivers and problems are reported, and the
// markdown has one row per requirement.
func TestTrace(t *testing.T) {
	tr, err := TraceSource(traceFS("# comment\nC09 pending -- not built\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Rows) != 4 || tr.Covered != 3 || len(tr.Problems) != 0 {
		t.Fatalf("rows %d covered %d problems %v", len(tr.Rows), tr.Covered, tr.Problems)
	}
	want := map[string][]string{
		"A01": {"pkg/TestA01_B01_Both"},
		"A02": {"pkg/FuzzA02_F", "pkg/TestTagged"},
		"B01": {"pkg/TestA01_B01_Both", "pkg/TestTagged"},
	}
	for _, r := range tr.Rows {
		if w := want[r.ID]; !slices.Equal(r.Tests, w) {
			t.Errorf("%s: tests %v, want %v", r.ID, r.Tests, w)
		}
	}
	if r := tr.Rows[3]; r.ID != "C09" || r.Waiver == nil || r.Waiver.String() != "pending: not built" {
		t.Errorf("C09 row %+v", r)
	}
	if tr.Rows[0].Text != "The token is read from the header" || tr.Rows[1].Text != "Exactly one credential" {
		t.Errorf("texts %q %q", tr.Rows[0].Text, tr.Rows[1].Text)
	}
	md := string(tr.Markdown())
	for _, s := range []string{"| A02 | Exactly one credential | pkg/FuzzA02_F<br>pkg/TestTagged |", "| C09 | SHOULD | — pending: not built |", "3 exigences sur 4 prouvées"} {
		if !strings.Contains(md, s) {
			t.Errorf("markdown lacks %q:\n%s", s, md)
		}
	}

	// A waived requirement that has a test, and one neither tested nor
	// waived: both are problems.
	tr, err = TraceSource(traceFS("A01 operator -- the operator's\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Problems) != 2 || !strings.HasPrefix(tr.Problems[0], "A01 has tests") || !strings.HasPrefix(tr.Problems[1], "C09 has no test") {
		t.Errorf("problems %q", tr.Problems)
	}
	for _, bad := range []string{"A01 pending\n", "A01 maybe -- why\n", "A01 pending --  \n", "A01 B pending -- x\n"} {
		if _, err := ParseUntested([]byte(bad)); err == nil {
			t.Errorf("untested line %q accepted", bad)
		}
	}
}
