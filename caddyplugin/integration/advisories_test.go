package integration

// The tests of SECURITY.md §4 (vulnerability classes seen in real auth
// gateways) that no other file holds, each under the name §4 gives it.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// rawGet sends target as the request line's target, byte for byte (no
// client cleans or encodes it), with the cached sandbox token and the extra
// header lines, and returns the status and the API error code ("" when the
// answer is not an API Particulier error).
func rawGet(t *testing.T, port int, target string, extra ...string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer cnaf_qfv2\r\nConnection: close\r\n"
	for _, h := range extra {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	defer resp.Body.Close()
	var body struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body)
	code := ""
	if len(body.Errors) > 0 {
		code = body.Errors[0].Code
	}
	return resp.StatusCode, code
}

// refusedTargets asserts that each target is refused with an API
// Particulier error and never reaches the provider, while the canonical
// request still does.
func refusedTargets(t *testing.T, rec *recorder, targets []string, extra ...string) {
	t.Helper()
	if status, _ := rawGet(t, recordPort, qf("recipient="+siret)); status != 200 {
		t.Fatalf("the canonical request: %d", status)
	}
	for _, target := range targets {
		before := rec.count()
		status, code := rawGet(t, recordPort, target, extra...)
		if status < 400 || status >= 500 || code == "" {
			t.Errorf("%s: %d %q, want a 4xx API error", target, status, code)
		}
		if rec.count() != before {
			t.Errorf("%s reached the provider", target)
		}
	}
}

const canonicalQuery = "?recipient=" + siret

// TestD06_DotSegmentsRefused (SECURITY.md D06, §4 row 1; Envoy
// CVE-2019-9901): a path with dot segments, plain or encoded, or empty
// segments is not normalised into a catalogue route: it is refused before
// any provider call, whatever it would resolve to.
func TestD06_DotSegmentsRefused(t *testing.T) {
	rec := newRecorder(t)
	start(t, options{MaxEntries: 2601, Recorder: rec.srv.URL})
	refusedTargets(t, rec, []string{
		"/v3/dss/x/../quotient_familial/france_connect" + canonicalQuery,
		"/v3/dss/quotient_familial/./france_connect" + canonicalQuery,
		"/v3/dss/quotient_familial/france_connect/." + canonicalQuery,
		"/v3/dss/quotient_familial/france_connect/x/.." + canonicalQuery,
		"/v3/dss/%2e%2e/dss/quotient_familial/france_connect" + canonicalQuery,
		"/v3/dss/quotient_familial/%2E/france_connect" + canonicalQuery,
		"/v3/dss/quotient_familial/france_connect/%2e%2e/france_connect" + canonicalQuery,
		"//v3/dss/quotient_familial/france_connect" + canonicalQuery,
		"/v3//dss/quotient_familial/france_connect" + canonicalQuery,
		"/v3/dss/quotient_familial/france_connect/" + canonicalQuery,
	})
}

// TestD06_EncodedSeparatorsRefused (SECURITY.md D06, §4 row 2; Envoy
// CVE-2021-29492): an encoded "/" or "\", or a raw "\", never dodges the
// route table into a catalogue route.
func TestD06_EncodedSeparatorsRefused(t *testing.T) {
	rec := newRecorder(t)
	start(t, options{MaxEntries: 2602, Recorder: rec.srv.URL})
	refusedTargets(t, rec, []string{
		"/v3/dss%2Fquotient_familial/france_connect" + canonicalQuery,
		"/v3/dss%2fquotient_familial%2ffrance_connect" + canonicalQuery,
		"/v3%2Fdss%2Fquotient_familial%2Ffrance_connect" + canonicalQuery,
		"/v3/dss%5Cquotient_familial/france_connect" + canonicalQuery,
		"/v3/dss%5cquotient_familial%5cfrance_connect" + canonicalQuery,
		`/v3/dss\quotient_familial/france_connect` + canonicalQuery,
		"/v3/dss/quotient_familial%2Ffrance_connect" + canonicalQuery,
		"/v3/dss/quotient_familial/france%5Fconnect" + canonicalQuery, // an encoded unreserved character
	})
}

// TestD07_QueryNeverRoutes (SECURITY.md D07, §4 row 4; oauth2-proxy
// GHSA-7rh7-c77v-6434): the route is the path alone: a catalogue path in
// the query, after a ";" or in a fragment-looking suffix does not route an
// unknown path, and a known path is not rerouted by its query.
func TestD07_QueryNeverRoutes(t *testing.T) {
	rec := newRecorder(t)
	start(t, options{MaxEntries: 2603, Recorder: rec.srv.URL})
	refusedTargets(t, rec, []string{
		"/unknown?/v3/dss/quotient_familial/france_connect&recipient=" + siret,
		"/unknown?path=/v3/dss/quotient_familial/france_connect&recipient=" + siret,
		"/v3/dss/quotient_familial/france_connect_other" + canonicalQuery + "&x=/v3/dss/quotient_familial/france_connect",
		"/v3/dss/quotient_familial/france_connect;jsessionid=1" + canonicalQuery,
		"/v3/dss/quotient_familial/france_connect%3F" + canonicalQuery,
		"/v3/dss/quotient_familial/france_connect%23x" + canonicalQuery,
		"/v3/dss/quotient_familial" + canonicalQuery + "&/france_connect",
	})
	// A known path with another route's path in its query stays itself,
	// and that query parameter is refused (D07 allow-list), not followed.
	before := rec.count()
	if status, code := rawGet(t, recordPort, qf("recipient="+siret+"&path=/v4/cnous/etudiant_boursier/ine")); status != 422 || code == "" || rec.count() != before {
		t.Errorf("a route path in the query: %d %q, provider called %v", status, code, rec.count() != before)
	}
}

// TestD07_ForwardedUriIgnored (SECURITY.md D07, §4 row 5; oauth2-proxy
// GHSA-7x63-xv5r-3p2x): headers that claim another request target
// (X-Original-URI, X-Original-URL, X-Rewrite-URL, X-Forwarded-Uri,
// X-Forwarded-Path, X-Forwarded-Prefix) never route a request: an unknown
// path stays unknown, and a data route is served as its own path says.
func TestD07_ForwardedUriIgnored(t *testing.T) {
	rec := newRecorder(t)
	start(t, options{MaxEntries: 2604, Recorder: rec.srv.URL})
	claims := []string{"X-Original-URI", "X-Original-URL", "X-Rewrite-URL", "X-Forwarded-Uri", "X-Forwarded-Path", "X-Forwarded-Prefix"}
	for _, h := range claims {
		refusedTargets(t, rec, []string{"/health", "/", "/v3/dss/unknown" + canonicalQuery}, h+": "+qf("recipient="+siret))
		before := rec.count()
		if status, _ := rawGet(t, recordPort, qf("recipient="+siret), h+": /v4/cnous/etudiant_boursier/ine?ine=1"); status != 200 || rec.count() != before+1 {
			t.Fatalf("%s on a data route: %d", h, status)
		}
		if got := rec.last(t).URL.Path; got != "/v3/dss/quotient_familial/identite" {
			t.Errorf("%s: the provider was asked %s", h, got)
		}
	}
}

// TestC07_RecipientExactMatch (SECURITY.md C07, §4 row 12; oauth2-proxy
// GHSA-c5c4-8r6x-56w3): the recipient must be the habilitation's SIRET
// exactly: no padding, prefix, suffix, spaces, sign, other digits
// (Arabic-Indic, full-width) nor a second recipient gets through.
func TestC07_RecipientExactMatch(t *testing.T) {
	rec := newRecorder(t)
	start(t, options{MaxEntries: 2605, Recorder: rec.srv.URL})
	var targets []string
	for _, r := range []string{
		"%20" + siret, siret + "%20", "0" + siret, siret[:13], siret + "0", siret + "x", "+" + siret,
		"13%20002%20526%20500%20013", siret + "%00", siret + "%0A",
		"%D9%A1%D9%A3%D9%A0%D9%A0%D9%A2%D9%A5%D9%A2%D9%A6%D9%A5%D9%A0%D9%A0%D9%A0%D9%A1%D9%A3", // ١٣٠٠٢٥٢٦٥٠٠٠١٣
		"%EF%BC%91" + siret[1:], // a full-width 1
		siret + "&recipient=" + siret, siret + "&recipient=21920023500014",
		"21920023500014",
	} {
		targets = append(targets, qfPath+"?recipient="+r)
	}
	refusedTargets(t, rec, targets)
}

// TestH04_AdminNotReachable (SECURITY.md H04, §4 row 24; Caddy
// GHSA-879p-475x-rqh2): the admin API is on loopback only, and even there a
// cross-site page cannot use it: a request naming another origin or another
// host is refused and the configuration stays; the public listener serves
// none of the admin routes.
func TestH04_AdminNotReachable(t *testing.T) {
	start(t, options{MaxEntries: 2606})
	admin := func(method, path string, header ...string) int {
		req, err := http.NewRequest(method, "http://localhost:2999"+path, strings.NewReader(`{"apps":{}}`))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			if header[i] == "Host" {
				req.Host = header[i+1]
				continue
			}
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := timeoutClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	for _, attempt := range []struct {
		header []string
		status int
	}{
		// A form-like cross-site POST replacing the configuration.
		{[]string{"Content-Type", "text/plain", "Origin", "http://evil.example"}, http.StatusForbidden},
		{[]string{"Content-Type", "application/json", "Origin", "http://evil.example"}, http.StatusForbidden},
		// DNS rebinding: the page's own host name, resolving to 127.0.0.1.
		{[]string{"Content-Type", "application/json", "Host", "evil.example:2999"}, http.StatusForbidden},
		// Caddy names these tricks with a 400: a null Origin (a sandboxed
		// frame), a no-cors fetch.
		{[]string{"Content-Type", "application/json", "Origin", "null"}, http.StatusBadRequest},
		{[]string{"Content-Type", "application/json", "Sec-Fetch-Mode", "no-cors"}, http.StatusBadRequest},
	} {
		if status := admin(http.MethodPost, "/load", attempt.header...); status != attempt.status {
			t.Errorf("POST /load with %v: %d, want %d", attempt.header, status, attempt.status)
		}
	}
	// The simple request that needs no body: stopping the server.
	if status := admin(http.MethodPost, "/stop", "Origin", "http://evil.example"); status != http.StatusForbidden {
		t.Errorf("cross-site POST /stop: %d, want 403", status)
	}
	if status := admin(http.MethodGet, "/config/", "Host", "evil.example:2999"); status != http.StatusForbidden {
		t.Errorf("GET /config/ by another host name: %d", status)
	}
	if a := get(t, 2999, "/config/apps/passerelle/cache/max_entries"); a.status != http.StatusOK || strings.TrimSpace(string(a.body)) != "2606" {
		t.Fatalf("the configuration changed: %d %s", a.status, a.body)
	}
	for _, p := range []string{"/load", "/config/", "/stop", "/debug/pprof/", "/reverse_proxy/upstreams"} {
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			req, _ := http.NewRequest(m, fmt.Sprintf("http://127.0.0.1:%d%s", gatewayPort, p), strings.NewReader(`{"apps":{}}`))
			req.Header.Set("Content-Type", "application/json")
			if a := do(t, req); a.status != 404 && a.status != 405 {
				t.Errorf("%s %s on the public listener: %d", m, p, a.status)
			}
		}
	}
	if a := get(t, gatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...); a.status != 200 {
		t.Fatalf("the gateway after the attempts: %d", a.status)
	}
}

// TestD02_UnderscoreVariantsStripped (SECURITY.md D02, §4 row 8; Caddy
// GHSA-f59h-q822-g45g): a PHP or CGI app reads X_Passerelle_Sub,
// X.Passerelle.Sub and X-Passerelle-Sub as one variable. None of the
// spellings a citizen may send reaches the app behind passerelle_front:
// Caddy drops names with "_" or "." unless told to keep them, and the
// front deletes them even then (handoff.Strip folds "_" and "." to "-");
// the data routes never forward a caller's header at all.
func TestD02_UnderscoreVariantsStripped(t *testing.T) {
	const frontPort = 18087
	app := newRecorder(t)
	rec := newRecorder(t)
	setEnv(t)
	cfg := config(t, options{MaxEntries: 2607, Recorder: rec.srv.URL})
	// Caddy's own filter off for these names, as an operator might set it:
	// the front's Strip is then the only guard.
	keep := "\tservers {\n\t\texpected_underscore_headers X_Passerelle_* x_passerelle_*\n\t}\n"
	cfg = strings.Replace(cfg, "\tauto_https off\n", "\tauto_https off\n"+keep, 1)
	cfg += fmt.Sprintf(`
http://127.0.0.1:%[1]d {
	bind 127.0.0.1
	passerelle_front {
		base_url http://127.0.0.1:%[1]d
		app_id d02
		franceconnect {
			issuer http://127.0.0.1:%[2]d/api/v2
			client_id %[3]s
			client_secret {env.PASSERELLE_TEST_FC_SECRET}
		}
		protect /espace/*
	}
	reverse_proxy %[4]s
}
`, frontPort, sandboxPort, fsClientID, app.srv.URL)
	caddytest.NewTester(t).InitServer(cfg, "caddyfile")

	forged := []string{"X_Passerelle_Sub", "x_passerelle_sub", "X_PASSERELLE_ASSERTION", "X-Passerelle_Acr",
		"X_Passerelle-Birthdate", "X.Passerelle.Sub", "X-Passerelle-Sub"}
	var lines []string
	for _, name := range forged {
		lines = append(lines, name+": forged-"+name)
	}
	for _, c := range []struct {
		port   int
		target string
		to     *recorder
	}{{frontPort, "/demarche/", app}, {recordPort, qf("recipient=" + siret), rec}} {
		if status, _ := rawGet(t, c.port, c.target, lines...); status != 200 {
			t.Fatalf("%s: status %d", c.target, status)
		}
		got := c.to.last(t)
		for name, values := range got.Header {
			for _, v := range values {
				if strings.HasPrefix(v, "forged-") {
					t.Errorf("%s reached %s as %s", v, c.target, name)
				}
			}
		}
	}
}
