package dossier

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// sbomSummary is what the dossier states of a CycloneDX JSON SBOM.
type sbomSummary struct {
	sha256, format, spec, main string
	components                 int
}

// readSBOM reads a CycloneDX JSON SBOM (cyclonedx-gomod, sbom.sh).
func readSBOM(data []byte) (*sbomSummary, error) {
	var doc struct {
		BOMFormat   string `json:"bomFormat"`
		SpecVersion string `json:"specVersion"`
		Metadata    struct {
			Component *struct{ Name, Version string } `json:"component"`
		} `json:"metadata"`
		Components []json.RawMessage `json:"components"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || doc.BOMFormat != "CycloneDX" {
		return nil, errors.New("dossier: the SBOM is not a CycloneDX JSON document")
	}
	s := &sbomSummary{sha256: digest(data), format: doc.BOMFormat, spec: doc.SpecVersion, components: len(doc.Components)}
	if c := doc.Metadata.Component; c != nil {
		s.main = strings.TrimSpace(c.Name + " " + c.Version)
	}
	return s, nil
}

// vulnFinding is one vulnerability of a govulncheck report at its deepest
// level: "symbol" (the code calls a vulnerable function), "package" (it
// imports a vulnerable package) or "module" (it requires the module).
type vulnFinding struct {
	id, level, module, fixed string
}

// vulnSummary is what the dossier states of a govulncheck JSON report.
type vulnSummary struct {
	sha256, scanner, db, dbModified, goVersion, scanLevel string
	findings                                              []vulnFinding
}

var levelRank = map[string]int{"module": 1, "package": 2, "symbol": 3}

// readGovulncheck reads `govulncheck -format json` output: a stream of
// messages (config, progress, SBOM, osv, finding).
func readGovulncheck(data []byte) (*vulnSummary, error) {
	s := &vulnSummary{sha256: digest(data)}
	byID := map[string]*vulnFinding{}
	dec := json.NewDecoder(bytes.NewReader(data))
	config := false
	for {
		var m struct {
			Config *struct {
				ScannerName    string `json:"scanner_name"`
				ScannerVersion string `json:"scanner_version"`
				DB             string `json:"db"`
				DBLastModified string `json:"db_last_modified"`
				GoVersion      string `json:"go_version"`
				ScanLevel      string `json:"scan_level"`
			} `json:"config"`
			Finding *struct {
				OSV          string `json:"osv"`
				FixedVersion string `json:"fixed_version"`
				Trace        []struct {
					Module, Package, Function string
				} `json:"trace"`
			} `json:"finding"`
		}
		err := dec.Decode(&m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errors.New("dossier: the govulncheck report is not `govulncheck -format json` output")
		}
		if c := m.Config; c != nil {
			config = true
			s.scanner = strings.TrimSpace(c.ScannerName + " " + c.ScannerVersion)
			s.db, s.dbModified, s.goVersion, s.scanLevel = c.DB, c.DBLastModified, c.GoVersion, c.ScanLevel
		}
		if f := m.Finding; f != nil && f.OSV != "" && len(f.Trace) > 0 {
			level := "module"
			switch t := f.Trace[0]; {
			case t.Function != "":
				level = "symbol"
			case t.Package != "":
				level = "package"
			}
			v := byID[f.OSV]
			if v == nil {
				v = &vulnFinding{id: f.OSV, module: f.Trace[0].Module, fixed: f.FixedVersion}
				byID[f.OSV] = v
			}
			if levelRank[level] > levelRank[v.level] {
				v.level = level
			}
		}
	}
	if !config {
		return nil, errors.New("dossier: the govulncheck report has no config message (not `govulncheck -format json` output)")
	}
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		s.findings = append(s.findings, *byID[id])
	}
	return s, nil
}

// reachable counts the findings the code calls.
func (s *vulnSummary) reachable() int {
	n := 0
	for _, f := range s.findings {
		if f.level == "symbol" {
			n++
		}
	}
	return n
}

var levelLabel = map[string]string{"symbol": "atteignable (fonction appelée)", "package": "paquet importé, fonction non appelée", "module": "module requis, paquet non importé"}

// supplyChain writes 07-chaine-approvisionnement.md.
func supplyChain(g *gen) []byte {
	var b bytes.Buffer
	header(&b, g, "Chaîne d'approvisionnement",
		"Le binaire déployé, sa construction, sa nomenclature logicielle (SBOM), l'analyse de vulnérabilités et sa tenue en charge. "+
			"Les rapports sont produits par `deploy/supplychain/sbom.sh <dossier>` (binaire, SHA-256, `go version -m`, SBOM CycloneDX), "+
			"`deploy/supplychain/govulncheck.sh <fichier.json>` (rapport JSON) et `deploy/bench/report.sh <dossier>` (`load-report.json`), "+
			"puis passés à `passerelle dossier --sbom … --govulncheck … --load-report …`.")

	b.WriteString("## Binaire\n\n")
	if bin := g.in.Binary; bin == nil {
		b.WriteString("Non décrit: cette version du dossier, commitée dans le dépôt, ne dépend d'aucun binaire. " +
			"`passerelle dossier` lancé par le binaire déployé (sans `--no-binary`) inscrit ici son SHA-256 et ses informations de construction.\n\n")
	} else {
		fmt.Fprintf(&b, "- SHA-256: `%s`\n", bin.SHA256)
		if bi := bin.Info; bi != nil {
			fmt.Fprintf(&b, "- Go: `%s`\n- Module principal: `%s` `%s`\n", bi.GoVersion, bi.Main.Path, bi.Main.Version)
			if len(bi.Settings) > 0 {
				b.WriteString("- Construction:")
				for _, s := range bi.Settings {
					fmt.Fprintf(&b, " `%s=%s`", s.Key, s.Value)
				}
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "- %d modules liés (équivalent de `go version -m`):\n\n| Module | Version | Somme go.sum |\n|---|---|---|\n", len(bi.Deps))
			for _, d := range bi.Deps {
				path, version, sum := d.Path, d.Version, d.Sum
				if d.Replace != nil {
					path += " ⇒ " + d.Replace.Path
					version, sum = d.Replace.Version, d.Replace.Sum
				}
				fmt.Fprintf(&b, "| `%s` | `%s` | `%s` |\n", path, version, sum)
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("Construction de référence (reproductible, vérifiée par `sbom.sh`: deux constructions, un même SHA-256):\n\n" +
		"```sh\nCGO_ENABLED=0 go build -trimpath -buildvcs=false -tags nobadger,nomysql,nopgx,nosandbox -o passerelle ./cmd/passerelle\n```\n\n" +
		"La collectivité compare le SHA-256 du binaire qu'elle déploie à celui de la construction de référence de la même révision.\n\n")

	b.WriteString("## Nomenclature logicielle (SBOM)\n\n")
	if g.sbom == nil {
		b.WriteString("Non fournie (`--sbom`): produire `passerelle.cdx.json` avec `deploy/supplychain/sbom.sh`.\n\n")
	} else {
		s := g.sbom
		fmt.Fprintf(&b, "- Fichier: `%s`, SHA-256 `%s`\n- Format: %s %s\n- Composant principal: %s\n- Composants: %d\n\n", g.in.SBOM.Name, s.sha256, s.format, s.spec, orDash(s.main), s.components)
	}

	vulnSection(&b, g)
	loadSection(&b, g)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// vulnSection writes the govulncheck report's part of 07.
func vulnSection(b *bytes.Buffer, g *gen) {
	b.WriteString("## Vulnérabilités connues (govulncheck)\n\n")
	if g.vulns == nil {
		b.WriteString("Non fourni (`--govulncheck`): produire le rapport JSON avec `deploy/supplychain/govulncheck.sh <fichier.json>`. " +
			"La CI exécute govulncheck à chaque changement et échoue sur toute vulnérabilité atteignable.\n\n")
		return
	}
	v := g.vulns
	fmt.Fprintf(b, "- Fichier: `%s`, SHA-256 `%s`\n- Outil: %s, niveau d'analyse %s, Go %s\n- Base: %s (modifiée le %s)\n",
		g.in.Govulncheck.Name, v.sha256, orDash(v.scanner), orDash(v.scanLevel), orDash(v.goVersion), orDash(v.db), orDash(v.dbModified))
	fmt.Fprintf(b, "- **%d vulnérabilité(s) atteignable(s)**, %d au total dans les modules requis\n\n", v.reachable(), len(v.findings))
	if len(v.findings) > 0 {
		b.WriteString("| Avis | Niveau | Module | Corrigé en |\n|---|---|---|---|\n")
		for _, f := range v.findings {
			fmt.Fprintf(b, "| %s | %s | `%s` | %s |\n", f.id, levelLabel[f.level], f.module, orDash(f.fixed))
		}
		b.WriteString("\nUne vulnérabilité atteignable se corrige sous 7 jours (SECURITY.md J03, 10-mco-mcs.md); les autres n'exposent pas le binaire mais sont suivies.\n")
	}
	b.WriteString("\n")
}

func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
