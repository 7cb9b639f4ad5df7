package caddyplugin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard" // the production template's log writers and handlers
	"github.com/spf13/cobra"

	"github.com/passerelle-gw/passerelle/config/dossier"
)

// dossierCmd runs `passerelle dossier` with args from this directory and
// returns its exit status, output and error output.
func dossierCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := &cobra.Command{Use: "dossier"}
	dossierFlags(cmd)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	return runDossier(cmd), out.String(), errOut.String()
}

// TestDossierCommand: the command is registered; on the production
// template, with the repository as source and without its binary, it
// writes exactly the committed generated/ files (the staleness test of
// deploy/homologation regenerates them through the same package); with
// its binary, reports and a date, 07 describes this very binary and the
// reports, 06 the accepted findings; no secret of the sandbox example
// reaches any file; bad inputs exit 2.
func TestDossierCommand(t *testing.T) {
	if _, ok := caddycmd.Commands()["dossier"]; !ok {
		t.Fatal("the dossier command is not registered")
	}
	t.Setenv("PASSERELLE_HABILITATIONS", "../deploy/production/habilitations.example.yaml")
	out := t.TempDir()
	code, stdout, stderr := dossierCmd(t, "--config", "../deploy/Caddyfile.production", "--source", "..", "--no-binary", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stderr != "" {
		t.Errorf("warnings on the production template: %s", stderr)
	}
	committed := filepath.Join("..", filepath.FromSlash(dossier.GeneratedDir))
	for _, name := range []string{"flux.md", "04-mesures-mss.csv", "05-exigences-tests.md", "06-audit-configuration.md",
		"07-chaine-approvisionnement.md", "09-aipd.pia.json", "09-aipd.md"} {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatalf("%s not written: %v", name, err)
		}
		if !strings.Contains(stdout, filepath.Join(out, name)) {
			t.Errorf("%s not reported as written", name)
		}
		want, err := os.ReadFile(filepath.Join(committed, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs from the committed %s (go test ./deploy/homologation -update)", name, filepath.Join(dossier.GeneratedDir, name))
		}
	}
	flux, _ := os.ReadFile(filepath.Join(out, "flux.md"))
	for _, want := range []string{"configuration `deploy/Caddyfile.production` (mode production)", "## Conservation par Passerelle",
		"## Routes", "## Catégories de données", "| `cnaf_quotient_familial` | 1 | france_connect |"} {
		if !strings.Contains(string(flux), want) {
			t.Errorf("flux.md lacks %q", want)
		}
	}

	// A sandbox configuration with literal secrets, with this binary,
	// reports, a date and an ignore file.
	dir := t.TempDir()
	sandbox := filepath.Join(dir, "Caddyfile.test")
	_ = os.WriteFile(sandbox, []byte(`{
	admin localhost:2019
	passerelle {
		mode sandbox
		franceconnect {
			issuer http://127.0.0.1:8081/api/v2
			client_id abc
			client_secret sandbox-fd-client-secret-not-for-production
		}
		upstream CNAV {
			header Authorization "Bearer sandbox-provider-key"
		}
	}
}
:8080 {
	passerelle
	reverse_proxy http://127.0.0.1:8081
}
`), 0o600)
	sbom := filepath.Join(dir, "passerelle.cdx.json")
	_ = os.WriteFile(sbom, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"name":"a"},{"name":"b"}]}`), 0o600)
	vuln := filepath.Join(dir, "govulncheck.json")
	_ = os.WriteFile(vuln, []byte(`{"config":{"scanner_name":"govulncheck","scanner_version":"v1.9.0","scan_level":"symbol"}}`+"\n"), 0o600)
	ignore := filepath.Join(dir, "accepted.txt")
	_ = os.WriteFile(ignore, []byte("PA01 -- poste de développement\n"), 0o600)
	out = t.TempDir()
	code, _, stderr = dossierCmd(t, "--config", sandbox, "--source", "..", "--out", out, "--sbom", sbom,
		"--govulncheck", vuln, "--ignore", ignore, "--date", "2027-01-15")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	exe, _ := os.Executable()
	bin, _ := os.ReadFile(exe)
	sum := sha256.Sum256(bin)
	files := map[string]string{}
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(out, e.Name()))
		files[e.Name()] = string(b)
		for _, secret := range []string{"sandbox-fd-client-secret-not-for-production", "sandbox-provider-key"} {
			if strings.Contains(string(b), secret) {
				t.Errorf("%s prints the secret %s", e.Name(), secret)
			}
		}
		if !strings.HasSuffix(e.Name(), ".csv") && !strings.Contains(string(b), "2027-01-15") {
			t.Errorf("%s is not dated", e.Name())
		}
	}
	for name, wants := range map[string][]string{
		"07-chaine-approvisionnement.md": {"SHA-256: `" + hex.EncodeToString(sum[:]) + "`", "Go: `go1.", "`passerelle.cdx.json`", "Composants: 2",
			"govulncheck v1.9.0", "**0 vulnérabilité(s) atteignable(s)**"},
		"06-audit-configuration.md": {"sur `Caddyfile.test`", "## Constats acceptés (`accepted.txt`)", "poste de développement", "| PA02 | haute |"},
		"flux.md":                   {"(mode sandbox)"},
	} {
		for _, w := range wants {
			if !strings.Contains(files[name], w) {
				t.Errorf("%s lacks %q", name, w)
			}
		}
	}

	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte("{}"), 0o600)
	for _, args := range [][]string{
		{},
		{"--config", filepath.Join(dir, "missing")},
		{"--config", sandbox, "--date", "15/01/2027"},
		{"--config", sandbox, "--date", "2027-13-45"},
		{"--config", sandbox, "--date", "2027-1-015"},
		{"--config", sandbox, "--ignore", sbom},
		{"--config", sandbox, "--source", sbom},
		{"--config", sandbox, "--sbom", bad},
		{"--config", sandbox, "--adapter", "nope"},
	} {
		if code, _, _ := dossierCmd(t, append(args, "--out", t.TempDir(), "--no-binary")...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

// TestAdaptConfigAsCaddyRuns: `passerelle audit` and `passerelle dossier`
// read a configuration file as `passerelle run --config` does (Caddy's
// isCaddyfile): a name ending in .caddyfile is a Caddyfile, one ending
// in .json is JSON even when it starts with "Caddyfile".
func TestAdaptConfigAsCaddyRuns(t *testing.T) {
	dir := t.TempDir()
	caddyfileText := "{\n\tadmin off\n}\n:8080 {\n\trespond 200\n}\n"
	jsonText := `{"admin":{"disabled":true}}`
	for name, text := range map[string]string{
		"Caddyfile": caddyfileText, "caddyfile.prod": caddyfileText, "passerelle.caddyfile": caddyfileText,
		"Caddyfile.json": jsonText, "passerelle.json": jsonText,
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := adaptConfig(path, "")
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !json.Valid(got) || !strings.Contains(string(got), `"disabled":true`) {
			t.Errorf("%s: read as %s", name, got)
		}
	}
}
