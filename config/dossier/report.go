package dossier

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/passerelle-gw/passerelle/config/audit"
)

// groups names SECURITY.md's groups of requirements.
var groups = []struct{ letter, label string }{
	{"A", "Acceptation du jeton FranceConnect"},
	{"B", "Cache"},
	{"C", "Autorisation"},
	{"D", "Hygiène des en-têtes et des requêtes"},
	{"E", "Fournisseurs et TLS"},
	{"F", "Limites de ressources et délestage"},
	{"G", "Journalisation, piste d'audit et traces"},
	{"H", "Secrets, configuration et administration"},
	{"I", "Modes de défaillance (échec fermé)"},
	{"J", "Vérification et chaîne d'approvisionnement"},
}

// exigences writes 05-exigences-tests.md from the checkout in Input.Source.
func exigences(g *gen) []byte {
	var b bytes.Buffer
	header(&b, g, "Exigences de sécurité et tests qui les prouvent",
		"Les exigences de `deploy/homologation/SECURITY.md` (identifiants A01 à J08) et les tests du dépôt qui les prouvent: un test dont le nom commence par l'identifiant (`TestA08_…`) ou précédé d'un commentaire `// req: A08`. "+
			"Une exigence sans test figure dans `untested.txt`, en attente (`pending`: test ou fonction à écrire) ou à la charge de l'exploitant (`operator`), avec sa justification. "+
			"`TestTraceability` (CI) échoue pour toute exigence ni testée ni justifiée. Le résultat de chaque test est celui de la CI sur la révision du dossier.")
	if g.in.Source == nil {
		b.WriteString("**Non produit**: le dépôt source n'a pas été fourni (`--source`). Voir `deploy/homologation/traceability.md` dans le dépôt de la version déployée.\n")
		return b.Bytes()
	}
	t, err := TraceSource(g.in.Source)
	if err != nil {
		fmt.Fprintf(&b, "**Non produit**: le dépôt source fourni ne se lit pas comme un dépôt Passerelle (%v).\n", err)
		return b.Bytes()
	}
	type count struct{ all, tested, pending, operator int }
	byGroup := map[string]*count{}
	total := count{}
	var operator []TraceRow
	for _, r := range t.Rows {
		c := byGroup[r.ID[:1]]
		if c == nil {
			c = &count{}
			byGroup[r.ID[:1]] = c
		}
		for _, c := range []*count{c, &total} {
			c.all++
			switch {
			case len(r.Tests) > 0:
				c.tested++
			case r.Waiver != nil && r.Waiver.Status == "operator":
				c.operator++
			case r.Waiver != nil:
				c.pending++
			}
		}
		if len(r.Tests) == 0 && r.Waiver != nil && r.Waiver.Status == "operator" {
			operator = append(operator, r)
		}
	}
	fmt.Fprintf(&b, "**%d exigences, %d prouvées par au moins un test**, %d en attente, %d à la charge de l'exploitant.\n\n", total.all, total.tested, total.pending, total.operator)
	b.WriteString("| Groupe | Objet | Exigences | Testées | En attente | Exploitant |\n|---|---|---|---|---|---|\n")
	for _, gr := range groups {
		c := byGroup[gr.letter]
		if c == nil {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d |\n", gr.letter, gr.label, c.all, c.tested, c.pending, c.operator)
	}
	if len(t.Problems) > 0 {
		b.WriteString("\n**Écarts** (TestTraceability échoue sur cette révision):\n\n")
		for _, p := range t.Problems {
			fmt.Fprintf(&b, "- %s\n", p)
		}
	}
	if len(operator) > 0 {
		b.WriteString("\n## À la charge de l'exploitant\n\n")
		for _, r := range operator {
			fmt.Fprintf(&b, "- **%s** %s: %s\n", r.ID, r.Text, r.Waiver.Why)
		}
	}
	b.WriteString("\n## Exigence par exigence\n\n| Exigence | Objet | Tests (paquet/Test) |\n|---|---|---|\n")
	for _, r := range t.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.ID, strings.ReplaceAll(r.Text, "|", `\|`), r.cell())
	}
	return b.Bytes()
}

// severityLabel names a severity in French.
var severityLabel = map[audit.Severity]string{audit.Critical: "critique", audit.High: "haute", audit.Medium: "moyenne", audit.Low: "basse"}

// ruleTitles are the audit rules' titles in French; TestRuleTitles fails
// for a rule of audit.Rules without one.
var ruleTitles = map[string]string{
	"PA01": "mode bac à sable ou module du bac à sable",
	"PA02": "secret écrit en clair dans la configuration",
	"PA03": "flux en clair (HTTP, Redis sans TLS, traces OTLP) hors boucle locale",
	"PA04": "liste d'algorithmes JOSE faible ou décalage d'horloge au-delà de 60 s",
	"PA05": "fournisseur joignable sans le gestionnaire passerelle devant lui",
	"PA06": "fichier d'habilitations refusé, ou scopes inconnus du catalogue",
	"PA07": "écoute publique sans TLS ni trusted_proxies",
	"PA08": "TLS inférieur à 1.2, ou suites TLS 1.2 autres qu'ECDHE avec AES-GCM ou ChaCha20-Poly1305, acceptés",
	"PA09": "vérification des certificats TLS désactivée",
	"PA10": "API d'administration hors boucle locale sans mTLS",
	"PA11": "métriques ou sondes sur une écoute publique",
	"PA12": "journal d'accès gardant les chaînes de requête ou l'en-tête X-Api-Key",
	"PA13": "journalisation des identifiants, niveau DEBUG ou trace",
	"PA14": "piste d'audit dans la même sortie que le journal d'accès",
	"PA15": "quotas qui ne limitent pas",
	"PA16": "serveur public sans délais d'expiration, ou limite d'en-têtes trop large",
	"PA17": "plus d'une nouvelle tentative, nouvelle tentative d'une requête non GET, ou d'un fournisseur (la passerelle s'en charge)",
	"PA18": "toute adresse considérée comme mandataire de confiance",
	"PA19": "fournisseur sans délai d'attente des en-têtes de réponse",
	"PA20": "journal d'audit qui n'arrête pas les routes de données quand son puits échoue",
	"PA21": "appels d'API en HTTP clair redirigés vers HTTPS",
	"PA22": "journal écrit dans un fichier qui n'est pas gardé de 6 à 12 mois par son âge seul",
	"PA23": "enregistrements du journal d'audit non scellés",
	"PA24": "enregistrements du journal d'audit écartés avant leur scellement (niveau, échantillonnage)",
	"PA25": "journal autre que celui d'audit qui arrête les routes de données quand son puits échoue",
	"PA26": "mandataires de confiance sans mode strict: l'adresse du client est celle que l'appelant écrit",
	"PA29": "fichier de clé privée TLS lisible par tous ou par un autre groupe que celui de la passerelle",
	"PA28": "clé de configuration écrite dans une autre casse: Caddy la lit, l'audit et le relecteur non",
	"PA27": "traces qui reprennent le contexte de trace de l'appelant: son traceparent devient parent et peut forcer l'échantillonnage",
}

// ruleTitle is a rule's French title, its own when none is known.
func ruleTitle(id, title string) string {
	if fr, ok := ruleTitles[id]; ok {
		return fr
	}
	return title
}

// auditReport writes 06-audit-configuration.md: the findings of `passerelle
// audit` on the configuration, the accepted ones with their justification,
// and every rule checked.
func auditReport(g *gen) []byte {
	var b bytes.Buffer
	header(&b, g, "Audit de la configuration",
		fmt.Sprintf("Résultat de `passerelle audit` sur `%s`: chaque règle détecte un réglage qu'un relecteur d'homologation refuserait. "+
			"Un constat ne cite jamais la valeur d'un secret; son détail et sa correction sont les mots de l'outil (en anglais). "+
			"Un constat accepté l'est par une ligne justifiée du fichier `--ignore`.", g.in.ConfigName))
	kept, ignored := audit.Apply(g.findings, g.in.Ignores)
	fmt.Fprintf(&b, "**%d constat(s)**%s; %d accepté(s) avec justification.\n\n", len(kept), severityCounts(kept), len(ignored))
	if len(kept) > 0 {
		b.WriteString("## Constats\n\n| Règle | Sévérité | Constat | Où (chemin JSON) | Correction |\n|---|---|---|---|---|\n")
		for _, f := range kept {
			fmt.Fprintf(&b, "| %s | %s | %s | `%s` | %s |\n", f.Rule, severityLabel[f.Severity], cellText(findingText(f)), f.Path, cellText(f.Fix))
		}
		b.WriteString("\n")
	}
	if len(ignored) > 0 {
		fmt.Fprintf(&b, "## Constats acceptés (`%s`)\n\n| Règle | Sévérité | Constat | Où | Justification |\n|---|---|---|---|---|\n", g.in.IgnoreName)
		for _, f := range ignored {
			fmt.Fprintf(&b, "| %s | %s | %s | `%s` | %s |\n", f.Rule, severityLabel[f.Severity], cellText(findingText(f)), f.Path, cellText(justification(f, g.in.Ignores)))
		}
		b.WriteString("\n")
	}
	b.WriteString("## Règles contrôlées\n\n| Règle | Sévérité | Objet | Résultat |\n|---|---|---|---|\n")
	for _, r := range audit.Rules() {
		n := countRule(kept, r.ID)
		a := countRule(ignored, r.ID)
		res := "conforme"
		switch {
		case n > 0 && a > 0:
			res = fmt.Sprintf("%d constat(s), %d accepté(s)", n, a)
		case n > 0:
			res = fmt.Sprintf("%d constat(s)", n)
		case a > 0:
			res = fmt.Sprintf("%d accepté(s)", a)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.ID, severityLabel[r.Severity], cellText(ruleTitle(r.ID, r.Title)), res)
	}
	b.WriteString("\nUn audit sans constat ne prouve pas que l'instance est sûre: il complète, sans les remplacer, l'audit de l'hébergement et le test d'intrusion (04-mesures-mss.csv, AUDIT.3 et AUDIT.4).\n")
	return b.Bytes()
}

// findingText is the rule's title and the finding's detail (the audit's
// own words).
func findingText(f audit.Finding) string {
	t := ruleTitle(f.Rule, f.Title)
	if f.Detail != "" {
		return t + " (" + f.Detail + ")"
	}
	return t
}

// justification returns the why of the ignore line that accepted f.
func justification(f audit.Finding, ignores []audit.Ignore) string {
	for _, ig := range ignores {
		if ig.Matches(f) {
			return ig.Why
		}
	}
	return ""
}

func countRule(fs []audit.Finding, id string) int {
	n := 0
	for _, f := range fs {
		if f.Rule == id {
			n++
		}
	}
	return n
}

// severityCounts writes " (1 critique, 2 haute)" or "".
func severityCounts(fs []audit.Finding) string {
	var parts []string
	for _, s := range []audit.Severity{audit.Critical, audit.High, audit.Medium, audit.Low} {
		c := 0
		for _, f := range fs {
			if f.Severity == s {
				c++
			}
		}
		if c > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c, severityLabel[s]))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// cellText makes text fit a markdown table cell.
func cellText(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}
