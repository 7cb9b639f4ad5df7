package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// The sandbox provider leaves these out of the comparison
// (caddyplugin/sandbox: ignoredParams).
var providerIgnored = []string{"recipient", "annee", "mois"}

type token struct {
	name string
	ti   introspection
}

// activeTokens returns the embedded tokens carrying an identity.
func activeTokens(t *testing.T) []token {
	t.Helper()
	var out []token
	for _, c := range Embedded().Tokens() {
		if ti := decodeToken(t, c).TI; ti.Active {
			out = append(out, token{c.Params["token"].(string), ti})
		}
	}
	return out
}

// gatewayParams is qfParams for any route: the identity part of the provider
// query, derived by the catalogue's own Claim.AppendValues in catalogue order,
// as the handler's upstreamQuery does.
func gatewayParams(ep *catalogue.Endpoint, ti introspection) (url.Values, error) {
	p := catalogue.Pivot{FamilyName: ti.FamilyName, GivenName: ti.GivenName, Gender: ti.Gender,
		Birthdate: ti.Birthdate, Birthplace: ti.Birthplace, Birthcountry: ti.Birthcountry, IdpBirthdate: ti.IdpBirthdate}.Normalized()
	q := url.Values{}
	for _, ip := range ep.Identity {
		vals, err := ip.Claim.AppendValues(nil, &p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ip.Param, err)
		}
		for _, v := range vals {
			q.Add(ip.Param, v)
		}
	}
	return q, nil
}

// passThrough adds to q the route's pass-through parameters as written in
// case c. ok is false when c lacks a required one or holds a value the route
// refuses: no caller could then reach the case.
func passThrough(ep *catalogue.Endpoint, c *Case, q url.Values) bool {
	for i := range ep.Params {
		p := &ep.Params[i]
		v, ok := c.Params[p.Name]
		if !ok {
			if p.Required {
				return false
			}
			continue
		}
		var text string
		switch v := v.(type) {
		case string:
			text = v
		case int:
			text = fmt.Sprint(v)
		default:
			return false
		}
		if !p.Valid(text) {
			return false
		}
		q.Set(p.Name, text)
	}
	return true
}

// reachedBy returns the tokens whose identity, mapped for ep, plus valid
// pass-through values, hits case c through Set.Match as the sandbox provider
// calls it.
func reachedBy(t *testing.T, ep *catalogue.Endpoint, c *Case, tokens []token) []string {
	t.Helper()
	var out []string
	for _, tok := range tokens {
		q, err := gatewayParams(ep, tok.ti)
		if err != nil && errors.Is(err, catalogue.ErrUnusableIdentity) &&
			catalogue.KnownBirthdate(tok.ti.Birthdate, tok.ti.IdpBirthdate) != tok.ti.Birthdate {
			continue // a partial birth date, on a route that needs the day: no invented day
		}
		if err != nil {
			t.Fatalf("%s on %s: %v", tok.name, ep.ID, err)
		}
		if !passThrough(ep, c, q) {
			continue
		}
		q.Set("recipient", "13002526500013")
		if got, ok := Embedded().Match([]string{ep.OperationID}, q, providerIgnored); ok && got == c {
			out = append(out, tok.name)
		}
	}
	return out
}

func carriesScopeOf(ti introspection, ep *catalogue.Endpoint) bool {
	var mask uint64
	for i := range ep.Scopes {
		if slices.ContainsFunc(ep.Scopes[i].Names(), func(n string) bool { return slices.Contains(strings.Fields(ti.Scope), n) }) {
			mask |= 1 << i
		}
	}
	return ep.KeepWholeJointGroups(mask) != 0 // joint scopes release only together
}

func defaultCatalogue(t *testing.T) *catalogue.Catalogue {
	t.Helper()
	c, err := catalogue.Default()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEmbeddedRoutesReachable: every 200 case of every folder is reachable
// from some sandbox token identity through the catalogue mapping; every
// route has a 200 case for the all_fc identity and one for a token that
// holds one of its scopes; no 404 case is reachable by an identity.
func TestEmbeddedRoutesReachable(t *testing.T) {
	s, tokens := Embedded(), activeTokens(t)
	cat := defaultCatalogue(t)
	for i := range cat.Endpoints {
		ep := &cat.Endpoints[i]
		if ep.Modality != catalogue.ModalityFranceConnect {
			continue // the caller gives the identity: see the e2e identite tests
		}
		t.Run(ep.ID, func(t *testing.T) {
			cases := s.Cases(ep.OperationID)
			if len(cases) == 0 {
				t.Fatalf("no case folder %s", ep.OperationID)
			}
			var allFC, withScope bool
			for _, c := range cases {
				if !ep.ProducesAll(maps.Keys(c.Params)) {
					continue // a case of the route's API key twin (one folder per operation)
				}
				by := reachedBy(t, ep, c, tokens)
				switch {
				case c.Status == 200 && len(by) == 0:
					t.Errorf("%s is reachable by no token identity", c.File)
				case c.Status == 404 && len(by) > 0:
					t.Errorf("%s (not-found default) is reached by %v", c.File, by)
				}
				if c.Status != 200 {
					continue
				}
				allFC = allFC || slices.Contains(by, "all_fc")
				for _, tok := range tokens {
					if slices.Contains(by, tok.name) && carriesScopeOf(tok.ti, ep) {
						withScope = true
					}
				}
			}
			if !allFC {
				t.Error("no 200 case for the all_fc identity")
			}
			if !withScope {
				t.Error("no 200 case for a token holding one of the route's scopes")
			}
		})
	}
}

// TestEmbeddedRoutesNotFound: every folder has a 404.yaml carrying the
// route's documented not-found code (v2 routes: a v2 not_found error, which
// has no code), and an identity known nowhere (aucun_dossier) falls to it on
// every route.
func TestEmbeddedRoutesNotFound(t *testing.T) {
	s := Embedded()
	cat := defaultCatalogue(t)
	nobody, ok := s.Token("aucun_dossier")
	if !ok {
		t.Fatal("aucun_dossier token missing")
	}
	ti := decodeToken(t, nobody).TI
	for i := range cat.Endpoints {
		ep := &cat.Endpoints[i]
		c, ok := s.NotFound(ep.OperationID)
		if !ok || c.File != "404.yaml" || c.Status != 404 {
			t.Errorf("%s: NotFound = %v, %v", ep.OperationID, c, ok)
			continue
		}
		var body struct {
			Errors []struct {
				Code, Title, Detail string
				Meta                struct{ Provider string }
			}
		}
		prefix, provider := ep.NotFoundError()
		if ep.API == catalogue.APIv2 {
			var v2 struct{ Error, Reason, Message string }
			if err := json.Unmarshal(c.Payload, &v2); err != nil || v2.Error != "not_found" || v2.Reason == "" || v2.Message == "" {
				t.Errorf("%s/404.yaml = %s, want a v2 not_found error", ep.OperationID, c.Payload)
			}
		} else if err := json.Unmarshal(c.Payload, &body); err != nil || len(body.Errors) != 1 || body.Errors[0].Code != prefix+"003" ||
			body.Errors[0].Meta.Provider != provider || body.Errors[0].Title == "" || body.Errors[0].Detail == "" {
			t.Errorf("%s/404.yaml = %s, want code %s003 from %s", ep.OperationID, c.Payload, prefix, provider)
		}
		if ep.Modality != catalogue.ModalityFranceConnect {
			continue
		}
		if !carriesScopeOf(ti, ep) {
			t.Errorf("aucun_dossier holds no scope of %s", ep.ID)
		}
		q, err := gatewayParams(ep, ti)
		if err != nil {
			t.Fatal(err)
		}
		if ep.ID == "ants_extrait_immatriculation_vehicule_fc" {
			q.Set("immatriculation", "GH-416-TD")
		}
		if got, ok := s.Match([]string{ep.OperationID}, q, providerIgnored); ok {
			t.Errorf("%s: aucun_dossier matches %s", ep.ID, got.File)
		}
	}
}

// hasPath reports whether a respfilter-style path (a.b[].c) holds a value
// in v.
func hasPath(v any, path []string) bool {
	if len(path) == 0 {
		return true
	}
	key, each := strings.CutSuffix(path[0], "[]")
	obj, ok := v.(map[string]any)
	if !ok {
		return false
	}
	next, ok := obj[key]
	if !ok {
		return false
	}
	if !each {
		return hasPath(next, path[1:])
	}
	arr, _ := next.([]any)
	for _, e := range arr {
		if hasPath(e, path[1:]) {
			return true
		}
	}
	return false
}

// TestEmbeddedRoutesPayloads: 200 payloads have the v3/v4 shape (v2 routes:
// an object of provider members, no envelope) and, folder by folder, carry
// fields of every scope, so that filtering is visible.
func TestEmbeddedRoutesPayloads(t *testing.T) {
	s := Embedded()
	cat := defaultCatalogue(t)
	for i := range cat.Endpoints {
		ep := &cat.Endpoints[i]
		var bodies []any
		for _, c := range s.Cases(ep.OperationID) {
			if c.Status != 200 {
				continue
			}
			var body map[string]any
			if err := json.Unmarshal(c.Payload, &body); err != nil {
				t.Errorf("%s/%s: %v", ep.OperationID, c.File, err)
				continue
			}
			_, d := body["data"].(map[string]any)
			_, l := body["links"].(map[string]any)
			_, m := body["meta"].(map[string]any)
			switch {
			case ep.API == catalogue.APIv2:
				if _, ok := body["data"]; ok || body["errors"] != nil || body["error"] != nil || len(body) == 0 {
					t.Errorf("%s/%s: not a v2 answer (provider members at the root)", ep.OperationID, c.File)
				}
			case !d || !l || !m || len(body) != 3:
				t.Errorf("%s/%s: not a {data, links, meta} answer", ep.OperationID, c.File)
			}
			bodies = append(bodies, body)
		}
		for _, sc := range ep.Scopes {
			found := slices.ContainsFunc(sc.Fields, func(f string) bool {
				return slices.ContainsFunc(bodies, func(b any) bool { return hasPath(b, strings.Split(f, ".")) })
			})
			if !found {
				t.Errorf("%s: no 200 case carries a field of scope %s", ep.OperationID, sc.Name)
			}
		}
	}
}

// The catalogue mapping of the quotient familial route agrees with the
// hand-written qfParams the QF tests use.
func TestQFParamsAgreesWithCatalogue(t *testing.T) {
	ep, ok := defaultCatalogue(t).Lookup("/v3/dss/quotient_familial/france_connect")
	if !ok {
		t.Fatal("QF route missing")
	}
	for _, tok := range activeTokens(t) {
		q, err := gatewayParams(ep, tok.ti)
		if err != nil {
			t.Fatalf("%s: %v", tok.name, err)
		}
		a, _ := requestKey(q, nil)
		b, _ := requestKey(qfParams(tok.ti), nil)
		if a != b {
			t.Errorf("%s: catalogue %v, qfParams %v", tok.name, q, qfParams(tok.ti))
		}
	}
}

// TestSandboxHabilitationGrantsCatalogue: the sandbox habilitation paired
// with the sandbox tokens' service grants every scope name and alias of
// every route, so that only the token's scopes decide in the sandbox.
func TestSandboxHabilitationGrantsCatalogue(t *testing.T) {
	data, err := os.ReadFile("../../deploy/sandbox/habilitations.yaml")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := habilitation.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	hab, ok := reg.ByClientID(fsClientID)
	if !ok {
		t.Fatal("no habilitation paired with the sandbox service")
	}
	if hab.SIRET != "13002526500013" || hab.ID != "sandbox-toutes-donnees" {
		t.Errorf("habilitation %s / %s", hab.ID, hab.SIRET)
	}
	cat := defaultCatalogue(t)
	for _, ep := range cat.Endpoints {
		for _, sc := range ep.Scopes {
			for _, n := range sc.Names() {
				if !hab.HasScope(n) {
					t.Errorf("%s: scope %s not granted", ep.ID, n)
				}
			}
		}
	}
}
