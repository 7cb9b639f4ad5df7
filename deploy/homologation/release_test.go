package homologation

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// ReleaseDirEnv names the directory of a release job's artefacts that
// TestJ03_J04_ReleaseArtefacts checks: .ci/test runs the job
// (deploy/supplychain/release.sh) after the tests, then this test on it.
const ReleaseDirEnv = "PASSERELLE_RELEASE_DIR"

// ReleaseSignersEnv names the allowed-signers file the release job's
// signature must verify against (.ci/test's, made for the run).
const ReleaseSignersEnv = "PASSERELLE_RELEASE_SIGNERS"

// pinnedModules are the fixed choices of the project: the release's binary
// and SBOM must hold them at go.mod's versions.
var pinnedModules = []string{
	"github.com/caddyserver/caddy/v2", "github.com/coreos/go-oidc/v3", "go.opentelemetry.io/otel",
	"github.com/redis/go-redis/v9", "github.com/go-jose/go-jose/v4",
}

// TestJ03_J04_ReleaseArtefacts checks what the release job archives
// (SECURITY.md J03, J04), on the artefacts of a run of
// deploy/supplychain/release.sh named by PASSERELLE_RELEASE_DIR (.ci/test
// sets it; skipped without it): SHA256SUMS covers every file and matches
// it; the binary's build information (read from the binary, not from the
// archived text) shows the toolchain pinned by go.mod's toolchain line,
// -trimpath, CGO_ENABLED=0, and the pinned modules at go.mod's versions,
// which the archived `go version -m` text and the CycloneDX SBOM list too;
// govulncheck scanned the binary itself (-mode=binary) and found nothing;
// the release's homologation dossier names the binary's SHA-256;
// SHA256SUMS.sig signs SHA256SUMS under a key of PASSERELLE_RELEASE_SIGNERS
// (ssh-keygen -Y verify) and not a changed SHA256SUMS; the provenance
// statement names the binary's SHA-256, its toolchain and the pinned
// modules.
// req: J03, J04
func TestJ03_J04_ReleaseArtefacts(t *testing.T) {
	dir := os.Getenv(ReleaseDirEnv)
	if dir == "" {
		t.Skip(ReleaseDirEnv + " is not set: .ci/test runs the release job, then this test on its artefacts")
	}
	read := func(name string) []byte {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	sum := func(data []byte) string { s := sha256.Sum256(data); return hex.EncodeToString(s[:]) }

	// Checksums: every file, each right.
	listed := map[string]bool{}
	for line := range strings.Lines(string(read("SHA256SUMS"))) {
		want, name, ok := strings.Cut(strings.TrimSpace(line), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q", line)
		}
		if got := sum(read(name)); got != want {
			t.Errorf("%s: SHA-256 %s, SHA256SUMS says %s", name, got, want)
		}
		listed[name] = true
	}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if rel != "SHA256SUMS" && rel != "SHA256SUMS.sig" && !listed[rel] {
			t.Errorf("%s is not in SHA256SUMS", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	bin := read("passerelle")
	binSum := sum(bin)
	if got := strings.Fields(string(read("passerelle.sha256"))); len(got) != 2 || got[0] != binSum {
		t.Errorf("passerelle.sha256 %q, binary %s", got, binSum)
	}

	// Build information, from the binary.
	info, err := buildinfo.Read(bytes.NewReader(bin))
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	toolchain := regexp.MustCompile(`(?m)^toolchain (go1\.\d+\.\d+)$`).FindSubmatch(gomod)
	if toolchain == nil {
		t.Fatal("go.mod pins no Go patch release (toolchain go1.N.P)")
	}
	if info.GoVersion != string(toolchain[1]) {
		t.Errorf("binary built with %s, go.mod pins %s", info.GoVersion, toolchain[1])
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["-trimpath"] != "true" || settings["CGO_ENABLED"] != "0" {
		t.Errorf("build settings -trimpath=%q CGO_ENABLED=%q", settings["-trimpath"], settings["CGO_ENABLED"])
	}
	required := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(\S+) (v\S+)`).FindAllSubmatch(gomod, -1) {
		required[string(m[1])] = string(m[2])
	}
	deps := map[string]string{}
	for _, d := range info.Deps {
		deps[d.Path] = d.Version
	}
	text := string(read("passerelle.buildinfo.txt"))
	type component struct {
		PURL string `json:"purl"`
	}
	var sbom struct {
		BOMFormat  string      `json:"bomFormat"`
		Components []component `json:"components"`
	}
	if err := json.Unmarshal(read("passerelle.cdx.json"), &sbom); err != nil || sbom.BOMFormat != "CycloneDX" {
		t.Fatalf("SBOM: %v, format %q", err, sbom.BOMFormat)
	}
	for _, path := range pinnedModules {
		v := required[path]
		if v == "" || deps[path] != v {
			t.Errorf("%s: go.mod %q, binary %q", path, v, deps[path])
			continue
		}
		if !strings.Contains(text, "\tdep\t"+path+"\t"+v+"\t") {
			t.Errorf("passerelle.buildinfo.txt lacks %s %s", path, v)
		}
		if !slices.ContainsFunc(sbom.Components, func(c component) bool {
			purl, qualifiers, _ := strings.Cut(c.PURL, "?")
			return purl == "pkg:golang/"+path+"@"+v && slices.Contains(strings.Split(qualifiers, "&"), "type=module")
		}) {
			t.Errorf("the SBOM lacks %s %s", path, v)
		}
	}

	// govulncheck on the binary: its mode, and no vulnerable symbol in it
	// (a finding of a required module's vulnerability whose function the
	// binary does not hold is listed, not fatal, as in .ci/test).
	mode := ""
	dec := json.NewDecoder(bufio.NewReader(bytes.NewReader(read("passerelle.govulncheck.json"))))
	for {
		var msg struct {
			Config *struct {
				ScanMode string `json:"scan_mode"`
			} `json:"config"`
			Finding *struct {
				OSV   string `json:"osv"`
				Trace []struct {
					Function string `json:"function"`
				} `json:"trace"`
			} `json:"finding"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("govulncheck report: %v", err)
		}
		if msg.Config != nil {
			mode = msg.Config.ScanMode
		}
		if f := msg.Finding; f != nil && len(f.Trace) > 0 && f.Trace[0].Function != "" {
			t.Errorf("govulncheck: the binary holds a vulnerable symbol (%s)", f.OSV)
		}
	}
	if mode != "binary" {
		t.Errorf("govulncheck: scan mode %q, want binary", mode)
	}

	// The signature: SHA256SUMS, by an allowed signer; a changed
	// SHA256SUMS does not verify.
	signers := os.Getenv(ReleaseSignersEnv)
	if signers == "" {
		t.Fatal(ReleaseSignersEnv + " is not set: .ci/test signs the release job's SHA256SUMS with a key of its own")
	}
	verify := func(sums []byte) error {
		principal, err := exec.Command("ssh-keygen", "-Y", "find-principals", "-f", signers, "-s", filepath.Join(dir, "SHA256SUMS.sig")).Output()
		if err != nil {
			return fmt.Errorf("no allowed signer: %w", err)
		}
		cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", signers, "-I", strings.TrimSpace(string(principal)),
			"-n", "passerelle-release", "-s", filepath.Join(dir, "SHA256SUMS.sig"))
		cmd.Stdin = bytes.NewReader(sums)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
	sums := read("SHA256SUMS")
	if err := verify(sums); err != nil {
		t.Errorf("SHA256SUMS.sig: %v", err)
	}
	if err := verify(append(slices.Clone(sums), "0000  extra\n"...)); err == nil {
		t.Error("SHA256SUMS.sig verifies a changed SHA256SUMS")
	}

	// The provenance statement: this binary, its toolchain, the pinned
	// modules.
	var prov struct {
		Subject []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
		PredicateType string `json:"predicateType"`
		Predicate     struct {
			BuildDefinition struct {
				InternalParameters struct {
					GoVersion string `json:"goVersion"`
				} `json:"internalParameters"`
				ResolvedDependencies []struct {
					URI string `json:"uri"`
				} `json:"resolvedDependencies"`
			} `json:"buildDefinition"`
		} `json:"predicate"`
	}
	if err := json.Unmarshal(read("passerelle.provenance.json"), &prov); err != nil {
		t.Fatal(err)
	}
	if len(prov.Subject) != 1 || prov.Subject[0].Digest["sha256"] != binSum || prov.PredicateType != "https://slsa.dev/provenance/v1" ||
		prov.Predicate.BuildDefinition.InternalParameters.GoVersion != info.GoVersion {
		t.Errorf("provenance: subject %+v, predicate %s, Go %s", prov.Subject, prov.PredicateType, prov.Predicate.BuildDefinition.InternalParameters.GoVersion)
	}
	for _, path := range pinnedModules {
		if !slices.ContainsFunc(prov.Predicate.BuildDefinition.ResolvedDependencies, func(r struct {
			URI string `json:"uri"`
		}) bool {
			return r.URI == "pkg:golang/"+path+"@"+required[path]
		}) {
			t.Errorf("the provenance lacks %s %s", path, required[path])
		}
	}

	// The release's dossier describes this binary.
	if supply := string(read("dossier/07-chaine-approvisionnement.md")); !strings.Contains(supply, binSum) {
		t.Error("the release's dossier does not name the binary's SHA-256")
	}
}
