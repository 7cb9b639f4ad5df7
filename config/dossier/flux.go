package dossier

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// modalityLabel names a calling modality in French.
var modalityLabel = map[catalogue.Modality]string{
	catalogue.ModalityFranceConnect: "FranceConnect",
	catalogue.ModalityIdentite:      "identité pivot (jeton API)",
	catalogue.ModalityIdentifiant:   "identifiant fournisseur (jeton API)",
}

// sentToProvider lists the query parameters the gateway may send to the
// provider of a route: the identity mapping of the FranceConnect pivot, or
// the caller's parameters, and the recipient SIRET.
func sentToProvider(ep *catalogue.Endpoint) []string {
	var out []string
	for _, ip := range ep.Identity {
		out = append(out, ip.Param)
	}
	for _, p := range ep.Params {
		out = append(out, p.Name)
	}
	if ep.RecipientAccepted() {
		out = append(out, "recipient")
	}
	return out
}

// keptByGateway says what the gateway keeps of a route's call.
func keptByGateway(ep *catalogue.Endpoint, d *deployed) string {
	if ep.Modality == catalogue.ModalityFranceConnect {
		return fmt.Sprintf("réponse: aucune (transit); faits du jeton scellés ≤ %s", seconds(d.ttlCap))
	}
	return "réponse et paramètres: aucune (transit)"
}

// grants counts, per catalogue scope name, the habilitations of the
// configuration that grant it (not revoked), and their modalities.
type grants struct {
	count      map[string]int
	modalities map[string][]string
	total      int
	revoked    int
}

func habilitationGrants(cat *catalogue.Catalogue, reg *habilitation.Registry) *grants {
	g := &grants{count: map[string]int{}, modalities: map[string][]string{}}
	primary := map[string]string{}
	for i := range cat.Endpoints {
		for _, s := range cat.Endpoints[i].Scopes {
			for _, n := range s.Names() {
				if _, ok := primary[n]; !ok {
					primary[n] = s.Name
				}
			}
		}
	}
	for _, h := range reg.All() {
		g.total++
		if h.Revoked {
			g.revoked++
			continue
		}
		seen := map[string]bool{}
		for _, s := range h.Scopes {
			p, ok := primary[s]
			if !ok || seen[p] {
				continue
			}
			seen[p] = true
			g.count[p]++
			for _, m := range h.Modalities {
				if !slices.Contains(g.modalities[p], m) {
					g.modalities[p] = append(g.modalities[p], m)
				}
			}
		}
	}
	return g
}

// flux writes flux.md: the data flows of the catalogue as the deployed
// configuration serves them, route by route, with their data categories
// and what the gateway keeps.
func flux(g *gen) []byte {
	var b bytes.Buffer
	d, cat := g.dep, g.cat
	header(&b, g, "Flux de données et catégories de données",
		"Chaque route du catalogue, le fournisseur appelé, les scopes qui libèrent des données, leurs catégories et ce que Passerelle en conserve.")
	catName := "catalogue intégré (`config/catalogue/default.yaml`)"
	if d.cataloguePath != "" {
		catName = "catalogue de la configuration (`" + d.cataloguePath + "`)"
	}
	fmt.Fprintf(&b, "Source: %s, %d routes, %d fournisseurs; configuration `%s` (mode %s).\n\n", catName, len(cat.Endpoints), len(providers(cat)), g.in.ConfigName, d.mode)

	b.WriteString("## Conservation par Passerelle\n\n| Donnée | Où | Durée |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| Réponse du fournisseur (données de la personne) | mémoire du processus, le temps de la requête; seuls les champs des scopes effectifs sont transmis | aucune conservation |\n")
	fmt.Fprintf(&b, "| Paramètres d'état civil ou identifiant (routes identité et identifiant) | mémoire du processus, le temps de la requête | aucune conservation; jamais journalisés (pseudonyme seul) |\n")
	store := "cache en mémoire du processus"
	if d.redis {
		store += " et Redis (clé HMAC-SHA256, valeur scellée AES-256-GCM sous une clé dérivée du jeton)"
	}
	fmt.Fprintf(&b, "| Faits d'un jeton FranceConnect vérifié (client, scopes, acr, sub, identité pivot, exp) | %s | au plus %s (ttl_cap), jamais au-delà de l'expiration du jeton |\n", store, seconds(d.ttlCap))
	fmt.Fprintf(&b, "| Jeton FranceConnect inactif (réponse négative) | même cache, sans donnée d'identité | au plus %s (negative_ttl) |\n", seconds(d.negativeTTL))
	fmt.Fprintf(&b, "| Journal d'audit: une ligne par décision, pseudonyme du citoyen (citizen_key, clé %s) | %s | %s |\n",
		d.pseudoV, sinkName(d.audit), d.audit.retention())
	for _, a := range d.access {
		fmt.Fprintf(&b, "| Journal d'accès (filtres de la configuration: voir 06-audit-configuration.md, règle PA12) | %s | %s |\n", sinkName(&a), a.retention())
	}
	if d.tracing {
		b.WriteString("| Traces OpenTelemetry (route, fournisseur, décision: aucune donnée personnelle) | collecteur de l'exploitant | selon le collecteur |\n")
	}
	b.WriteString("\nCe que le service appelant fait des données reçues relève de la collectivité (registre, AIPD, durées propres au téléservice).\n\n")

	b.WriteString("## Routes\n\n")
	if !d.handlers {
		b.WriteString("La configuration ne sert aucune route (aucun gestionnaire `passerelle`).\n\n")
	} else if d.served != nil {
		fmt.Fprintf(&b, "La configuration ne sert que %d routes (liste d'identifiants des gestionnaires `passerelle`); les autres sont marquées « non servie ».\n\n", len(d.served))
	}
	b.WriteString("| Route | Modalité | Fournisseur (crédit plateforme) | Envoyé au fournisseur | Scopes → catégories | Conservation par Passerelle |\n|---|---|---|---|---|---|\n")
	for i := range cat.Endpoints {
		ep := &cat.Endpoints[i]
		route := "`" + ep.Method + " " + ep.Path + "`<br>" + ep.ID
		if d.handlers && d.served != nil && !d.served[ep.ID] {
			route += " (non servie)"
		}
		cred := d.upstreams[ep.ProviderName]
		if cred == "" {
			cred = "aucun crédit configuré: appel envoyé sans crédit plateforme"
		}
		var scopes []string
		for j := range ep.Scopes {
			s := &ep.Scopes[j]
			cs, unknown := ScopeCategories(s)
			labels := make([]string, 0, len(cs)+1)
			for _, c := range cs {
				labels = append(labels, c.Label)
			}
			if len(unknown) > 0 {
				labels = append(labels, "**non classé: "+strings.Join(unknown, ", ")+"**")
			}
			scopes = append(scopes, "`"+s.Name+"` → "+strings.Join(labels, ", "))
		}
		fmt.Fprintf(&b, "| %s | %s | %s<br>%s | %s | %s | %s |\n", route, modalityLabel[ep.Modality], ep.ProviderName, cred,
			code(sentToProvider(ep)), strings.Join(scopes, "<br>"), keptByGateway(ep, d))
	}

	b.WriteString("\n## Catégories de données\n\n| Catégorie | Pourquoi elle pèse dans l'AIPD | Scopes |\n|---|---|---|\n")
	byCat := scopesByCategory(cat)
	for _, c := range Categories() {
		note := c.Note
		if note == "" {
			note = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", c.Label, note, code(byCat[c.ID]))
	}
	if un := unclassified(cat); len(un) > 0 {
		fmt.Fprintf(&b, "\n**À classer avant l'homologation** (catégorie inconnue du code `config/dossier`): %s.\n", code(un))
	}

	b.WriteString("\n## Scopes accordés par les habilitations de la configuration\n\n")
	switch {
	case g.habErr != "":
		fmt.Fprintf(&b, "%s\n", g.habErr)
	case g.grants == nil:
		b.WriteString("Aucun fichier d'habilitations dans la configuration.\n")
	default:
		gr := g.grants
		fmt.Fprintf(&b, "Habilitations: %d, dont %d révoquée(s). Seuls ces scopes peuvent être libérés (scopes effectifs = jeton ∩ habilitation ∩ route, SECURITY.md C03).\n\n", gr.total, gr.revoked)
		if len(gr.count) > 0 {
			b.WriteString("| Scope | Habilitations | Modalités | Catégories |\n|---|---|---|---|\n")
			for _, s := range slices.Sorted(maps.Keys(gr.count)) {
				var labels []string
				for _, c := range scopeCatsByName(s) {
					labels = append(labels, c.Label)
				}
				mods := slices.Sorted(slices.Values(gr.modalities[s]))
				fmt.Fprintf(&b, "| `%s` | %d | %s | %s |\n", s, gr.count[s], strings.Join(mods, ", "), strings.Join(labels, ", "))
			}
		}
	}
	return b.Bytes()
}

func sinkName(s *logSink) string {
	if s == nil {
		return "journal par défaut"
	}
	out := "journal `" + s.name + "` (sortie " + s.output
	if s.buffered {
		out += ", écritures groupées"
	}
	return out + ")"
}

// providers lists the providers the catalogue's routes call.
func providers(cat *catalogue.Catalogue) []string {
	var out []string
	for i := range cat.Endpoints {
		if p := cat.Endpoints[i].ProviderName; !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// scopesByCategory maps a category id to the scope names releasing it.
func scopesByCategory(cat *catalogue.Catalogue) map[string][]string {
	out := map[string][]string{}
	for i := range cat.Endpoints {
		for j := range cat.Endpoints[i].Scopes {
			s := &cat.Endpoints[i].Scopes[j]
			cs, _ := ScopeCategories(s)
			for _, c := range cs {
				if !slices.Contains(out[c.ID], s.Name) {
					out[c.ID] = append(out[c.ID], s.Name)
				}
			}
		}
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

// unclassified lists "scope: field" pairs of the catalogue without a
// category.
func unclassified(cat *catalogue.Catalogue) []string {
	var out []string
	for i := range cat.Endpoints {
		for j := range cat.Endpoints[i].Scopes {
			s := &cat.Endpoints[i].Scopes[j]
			_, unknown := ScopeCategories(s)
			for _, f := range unknown {
				if p := s.Name + ": " + f; !slices.Contains(out, p) {
					out = append(out, p)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// scopeCatsByName returns the categories of a scope name (every field).
func scopeCatsByName(name string) []Category {
	d, ok := scopeCategories[name]
	if !ok {
		return nil
	}
	out := slices.Clone(d.cats)
	order := Categories()
	slices.SortFunc(out, func(a, b Category) int { return slices.Index(order, a) - slices.Index(order, b) })
	return out
}

// code formats names as inline code, comma-separated.
func code(names []string) string {
	if len(names) == 0 {
		return "—"
	}
	return "`" + strings.Join(names, "`, `") + "`"
}
