package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

// auditLines reads the audit records of a LogDir, once n are written.
func auditLines(t *testing.T, dir string, n int) []map[string]any {
	t.Helper()
	var out []map[string]any
	for l := range strings.Lines(string(waitForLines(t, filepath.Join(dir, "audit.log"), n))) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestIssue8_ProviderCutMidStream: a provider whose body is cut after its
// headers makes reverse_proxy abort (a panic with http.ErrAbortHandler).
// The request that reached the provider still gets its 502, its audit
// record, its metric and its pings outcome; and no log line at any level
// carries the identité query string (issue 8, defect 2).
func TestIssue8_ProviderCutMidStream(t *testing.T) {
	var hits atomic.Int64
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "4096")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"data":{"quotient_familial":`)
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(cut.Close)
	dir := logDir(t)
	start(t, options{MaxEntries: 13002, Recorder: cut.URL, LogDir: dir})

	q := dupont()
	q.Set("nomNaissance", "CANARYCUT")
	a := get(t, recordPort, qfIdentite+"?"+q.Encode(), bearer("sandbox_all_scopes")...)
	if a.status != 502 || a.code(t) != "37999" {
		t.Fatalf("cut answer: %d %s", a.status, a.body)
	}
	if hits.Load() != 1 {
		t.Fatalf("%d provider calls, want 1", hits.Load())
	}
	rec := auditLines(t, dir, 1)[0]
	if rec["endpoint"] != "dss_quotient_familial_identite" || rec["decision"] != "error" || rec["code"] != "37999" ||
		rec["reason"] != "provider_error" || rec["citizen_key"] == nil {
		t.Errorf("audit record %v", rec)
	}
	if p := get(t, recordPort, "/api/pings/cnav"); p.json(t)["status"] != "bad_gateway" {
		t.Errorf("pings after a cut answer: %s", p.body)
	}
	metrics := get(t, internalPort, "/metrics")
	if !strings.Contains(string(metrics.body), `caddy_passerelle_requests_total{code="37999",decision="error",endpoint="dss_quotient_familial_identite"}`) {
		t.Error("no requests_total sample for the cut answer")
	}
	server, _ := os.ReadFile(filepath.Join(dir, "server.log"))
	if !strings.Contains(string(server), "aborting with incomplete response") {
		t.Fatalf("reverse_proxy did not abort (the test proves nothing): %s", server)
	}
	for _, name := range []string{"server.log", "access.log", "audit.log"} {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		if leak := contains(data, "CANARYCUT", "DUPONT", "sandbox_all_scopes", "prenoms", "nomNaissance"); leak != "" {
			t.Errorf("%s holds %q", name, leak)
		}
	}
}

// TestIssue8_LookupPseudonyms: identité and identifiant audit records carry
// the pseudonym of the person looked up (issue 8, defect 9): the same
// civil status gives the same key on a v3 and a legacy v2 route, another
// person another key, an identifier its own basis; FranceConnect records
// keep theirs, from the sub.
func TestIssue8_LookupPseudonyms(t *testing.T) {
	dir := logDir(t)
	start(t, options{MaxEntries: 13003, LogDir: dir})
	v3 := dupont()
	v2 := url.Values{"nomNaissance": {"Dupont"}, "prenoms[]": {"Paul", "Louis"}, "anneeDateDeNaissance": {"1962"},
		"moisDateDeNaissance": {"08"}, "jourDateDeNaissance": {"24"}, "sexe": {"M"}, "codePaysLieuDeNaissance": {"99100"}}
	other := dupont()
	other.Set("jourDateNaissance", "25")
	calls := []struct {
		target string
		header []string
	}{
		{qfIdentite + "?" + v3.Encode(), bearer("sandbox_all_scopes")},
		{"/api/v2/composition-familiale-v2?" + v2.Encode(), []string{"X-Api-Key", "sandbox_all_scopes"}},
		{qfIdentite + "?" + other.Encode(), bearer("sandbox_all_scopes")},
		{"/v4/cnous/etudiant_boursier/ine?ine=940416111TD&recipient=" + siret, bearer("sandbox_all_scopes")},
		{qf("recipient=" + siret), bearer("cnaf_qfv2")},
	}
	for _, c := range calls {
		get(t, gatewayPort, c.target, c.header...)
	}
	recs := auditLines(t, dir, len(calls))
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	key := func(i int, basis string) string {
		k, _ := recs[i]["citizen_key"].(string)
		if !hex64.MatchString(k) || recs[i]["citizen_key_basis"] != basis || recs[i]["pseudonym_key_version"] == nil {
			t.Errorf("record %d (%v): citizen_key %q basis %v, want %s", i, recs[i]["endpoint"], k, recs[i]["citizen_key_basis"], basis)
		}
		return k
	}
	dupontV3, dupontV2, dupont25 := key(0, "civil_status"), key(1, "civil_status"), key(2, "civil_status")
	ine, fc := key(3, "identifier"), key(4, "sub")
	if dupontV3 != dupontV2 {
		t.Error("one civil status, two keys on a v3 and a v2 route")
	}
	if dupontV3 == dupont25 {
		t.Error("two birth dates, one key")
	}
	if ine == dupontV3 || fc == dupontV3 || ine == fc {
		t.Error("keys of different bases collide")
	}
	if leak := contains([]byte(fmt.Sprint(recs)), "DUPONT", "Dupont", "940416111TD"); leak != "" {
		t.Errorf("audit records hold %q", leak)
	}
}

// TestIssue8_ModalitiesPerHabilitation: a habilitation opens only the
// calling modalities DataPass granted it (issue 8, defect 4). An API token
// whose habilitation lists france_connect only still introspects but opens
// no identité or identifiant route, in Authorization or in a v2 X-Api-Key;
// identite does not open identifiant; a FranceConnect service paired with a
// habilitation without france_connect is refused. Nothing reaches a
// provider.
func TestIssue8_ModalitiesPerHabilitation(t *testing.T) {
	const introOnly, identiteOnly = "intro-only-token-canary-2d4f", "identite-only-token-canary-6b8a"
	digest := func(tok string) string { s := sha256.Sum256([]byte(tok)); return hex.EncodeToString(s[:]) }
	sandbox, err := os.ReadFile("../../deploy/sandbox/habilitations.yaml")
	if err != nil {
		t.Fatal(err)
	}
	habs := writeFile(t, "habilitations.yaml", string(sandbox)+`
  - id: "intro-only"
    label: "Introspection seule"
    siret: "21930048000015"
    modalities: [france_connect]
    api_token_sha256: ["`+digest(introOnly)+`"]
    scopes: [cnaf_quotient_familial, cnous_statut_boursier]
  - id: "identite-only"
    label: "Identité pivot seule"
    siret: "21930048000015"
    france_connect_client_ids: ["b5e187b8619b73f12daa2c093e8eafe2789c4017883dff8b66c4bd6eaa451930"]
    modalities: [identite]
    api_token_sha256: ["`+digest(identiteOnly)+`"]
    scopes: [cnaf_quotient_familial, cnous_statut_boursier]
`)
	rec := newRecorder(t)
	dir := logDir(t)
	start(t, options{MaxEntries: 13004, Habilitations: habs, Recorder: rec.srv.URL, LogDir: dir})
	other := "21930048000015"
	q := dupont()
	q.Set("recipient", other)
	v2 := url.Values{"nomNaissance": {"DUPONT"}, "prenoms[]": {"Paul"}, "anneeDateDeNaissance": {"1962"}, "sexe": {"M"},
		"codePaysLieuDeNaissance": {"99100"}, "recipient": {other}}
	ine := "/v4/cnous/etudiant_boursier/ine?ine=940416111TD&recipient=" + other
	for _, tc := range []struct {
		name, target string
		header       []string
		status       int
	}{
		{"introspection-only token introspects", "/api/introspect", bearer(introOnly), 200},
		{"introspection-only token, identite", qfIdentite + "?" + q.Encode(), bearer(introOnly), 403},
		// v2 answers insufficient rights with 401 access_denied, as API Particulier v2.
		{"introspection-only token, v2 X-Api-Key", "/api/v2/composition-familiale-v2?" + v2.Encode(), []string{"X-Api-Key", introOnly}, 401},
		{"introspection-only token, identifiant", ine, bearer(introOnly), 403},
		{"identite token, identite", qfIdentite + "?" + q.Encode(), bearer(identiteOnly), 200},
		{"identite token, identifiant", ine, bearer(identiteOnly), 403},
		{"FranceConnect service of an identite-only habilitation", qf("recipient=" + other), bearer("unpaired_service"), 403},
		// introspect answers in the v2 shape: 401 access_denied.
		{"its FranceConnect tokens introspect nothing", "/api/introspect", bearer("unpaired_service"), 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := rec.count()
			a := get(t, recordPort, tc.target, tc.header...)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if called := rec.count() != before; called != (tc.status == 200 && tc.target != "/api/introspect") {
				t.Errorf("provider called: %v", called)
			}
		})
	}
	denied := 0
	for _, r := range auditLines(t, dir, 6) { // introspect has no endpoint: no record
		if r["reason"] == "modality_denied" {
			denied++
		}
	}
	if denied != 5 {
		t.Errorf("%d records with reason modality_denied, want 5", denied)
	}
}
