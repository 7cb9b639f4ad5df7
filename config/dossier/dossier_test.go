package dossier

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/passerelle-gw/passerelle/config/audit"
)

const canary = "CANARY-secret-value-4f1d"

// testConfig is a Caddy JSON configuration: production, a literal secret
// (the canary), ttl_cap 45 s, Redis with TLS, CNAV by OAuth2 and ANTS by a
// static header, one handler serving one route, the audit log kept 200 days
// behind passerelle_buffered, an access log with Caddy's default rotation.
func testConfig(mode string) []byte {
	cfg := map[string]any{
		"admin": map[string]any{"listen": "unix//run/passerelle/admin.sock"},
		"logging": map[string]any{"logs": map[string]any{
			"audit": map[string]any{"include": []any{"passerelle.audit"}, "writer": map[string]any{
				"output": "passerelle_buffered", "writer": map[string]any{"output": "file", "filename": "/var/log/a.log", "roll_keep_days": 200, "roll_keep": -1}}},
			"log0": map[string]any{"include": []any{"http.log.access.log0"}, "writer": map[string]any{"output": "file", "filename": "/var/log/b.log"}},
		}},
		"apps": map[string]any{
			"passerelle": map[string]any{
				"mode":          mode,
				"habilitations": "habs.yaml",
				"franceconnect": map[string]any{"issuer": "https://fc.example/api/v2", "client_id": "x", "client_secret": canary},
				"cache": map[string]any{"ttl_cap": 45e9, "secret": "{file./run/c}", "redis": map[string]any{
					"addrs": []any{"s1:26379"}, "master_name": "m", "tls": true, "password": "{file./run/p}"}},
				"upstreams": map[string]any{
					"CNAV": map[string]any{"oauth2": map[string]any{"token_url": "https://t.example", "client_id": "c", "client_secret": "{env.S}"}},
					"ANTS": map[string]any{"header_name": "X-Api-Key", "header_value": "{file./run/ants}"},
				},
				"audit": map[string]any{"pseudonym_key": "{file./run/k}", "pseudonym_key_version": "2026"},
			},
			"http": map[string]any{"servers": map[string]any{"srv0": map[string]any{
				"listen": []any{":443"},
				"routes": []any{map[string]any{"handle": []any{
					map[string]any{"handler": "passerelle", "endpoints": []any{"dss_quotient_familial_fc"}},
					map[string]any{"handler": "reverse_proxy", "upstreams": []any{map[string]any{"dial": "provider.example:443"}}},
				}}},
			}}},
		},
	}
	b, _ := json.Marshal(cfg)
	return b
}

const testHabilitations = `habilitations:
  - id: "h1"
    label: "Mairie"
    siret: "21930048000015"
    france_connect_client_ids: ["0f5e7b9d1c3a5e7f9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e"]
    modalities: [france_connect]
    scopes: [cnaf_quotient_familial, cnaf_enfants]
  - id: "h2"
    label: "Ancienne"
    siret: "21930048000015"
    france_connect_client_ids: ["1f5e7b9d1c3a5e7f9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e"]
    modalities: [france_connect]
    scopes: [cnaf_adresse]
    revoked: true
`

func testInput(mode string) Input {
	return Input{
		ConfigName: "Caddyfile.test",
		Config:     testConfig(mode),
		Audit: audit.Options{ReadFile: func(p string) ([]byte, error) {
			if p == "habs.yaml" {
				return []byte(testHabilitations), nil
			}
			return nil, os.ErrNotExist
		}},
	}
}

func generate(t *testing.T, in Input) map[string]string {
	t.Helper()
	files, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var names []string
	for _, f := range files {
		out[f.Name] = string(f.Data)
		names = append(names, f.Name)
	}
	want := []string{"flux.md", "04-mesures-mss.csv", "05-exigences-tests.md", "06-audit-configuration.md", "07-chaine-approvisionnement.md", "09-aipd.pia.json", "09-aipd.md"}
	if !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	for name, data := range out {
		if strings.Contains(data, canary) {
			t.Errorf("%s prints a secret's value", name)
		}
		if strings.Contains(data, "0f5e7b9d1c3a5e7f9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e") || strings.Contains(data, "21930048000015") {
			t.Errorf("%s lists a habilitation's client id or SIRET", name)
		}
	}
	return out
}

func contains(t *testing.T, name, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q", name, w)
		}
	}
}

// TestFlux: flux.md reads the configuration: retention (ttl_cap, the
// audit and access logs' rotation), credentials by provider, the routes
// the handlers serve, the scopes the habilitations grant (revoked ones
// left out), and every route's categories.
func TestFlux(t *testing.T) {
	f := generate(t, testInput("production"))["flux.md"]
	contains(t, "flux.md", f,
		"au plus 45 s (ttl_cap)", "au plus 5 s (negative_ttl)",
		"200 jours après la rotation de leur fichier (roll_keep_for; règle PA22)",
		"90 jours après la rotation de leur fichier (roll_keep_for) au plus, mais pas plus de 10 fichiers (roll_keep)",
		"clé 2026", "écritures groupées",
		"Redis (clé HMAC-SHA256",
		"CNAV<br>OAuth2 client credentials", "ANTS<br>en-tête statique X-Api-Key",
		"MEN<br>aucun crédit configuré",
		"dss_quotient_familial_identite (non servie)",
		"`cnaf_enfants` → Identité, état civil et identifiants, Situation familiale et composition du foyer, Données concernant des mineurs",
		"Habilitations: 2, dont 1 révoquée(s)",
		"| `cnaf_enfants` | 1 | france_connect |",
		"`allocation_adulte_handicape` → Droits et prestations sociales, Handicap (donnée concernant la santé)")
	if strings.Contains(f, "dss_quotient_familial_fc (non servie)") {
		t.Error("the served route is marked not served")
	}
	if strings.Contains(f, "| `cnaf_adresse` |") {
		t.Error("a revoked habilitation's scope is counted as granted")
	}
	if strings.Contains(f, "non classé") || strings.Contains(f, "À classer") {
		t.Error("the embedded catalogue has unclassified fields")
	}
}

// TestFluxUnclassifiedField: a catalogue the configuration names, with a
// scope the table does not know, shows its fields as to classify.
func TestFluxUnclassifiedField(t *testing.T) {
	in := testInput("production")
	var cfg map[string]any
	_ = json.Unmarshal(in.Config, &cfg)
	cfg["apps"].(map[string]any)["passerelle"].(map[string]any)["catalogue"] = "cat.yaml"
	in.Config, _ = json.Marshal(cfg)
	in.Audit.ReadFile = func(p string) ([]byte, error) {
		if p == "cat.yaml" {
			return []byte(`providers: {CNAV: {error_prefix: "37"}}
endpoints:
  - id: a
    path: /v3/a/france_connect
    modality: france_connect
    operation_id: op_a
    provider: CNAV
    upstream_path: /v3/a/identite
    identity: [{param: nom, claim: family_name}]
    scopes: [{name: nouveau_scope, basis: der, fields: [data.nouveau]}, {name: cnaf_adresse, basis: doc, fields: [data.adresse, data.autre]}]
`), nil
		}
		return nil, os.ErrNotExist
	}
	f := generate(t, in)["flux.md"]
	contains(t, "flux.md", f, "catalogue de la configuration (`cat.yaml`), 1 routes",
		"`nouveau_scope` → **non classé: data.nouveau**", "`cnaf_adresse` → Coordonnées (adresse, courriel, contact), **non classé: data.autre**",
		"**À classer avant l'homologation**", "`cnaf_adresse: data.autre`, `nouveau_scope: data.nouveau`")
	in.Audit.ReadFile = func(string) ([]byte, error) { return nil, os.ErrNotExist }
	if _, err := Generate(in); err == nil {
		t.Error("an unreadable catalogue was accepted")
	}
}

// TestAuditReport: findings with their French titles and severities; an
// ignore line accepts a finding with its justification; the rule table
// lists every rule with its result.
func TestAuditReport(t *testing.T) {
	a := generate(t, testInput("sandbox"))["06-audit-configuration.md"]
	contains(t, "06", a, "## Constats", "| PA01 | critique | mode bac à sable", "| PA02 | haute | secret écrit en clair",
		"`apps.passerelle.franceconnect.client_secret`", "| PA01 | critique | mode bac à sable ou module du bac à sable | 1 constat(s) |")
	for _, r := range audit.Rules() {
		contains(t, "06", a, "| "+r.ID+" | ")
	}
	in := testInput("sandbox")
	in.Ignores, in.IgnoreName = []audit.Ignore{{Rule: "PA01", Why: "poste de développement"}}, "accepted.txt"
	a = generate(t, in)["06-audit-configuration.md"]
	contains(t, "06", a, "## Constats acceptés (`accepted.txt`)", "poste de développement", "| 1 accepté(s) |")
	if strings.Contains(a, "| PA01 | critique | mode bac à sable ou module du bac à sable | 1 constat(s) |") {
		t.Error("an accepted finding is still counted as a finding")
	}
}

// TestSupplyChain: the SBOM's format, digest and component count, the
// govulncheck findings by deepest level, the binary's digest and modules;
// unreadable reports are errors; without them the file says so.
func TestSupplyChain(t *testing.T) {
	s := generate(t, testInput("production"))["07-chaine-approvisionnement.md"]
	contains(t, "07", s, "Non décrit", "Non fournie (`--sbom`)", "Non fourni (`--govulncheck`)")

	in := testInput("production")
	sbom := []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","metadata":{"component":{"name":"passerelle","version":"v1.2.0"}},"components":[{"name":"a"},{"name":"b"},{"name":"c"}]}`)
	vuln := []byte(`{"config":{"protocol_version":"v1.0.0","scanner_name":"govulncheck","scanner_version":"v1.9.0","db":"file:///db","db_last_modified":"2026-11-05T23:49:57Z","go_version":"go1.27.3","scan_level":"symbol"}}
{"progress":{"message":"Scanning"}}
{"osv":{"id":"GO-2026-0001"}}
{"finding":{"osv":"GO-2026-0001","fixed_version":"v1.20.2","trace":[{"module":"example.org/m","version":"v1.20.1"}]}}
{"finding":{"osv":"GO-2026-0001","fixed_version":"v1.20.2","trace":[{"module":"example.org/m","version":"v1.20.1","package":"example.org/m/p","function":"F"}]}}
{"finding":{"osv":"GO-2026-0002","trace":[{"module":"example.org/n","package":"example.org/n/q"}]}}
`)
	in.SBOM, in.Govulncheck = &Report{"passerelle.cdx.json", sbom}, &Report{"vuln.json", vuln}
	in.Binary = &Binary{SHA256: "abc123", Info: &debug.BuildInfo{GoVersion: "go1.27.3", Main: debug.Module{Path: "github.com/passerelle-gw/passerelle", Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "-trimpath", Value: "true"}}, Deps: []*debug.Module{{Path: "example.org/dep", Version: "v1.0.0", Sum: "h1:x"}}}}
	s = generate(t, in)["07-chaine-approvisionnement.md"]
	contains(t, "07", s, "SHA-256: `abc123`", "Go: `go1.27.3`", "`-trimpath=true`", "| `example.org/dep` | `v1.0.0` | `h1:x` |",
		"`passerelle.cdx.json`, SHA-256 `"+digest(sbom)+"`", "CycloneDX 1.6", "passerelle v1.2.0", "Composants: 3",
		"govulncheck v1.9.0", "**1 vulnérabilité(s) atteignable(s)**, 2 au total",
		"| GO-2026-0001 | atteignable (fonction appelée) | `example.org/m` | v1.20.2 |",
		"| GO-2026-0002 | paquet importé, fonction non appelée | `example.org/n` | — |")

	for _, bad := range []Input{{SBOM: &Report{"x", []byte(`{"bomFormat":"SPDX"}`)}}, {Govulncheck: &Report{"x", []byte(`{"progress":{}}`)}}, {Govulncheck: &Report{"x", []byte(`not json`)}}} {
		in := testInput("production")
		in.SBOM, in.Govulncheck = bad.SBOM, bad.Govulncheck
		if _, err := Generate(in); err == nil {
			t.Errorf("bad report accepted: %+v", bad)
		}
	}
}

// TestLoadReportSection: 07 states the load report's binary against the
// one it describes, the machine and load, every bar's verdict and the
// soak's; a report of another binary, a failed bar and a missing soak are
// said so; a file that is not a load report is an error.
func TestLoadReportSection(t *testing.T) {
	s := generate(t, testInput("production"))["07-chaine-approvisionnement.md"]
	contains(t, "07", s, "Non fourni (`--load-report`)")

	report := func(bin string, pass bool, soak string) []byte {
		return []byte(`{"date":"2026-12-07T02:05:30Z","method":{"binary_sha256":"` + bin + `","revision":"613a600","cpu":"AMD EPYC",` +
			`"logical_cpus":2,"memory_mib":24105,"kernel":"Linux 6.18","tls":"TLS 1.3, TLS_AES_128_GCM_SHA256","rate_per_second":200,` +
			`"duration":"30s","repetitions":5,"reloads":50,"soak_minutes":60,"release_method":` + strconv.FormatBool(pass) + `},"scenarios":[{"name":"Nominal: cached token against reverse_proxy","verdicts":[` +
			`{"name":"p99 overhead over reverse_proxy ≤ 10 ms in every repetition","value":"worst +0.43 ms","pass":` + strconv.FormatBool(pass) + `}]}]` +
			soak + `,"pass":` + strconv.FormatBool(pass) + `}`)
	}
	in := testInput("production")
	in.Binary = &Binary{SHA256: "abc123"}
	in.Load = &Report{"load-report.json", report("abc123", true, `,"soak":{"minutes":60,"verdicts":["a: PASS","b: PASS","c: PASS"],"pass":true}`)}
	s = generate(t, in)["07-chaine-approvisionnement.md"]
	contains(t, "07", s, "## Charge et endurance (SECURITY.md J06)", "`load-report.json`, SHA-256 `"+digest(in.Load.Data)+"`",
		"Binaire mesuré: `abc123` (le binaire décrit ci-dessus)", "AMD EPYC, 2 processeurs logiques, 24105 Mio, Linux 6.18; TLS: TLS 1.3",
		"200 requêtes/s (débit constant), 30s par mesure, 5 répétitions du scénario nominal, 50 rechargements, endurance de 60 min: la méthode de publication",
		"Verdict d'ensemble: conforme",
		"| Nominal: cached token against reverse_proxy | p99 overhead over reverse_proxy ≤ 10 ms in every repetition | worst +0.43 ms | conforme |",
		"| Endurance, 60 min (`deploy/bench/soak.sh`) | 3 critères | voir `load-report.md` | conforme |")

	in.Load = &Report{"load-report.json", report("def456", false, "")}
	s = generate(t, in)["07-chaine-approvisionnement.md"]
	contains(t, "07", s, "(**un autre binaire que celui décrit ci-dessus**)", "Verdict d'ensemble: **non conforme**",
		"endurance de 60 min: **un essai court, pas la méthode de publication**",
		"worst +0.43 ms | **non conforme** |", "| Endurance (`deploy/bench/soak.sh`) | — | **non lancée** | — |")

	for _, bad := range [][]byte{[]byte(`not json`), []byte(`{"method":{},"scenarios":[{}]}`), []byte(`{"method":{"binary_sha256":"x"}}`)} {
		in := testInput("production")
		in.Load = &Report{"x", bad}
		if _, err := Generate(in); err == nil {
			t.Errorf("bad load report accepted: %s", bad)
		}
	}
}

// TestPIA: the JSON has the PIA tool's import shape; answers cover the
// context, principles and the three risks; the risk measures named in
// 324/334/344 are measures of the file; 121 comes from the catalogue and
// the habilitations; the markdown has the same answers.
func TestPIA(t *testing.T) {
	in := testInput("production")
	in.Date = "2026-12-01"
	out := generate(t, in)
	var doc struct {
		PIA     map[string]any `json:"pia"`
		Answers []struct {
			Ref  int `json:"reference_to"`
			Data struct {
				Text  *string  `json:"text"`
				Gauge *int     `json:"gauge"`
				List  []string `json:"list"`
			} `json:"data"`
			CreatedAt string `json:"created_at"`
		} `json:"answers"`
		Measures    []struct{ Title, Content string } `json:"measures"`
		Evaluations []any                             `json:"evaluations"`
		Comments    []any                             `json:"comments"`
	}
	if err := json.Unmarshal([]byte(out["09-aipd.pia.json"]), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.PIA["name"] == "" || doc.PIA["created_at"] != "2026-12-01T00:00:00.000Z" || doc.Evaluations == nil || doc.Comments == nil {
		t.Fatalf("pia %v, evaluations %v, comments %v", doc.PIA, doc.Evaluations, doc.Comments)
	}
	var titles []string
	for _, m := range doc.Measures {
		titles = append(titles, m.Title)
	}
	refs := map[int]bool{}
	for _, a := range doc.Answers {
		refs[a.Ref] = true
		switch a.Ref % 10 {
		case 4:
			if a.Ref > 300 {
				for _, m := range a.Data.List {
					if !slices.Contains(titles, m) {
						t.Errorf("%d names measure %q, which the file does not hold", a.Ref, m)
					}
				}
			}
		case 5, 6:
			if a.Ref > 300 && (a.Data.Gauge == nil || *a.Data.Gauge < 1 || *a.Data.Gauge > 4) {
				t.Errorf("%d: gauge %v", a.Ref, a.Data.Gauge)
			}
		}
		if a.Ref > 320 && a.Ref%10 <= 4 && len(a.Data.List) == 0 {
			t.Errorf("%d: empty list", a.Ref)
		}
		if a.CreatedAt != "2026-12-01T00:00:00.000Z" {
			t.Errorf("%d: created_at %q", a.Ref, a.CreatedAt)
		}
		if a.Ref == 121 {
			contains(t, "answer 121", *a.Data.Text, "Handicap (donnée concernant la santé) (scopes allocation_adulte_handicape",
				"accordent 2 scope(s): cnaf_enfants, cnaf_quotient_familial", "au plus 45 s", "200 jours")
		}
	}
	for _, r := range []int{111, 112, 113, 121, 122, 123, 211, 212, 213, 214, 215, 221, 222, 223, 224, 225, 226, 227,
		321, 322, 323, 324, 325, 326, 331, 332, 333, 334, 335, 336, 341, 342, 343, 344, 345, 346} {
		if !refs[r] {
			t.Errorf("no answer to question %d", r)
		}
	}
	contains(t, "09-aipd.md", out["09-aipd.md"], "### 121. Quelles sont les données traitées ?", "Niveau proposé: **3, importante**", "## Mesures (section 3.1 de l'outil)", "Généré le 2026-12-01")
}

// TestDeterministic: two generations are identical; the output is dated
// only when asked; without a source the traceability says so.
func TestDeterministic(t *testing.T) {
	a, b := generate(t, testInput("production")), generate(t, testInput("production"))
	for name := range a {
		if a[name] != b[name] {
			t.Errorf("%s differs between two generations", name)
		}
		if strings.Contains(a[name], "Généré le") {
			t.Errorf("%s is dated without --date", name)
		}
	}
	contains(t, "09-aipd.pia.json", a["09-aipd.pia.json"], `"created_at": "1970-01-01T00:00:00.000Z"`)
	contains(t, "05", a["05-exigences-tests.md"], "**Non produit**", "`--source`")
}

// TestExigences: with a source, 05 counts the requirements by group and
// status, lists the operator's, and shows every row.
func TestExigences(t *testing.T) {
	in := testInput("production")
	in.Source = traceFS("C09 operator -- the deployment's\n")
	e := generate(t, in)["05-exigences-tests.md"]
	contains(t, "05", e, "**4 exigences, 3 prouvées par au moins un test**, 0 en attente, 1 à la charge de l'exploitant.",
		"| A | Acceptation du jeton FranceConnect | 2 | 2 | 0 | 0 |", "| C | Autorisation | 1 | 0 | 0 | 1 |",
		"- **C09** SHOULD: the deployment's", "| B01 | Keys are HMACs | pkg/TestA01_B01_Both<br>pkg/TestTagged |")
	if strings.Contains(e, "| D |") {
		t.Error("a group without requirements is listed")
	}
	in.Source = traceFS("A01 pending -- but it has a test\n")
	e = generate(t, in)["05-exigences-tests.md"]
	contains(t, "05", e, "**Écarts**", "A01 has tests", "C09 has no test")
}

// TestWrite: Write creates the directory and the files, overwrites its own
// files, and refuses to write through a symbolic link already in the
// directory.
func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	for _, data := range []string{"x", "y"} {
		if err := Write(dir, []File{{"x.md", []byte(data)}}); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "x.md")); err != nil || string(b) != data {
			t.Fatalf("%q %v, want %q", b, err, data)
		}
	}
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "link.md")); err != nil {
		t.Skipf("symlink: %v", err)
	}
	if err := Write(dir, []File{{"link.md", []byte("x")}}); err == nil || !strings.Contains(err.Error(), "link.md") {
		t.Errorf("writing through a symbolic link: %v, want an error naming it", err)
	}
	if b, _ := os.ReadFile(target); !bytes.Equal(b, []byte("keep")) {
		t.Errorf("the link's target was overwritten: %q", b)
	}
	if _, err := Generate(Input{Config: []byte("[1]")}); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a configuration that is not an object: %v", err)
	}
}

// TestAuditLogAsTheAuditReadsIt: the trail's log is found as PA14 finds it,
// a parent logger included, the first log in name order winning.
func TestAuditLogAsTheAuditReadsIt(t *testing.T) {
	d, err := readDeployed([]byte(`{"logging":{"logs":{
		"a_trail":{"include":["passerelle"],"writer":{"output":"file","filename":"/var/log/passerelle/audit.log"}},
		"b_other":{"include":["passerelle.audit"],"writer":{"output":"stderr"}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if d.audit == nil || d.audit.name != "a_trail" {
		t.Fatalf("audit log %+v, want the first log taking passerelle.audit (a_trail)", d.audit)
	}
}
