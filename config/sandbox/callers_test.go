package sandbox

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/passerelle-gw/passerelle/config/catalogue"
)

// The sandbox SIRET (deploy/sandbox/habilitations.yaml).
const sandboxRecipient = "13002526500013"

// TestEmbeddedEveryRouteHasCases: every endpoint of the default catalogue
// has its case folder, with at least one 200 case and a 404.yaml.
func TestEmbeddedEveryRouteHasCases(t *testing.T) {
	s := Embedded()
	for _, ep := range defaultCatalogue(t).Endpoints {
		cases := s.Cases(ep.OperationID)
		if !slices.ContainsFunc(cases, func(c *Case) bool { return c.Status == 200 }) {
			t.Errorf("%s (%s): no 200 case", ep.OperationID, ep.Path)
		}
		if c, ok := s.NotFound(ep.OperationID); !ok || c.File != "404.yaml" {
			t.Errorf("%s (%s): no 404.yaml", ep.OperationID, ep.Path)
		}
	}
}

// callerRoutes returns the v3/v4 endpoints where the caller gives the
// citizen as query parameters (identite, identifiant).
func callerRoutes(t *testing.T) []*catalogue.Endpoint {
	t.Helper()
	cat := defaultCatalogue(t)
	var out []*catalogue.Endpoint
	for i := range cat.Endpoints {
		if ep := &cat.Endpoints[i]; ep.Modality.CallerGivesIdentity() && ep.API == catalogue.APIv3 {
			out = append(out, ep)
		}
	}
	if len(out) == 0 {
		t.Fatal("no identite or identifiant route in the catalogue")
	}
	return out
}

// upstreamOperations returns the case folders the sandbox provider searches
// for a request on ep's upstream path: those of every endpoint sharing it,
// in catalogue order (caddyplugin/sandbox: Provider.Provision).
func upstreamOperations(cat *catalogue.Catalogue, ep *catalogue.Endpoint) []string {
	var ops []string
	for _, e := range cat.Endpoints {
		if e.UpstreamPath == ep.UpstreamPath {
			ops = append(ops, e.OperationID)
		}
	}
	return ops
}

// caseValues returns the values of case c for parameter p (either spelling
// of a "[]" name), as the text a caller sends.
func caseValues(c *Case, p *catalogue.Param) ([]string, bool) {
	v, ok := c.Params[strings.TrimSuffix(p.Name, "[]")]
	if !ok {
		v, ok = c.Params[p.Name]
	}
	if !ok {
		return nil, false
	}
	vals, isList := v.([]any)
	if !isList {
		vals = []any{v}
	}
	out := make([]string, len(vals))
	for i, e := range vals {
		switch e := e.(type) {
		case int:
			out[i] = strconv.Itoa(e)
		case string:
			out[i] = e
		default:
			out[i] = fmt.Sprint(e)
		}
	}
	return out, true
}

// casual rewrites a normalised value the way a caller may type it: names in
// lower case with doubled spaces, integers zero-padded, codes in lower case.
func casual(p *catalogue.Param, v string) string {
	switch p.Normalize {
	case "name":
		return " " + strings.ReplaceAll(strings.ToLower(v), " ", "  ") + " "
	case "integer":
		return "0" + v
	case "upper":
		return strings.ToLower(v)
	}
	return v
}

// callerQuery returns the caller's query that yields case c on route ep and
// the provider query the gateway then sends (the route's parameters,
// normalised, in catalogue order, plus the recipient). It fails, naming the
// parameter, when no caller could send c's params: an undeclared or missing
// required parameter, too many values, a value the route refuses or that is
// not in normalised form, an identity the civility checks refuse. When
// casually is set, the caller's values are typed casually (see casual).
func callerQuery(ep *catalogue.Endpoint, c *Case, casually bool) (caller, upstream url.Values, err error) {
	caller, upstream = url.Values{}, url.Values{}
	used := map[string]bool{}
	for i := range ep.Params {
		p := &ep.Params[i]
		vals, ok := caseValues(c, p)
		if !ok {
			if p.Required {
				return nil, nil, fmt.Errorf("required parameter %s missing", p.Name)
			}
			continue
		}
		used[strings.TrimSuffix(p.Name, "[]")] = true
		if len(vals) > max(p.Max, 1) {
			return nil, nil, fmt.Errorf("%s: %d values, at most %d", p.Name, len(vals), max(p.Max, 1))
		}
		for _, v := range vals {
			in := v
			if casually {
				in = casual(p, v)
			}
			clean := p.Clean(in)
			switch {
			case !p.Valid(clean):
				return nil, nil, fmt.Errorf("%s: value refused by the route", p.Name)
			case !strings.EqualFold(clean, v):
				return nil, nil, fmt.Errorf("%s: case value not in normalised form", p.Name)
			}
			caller.Add(p.Name, in)
			upstream.Add(p.Name, clean)
		}
	}
	for k := range c.Params {
		if !used[strings.TrimSuffix(k, "[]")] {
			return nil, nil, fmt.Errorf("%s: not a parameter of the route", k)
		}
	}
	if bad := ep.Civility.Check(func(name string) string { return upstream.Get(name) }, time.Now()); bad != "" {
		return nil, nil, fmt.Errorf("%s: refused by the civility checks", bad)
	}
	caller.Set("recipient", sandboxRecipient)
	upstream.Set("recipient", sandboxRecipient)
	return caller, upstream, nil
}

// TestEmbeddedCallerCases: on every identite or identifiant route, each 200
// case holds parameters a caller can send (declared, valid once normalised,
// required ones present, coherent identity) and is what the sandbox
// provider answers to the gateway's provider query, typed carefully or
// casually; the route has an identity with accents (identite routes).
func TestEmbeddedCallerCases(t *testing.T) {
	s := Embedded()
	cat := defaultCatalogue(t)
	for _, ep := range callerRoutes(t) {
		t.Run(ep.ID, func(t *testing.T) {
			ops := upstreamOperations(cat, ep)
			n, accents := 0, false
			for _, c := range s.Cases(ep.OperationID) {
				if c.Status != 200 {
					continue
				}
				n++
				for _, casually := range []bool{false, true} {
					_, q, err := callerQuery(ep, c, casually)
					if err != nil {
						t.Errorf("%s: %v", c.File, err)
						break
					}
					if got, ok := s.Match(ops, q, providerIgnored); !ok || got != c {
						t.Errorf("%s (casually %v): the provider query does not reach it", c.File, casually)
					}
				}
				accents = accents || hasAccent(c.Params["nomNaissance"]) || hasAccent(c.Params["prenoms"])
			}
			if n == 0 {
				t.Fatal("no 200 case")
			}
			if ep.Modality == catalogue.ModalityIdentite && !accents {
				t.Error("no 200 case with an accented name")
			}
		})
	}
}

// hasAccent reports whether a case value (a string or a list of them) holds
// an accented capital letter.
func hasAccent(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsAny(v, "ÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸ")
	case []any:
		return slices.ContainsFunc(v, hasAccent)
	}
	return false
}

// TestEmbeddedCallerCasesRefused: the checks of callerQuery fail when they
// should, so that TestEmbeddedCallerCases can fail.
func TestEmbeddedCallerCasesRefused(t *testing.T) {
	cat := defaultCatalogue(t)
	ep, ok := cat.Lookup("/v3/dsnj/service_national/identite")
	if !ok {
		t.Fatal("DSNJ identite route missing")
	}
	base := func() map[string]any {
		return map[string]any{"nomNaissance": "BENSAÏD", "prenoms": []any{"KARIM"}, "anneeDateNaissance": 2006, "moisDateNaissance": 6,
			"jourDateNaissance": 30, "sexeEtatCivil": "M", "codeCogInseePaysNaissance": "99350"}
	}
	if _, _, err := callerQuery(ep, &Case{Params: base()}, true); err != nil {
		t.Fatalf("valid identity refused: %v", err)
	}
	for name, mutate := range map[string]func(map[string]any){
		"undeclared parameter":  func(m map[string]any) { m["nomUsage"] = "X" },
		"required one missing":  func(m map[string]any) { delete(m, "sexeEtatCivil") },
		"too many given names":  func(m map[string]any) { m["prenoms"] = []any{"A", "B", "C", "D"} },
		"refused value":         func(m map[string]any) { m["sexeEtatCivil"] = "X" },
		"not normalised":        func(m map[string]any) { m["moisDateNaissance"] = "06" },
		"born abroad in a town": func(m map[string]any) { m["codeCogInseeCommuneNaissance"] = "75117" },
		"31 June":               func(m map[string]any) { m["jourDateNaissance"] = 31 },
		"name with a digit":     func(m map[string]any) { m["nomNaissance"] = "BENSA1D" },
		"born before 1900":      func(m map[string]any) { m["anneeDateNaissance"] = 1899 },
	} {
		m := base()
		mutate(m)
		if _, _, err := callerQuery(ep, &Case{Params: m}, false); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
