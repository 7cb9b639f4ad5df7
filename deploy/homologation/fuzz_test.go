package homologation

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/passerelle-gw/passerelle/config/dossier"
)

// TestJ02_FuzzSeedsAndRuns: every fuzz target of the repository has its
// seeds committed under its package's testdata/fuzz/<target>/ (every go
// test replays them), and the CI script runs every target through
// deploy/supplychain/fuzz.sh, the script of the 10-minute run before a
// release (`bash deploy/supplychain/fuzz.sh 10m`).
func TestJ02_FuzzSeedsAndRuns(t *testing.T) {
	idx, err := dossier.ScanTests(os.DirFS(root))
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for name, dirs := range idx.Packages {
		if !strings.HasPrefix(name, "Fuzz") {
			continue
		}
		for _, dir := range dirs {
			found++
			seeds, err := os.ReadDir(filepath.Join(root, dir, "testdata", "fuzz", name))
			if err != nil || len(seeds) == 0 {
				t.Errorf("%s: %s has no committed seeds under testdata/fuzz/%s", dir, name, name)
			}
		}
	}
	if found < 20 {
		t.Fatalf("only %d fuzz targets found", found)
	}
	ci, err := os.ReadFile(filepath.Join(root, ".ci", "test"))
	if err != nil || !regexp.MustCompile(`(?m)^bash deploy/supplychain/fuzz\.sh "\$FUZZTIME"$`).Match(ci) {
		t.Errorf(".ci/test does not run deploy/supplychain/fuzz.sh: %v", err)
	}
	sh, err := os.ReadFile(filepath.Join(root, "deploy", "supplychain", "fuzz.sh"))
	if err != nil || !regexp.MustCompile(`(?m)^set -euo pipefail$`).Match(sh) || !strings.Contains(string(sh), `-fuzz "^${target}\$"`) {
		t.Errorf("deploy/supplychain/fuzz.sh must run every target and stop at the first failure: %v", err)
	}
}
