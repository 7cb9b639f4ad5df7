package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestJ08_CanarySweep drives every kind of answer through the gateway with
// logs at the production level, then looks for tokens, identity values and
// secrets in every sink a reader could reach: server and access logs, the
// config exported by the admin API, and the answers themselves (G03, H01,
// B01).
// req: G03
func TestJ08_CanarySweep(t *testing.T) {
	dir := logDir(t)
	start(t, options{MaxEntries: 6001, LogDir: dir})
	var answers []byte
	keep := func(a answer) {
		answers = append(answers, a.body...)
		for k, vs := range a.header {
			answers = append(answers, k+": "+strings.Join(vs, ",")+"\n"...)
		}
	}
	for _, tok := range []string{"cnaf_qfv2", "all_fc", "cnaf_qf_partial", "inactive", "unpaired_service", "low_scopes", "provider_error", "nope_canary_token"} {
		for _, q := range []string{"recipient=" + siret, "", "recipient=21930048000015", "recipient=" + siret + "&nomNaissance=CANARYNAME"} {
			keep(get(t, gatewayPort, qf(q), bearer(tok)...))
		}
	}
	// The API token of the other modalities, in Authorization and in a
	// legacy v2 X-Api-Key, with a civil status in the query: the provider
	// knows nobody of that name (404), and neither the token nor the
	// identity may reach a log.
	civil := "nomNaissance=CANARYCIVIL&prenoms[]=CANARYPRENOM&anneeDateNaissance=1931&moisDateNaissance=7&jourDateNaissance=14&recipient=" + siret
	keep(get(t, gatewayPort, "/v3/dss/quotient_familial/identite?"+civil+"&sexeEtatCivil=F&codeCogInseePaysNaissance=99100", bearer("sandbox_all_scopes")...))
	keep(get(t, gatewayPort, "/api/v2/composition-familiale-v2?"+strings.NewReplacer("DateNaissance", "DateDeNaissance").Replace(civil)+"&sexe=F",
		"X-Api-Key", "sandbox_all_scopes"))
	resp, err := http.Get("http://localhost:2999/config/")
	if err != nil {
		t.Fatal(err)
	}
	exported, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	secrets := []string{"fd-secret-canary", "cache-secret-canary", "sandbox-provider-key-canary", "pseudonym-key-canary"}
	// provider_error is also a reason code: it is not a usable canary.
	tokens := []string{"cnaf_qfv2", "all_fc", "cnaf_qf_partial", "unpaired_service", "low_scopes", "nope_canary_token", "sandbox_all_scopes"}
	identity := []string{"Georges", "2002-01-01", "Delatour", "1994-04-16", "Angela", "1962-08-24", "PANNE", "1975-03-09",
		"LEROY", "CAMILLE", "MONTORGUEIL", "CANARYNAME", "CANARYCIVIL", "CANARYPRENOM"}
	// One audit record per request, batched by passerelle_buffered: they
	// all reach the file within its flush interval.
	requests := 8*4 + 2
	audit := waitForLines(t, filepath.Join(dir, "audit.log"), requests)
	for l := range strings.Lines(string(audit)) {
		var rec struct{ Decision, Endpoint string }
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Decision == "" ||
			!slices.Contains([]string{"dss_quotient_familial_fc", "dss_quotient_familial_identite", "v2_composition_familiale_v2_identite"}, rec.Endpoint) {
			t.Fatalf("audit line %q: %v", l, err)
		}
	}
	logs := map[string][]byte{"audit.log": audit}
	for _, name := range []string{"server.log", "access.log"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		logs[name] = data
	}
	if len(logs["access.log"]) == 0 {
		t.Fatal("the access log is empty: the sweep would prove nothing")
	}
	for name, data := range logs {
		if leak := contains(data, append(append(append([]string{}, secrets...), tokens...), identity...)...); leak != "" {
			t.Errorf("%s holds %q", name, leak)
			for l := range strings.Lines(string(data)) {
				if strings.Contains(l, leak) {
					t.Logf("%s", l)
				}
			}
		}
	}
	if leak := contains(exported, append(append([]string{}, secrets...), tokens...)...); leak != "" {
		t.Errorf("the admin API's config holds %q", leak)
	}
	// Answers carry released data (names of allocataires) by design, but
	// never a secret, a token, or a parameter's value.
	if leak := contains(answers, append(append(append([]string{}, secrets...), tokens...), "CANARYNAME", "CANARYCIVIL", "CANARYPRENOM")...); leak != "" {
		t.Errorf("an answer holds %q", leak)
	}
}

// waitForLines reads a log file until it holds n lines (a buffered writer
// flushes on its own schedule) and fails after a few seconds.
func waitForLines(t *testing.T, path string, n int) []byte {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		if got := bytes.Count(data, []byte("\n")); got >= n {
			if got > n {
				t.Fatalf("%s: %d lines, want %d", path, got, n)
			}
			return data
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d lines after 5 s, want %d", path, bytes.Count(data, []byte("\n")), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestE10_ProviderCredentialAtDebug: the platform credential travels in
// Authorization, which Caddy redacts: with the server log at DEBUG, where
// reverse_proxy prints every header of the request it sends, the
// credential appears nowhere, on answered and failed provider calls alike,
// and the debug lines that would carry it are there (REDACTED).
// req: E10
func TestE10_ProviderCredentialAtDebug(t *testing.T) {
	dir := logDir(t)
	rec := newRecorder(t)
	start(t, options{MaxEntries: 1801, LogDir: dir, LogLevel: "DEBUG", Recorder: rec.srv.URL})
	if a := get(t, recordPort, qf("recipient="+siret), bearer("cnaf_qfv2")...); a.status != 200 {
		t.Fatalf("status %d %s", a.status, a.body)
	}
	rec.set(http.StatusInternalServerError, "application/json", `{"error":"boom"}`)
	get(t, recordPort, qf("recipient="+siret), bearer("cnaf_qfv2")...)
	if got := rec.last(t).Header.Get("Authorization"); got != providerKey {
		t.Fatalf("the provider got Authorization %q", got)
	}
	var log []byte
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		log, _ = os.ReadFile(filepath.Join(dir, "server.log"))
		if bytes.Count(log, []byte(`"upstream roundtrip"`)) >= 2 || time.Now().After(deadline) {
			break
		}
	}
	if n := bytes.Count(log, []byte(`"upstream roundtrip"`)); n < 2 {
		t.Fatalf("%d debug lines of the provider calls: the log is not at DEBUG", n)
	}
	if !bytes.Contains(log, []byte(`"Authorization":["REDACTED"]`)) {
		t.Error("the debug lines do not show Authorization redacted")
	}
	secret := strings.TrimPrefix(providerKey, "Bearer ")
	if bytes.Contains(log, []byte(secret)) {
		t.Fatal("the provider credential reached the server log")
	}
}

// TestH07_NoReexpansion: placeholders a caller writes in a
// query, a header, the path or the Host stay literal: no answer, provider
// request or log line ever holds what they would expand to (a secret from
// the environment, a file, the host name, the caller's own credential).
// req: H07
func TestH07_NoReexpansion(t *testing.T) {
	dir := logDir(t)
	rec := newRecorder(t)
	start(t, options{MaxEntries: 1901, LogDir: dir, Recorder: rec.srv.URL})
	hostname, _ := os.Hostname()
	placeholders := []string{"{env.PASSERELLE_TEST_FC_SECRET}", "{env.PASSERELLE_TEST_PROVIDER_KEY}", "{file./etc/hostname}",
		"{system.hostname}", "{http.request.header.Authorization}", "{http.request.header.X-Probe}"}
	expansions := []string{"fd-secret-canary", "sandbox-provider-key-canary", "Bearer cnaf_qfv2", "X-PROBE-CANARY"}
	if len(hostname) >= 6 {
		expansions = append(expansions, hostname)
	}
	var seen []byte
	keep := func(a answer) {
		seen = append(seen, a.body...)
		for k, vs := range a.header {
			seen = append(seen, k+": "+strings.Join(vs, ",")+"\n"...)
		}
	}
	for _, p := range placeholders {
		q := url.QueryEscape(p)
		keep(get(t, recordPort, qf("recipient="+siret+"&annee="+q), append(bearer("cnaf_qfv2"), "X-Probe", "X-PROBE-CANARY")...))
		keep(get(t, recordPort, qf("recipient="+q), append(bearer("cnaf_qfv2"), "X-Probe", "X-PROBE-CANARY")...))
		keep(get(t, recordPort, qf(q+"="+siret), bearer("cnaf_qfv2")...))
		keep(get(t, recordPort, qf("recipient="+siret), append(bearer("cnaf_qfv2"), "X-Request-Id", p, "Accept", p, "User-Agent", p, "X-Probe", "X-PROBE-CANARY")...))
		keep(get(t, recordPort, qfPath+"/"+url.PathEscape(p)+"?recipient="+siret, bearer("cnaf_qfv2")...))
		keep(get(t, recordPort, "/v3/dss/quotient_familial/identite?recipient="+siret+"&nomNaissance="+q+"&prenoms[]=Paul&anneeDateNaissance=1962&sexeEtatCivil=M",
			bearer("sandbox_all_scopes")...))
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", recordPort, qf("recipient="+siret)), nil)
		req.Host = p
		req.Header.Set("Authorization", "Bearer cnaf_qfv2")
		keep(do(t, req))
	}
	rec.mu.Lock()
	for _, r := range rec.reqs {
		seen = append(seen, r.URL.String()+"\n"...)
		for k, vs := range r.Header {
			if k != "Authorization" { // the platform credential, set by configuration
				seen = append(seen, k+": "+strings.Join(vs, ",")+"\n"...)
			}
		}
	}
	rec.mu.Unlock()
	time.Sleep(200 * time.Millisecond) // the audit trail's batch
	for _, name := range []string{"server.log", "access.log", "audit.log"} {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		seen = append(seen, data...)
	}
	if e := contains(seen, expansions...); e != "" {
		t.Errorf("a placeholder was expanded: %q appears", e)
	}
}
