// Package dossier writes the generated parts of the homologation dossier
// (deploy/homologation/generated/, in French, as its reviewers read it)
// from the code and a deployed configuration:
//
//	flux.md                       route → provider → scopes → data categories → retention (catalogue)
//	04-mesures-mss.csv            MonServiceSécurisé V2 measures, status and evidence, in MSS' CSV export layout
//	05-exigences-tests.md         SECURITY.md requirements → tests (the traceability of TestTraceability)
//	06-audit-configuration.md     `passerelle audit` of the configuration, with the accepted findings
//	07-chaine-approvisionnement.md  the binary, its build, the SBOM, govulncheck and load reports
//	09-aipd.pia.json, 09-aipd.md  a starting point for the AIPD, in the CNIL PIA tool's import format
//
// The output is deterministic: sorted, and dated only when Input.Date is
// set, so that regenerating an unchanged repository changes nothing. It
// never holds a secret's value nor personal data: the configuration is read
// for the presence of settings, the audit's findings quote no value, and
// the habilitations are counted, never listed.
//
// The package is plain Go (no Caddy): `passerelle dossier`
// (caddyplugin/dossiercmd.go) adapts the Caddyfile and calls Generate.
package dossier

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/passerelle-gw/passerelle/config/audit"
	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// GeneratedDir is where the repository keeps the generated parts, from
// its root.
const GeneratedDir = "deploy/homologation/generated"

// Input is what the generators read.
type Input struct {
	// ConfigName names the configuration in the dossier (a path relative
	// to the repository or the deployment, never an absolute one).
	ConfigName string
	// Config is the configuration in Caddy's JSON (a Caddyfile adapted).
	Config []byte
	// Audit configures the configuration audit; its ReadFile also reads the
	// habilitations and the catalogue the configuration names.
	Audit audit.Options
	// Ignores are the accepted findings (audit.ParseIgnore), from the file
	// IgnoreName.
	Ignores    []audit.Ignore
	IgnoreName string
	// Source is a repository checkout for the traceability (05); nil: the
	// file says it was not given.
	Source fs.FS
	// SBOM is the CycloneDX JSON SBOM of deploy/supplychain/sbom.sh, and
	// Govulncheck the JSON report of deploy/supplychain/govulncheck.sh;
	// nil: "not provided".
	SBOM, Govulncheck *Report
	// Load is the load report of deploy/bench/report.sh (load-report.json,
	// SECURITY.md J06); nil: "not provided".
	Load *Report
	// Binary describes the running binary; nil: not described (the
	// dossier committed in the repository).
	Binary *Binary
	// Date dates the dossier (YYYY-MM-DD); "": undated.
	Date string
}

// Report is a file given to the dossier: its name as shown, its bytes.
type Report struct {
	Name string
	Data []byte
}

// Binary is the running gateway's build: its SHA-256 and its build info.
type Binary struct {
	SHA256 string
	Info   *debug.BuildInfo
}

// File is one generated file.
type File struct {
	Name string
	Data []byte
}

// gen is one generation's shared state.
type gen struct {
	in       Input
	dep      *deployed
	cat      *catalogue.Catalogue
	grants   *grants
	habErr   string
	findings []audit.Finding
	sbom     *sbomSummary
	vulns    *vulnSummary
	load     *loadSummary
}

// Generate writes every generated file, in the order of the list above.
func Generate(in Input) ([]File, error) {
	dep, err := readDeployed(in.Config)
	if err != nil {
		return nil, err
	}
	g := &gen{in: in, dep: dep}
	if dep.cataloguePath != "" {
		if in.Audit.ReadFile == nil {
			return nil, errors.New("dossier: the configuration names a catalogue and no ReadFile is given")
		}
		data, err := in.Audit.ReadFile(dep.cataloguePath)
		if err != nil {
			return nil, fmt.Errorf("dossier: reading the catalogue: %w", err)
		}
		if g.cat, err = catalogue.Parse(data); err != nil {
			return nil, fmt.Errorf("dossier: %w", err)
		}
	} else if g.cat, err = catalogue.Default(); err != nil {
		return nil, fmt.Errorf("dossier: %w", err)
	}
	if dep.habilitations != "" && in.Audit.ReadFile != nil {
		data, err := in.Audit.ReadFile(dep.habilitations)
		var reg *habilitation.Registry
		if err == nil {
			reg, err = habilitation.Parse(data)
		}
		if err != nil {
			g.habErr = "Le fichier d'habilitations n'a pas pu être lu ou a été refusé: voir 06-audit-configuration.md (règle PA06)."
		} else {
			g.grants = habilitationGrants(g.cat, reg)
		}
	}
	if in.SBOM != nil {
		if g.sbom, err = readSBOM(in.SBOM.Data); err != nil {
			return nil, err
		}
	}
	if in.Govulncheck != nil {
		if g.vulns, err = readGovulncheck(in.Govulncheck.Data); err != nil {
			return nil, err
		}
	}
	if in.Load != nil {
		if g.load, err = readLoadReport(in.Load.Data); err != nil {
			return nil, err
		}
	}
	if g.findings, err = audit.Run(in.Config, in.Audit); err != nil {
		return nil, fmt.Errorf("dossier: %w", err)
	}
	csv, err := mesuresCSV()
	if err != nil {
		return nil, err
	}
	pia, err := piaJSON(g)
	if err != nil {
		return nil, err
	}
	return []File{
		{"flux.md", flux(g)},
		{"04-mesures-mss.csv", csv},
		{"05-exigences-tests.md", exigences(g)},
		{"06-audit-configuration.md", auditReport(g)},
		{"07-chaine-approvisionnement.md", supplyChain(g)},
		{"09-aipd.pia.json", pia},
		{"09-aipd.md", piaMarkdown(g)},
	}, nil
}

// Write writes files into dir, created if needed, each mode 0644: the
// dossier holds no secret and is meant to be read and committed. A name
// already in dir that is not a regular file, a symbolic link especially,
// is refused rather than written through: a link planted there would send
// the file wherever the user running the command may write.
func Write(dir string, files []File) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		if fi, err := os.Lstat(p); err == nil && !fi.Mode().IsRegular() {
			return fmt.Errorf("dossier: %s is not a regular file (a symbolic link?): not written through", p)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// header starts a generated markdown file.
func header(b *bytes.Buffer, g *gen, title, what string) {
	fmt.Fprintf(b, "# %s\n\n", title)
	fmt.Fprintf(b, "> Généré par `passerelle dossier` (paquet `config/dossier`): ne pas modifier à la main, régénérer (voir 00-LISEZMOI.md).")
	if g.in.Date != "" {
		fmt.Fprintf(b, " Généré le %s.", g.in.Date)
	}
	fmt.Fprintf(b, "\n\n%s\n\n", what)
}
