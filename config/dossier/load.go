package dossier

import (
	"bytes"
	"fmt"

	"github.com/passerelle-gw/passerelle/config/loadreport"
)

// loadSummary is what the dossier states of a load report
// (deploy/bench/report.sh's load-report.json, SECURITY.md J06).
type loadSummary struct {
	sha256 string
	doc    *loadreport.Report
}

// readLoadReport reads a load-report.json.
func readLoadReport(data []byte) (*loadSummary, error) {
	doc, err := loadreport.Read(data)
	if err != nil {
		return nil, fmt.Errorf("dossier: %w", err)
	}
	return &loadSummary{sha256: digest(data), doc: doc}, nil
}

// conforme is a verdict in the dossier's words.
func conforme(pass bool) string {
	if pass {
		return "conforme"
	}
	return "**non conforme**"
}

// loadSection writes the load report's part of 07: which binary it
// measured, on what, and each bar's verdict.
func loadSection(b *bytes.Buffer, g *gen) {
	b.WriteString("## Charge et endurance (SECURITY.md J06)\n\n")
	l := g.load
	if l == nil {
		b.WriteString("Non fourni (`--load-report`): la tâche de publication (`deploy/supplychain/release.sh`) produit `load/load-report.json` " +
			"par `deploy/bench/report.sh` sur le binaire publié; `BENCH_BIN=<binaire> bash deploy/bench/report.sh <dossier>` le produit " +
			"pour un binaire et une machine donnés.\n\n")
		return
	}
	d, m := l.doc, l.doc.Method
	same := "binaire non décrit ci-dessus"
	if bin := g.in.Binary; bin != nil && bin.SHA256 == m.Binary {
		same = "le binaire décrit ci-dessus"
	} else if bin != nil {
		same = "**un autre binaire que celui décrit ci-dessus**"
	}
	fmt.Fprintf(b, "- Fichier: `%s`, SHA-256 `%s`, produit le %s par `deploy/bench/report.sh`\n", g.in.Load.Name, l.sha256, orDash(d.Date))
	fmt.Fprintf(b, "- Binaire mesuré: `%s` (%s), révision %s\n", m.Binary, same, orDash(m.Revision))
	fmt.Fprintf(b, "- Machine: %s, %d processeurs logiques, %d Mio, %s; TLS: %s\n", orDash(m.CPU), m.LogicalCPUs, m.MemoryMiB, orDash(m.Kernel), orDash(m.TLS))
	method := "la méthode de publication"
	if !m.ReleaseMethod {
		method = "**un essai court, pas la méthode de publication**"
	}
	fmt.Fprintf(b, "- Charge: %d requêtes/s (débit constant), %s par mesure, %d répétitions du scénario nominal, %d rechargements, "+
		"endurance de %d min: %s\n", m.Rate, orDash(m.Duration), m.Repetitions, m.Reloads, m.SoakMinutes, method)
	fmt.Fprintf(b, "- Verdict d'ensemble: %s\n\n", conforme(d.Pass))
	b.WriteString("| Scénario | Critère | Mesure | Verdict |\n|---|---|---|---|\n")
	for _, s := range d.Scenarios {
		for _, v := range s.Verdicts {
			fmt.Fprintf(b, "| %s | %s | %s | %s |\n", s.Name, v.Name, orDash(v.Value), conforme(v.Pass))
		}
	}
	if s := d.Soak; s != nil {
		fmt.Fprintf(b, "| Endurance, %d min (`deploy/bench/soak.sh`) | %d critères | voir `load-report.md` | %s |\n", s.Minutes, len(s.Verdicts), conforme(s.Pass))
	} else {
		b.WriteString("| Endurance (`deploy/bench/soak.sh`) | — | **non lancée** | — |\n")
	}
	b.WriteString("\nLes chiffres valent pour la machine qui les a produits (`load-report.md` donne la méthode complète).\n\n")
}
