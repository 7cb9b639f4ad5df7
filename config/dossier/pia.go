package dossier

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// The AIPD starting point, in the import format of the CNIL's PIA tool
// (LINCnil/pia: pia.service.ts importData): {pia, answers, measures,
// evaluations, comments}. Answers are keyed by question (reference_to:
// 111…123 context, 211…227 principles, 321…346 risks); text answers are
// HTML, list answers lists, gauge answers 1 (négligeable) to 4 (maximale).
// Texts between brackets are for the collectivité to write.

// block is a paragraph, or a bullet list when items is set.
type block struct {
	p     string
	items []string
}

// piaAnswer is one question's pre-filled answer.
type piaAnswer struct {
	ref    int
	title  string
	blocks []block
	list   []string
	gauge  int
}

// piaMeasure is a measure of the PIA tool's section 3.1.
type piaMeasure struct{ title, content string }

// todo marks what the collectivité writes.
func todo(s string) string { return "[À compléter par la collectivité: " + s + "]" }

var gaugeLabel = map[int]string{1: "négligeable", 2: "limitée", 3: "importante", 4: "maximale"}

// piaMeasures lists the measures the risk answers cite, by title.
var piaMeasures = []piaMeasure{
	{"Contrôle des accès logiques", "Chaque appel d'une route de données exige un jeton FranceConnect vérifié (checktoken, JWE puis JWS, émetteur, audience, fraîcheur, expiration: SECURITY.md A01–A19) ou le jeton API d'une habilitation; le service appelant ne reçoit que les scopes de son habilitation DataPass ∩ jeton ∩ route (C03), réévalués à chaque requête (B04)."},
	{"Minimisation des données", "La réponse est reconstruite avec les seuls champs que libèrent les scopes effectifs; tout champ inconnu du fournisseur est écarté (C05); une réponse non filtrable n'est jamais relayée (C06). Sur les routes FranceConnect, aucun paramètre de personne n'est accepté de l'appelant (C08)."},
	{"Chiffrement", "TLS vers FranceConnect, les fournisseurs, Redis et le collecteur (audit PA03, PA07–PA09); faits de jeton en cache scellés AES-256-GCM sous une clé dérivée du jeton, clés Redis HMAC-SHA256 (B01, B02)."},
	{"Pseudonymisation", "Le journal d'audit ne porte que citizen_key = HMAC-SHA256(clé de pseudonymisation, émetteur ‖ sub), ou l'HMAC de l'état civil normalisé, avec la version de la clé (G01, G02); ni nom, ni date de naissance, ni jeton (G03)."},
	{"Traçabilité (journalisation)", "Une ligne d'audit par décision (autorisation, refus, erreur) avec sa raison dans une liste fermée, sur un journal séparé du journal d'accès (G01, G04, audit PA14); conservation 6 à 12 mois (08-journalisation.md)."},
	{"Gestion des secrets", "Secrets uniquement par fichier ou variable d'environnement, jamais dans la configuration servie par l'API d'administration (H01, audit PA02); rotation décrite dans 10-mco-mcs.md."},
	{"Limitation du débit", "Quota par réseau client, appliqué avant tout appel à FranceConnect, et quota par habilitation; partagés entre instances par Redis, maintenus par instance si Redis est indisponible (F03, F04, F06)."},
	{"Cloisonnement", "Écoute publique, écoute interne (sondes, métriques) et administration (socket unix) séparées; NetworkPolicy par défaut refusante (02-architecture.md)."},
	{"Surveillance", "Métriques à libellés bornés, alertes (FranceConnect, fournisseurs, Redis, habilitations, pertes d'audit, certificat), tableau de bord."},
	{"Sécurité de l'exploitation", "Analyse govulncheck en CI, construction reproductible et SBOM, audit de configuration à chaque démarrage, modèles de déploiement durcis (10-mco-mcs.md)."},
	{"Gestion des incidents et des violations de données", "Procédure de 10-mco-mcs.md: qualification, confinement (révocation, rotation des secrets), notification à la CNIL sous 72 h (RGPD art. 33) par la collectivité."},
	{"Disponibilité", "Instances sans état multiples sur Redis Sentinel, rechargement sans coupure, échec fermé (aucun accès accordé sur erreur, I01–I05)."},
}

func measureTitles(titles ...string) []string { return titles }

// piaAnswers builds the answers from the catalogue and the configuration.
func piaAnswers(g *gen) []piaAnswer {
	cat, d := g.cat, g.dep
	var dataItems []string
	byCat := scopesByCategory(cat)
	for _, c := range Categories() {
		if len(byCat[c.ID]) == 0 {
			continue
		}
		item := c.Label + " (scopes " + strings.Join(byCat[c.ID], ", ") + ")"
		if c.Note != "" {
			item += ": " + c.Note
		}
		dataItems = append(dataItems, item)
	}
	granted := "Aucun fichier d'habilitations lisible dans la configuration: les scopes accordés sont à reporter depuis les habilitations DataPass."
	if gr := g.grants; gr != nil {
		granted = fmt.Sprintf("Les habilitations actives de la configuration auditée (%d) accordent %d scope(s): %s. Seuls ces scopes peuvent être obtenus.",
			gr.total-gr.revoked, len(gr.count), strings.Join(slices.Sorted(maps.Keys(gr.count)), ", "))
	}
	provs := providers(cat)
	retention := fmt.Sprintf("Passerelle ne conserve aucune donnée des fournisseurs ni paramètre d'état civil. Les faits d'un jeton FranceConnect vérifié restent au plus %s en cache (jamais au-delà de l'expiration du jeton). Journal d'audit pseudonyme: %s.",
		seconds(d.ttlCap), d.audit.retention())
	return []piaAnswer{
		{ref: 111, title: "Quel est le traitement qui fait l'objet de l'étude ?", blocks: []block{
			{p: "Vérification, pour les téléservices de la collectivité, de données détenues par l'administration (quotient familial, statut d'étudiant boursier, prestations sociales…) sans demander de justificatif à l'usager, par API Particulier et sa modalité FranceConnect, au travers de Passerelle, passerelle exploitée par la collectivité."},
			{p: "Téléservices concernés et enjeux: " + todo("démarches, volumes annuels, bénéfices attendus") + "."},
			{p: fmt.Sprintf("Fournisseurs de données joignables par le catalogue (%d routes): %s.", len(cat.Endpoints), strings.Join(provs, ", "))},
		}},
		{ref: 112, title: "Quelles sont les responsabilités liées au traitement ?", blocks: []block{{items: []string{
			"Responsable de traitement: la collectivité " + todo("nom, SIRET, représentant") + ".",
			"Sous-traitants: hébergeur, infogérant éventuel " + todo("noms, contrats art. 28") + ".",
			"Administrations sources (CNAF, MSA, CNOUS, MESRI…): responsables de leurs propres traitements; elles répondent dans le cadre de l'habilitation DataPass.",
			"FranceConnect: fédération d'identité de l'État, qui authentifie l'usager et confirme son jeton.",
			"Passerelle: logiciel exploité par la collectivité; il ne décide d'aucune finalité.",
		}}}},
		{ref: 113, title: "Quels sont les référentiels applicables ?", blocks: []block{{items: []string{
			"RGPD et loi n° 78-17 Informatique et libertés.",
			"Code des relations entre le public et l'administration, échanges de données entre administrations (art. L114-8 et suivants).",
			"Référentiel général de sécurité (RGS) et homologation de sécurité (guide ANSSI; MonServiceSécurisé).",
			"Recommandation de la CNIL relative à la journalisation (2021).",
			"Conditions d'utilisation d'API Particulier et de FranceConnect; habilitation DataPass de chaque téléservice.",
		}}}},
		{ref: 121, title: "Quelles sont les données traitées ?", blocks: []block{
			{p: "Données que le catalogue de Passerelle peut libérer, par catégorie (détail par route et par scope: flux.md):"},
			{items: dataItems},
			{p: granted},
			{p: "Données envoyées aux fournisseurs: l'identité pivot FranceConnect (noms, prénoms, date et lieu de naissance, sexe) sur les routes FranceConnect; l'état civil ou l'identifiant fournis par le service appelant sur les routes identité et identifiant; le SIRET de la collectivité (recipient)."},
			{p: "Destinataires: le téléservice de la collectivité qui appelle Passerelle, et ses agents habilités " + todo("services, profils") + "."},
			{p: "Durées: " + retention + " Durées dans le téléservice: " + todo("durée de conservation des pièces de la démarche") + "."},
		}},
		{ref: 122, title: "Comment le cycle de vie des données se déroule-t-il (description fonctionnelle) ?", blocks: []block{{items: []string{
			"L'usager se connecte au téléservice avec FranceConnect (ou, en modalité identité, l'agent saisit l'état civil).",
			"Le téléservice appelle Passerelle avec le jeton FranceConnect de l'usager (ou le jeton API de son habilitation).",
			"Passerelle vérifie le jeton auprès de FranceConnect (réponse chiffrée et signée), trouve l'habilitation du téléservice et calcule les scopes effectifs.",
			"Passerelle appelle le fournisseur avec son propre crédit et l'identité de l'usager, filtre la réponse champ par champ et la renvoie au téléservice.",
			"Passerelle écrit une ligne d'audit pseudonyme; rien d'autre n'est conservé (le cache du jeton expire au plus tard avec lui).",
			"Le téléservice utilise et conserve les données selon ses propres règles " + todo("durées, archivage, destruction") + ".",
		}}}},
		{ref: 123, title: "Quels sont les supports des données ?", blocks: []block{{items: []string{
			"Serveurs ou conteneurs exécutant Passerelle " + todo("hébergeur, localisation") + ".",
			"Redis (Sentinel) pour le cache partagé et les quotas: valeurs scellées, sans donnée en clair.",
			"Puits du journal d'audit et du journal d'accès " + todo("stockage, accès") + ".",
			"Réseaux: Internet (TLS) vers FranceConnect et les fournisseurs; réseau interne vers Redis et le collecteur de traces.",
		}}}},
		{ref: 211, title: "Les finalités du traitement sont-elles déterminées, explicites et légitimes ?", blocks: []block{
			{p: todo("finalité de chaque téléservice (ex.: calcul du tarif de la restauration scolaire selon le quotient familial)") + " Passerelle n'ouvre que les données prévues par l'habilitation DataPass de chaque téléservice, qui en fixe la finalité."},
		}},
		{ref: 212, title: "Quel(s) est(sont) les fondement(s) qui rend(ent) votre traitement licite ?", blocks: []block{
			{p: todo("fondement (par exemple mission d'intérêt public, art. 6.1.e RGPD) et texte de la démarche") + " Le cadre juridique est celui retenu par l'habilitation DataPass."},
		}},
		{ref: 213, title: "Les données collectées sont-elles adéquates, pertinentes et limitées à ce qui est nécessaire au regard des finalités pour lesquelles elles sont traitées (minimisation des données) ?", blocks: []block{
			{p: "Scopes effectifs = scopes du jeton ∩ scopes de l'habilitation ∩ scopes de la route; la réponse du fournisseur est reconstruite avec les seuls champs de ces scopes, tout champ nouveau ou inconnu est écarté. Une route non déclarée au catalogue n'existe pas."},
			{p: granted},
		}},
		{ref: 214, title: "Les données sont-elles exactes et tenues à jour ?", blocks: []block{
			{p: "Les données viennent, à chaque appel, de l'administration source, sans copie intermédiaire; l'identité est celle certifiée par FranceConnect. Les paramètres d'état civil sont normalisés comme les fournisseurs les comparent. Une erreur se corrige auprès de l'administration source."},
		}},
		{ref: 215, title: "Quelle est la durée de conservation des données ?", blocks: []block{
			{p: retention},
			{p: "Durées dans le téléservice: " + todo("durées et justification") + "."},
		}},
		{ref: 221, title: "Comment les personnes concernées sont-elles informées à propos du traitement ?", blocks: []block{
			{p: todo("mentions d'information du téléservice: données obtenues, administrations sources, finalité, droits") + " flux.md liste les données par démarche."},
		}},
		{ref: 222, title: "Si applicable, comment le consentement des personnes concernées est-il obtenu ?", blocks: []block{
			{p: todo("sans objet si le fondement n'est pas le consentement; sinon, modalités") + " La connexion FranceConnect reste à l'initiative de l'usager."},
		}},
		{ref: 223, title: "Comment les personnes concernées peuvent-elles exercer leurs droit d'accès et droit à la portabilité ?", blocks: []block{
			{p: "Auprès de la collectivité " + todo("contact, délai") + ". Passerelle ne conserve pas les données transmises; les décisions la concernant se retrouvent dans le journal d'audit par son pseudonyme, recalculable avec la clé de pseudonymisation en vigueur."},
		}},
		{ref: 224, title: "Comment les personnes concernées peuvent-elles exercer leurs droit de rectification et droit à l'effacement (droit à l'oubli) ?", blocks: []block{
			{p: "Rectification auprès de l'administration source (CAF, MSA, CROUS…), seule à détenir la donnée; effacement des données conservées par le téléservice auprès de la collectivité " + todo("contact") + "."},
		}},
		{ref: 225, title: "Comment les personnes concernées peuvent-elles exercer leurs droit de limitation et droit d'opposition ?", blocks: []block{
			{p: todo("modalités; possibilité pour l'usager de fournir ses justificatifs autrement que par FranceConnect")},
		}},
		{ref: 226, title: "Les obligations des sous-traitants sont-elles clairement définies et contractualisées ?", blocks: []block{
			{p: todo("hébergeur, infogérant: contrats et clauses art. 28 RGPD")},
		}},
		{ref: 227, title: "En cas de transfert de données en dehors de l'Union européenne, les données sont-elles protégées de manière équivalente ?", blocks: []block{
			{p: "Passerelle n'envoie de données qu'à FranceConnect et aux fournisseurs configurés. Hébergement et sous-traitants: " + todo("localisation") + "."},
		}},
		{ref: 321, title: "Accès illégitime: impacts sur les personnes", list: []string{"Divulgation de la situation financière ou familiale", "Révélation d'un handicap ou du bénéfice d'une prestation sociale", "Exposition de données d'enfants", "Usurpation d'identité", "Hameçonnage ciblé (adresse, courriel)"}},
		{ref: 322, title: "Accès illégitime: menaces", list: []string{"Vol ou rejeu d'un jeton FranceConnect", "Sur-collecte par un service appelant au-delà de son habilitation", "Fuite par le cache, les journaux ou les traces", "Révocation d'habilitation non appliquée", "Vol des secrets de la passerelle"}},
		{ref: 323, title: "Accès illégitime: sources de risques", list: []string{"Attaquant externe", "Service appelant compromis", "Exploitant ou agent malveillant", "Fournisseur de données compromis"}},
		{ref: 324, title: "Accès illégitime: mesures", list: measureTitles("Contrôle des accès logiques", "Minimisation des données", "Chiffrement", "Pseudonymisation", "Traçabilité (journalisation)", "Gestion des secrets", "Limitation du débit", "Cloisonnement", "Surveillance")},
		{ref: 325, title: "Accès illégitime: gravité", gauge: 3, blocks: []block{{p: "Proposition: importante. Données financières et familiales, handicap (donnée de santé), données de mineurs: des conséquences significatives, difficiles à surmonter pour les personnes. À valider par le responsable de traitement."}}},
		{ref: 326, title: "Accès illégitime: vraisemblance", gauge: 2, blocks: []block{{p: "Proposition: limitée. Jetons de courte durée vérifiés à chaque usage, scopes bornés par l'habilitation, aucune donnée au repos, quotas; un service appelant compromis reste capable d'obtenir les données de ses usagers connectés dans la limite de son habilitation et des quotas. À valider."}}},
		{ref: 331, title: "Modification non désirée: impacts sur les personnes", list: []string{"Décision administrative erronée (tarif, aide) fondée sur une donnée altérée", "Données d'une autre personne attribuées à l'usager"}},
		{ref: 332, title: "Modification non désirée: menaces", list: []string{"Altération de la réponse en transit", "Substitution d'identité par des paramètres injectés", "Altération des valeurs du cache Redis"}},
		{ref: 333, title: "Modification non désirée: sources de risques", list: []string{"Attaquant externe", "Service appelant compromis", "Exploitant malveillant"}},
		{ref: 334, title: "Modification non désirée: mesures", list: measureTitles("Chiffrement", "Contrôle des accès logiques", "Minimisation des données", "Traçabilité (journalisation)", "Sécurité de l'exploitation")},
		{ref: 335, title: "Modification non désirée: gravité", gauge: 2, blocks: []block{{p: "Proposition: limitée. Une donnée erronée se corrige auprès de l'administration source et la décision se reprend. À valider."}}},
		{ref: 336, title: "Modification non désirée: vraisemblance", gauge: 1, blocks: []block{{p: "Proposition: négligeable. TLS vérifié de bout en bout, identité prise de la seule réponse vérifiée de FranceConnect, paramètres de personne refusés sur les routes FranceConnect, valeur de cache altérée traitée comme absente. À valider."}}},
		{ref: 341, title: "Disparition: impacts sur les personnes", list: []string{"Téléservice indisponible: retour aux justificatifs papier et retard de la démarche"}},
		{ref: 342, title: "Disparition: menaces", list: []string{"Panne de FranceConnect ou d'un fournisseur", "Déni de service", "Panne de Redis ou de l'hébergement", "Fichier d'habilitations supprimé"}},
		{ref: 343, title: "Disparition: sources de risques", list: []string{"Attaquant externe", "Erreur d'exploitation", "Défaillance d'un tiers (FranceConnect, fournisseur, hébergeur)"}},
		{ref: 344, title: "Disparition: mesures", list: measureTitles("Disponibilité", "Limitation du débit", "Surveillance", "Gestion des incidents et des violations de données")},
		{ref: 345, title: "Disparition: gravité", gauge: 2, blocks: []block{{p: "Proposition: limitée. Passerelle ne détient aucune donnée à perdre; une indisponibilité retarde la démarche, l'usager peut fournir ses justificatifs autrement. À valider."}}},
		{ref: 346, title: "Disparition: vraisemblance", gauge: 2, blocks: []block{{p: "Proposition: limitée. Dépend de FranceConnect et des fournisseurs (échec fermé); instances redondantes et alertes fournies. À valider."}}},
	}
}

// piaJSON writes 09-aipd.pia.json.
func piaJSON(g *gen) ([]byte, error) {
	created := "1970-01-01T00:00:00.000Z" // the tool needs a date; --date sets it
	if g.in.Date != "" {
		created = g.in.Date + "T00:00:00.000Z"
	}
	type data struct {
		Text  *string  `json:"text"`
		Gauge *int     `json:"gauge"`
		List  []string `json:"list"`
	}
	type answer struct {
		ReferenceTo int    `json:"reference_to"`
		Data        data   `json:"data"`
		CreatedAt   string `json:"created_at"`
	}
	type measure struct {
		ID          int    `json:"id"`
		Title       string `json:"title"`
		Content     string `json:"content"`
		Placeholder string `json:"placeholder"`
		CreatedAt   string `json:"created_at"`
	}
	doc := struct {
		PIA         map[string]any `json:"pia"`
		Answers     []answer       `json:"answers"`
		Measures    []measure      `json:"measures"`
		Evaluations []any          `json:"evaluations"`
		Comments    []any          `json:"comments"`
	}{
		PIA: map[string]any{
			"name":           "Passerelle: données d'API Particulier par FranceConnect (" + g.in.ConfigName + ")",
			"author_name":    "[à compléter]",
			"evaluator_name": "[à compléter]",
			"validator_name": "[à compléter]",
			"category":       "",
			"status":         0,
			"created_at":     created,
		},
		Evaluations: []any{}, Comments: []any{},
	}
	for _, a := range piaAnswers(g) {
		d := data{List: []string{}}
		switch {
		case a.list != nil:
			d.List = a.list
		default:
			text := blocksHTML(a.blocks)
			gauge := a.gauge
			d.Text, d.Gauge = &text, &gauge
		}
		doc.Answers = append(doc.Answers, answer{a.ref, d, created})
	}
	for i, m := range piaMeasures {
		doc.Measures = append(doc.Measures, measure{i + 1, m.title, "<p>" + escapeHTML(m.content) + "</p>", "measures.default_placeholder", created})
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// escapeHTML escapes the text of an HTML answer (quotes need none there).
var escapeHTML = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

func blocksHTML(bs []block) string {
	var b strings.Builder
	for _, bl := range bs {
		if bl.items != nil {
			b.WriteString("<ul>")
			for _, it := range bl.items {
				b.WriteString("<li>" + escapeHTML(it) + "</li>")
			}
			b.WriteString("</ul>")
			continue
		}
		b.WriteString("<p>" + escapeHTML(bl.p) + "</p>")
	}
	return b.String()
}

// piaMarkdown writes 09-aipd.md: the same answers, to read without the tool.
func piaMarkdown(g *gen) []byte {
	var b bytes.Buffer
	header(&b, g, "Analyse d'impact (AIPD): point de départ",
		"Les réponses pré-remplies de `09-aipd.pia.json`, à importer dans l'outil PIA de la CNIL (Accueil → Importer). "+
			"Le responsable de traitement (la collectivité) complète les passages entre crochets, valide ou corrige les niveaux proposés, puis fait évaluer et valider l'AIPD (DPO).")
	section := 0
	for _, a := range piaAnswers(g) {
		if s := a.ref / 100; s != section {
			section = s
			fmt.Fprintf(&b, "## %s\n\n", map[int]string{1: "1. Contexte", 2: "2. Principes fondamentaux", 3: "3. Risques"}[s])
		}
		fmt.Fprintf(&b, "### %d. %s\n\n", a.ref, a.title)
		if a.gauge > 0 {
			fmt.Fprintf(&b, "Niveau proposé: **%d, %s**.\n\n", a.gauge, gaugeLabel[a.gauge])
		}
		for _, it := range a.list {
			fmt.Fprintf(&b, "- %s\n", it)
		}
		if a.list != nil {
			b.WriteString("\n")
		}
		for _, bl := range a.blocks {
			if bl.items != nil {
				for _, it := range bl.items {
					fmt.Fprintf(&b, "- %s\n", it)
				}
				b.WriteString("\n")
				continue
			}
			fmt.Fprintf(&b, "%s\n\n", bl.p)
		}
	}
	b.WriteString("## Mesures (section 3.1 de l'outil)\n\n")
	for _, m := range piaMeasures {
		fmt.Fprintf(&b, "- **%s**: %s\n", m.title, m.content)
	}
	return b.Bytes()
}
