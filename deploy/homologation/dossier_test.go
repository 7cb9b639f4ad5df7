package homologation

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/passerelle-gw/passerelle/caddyplugin"
	_ "github.com/passerelle-gw/passerelle/caddyplugin/front"
	"github.com/passerelle-gw/passerelle/config/audit"
	"github.com/passerelle-gw/passerelle/config/dossier"
)

// committedInput is the input of the dossier committed under generated/:
// deploy/Caddyfile.production with the example habilitations (as
// deploy/verify.sh audits it), the repository as the source, no binary, no
// report, no date, an empty environment. It is what
//
//	PASSERELLE_HABILITATIONS=deploy/production/habilitations.example.yaml \
//	    passerelle dossier --config deploy/Caddyfile.production --source . --no-binary
//
// reads from the repository's root.
func committedInput(t *testing.T) dossier.Input {
	t.Helper()
	t.Setenv("PASSERELLE_HABILITATIONS", "deploy/production/habilitations.example.yaml")
	const config = "deploy/Caddyfile.production"
	body, err := os.ReadFile(filepath.Join(root, config))
	if err != nil {
		t.Fatal(err)
	}
	body, _, err = caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": config})
	if err != nil {
		t.Fatal(err)
	}
	return dossier.Input{
		ConfigName: config,
		Config:     body,
		Audit: audit.Options{
			ReadFile: func(p string) ([]byte, error) { return os.ReadFile(filepath.Join(root, p)) },
			Getenv:   func(string) string { return "" },
		},
		Source: os.DirFS(root),
	}
}

// TestDossierGenerated fails when a file of generated/ is not what
// `passerelle dossier` writes for the repository as it is (regenerate with
// `go test ./deploy/homologation -update`), or when generated/ holds a file
// it does not write.
func TestDossierGenerated(t *testing.T) {
	files, err := dossier.Generate(committedInput(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := "generated"
	if *update {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := dossier.Write(dir, files); err != nil {
			t.Fatal(err)
		}
		return
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
		current, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil || string(current) != string(f.Data) {
			t.Errorf("generated/%s is stale: go test ./deploy/homologation -update", f.Name)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !slices.Contains(names, e.Name()) {
			t.Errorf("generated/%s is not a generated file: remove it", e.Name())
		}
	}
}
