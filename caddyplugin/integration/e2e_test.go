package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestE2E_Acceptance walks the core issue's acceptance list through the real
// Caddy runtime, the sandbox FranceConnect (real JWE + JWS) and the sandbox
// provider.
func TestE2E_Acceptance(t *testing.T) {
	start(t, options{MaxEntries: 1001})
	recipient := "recipient=" + siret

	cases := []struct {
		name    string
		target  string
		header  []string
		status  int
		code    string
		present []string
		absent  []string
	}{
		{"all QF scopes", qf(recipient), bearer("cnaf_qfv2"), 200, "",
			[]string{"quotient_familial", "allocataires", "enfants", "adresse"}, nil},
		{"partial scopes are filtered", qf(recipient), bearer("cnaf_qf_partial"), 200, "",
			[]string{"quotient_familial", "enfants"}, []string{"adresse", "allocataires"}},
		{"all_fc", qf(recipient), bearer("all_fc"), 200, "",
			[]string{"quotient_familial", "allocataires", "enfants", "adresse"}, nil},
		{"accents in the identity", qf(recipient), bearer("caracteres_speciaux"), 200, "",
			[]string{"quotient_familial"}, nil},
		{"unknown token", qf(recipient), bearer("no_such_token"), 401, "50002", nil, nil},
		{"fresh sandbox token of a case", qf(recipient), bearer("cnaf_qf_partial~e2e-1"), 200, "",
			[]string{"quotient_familial", "enfants"}, []string{"adresse", "allocataires"}},
		{"fresh sandbox token of no case", qf(recipient), bearer("no_such_token~1"), 401, "50002", nil, nil},
		{"inactive token", qf(recipient), bearer("inactive"), 401, "50002", nil, nil},
		{"no token", qf(recipient), nil, 401, "50004", nil, nil},
		{"identity scopes missing", qf(recipient), bearer("low_scopes"), 401, "50003", nil, nil},
		{"no recipient", qfPath, bearer("cnaf_qfv2"), 422, "00203", nil, nil},
		{"recipient failing Luhn", qf("recipient=13002526500014"), bearer("cnaf_qfv2"), 422, "00210", nil, nil},
		{"recipient of another organisation", qf("recipient=21930048000015"), bearer("cnaf_qfv2"), 403, "00100", nil, nil},
		{"unpaired service", qf(recipient), bearer("unpaired_service"), 403, "00100", nil, nil},
		{"second token in the query", qf(recipient + "&access_token=cnaf_qfv2"), bearer("cnaf_qfv2"), 401, "50001", nil, nil},
		{"token only in the query", qf(recipient + "&access_token=cnaf_qfv2"), nil, 401, "50001", nil, nil},
		{"identity parameter refused", qf(recipient + "&nomNaissance=DUPONT"), bearer("cnaf_qfv2"), 422, "00366", nil, nil},
		{"provider error", qf(recipient), bearer("provider_error"), 502, "37999", nil, nil},
		{"annee and mois pass", qf(recipient + "&annee=2024&mois=2"), bearer("cnaf_qfv2"), 200, "",
			[]string{"quotient_familial"}, nil},
		{"bad mois", qf(recipient + "&mois=13"), bearer("cnaf_qfv2"), 422, "00366", nil, nil},
		{"unknown route", "/v3/dss/quotient_familial/france_connectx?" + recipient, bearer("cnaf_qfv2"), 404, "", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := get(t, gatewayPort, tc.target, tc.header...)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if a.header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
			if got := a.header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
				t.Errorf("Content-Type %q", got)
			}
			if a.header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", a.header.Get("Cache-Control"))
			}
			if tc.code != "" {
				if got := a.code(t); got != tc.code {
					t.Fatalf("code %s, want %s: %s", got, tc.code, a.body)
				}
			}
			if tc.status == 401 && a.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tc.status != 200 {
				return
			}
			data := a.data(t)
			for _, k := range tc.present {
				if _, ok := data[k]; !ok {
					t.Errorf("data.%s missing: %s", k, a.body)
				}
			}
			for _, k := range tc.absent {
				if _, ok := data[k]; ok {
					t.Errorf("data.%s present although its scope is not effective", k)
				}
			}
			m := a.json(t)
			for _, k := range []string{"links", "meta"} {
				if _, ok := m[k].(map[string]any); !ok {
					t.Errorf("%s missing", k)
				}
			}
		})
	}
}

// TestE2E_RequestIDsAreUnique checks X-Request-Id on successes and failures.
func TestE2E_RequestIDsAreUnique(t *testing.T) {
	start(t, options{MaxEntries: 1002})
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		tok := []string{"cnaf_qfv2", "nope"}[i%2]
		id := get(t, gatewayPort, qf("recipient="+siret), bearer(tok)...).header.Get("X-Request-Id")
		if id == "" || seen[id] {
			t.Fatalf("request id %q empty or repeated", id)
		}
		seen[id] = true
	}
}

// TestB07_SingleflightEndToEnd: 50 concurrent requests carrying one new
// token make exactly one checktoken call.
func TestB07_SingleflightEndToEnd(t *testing.T) {
	fc := newFCCounter(t)
	start(t, options{MaxEntries: 1003, CheckTokenURL: fc.srv.URL})
	concurrentGets(t, 50, "all_fc", gatewayPort)
	if n := fc.checktoken.Load(); n != 1 {
		t.Fatalf("%d checktoken calls, want exactly 1", n)
	}
}

// TestA01_TokenOutsideAuthorizationNeverReachesFranceConnect: a token in
// the query, a form body or a cookie is refused before any FranceConnect call.
func TestA01_TokenOutsideAuthorizationNeverReachesFranceConnect(t *testing.T) {
	fc := newFCCounter(t)
	start(t, options{MaxEntries: 1004, CheckTokenURL: fc.srv.URL})
	for name, header := range map[string][]string{
		"query":  nil,
		"cookie": {"Cookie", "access_token=cnaf_qfv2"},
		"basic":  {"Authorization", "Basic Y25hZl9xZnYyOg=="},
		"two":    {"Authorization", "Bearer cnaf_qfv2", "Authorization", "Bearer all_fc"},
		"comma":  {"Authorization", "Bearer cnaf_qfv2, Bearer all_fc"},
	} {
		t.Run(name, func(t *testing.T) {
			target := qf("recipient=" + siret)
			if name == "query" {
				target += "&access_token=cnaf_qfv2"
			}
			a := get(t, gatewayPort, target, header...)
			if a.status != 401 {
				t.Fatalf("status %d, want 401", a.status)
			}
		})
	}
	if n := fc.checktoken.Load(); n != 0 {
		t.Fatalf("%d checktoken calls, want 0", n)
	}
}

// TestB04_HitReevaluatesRoute: a cached token is re-checked against the
// habilitation and the route on every request; the cache holds facts, never
// a decision.
func TestB04_HitReevaluatesRoute(t *testing.T) {
	habs := writeHabilitations(t)
	start(t, options{MaxEntries: 1005, Habilitations: habs})
	if a := get(t, gatewayPort, qf("recipient="+siret), bearer("cnaf_qfv2")...); a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	// Same cached token, another recipient: refused.
	if a := get(t, gatewayPort, qf("recipient=21930048000015"), bearer("cnaf_qfv2")...); a.status != 403 {
		t.Fatalf("status %d, want 403", a.status)
	}
	// Same cached token, on a path outside the catalogue (siade's allocation
	// de rentrée scolaire FC route, absent from API Particulier's OpenAPI): 404.
	if a := get(t, gatewayPort, "/v3/dss/allocation_rentree_scolaire/france_connect?recipient="+siret, bearer("cnaf_qfv2")...); a.status != 404 {
		t.Fatalf("status %d, want 404", a.status)
	}
}

// TestD02_IdentityHeadersStripped: nothing of the caller's headers, Host,
// path or query reaches the provider; the platform credential replaces the
// caller's.
func TestD02_IdentityHeadersStripped(t *testing.T) {
	rec := newRecorder(t)
	start(t, options{MaxEntries: 1006, Recorder: rec.srv.URL})
	spoofed := []string{
		"Cookie", "session=caller", "Proxy-Authorization", "Basic eDp5",
		"X-Forwarded-For", "203.0.113.7", "X-Forwarded-Host", "evil.example", "Forwarded", "for=203.0.113.7",
		"X-Real-IP", "203.0.113.7", "True-Client-IP", "203.0.113.7", "X-Client-IP", "203.0.113.7",
		"X-Original-URI", "/admin", "X-Original-URL", "/admin", "X-Rewrite-URL", "/admin",
		"X-HTTP-Method-Override", "DELETE", "Remote-User", "admin", "X-User-Id", "42",
		"X-Auth-Request-Email", "a@b.c", "X-Passerelle-Habilitation", "other", "X_Client_Id", "other",
		"x-client-id", "other", "Accept-Language", "fr",
	}
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", recordPort, qf("recipient="+siret+"&annee=2024")), nil)
	if err != nil {
		t.Fatal(err)
	}
	header := append(bearer("cnaf_qfv2"), spoofed...)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	// The Host the caller chose (the site matches any host: it has no
	// host matcher) must not reach the provider either (issue 8, defect 6).
	req.Host = "caller-host.example"
	a := do(t, req)
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	got := rec.last(t)
	if got.URL.Path != "/v3/dss/quotient_familial/identite" {
		t.Errorf("upstream path %q", got.URL.Path)
	}
	q := got.URL.Query()
	want := map[string]string{"nomNaissance": "CNAF", "anneeDateNaissance": "2002", "moisDateNaissance": "1",
		"jourDateNaissance": "1", "sexeEtatCivil": "M", "codeCogInseePaysNaissance": "99100",
		"codeCogInseeCommuneNaissance": "75002", "annee": "2024", "recipient": siret}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("upstream %s = %q, want %q", k, q.Get(k), v)
		}
	}
	if got := q["prenoms[]"]; len(got) != 1 || got[0] != "GEORGES" {
		t.Errorf("upstream prenoms[] = %q", got)
	}
	if got.Header.Get("Authorization") != providerKey {
		t.Errorf("upstream Authorization is not the platform credential")
	}
	allowed := map[string]bool{"Authorization": true, "Accept": true, "X-Request-Id": true, "User-Agent": true,
		"Accept-Encoding": true, "X-Forwarded-For": true, "X-Forwarded-Proto": true, "X-Forwarded-Host": true, "Via": true}
	for name := range got.Header {
		if !allowed[name] {
			t.Errorf("header %s reached the provider", name)
		}
	}
	if xff := got.Header.Get("X-Forwarded-For"); xff != "127.0.0.1" {
		t.Errorf("X-Forwarded-For %q, want the TCP peer only", xff)
	}
	if h, ok := got.Header["X-Forwarded-Host"]; ok {
		t.Errorf("X-Forwarded-Host %q sent to the provider", h)
	}
	if want := strings.TrimPrefix(rec.srv.URL, "http://"); got.Host != want {
		t.Errorf("provider got Host %q, want its own %q", got.Host, want)
	}
	// D10: provider headers are not relayed.
	for _, h := range []string{"Set-Cookie", "X-Powered-By", "Server"} {
		if a.header.Get(h) != "" {
			t.Errorf("%s relayed to the caller", h)
		}
	}
}

// TestC05_UnknownProviderFieldsDropped: the answer is rebuilt from the
// allow-list; new provider fields and meta members never reach the caller.
func TestC05_UnknownProviderFieldsDropped(t *testing.T) {
	rec := newRecorder(t)
	start(t, options{MaxEntries: 1007, Recorder: rec.srv.URL})
	a := get(t, recordPort, qf("recipient="+siret), bearer("cnaf_qf_partial")...)
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	if leak := contains(a.body, "CANARYNEW", "CANARYMETA", "CANARYNOM", "CANARYADRESSE"); leak != "" {
		t.Fatalf("%s leaked: %s", leak, a.body)
	}
	if _, ok := a.data(t)["quotient_familial"]; !ok {
		t.Fatalf("quotient_familial missing: %s", a.body)
	}
}

// TestC06_C10_ProviderAnswersNeverRelayed: error bodies, non-JSON, oversized
// or malformed provider answers are mapped, and none of their bytes reach
// the caller.
func TestC06_C10_ProviderAnswersNeverRelayed(t *testing.T) {
	rec := newRecorder(t)
	start(t, options{MaxEntries: 1008, Recorder: rec.srv.URL})
	cases := []struct {
		name   string
		code   int
		ct     string
		body   string
		status int
		apiErr string
	}{
		{"404", 404, "application/json", `{"errors":[{"detail":"CANARYERR"}]}`, 404, "37003"},
		{"500", 500, "application/json", `{"errors":[{"detail":"CANARYERR"}]}`, 502, "37999"},
		{"html", 200, "text/html", `<p>CANARYERR</p>`, 502, "37999"},
		{"duplicate keys", 200, "application/json", `{"data":{"quotient_familial":1,"quotient_familial":"CANARYERR"},"links":{},"meta":{}}`, 502, "37999"},
		{"truncated", 200, "application/json", `{"data":{"quotient_familial":"CANARYERR"`, 502, "37999"},
		{"oversized", 200, "application/json", `{"data":{"quotient_familial":"` + strings.Repeat("CANARYERR", 200000) + `"},"links":{},"meta":{}}`, 502, "37999"},
		{"redirect", 302, "application/json", `{"CANARYERR":1}`, 502, "37999"},
		{"provider 401", 401, "application/json", `{"CANARYERR":1}`, 502, "37999"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec.set(tc.code, tc.ct, tc.body)
			a := get(t, recordPort, qf("recipient="+siret), bearer("cnaf_qfv2")...)
			if a.status != tc.status || a.code(t) != tc.apiErr {
				t.Fatalf("status %d code %s, want %d %s: %s", a.status, a.code(t), tc.status, tc.apiErr, a.body)
			}
			if leak := contains(a.body, "CANARYERR"); leak != "" {
				t.Fatal("provider bytes relayed")
			}
		})
	}
}

// TestD08_MethodsAndPaths: undeclared methods and non-canonical paths are
// refused before anything else.
func TestD08_MethodsAndPaths(t *testing.T) {
	fc := newFCCounter(t)
	start(t, options{MaxEntries: 1009, CheckTokenURL: fc.srv.URL})
	for _, m := range []string{http.MethodPost, http.MethodDelete, http.MethodPut} {
		req, _ := http.NewRequest(m, fmt.Sprintf("http://127.0.0.1:%d%s", gatewayPort, qf("recipient="+siret)), nil)
		req.Header.Set("Authorization", "Bearer cnaf_qfv2")
		if a := do(t, req); a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") != "GET" {
			t.Errorf("%s: status %d Allow %q", m, a.status, a.header.Get("Allow"))
		}
	}
	for _, p := range []string{
		"/v3/dss/quotient_familial/%66rance_connect",
		"/v3/dss/quotient_familial%2Ffrance_connect",
		"/v3/dss/x/../quotient_familial/france_connect",
		"/v3/dss//quotient_familial/france_connect",
		"/v3/dss/quotient_familial/france_connect;x=1",
		"/v3/dss/quotient_familial/france_connect/",
	} {
		if a := get(t, gatewayPort, p+"?recipient="+siret, bearer("cnaf_qfv2")...); a.status < 400 || a.status >= 500 {
			t.Errorf("%s: status %d, want a 4xx", p, a.status)
		}
	}
	if n := fc.checktoken.Load(); n != 0 {
		t.Errorf("%d checktoken calls for refused requests", n)
	}
}
