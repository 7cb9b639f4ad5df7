package integration

import (
	"net/url"
	"strings"
	"testing"

	"github.com/passerelle-gw/passerelle/config/catalogue"
)

const qfIdentite = "/v3/dss/quotient_familial/identite"

func dupont() url.Values {
	return url.Values{
		"nomNaissance": {"  DUPONT "}, "nomUsage": {"MARTIN"}, "prenoms[]": {"Paul", "Louis"},
		"anneeDateNaissance": {"1962"}, "moisDateNaissance": {"8"}, "jourDateNaissance": {"24"},
		"sexeEtatCivil": {"M"}, "codeCogInseePaysNaissance": {"99100"}, "codeCogInseeCommuneNaissance": {"75107"},
		"recipient": {siret},
	}
}

// TestIdentiteModality: the identity route with the habilitation's API
// token and a citizen's identity answers the filtered data; malformed,
// missing or unknown parameters are refused by name; a FranceConnect token
// is not a credential there and is never sent to FranceConnect.
func TestIdentiteModality(t *testing.T) {
	fc := newFCCounter(t)
	rec := newRecorder(t)
	start(t, options{MaxEntries: 12001, CheckTokenURL: fc.srv.URL, Recorder: rec.srv.URL})

	a := get(t, gatewayPort, qfIdentite+"?"+dupont().Encode(), bearer("sandbox_all_scopes")...)
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	for _, k := range []string{"quotient_familial", "allocataires", "enfants", "adresse"} {
		if _, ok := a.data(t)[k]; !ok {
			t.Errorf("data.%s missing", k)
		}
	}

	// What reaches the provider: the normalised identity, nothing else.
	if a := get(t, recordPort, qfIdentite+"?"+dupont().Encode(), bearer("sandbox_all_scopes")...); a.status != 200 {
		t.Fatalf("recorder route: status %d: %s", a.status, a.body)
	}
	up := rec.last(t)
	if up.URL.Path != qfIdentite || up.URL.Query().Get("nomNaissance") != "DUPONT" || len(up.URL.Query()["prenoms[]"]) != 2 ||
		up.Header.Get("Authorization") != providerKey {
		t.Errorf("provider got %s %v, Authorization %q", up.URL.Path, up.URL.Query(), up.Header.Get("Authorization"))
	}

	cases := []struct {
		name   string
		mutate func(url.Values)
		token  string
		status int
		code   string
		param  string
	}{
		{"malformed birth month", func(q url.Values) { q.Set("moisDateNaissance", "13") }, "sandbox_all_scopes", 422, "00366", "moisDateNaissance"},
		{"malformed name", func(q url.Values) { q.Set("nomNaissance", "DUPONT<script>") }, "sandbox_all_scopes", 422, "00366", "nomNaissance"},
		{"four given names", func(q url.Values) { q["prenoms[]"] = []string{"A", "B", "C", "D"} }, "sandbox_all_scopes", 422, "00366", "prenoms[]"},
		{"missing sex", func(q url.Values) { q.Del("sexeEtatCivil") }, "sandbox_all_scopes", 422, "00366", "sexeEtatCivil"},
		{"30 February", func(q url.Values) { q.Set("moisDateNaissance", "2"); q.Set("jourDateNaissance", "30") }, "sandbox_all_scopes", 422, "00366", "jourDateNaissance"},
		{"birth date in the future", func(q url.Values) { q.Set("anneeDateNaissance", "2099") }, "sandbox_all_scopes", 422, "00366", "anneeDateNaissance"},
		{"day without month", func(q url.Values) { q.Del("moisDateNaissance") }, "sandbox_all_scopes", 422, "00366", "jourDateNaissance"},
		{"born abroad with a commune", func(q url.Values) { q.Set("codeCogInseePaysNaissance", "99352") }, "sandbox_all_scopes", 422, "00366", "codeCogInseeCommuneNaissance"},
		{"unknown parameter", func(q url.Values) { q.Set("nir", "1620875107123") }, "sandbox_all_scopes", 422, "00366", "nir"},
		{"no recipient", func(q url.Values) { q.Del("recipient") }, "sandbox_all_scopes", 422, "00203", "recipient"},
		{"unknown API token", func(url.Values) {}, "pa_not_a_real_token", 401, "00101", ""},
		{"FranceConnect token", func(url.Values) {}, "cnaf_qfv2", 401, "00101", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := dupont()
			tc.mutate(q)
			a := get(t, gatewayPort, qfIdentite+"?"+q.Encode(), bearer(tc.token)...)
			if a.status != tc.status || a.code(t) != tc.code {
				t.Fatalf("status %d code %s, want %d %s: %s", a.status, a.code(t), tc.status, tc.code, a.body)
			}
			if tc.param != "" {
				src, _ := a.json(t)["errors"].([]any)[0].(map[string]any)["source"].(map[string]any)
				if src["parameter"] != tc.param {
					t.Errorf("source.parameter %v, want %s", src["parameter"], tc.param)
				}
			}
		})
	}
	if n := fc.checktoken.Load(); n != 0 {
		t.Fatalf("%d checktoken calls on the identite route", n)
	}
}

// TestIdentiteEveryDSSRoute walks the catalogue's identite routes: each
// answers the sandbox case of Paul Louis DUPONT with a data object, and
// refuses a malformed birth month by name.
func TestIdentiteEveryDSSRoute(t *testing.T) {
	start(t, options{MaxEntries: 12002})
	c := defaultCatalogue(t)
	n := 0
	for i := range c.Endpoints {
		ep := &c.Endpoints[i]
		if ep.Modality != catalogue.ModalityIdentite || !strings.HasPrefix(ep.Path, "/v3/dss/") {
			continue
		}
		n++
		t.Run(ep.ID, func(t *testing.T) {
			q := dupont()
			q.Del("annee")
			q.Del("mois")
			a := get(t, gatewayPort, ep.Path+"?"+q.Encode(), bearer("sandbox_all_scopes")...)
			if a.status != 200 {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			if len(a.data(t)) == 0 {
				t.Errorf("empty data: %s", a.body)
			}
			q.Set("moisDateNaissance", "13")
			a = get(t, gatewayPort, ep.Path+"?"+q.Encode(), bearer("sandbox_all_scopes")...)
			if a.status != 422 || a.code(t) != "00366" {
				t.Fatalf("malformed month: status %d code %s: %s", a.status, a.code(t), a.body)
			}
		})
	}
	if n == 0 {
		t.Fatal("no identite route in the catalogue")
	}
}

// TestF05_CitizenQuotaIdentite: on an identite route the citizen quota
// counts the person looked up however the caller spells it — case,
// accents, given names, date precision — and refuses the 4th call without
// a provider call; a call without a birth date counts too, under the same
// name without a year; another person, and a call refused for its
// parameters, take nothing from it.
func TestF05_CitizenQuotaIdentite(t *testing.T) {
	fc := newFCCounter(t)
	rec := newRecorder(t)
	start(t, options{MaxEntries: 12011, CheckTokenURL: fc.srv.URL, Recorder: rec.srv.URL, CitizenQuota: "3/h"})
	call := func(mutate func(url.Values)) answer {
		q := dupont()
		mutate(q)
		return get(t, recordPort, qfIdentite+"?"+q.Encode(), bearer("sandbox_all_scopes")...)
	}
	noDate := func(q url.Values) {
		q.Del("anneeDateNaissance")
		q.Del("moisDateNaissance")
		q.Del("jourDateNaissance")
	}
	if a := call(func(q url.Values) { q.Set("moisDateNaissance", "13") }); a.status != 422 {
		t.Fatalf("malformed month: status %d", a.status)
	}
	for i, mutate := range []func(url.Values){
		func(url.Values) {},
		func(q url.Values) { q.Set("nomNaissance", "dupont"); q["prenoms[]"] = []string{"Paul"} },
		func(q url.Values) { q.Del("jourDateNaissance"); q.Del("moisDateNaissance") },
		noDate, noDate, noDate,
	} {
		if a := call(mutate); a.status != 200 || a.header.Get("RateLimit-Limit") == "3" {
			t.Fatalf("call %d: status %d, RateLimit-Limit %q: %s", i, a.status, a.header.Get("RateLimit-Limit"), a.body)
		}
	}
	called := rec.count()
	for name, mutate := range map[string]func(url.Values){
		"same call":        func(url.Values) {},
		"accents and case": func(q url.Values) { q.Set("nomNaissance", "Dupônt") },
		"given names":      func(q url.Values) { q["prenoms[]"] = []string{"Paul", "Jean"} },
		"month only":       func(q url.Values) { q.Del("jourDateNaissance") },
		"no birth date":    noDate,
	} {
		if a := call(mutate); a.status != 429 || a.code(t) != "00429" || a.header.Get("RateLimit-Limit") != "3" {
			t.Errorf("%s: status %d, headers %v: %s", name, a.status, a.header, a.body)
		}
	}
	if n := rec.count(); n != called {
		t.Fatalf("refused calls reached the provider (%d calls)", n-called)
	}
	if a := call(func(q url.Values) { q.Set("nomNaissance", "DURAND") }); a.status != 200 {
		t.Fatalf("another person: status %d: %s", a.status, a.body)
	}
}
