package audit

import (
	"slices"
	"testing"
)

// TestRewriteAfterPasserelle: Caddy evaluates a route's matchers on the
// request as the handlers before it changed it. `passerelle /v3/*`, then a
// rewrite of /other/* into /v3/…, then `reverse_proxy /v3/* provider`
// proxies /other/* without passerelle (PA05). A change under the same
// matchers as passerelle, or of what they do not read, opens nothing.
func TestRewriteAfterPasserelle(t *testing.T) {
	v3 := []any{map[string]any{"path": []any{"/v3/*"}}}
	other := []any{map[string]any{"path": []any{"/other/*"}}}
	gate := map[string]any{"match": v3, "handle": []any{map[string]any{"handler": "passerelle"}}}
	proxy := map[string]any{"match": v3, "handle": []any{proxyTo("provider.example:443", false)}}
	rewrite := map[string]any{"handler": "rewrite", "uri": "/v3{http.request.uri.path}"}
	requestHeader := map[string]any{"handler": "headers", "request": map[string]any{"delete": []any{"X-Debug"}}}
	cases := []struct {
		name  string
		mid   []any // the routes between passerelle's and the proxy's
		rules []string
	}{
		{"a rewrite under other matchers", []any{map[string]any{"match": other, "handle": []any{rewrite}}}, []string{"PA05"}},
		{"a rewrite on every request", []any{map[string]any{"handle": []any{rewrite}}}, []string{"PA05"}},
		{"a rewrite in a subroute", []any{map[string]any{"match": other, "handle": []any{map[string]any{"handler": "subroute",
			"routes": []any{map[string]any{"handle": []any{rewrite}}}}}}}, []string{"PA05"}},
		{"a plugin's handler", []any{map[string]any{"handle": []any{map[string]any{"handler": "some_plugin"}}}}, []string{"PA05"}},
		{"a rewrite under the same matchers", []any{map[string]any{"match": v3, "handle": []any{rewrite}}}, nil},
		{"request headers changed, the path matched", []any{map[string]any{"handle": []any{requestHeader}}}, nil},
		{"response headers changed", []any{map[string]any{"handle": []any{map[string]any{"handler": "headers",
			"response": map[string]any{"set": map[string]any{"X-Frame-Options": []any{"DENY"}}}}}}}, nil},
	}
	for _, tc := range cases {
		c := clean()
		routes := append(append([]any{gate}, tc.mid...), proxy)
		obj(c, "apps", "http", "servers", "public", "routes", 0, "handle", 0)["routes"] = routes
		got := rulesOf(run(t, c))
		slices.Sort(got)
		if !slices.Equal(got, tc.rules) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.rules)
		}
	}
}

// TestRouteGroups: Caddy runs only the first route of a group that
// matches a request. `passerelle /v3/*` in a group after another route
// of the group is skipped where that one matched, and
// `reverse_proxy /v3/* provider` then runs without it (PA05); a route of
// a group after one of the group without matchers never runs, nor does
// its proxy bypass anything.
func TestRouteGroups(t *testing.T) {
	v3 := []any{map[string]any{"path": []any{"/v3/*"}}}
	debug := []any{map[string]any{"header": map[string]any{"X-Debug": []any{"1"}}}}
	proxy := proxyTo("provider.example:443", false)
	cases := []struct {
		name   string
		routes []any
		rules  []string
	}{
		{"passerelle skipped by its group", []any{
			map[string]any{"group": "g", "match": debug, "handle": []any{map[string]any{"handler": "encode"}}},
			map[string]any{"group": "g", "match": v3, "handle": []any{map[string]any{"handler": "passerelle"}}},
			map[string]any{"match": v3, "handle": []any{proxy}},
		}, []string{"PA05"}},
		{"passerelle first of its group", []any{
			map[string]any{"group": "g", "match": v3, "handle": []any{map[string]any{"handler": "passerelle"}}},
			map[string]any{"group": "g", "match": debug, "handle": []any{map[string]any{"handler": "encode"}}},
			map[string]any{"match": v3, "handle": []any{proxy}},
		}, nil},
		{"a route its group never runs", []any{
			map[string]any{"group": "g", "match": v3, "handle": []any{map[string]any{"handler": "passerelle"}, proxy}},
			map[string]any{"group": "g", "handle": []any{map[string]any{"handler": "static_response", "status_code": 404.0}}},
			map[string]any{"group": "g", "match": debug, "handle": []any{proxy}},
		}, nil},
	}
	for _, tc := range cases {
		c := clean()
		obj(c, "apps", "http", "servers", "public", "routes", 0, "handle", 0)["routes"] = tc.routes
		got := rulesOf(run(t, c))
		slices.Sort(got)
		if !slices.Equal(got, tc.rules) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.rules)
		}
	}
}

// TestProviderAddressSpellings: a reverse_proxy without passerelle to the
// provider under another spelling of its address (letter case, the DNS
// root's trailing dot, a network, a zero-padded port or a one-port range,
// an IPv4-mapped address) reaches the same provider (PA05).
func TestProviderAddressSpellings(t *testing.T) {
	for provider, bypass := range map[string]string{
		"provider.example:443":  "Provider.EXAMPLE:443",
		"Provider.example:443":  "provider.example.:443",
		"provider.example.:443": "tcp4/provider.example:0443",
		"provider.example:8443": "tcp/provider.example:8443-8443",
		"10.0.0.7:443":          "[::ffff:10.0.0.7]:443",
	} {
		c := clean()
		upstreams := obj(c, "apps", "http", "servers", "public", "routes", 0, "handle", 0, "routes", 0, "handle", 1)["upstreams"].([]any)
		upstreams[0].(map[string]any)["dial"] = provider
		addRoute(c, proxyTo(bypass, false))
		if got := rulesOf(run(t, c)); !slices.Equal(got, []string{"PA05"}) {
			t.Errorf("provider %s, bypass %s: %v, want PA05", provider, bypass, got)
		}
	}
	if dialKey("unix//run/p/../p/provider.sock") != "unix//run/p/provider.sock" || dialKey("{env.PROVIDER}") != "{env.PROVIDER}" {
		t.Error("dialKey")
	}
}
