package homologation

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestJ01_CIGates: the CI script (.ci/test, run by .ci/run on every change)
// keeps its gates, each a command that fails the build on a finding:
// go vet, staticcheck, the race-enabled tests without cache, govulncheck,
// go mod verify with read-only module resolution (J03's CI part), and the
// release job with the test of its artefacts (J03, J04).
// Removing one fails here, in the same CI run.
// req: J01
func TestJ01_CIGates(t *testing.T) {
	script, err := os.ReadFile(filepath.Join(root, ".ci", "test"))
	if err != nil {
		t.Fatal(err)
	}
	if string(script[:2]) != "#!" || !regexp.MustCompile(`(?m)^set -euo pipefail$`).Match(script) {
		t.Fatal(".ci/test must stop at the first failing command (set -euo pipefail)")
	}
	if run, err := os.ReadFile(filepath.Join(root, ".ci", "run")); err != nil || !regexp.MustCompile(`(?m)^bash \.ci/test$`).Match(run) {
		t.Errorf(".ci/run does not run .ci/test: %v", err)
	}
	for name, pattern := range map[string]string{
		"go vet":        `(?m)^go vet \./\.\.\.$`,
		"staticcheck":   `(?m)^bash deploy/supplychain/staticcheck\.sh$`,
		"go test -race": `(?m)^go test -race -count=1 \./\.\.\.$`,
		"govulncheck":   `(?m)^bash deploy/supplychain/govulncheck\.sh`,
		"go mod verify": `(?m)^go mod verify$`,
		"-mod=readonly": `(?m)^export GOFLAGS="[^"]*-mod=readonly[^"]*"$`,
		"release job":   `(?m)^RELEASE_FUZZTIME=0 RELEASE_ALLOW_DIRTY=1 [^\n]*LOAD_SOAK_MINUTES=[1-9][^\n]*\\\n\tRELEASE_SIGNING_KEY="\$signing/key" RELEASE_ALLOWED_SIGNERS="\$signing/allowed_signers" \\\n\tbash deploy/supplychain/release\.sh "\$release_dir"$`,
		"release check": `(?m)^PASSERELLE_RELEASE_DIR="\$release_dir" PASSERELLE_RELEASE_SIGNERS="\$signing/allowed_signers" \\\n\tgo test -count=1 -run '\^\(TestJ03_J04_ReleaseArtefacts\|TestJ06_LoadReport\)\$' \./deploy/homologation/$`,
	} {
		if !regexp.MustCompile(pattern).Match(script) {
			t.Errorf(".ci/test lost its %s gate (%s)", name, pattern)
		}
	}
	for _, tool := range []string{"staticcheck.sh", "govulncheck.sh", "release.sh", "sbom.sh"} {
		sh, err := os.ReadFile(filepath.Join(root, "deploy", "supplychain", tool))
		if err != nil || !regexp.MustCompile(`(?m)^set -euo pipefail$`).Match(sh) {
			t.Errorf("%s must fail on the first failing command: %v", tool, err)
		}
	}
}
