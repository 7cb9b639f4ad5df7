package integration

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/sandbox"
)

// callerQuery turns the params of a sandbox case of a caller route
// (identite, identifiant) into the caller's query: a case key "prenoms"
// is the route's "prenoms[]", sequences repeat, integers are decimals.
func callerQueryOf(ep *catalogue.Endpoint, c *sandbox.Case) url.Values {
	q := url.Values{"recipient": {siret}}
	for k, v := range c.Params {
		name := k
		if _, ok := ep.Param(k); !ok {
			if _, ok := ep.Param(k + "[]"); ok {
				name = k + "[]"
			}
		}
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				q.Add(name, fmt.Sprint(e))
			}
		default:
			q.Add(name, fmt.Sprint(v))
		}
	}
	return q
}

// callerCase reports whether a case is one of the caller route's own: its
// params are all parameters the route declares (a legacy v2 folder also
// holds the FranceConnect twin's cases).
func callerCase(ep *catalogue.Endpoint, c *sandbox.Case) bool {
	for k := range c.Params {
		_, plain := ep.Param(k)
		_, list := ep.Param(k + "[]")
		if !plain && !list {
			return false
		}
	}
	return true
}

// callerRoutes returns the identite and identifiant routes of the default
// catalogue.
func callerRoutes(t testing.TB) []*catalogue.Endpoint {
	cat := defaultCatalogue(t)
	var out []*catalogue.Endpoint
	for i := range cat.Endpoints {
		if cat.Endpoints[i].Modality.CallerGivesIdentity() {
			out = append(out, &cat.Endpoints[i])
		}
	}
	if len(out) == 0 {
		t.Fatal("no identite or identifiant route")
	}
	return out
}

// TestCallerRoutes_EverySandboxCase walks every identite and identifiant
// route and every 200 case of its sandbox folder: the caller sends the
// case's identity (or identifier) with the sandbox API token and gets 200
// with every scope's fields and nothing else; the same identity with its
// first name reversed gets the route's not-found answer; the identifier
// or name with a character the route refuses gets 422 with the route's
// code, naming the parameter.
func TestCallerRoutes_EverySandboxCase(t *testing.T) {
	start(t, options{MaxEntries: 12003})
	emb := sandbox.Embedded()
	for _, ep := range callerRoutes(t) {
		t.Run(ep.ID, func(t *testing.T) {
			var oks []*sandbox.Case
			for _, c := range emb.Cases(ep.OperationID) {
				if c.Status == 200 && callerCase(ep, c) {
					oks = append(oks, c)
				}
			}
			if len(oks) == 0 {
				t.Fatalf("no 200 sandbox case in %s", ep.OperationID)
			}
			all := make([]*catalogue.Scope, len(ep.Scopes))
			for i := range ep.Scopes {
				all[i] = &ep.Scopes[i]
			}
			for _, c := range oks {
				q := callerQueryOf(ep, c)
				a := get(t, gatewayPort, ep.Path+"?"+q.Encode(), apiCredential(ep, "sandbox_all_scopes")...)
				if a.status != 200 {
					t.Errorf("%s: status %d: %s", c.File, a.status, a.body)
					continue
				}
				checkReleased(t, a, ep, all)
			}

			// Not found: the first case with its first required value reversed.
			q := callerQueryOf(ep, oks[0])
			first := firstRequired(ep, q)
			q.Set(first, reverse(q.Get(first)))
			a := get(t, gatewayPort, ep.Path+"?"+q.Encode(), apiCredential(ep, "sandbox_all_scopes")...)
			prefix, _ := ep.NotFoundError()
			switch {
			case ep.API == catalogue.APIv2:
				if a.status != 404 || a.json(t)["error"] != "not_found" {
					t.Errorf("unknown %s: status %d, want 404 not_found: %s", first, a.status, a.body)
				}
			case a.status != 404 || a.code(t) != prefix+"003":
				t.Errorf("unknown %s: status %d, want 404 %s003: %s", first, a.status, prefix, a.body)
			}

			// Malformed: a character no pattern of the catalogue accepts.
			q = callerQueryOf(ep, oks[0])
			q.Set(first, q.Get(first)+"<")
			a = get(t, gatewayPort, ep.Path+"?"+q.Encode(), apiCredential(ep, "sandbox_all_scopes")...)
			switch {
			case ep.API == catalogue.APIv2:
				if a.status != 400 || a.json(t)["error"] != "bad_request" {
					t.Errorf("malformed %s: status %d, want 400 bad_request: %s", first, a.status, a.body)
				}
			case a.status != 422 || a.code(t) != ep.InvalidCode || !strings.Contains(string(a.body), `"parameter":"`+first+`"`):
				t.Errorf("malformed %s: status %d, want 422 %s naming it: %s", first, a.status, ep.InvalidCode, a.body)
			}

			// A FranceConnect token is not a credential here.
			if a := get(t, gatewayPort, ep.Path+"?"+callerQueryOf(ep, oks[0]).Encode(), apiCredential(ep, "all_fc")...); a.status != 401 {
				t.Errorf("FranceConnect token on %s: status %d: %s", ep.Path, a.status, a.body)
			}
		})
	}
}

// apiCredential returns the header carrying the habilitation's API token on
// a caller route: X-Api-Key on legacy v2 routes, Authorization otherwise.
func apiCredential(ep *catalogue.Endpoint, token string) []string {
	if ep.APIKeyHeader() {
		return []string{"X-Api-Key", token}
	}
	return bearer(token)
}

// firstRequired returns the parameter to alter in q: the first required
// one present with at least two characters, else the first such parameter
// (routes where one_of decides what is required), sex and school year aside.
func firstRequired(ep *catalogue.Endpoint, q url.Values) string {
	usable := func(p catalogue.Param) bool {
		return len(q.Get(p.Name)) > 1 && !slices.Contains([]string{"anneeScolaire", "sexeEtatCivil", "sexe"}, p.Name)
	}
	for _, p := range ep.Params {
		if p.Required && usable(p) {
			return p.Name
		}
	}
	for _, p := range ep.Params {
		if usable(p) {
			return p.Name
		}
	}
	return ep.Params[0].Name
}

func reverse(s string) string {
	r := []rune(s)
	slices.Reverse(r)
	return string(r)
}
