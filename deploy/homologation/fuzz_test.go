package homologation

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestJ02_FuzzSeedsAndRuns: every fuzz target of the repository has its
// seeds committed under its package's testdata/fuzz/<target>/ (every go
// test replays them), and the CI script runs every target through
// deploy/supplychain/fuzz.sh, the script of the 10-minute run before a
// release (`bash deploy/supplychain/fuzz.sh 10m`).
func TestJ02_FuzzSeedsAndRuns(t *testing.T) {
	target := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(`)
	found := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range target.FindAllSubmatch(src, -1) {
			found++
			seeds, err := os.ReadDir(filepath.Join(filepath.Dir(path), "testdata", "fuzz", string(m[1])))
			if err != nil || len(seeds) == 0 {
				t.Errorf("%s: %s has no committed seeds under testdata/fuzz/%s", path, m[1], m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
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
