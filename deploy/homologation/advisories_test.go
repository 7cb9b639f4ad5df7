package homologation

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/passerelle-gw/passerelle/config/dossier"
)

// TestJ05_AdvisoryTestsExist: every test SECURITY.md §4 names for a
// vulnerability class seen in a real auth gateway exists in the repository
// (as named, or with Test before a Load… name), and covers the requirement
// the row gives it. Renaming or deleting one fails here.
func TestJ05_AdvisoryTestsExist(t *testing.T) {
	spec, err := os.ReadFile("SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(spec), "\n## 4.")
	end := strings.Index(string(spec), "\n## 5.")
	if start < 0 || end < start {
		t.Fatal("SECURITY.md has no §4 table")
	}
	idx, err := dossier.ScanTests(os.DirFS(root))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| (\\d+) \\|.*\\| ([A-J][0-9]{2}(?:/[A-J][0-9]{2})*) `((?:Test|Fuzz|Load)\\w+)`")
	rows := row.FindAllStringSubmatch(string(spec[start:end]), -1)
	if len(rows) < 25 {
		t.Fatalf("only %d rows with a named test read from §4", len(rows))
	}
	for _, r := range rows {
		num, reqs, name := r[1], strings.Split(r[2], "/"), r[3]
		dirs := idx.Packages[name]
		if strings.HasPrefix(name, "Load") {
			dirs = append(dirs, idx.Packages["Test"+name]...)
		}
		if len(dirs) == 0 {
			t.Errorf("§4 row %s: no test %s", num, name)
			continue
		}
		covered := false
		for _, req := range reqs {
			for _, test := range idx.ByRequirement[req] {
				covered = covered || filepath.Base(test) == name || filepath.Base(test) == "Test"+name
			}
		}
		if !covered {
			t.Errorf("§4 row %s: %s does not name or tag %s", num, name, r[2])
		}
	}
}
