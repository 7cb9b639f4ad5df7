package audit

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// proxyTo is a reverse_proxy to one upstream, over TLS unless plain, with
// a response header timeout.
func proxyTo(dial string, plain bool) map[string]any {
	transport := map[string]any{"protocol": "http", "response_header_timeout": 10e9}
	if !plain {
		transport["tls"] = map[string]any{}
	}
	return map[string]any{"handler": "reverse_proxy", "upstreams": []any{map[string]any{"dial": dial}}, "transport": transport}
}

// front is a passerelle_front whose in-process datasets go to provider,
// in its subroute as the Caddyfile adapts `provider { reverse_proxy … }`.
func front(provider map[string]any) map[string]any {
	return map[string]any{
		"handler": "passerelle_front", "secret": "{env.FRONT_SECRET}", "assertion_key": "{file./run/credentials/p/assertion.pem}",
		"franceconnect": map[string]any{"issuer": "https://oidc.franceconnect.gouv.fr/api/v2", "client_secret": "{env.FS_SECRET}"},
		"provider":      map[string]any{"handler": "subroute", "routes": []any{map[string]any{"handle": []any{provider}}}},
	}
}

// addRoute appends a site of its own to the public server: a route
// matching one more host, with these handlers.
func addRoute(c map[string]any, handlers ...any) {
	srv := publicServer(c)
	routes := srv["routes"].([]any)
	host := fmt.Sprintf("site%d.example", len(routes))
	srv["routes"] = append(routes, map[string]any{"match": []any{map[string]any{"host": []any{host}}}, "handle": handlers})
}

// TestHandlersEverywhere: the rules on handlers see every handler Caddy
// runs, not only those of the servers' main routes: the error routes
// (handle_errors), named routes where a route invokes them, a front's
// provider and reverse_proxy's handle_response routes. Each case hides the
// fault in one of those places; before, the audit passed them all.
func TestHandlersEverywhere(t *testing.T) {
	cases := []struct {
		name   string
		rule   string
		change func(c map[string]any)
	}{
		{"provider reached from handle_errors", "PA05", func(c map[string]any) {
			publicServer(c)["errors"] = map[string]any{"routes": []any{map[string]any{"handle": []any{proxyTo("provider.example:443", false)}}}}
		}},
		{"sandbox module in handle_errors", "PA01", func(c map[string]any) {
			obj(c, "apps", "http", "servers", "internal")["errors"] = map[string]any{"routes": []any{
				map[string]any{"handle": []any{map[string]any{"handler": "passerelle_sandbox_fc"}}}}}
		}},
		{"provider reached from a named route invoked without passerelle", "PA05", func(c map[string]any) {
			publicServer(c)["named_routes"] = map[string]any{"direct": map[string]any{"handle": []any{proxyTo("provider.example:443", false)}}}
			addRoute(c, map[string]any{"handler": "invoke", "name": "direct"})
		}},
		{"front's provider over plain HTTP", "PA03", func(c map[string]any) {
			addRoute(c, front(proxyTo("provider.example:80", true)), proxyTo("app.internal:8080", true))
		}},
		{"front's provider retrying three times", "PA17", func(c map[string]any) {
			p := proxyTo("provider.example:443", false)
			p["load_balancing"] = map[string]any{"retries": 3.0}
			addRoute(c, front(p), proxyTo("app.internal:8080", true))
		}},
		{"provider reached from handle_response", "PA05", func(c map[string]any) {
			app := proxyTo("app.internal:8080", true)
			app["handle_response"] = []any{map[string]any{"routes": []any{map[string]any{"handle": []any{proxyTo("provider.example:443", false)}}}}}
			addRoute(c, app)
		}},
	}
	for _, tc := range cases {
		c := clean()
		tc.change(c)
		if got := rulesOf(run(t, c)); !slices.Contains(got, tc.rule) {
			t.Errorf("%s: %s not tripped (got %v)", tc.name, tc.rule, got)
		}
	}
}

// TestHandlersEverywhereClean: what those places may hold without a
// finding. A named route invoked after passerelle is behind it; a front's
// provider over TLS is a provider behind the pipeline (a direct
// reverse_proxy to it elsewhere trips PA05), and the app behind the front
// is not a provider; a route invoking itself ends.
func TestHandlersEverywhereClean(t *testing.T) {
	c := clean()
	srv := publicServer(c)
	srv["named_routes"] = map[string]any{
		"provider": map[string]any{"handle": []any{proxyTo("provider.example:443", false)}},
		"loop":     map[string]any{"handle": []any{map[string]any{"handler": "invoke", "name": "loop"}}},
	}
	addRoute(c, map[string]any{"handler": "passerelle"}, map[string]any{"handler": "invoke", "name": "provider"})
	addRoute(c, map[string]any{"handler": "passerelle"}, map[string]any{"handler": "invoke", "name": "provider"})
	addRoute(c, map[string]any{"handler": "invoke", "name": "loop"})
	app := proxyTo("app.internal:8080", true)
	app["load_balancing"] = map[string]any{"retries": 1.0} // the app's, not a provider's: one retry allowed
	addRoute(c, front(proxyTo("dataset-provider.example:443", false)), app)
	if fs := run(t, c); len(fs) != 0 {
		t.Fatalf("findings %+v", fs)
	}
	addRoute(c, proxyTo("dataset-provider.example:443", false))
	fs := run(t, c)
	if len(fs) != 1 || fs[0].Rule != "PA05" {
		t.Fatalf("a direct reverse_proxy to the front's provider: %+v", fs)
	}
}

// TestNamedRouteFindingsOnce: a named route invoked from two routes holds
// one fault: one finding.
func TestNamedRouteFindingsOnce(t *testing.T) {
	c := clean()
	p := proxyTo("provider.example:443", false)
	p["load_balancing"] = map[string]any{"retries": 3.0}
	publicServer(c)["named_routes"] = map[string]any{"provider": map[string]any{"handle": []any{p}}}
	addRoute(c, map[string]any{"handler": "passerelle"}, map[string]any{"handler": "invoke", "name": "provider"})
	addRoute(c, map[string]any{"handler": "passerelle"}, map[string]any{"handler": "invoke", "name": "provider"})
	fs := run(t, c)
	if len(fs) != 1 || fs[0].Rule != "PA17" {
		t.Fatalf("findings %+v", fs)
	}
}

// TestChainAsCaddyRunsIt: a handler's chain is the one Caddy compiles.
// Handlers of a route without matchers come before the routes after it
// (the Caddyfile puts `passerelle` and a `reverse_proxy @matcher` in routes
// of their own); Caddy runs a named route with the rest of the invoking
// route after it, and a subroute likewise.
func TestChainAsCaddyRunsIt(t *testing.T) {
	plainProvider := proxyTo("provider-b.example:80", true)
	cases := []struct {
		name string
		add  []any
	}{
		{"routes of one list", []any{map[string]any{"handler": "subroute", "routes": []any{
			map[string]any{"handle": []any{map[string]any{"handler": "passerelle"}}},
			map[string]any{"match": []any{map[string]any{"path": []any{"/qf/*"}}}, "handle": []any{plainProvider}},
		}}}},
		{"after an invoke", []any{map[string]any{"handler": "invoke", "name": "gate"}, plainProvider}},
		{"after a subroute", []any{map[string]any{"handler": "subroute", "routes": []any{
			map[string]any{"handle": []any{map[string]any{"handler": "passerelle"}}}}}, plainProvider}},
	}
	for _, tc := range cases {
		c := clean()
		publicServer(c)["named_routes"] = map[string]any{
			"gate": map[string]any{"handle": []any{map[string]any{"handler": "passerelle"}}}}
		addRoute(c, tc.add...)
		fs := run(t, c)
		if len(fs) != 1 || fs[0].Rule != "PA03" || !strings.Contains(fs[0].Detail, "provider-b.example:80") {
			t.Errorf("%s: the provider behind passerelle over plain HTTP: %+v", tc.name, fs)
		}
	}
}

// TestMoreHandlerPlaces: a subroute's own error routes and intercept's
// handle_response routes are walked too; a PA05 in a named route names
// the invoke that bypasses passerelle.
func TestMoreHandlerPlaces(t *testing.T) {
	direct := proxyTo("provider.example:443", false)
	c := clean()
	addRoute(c, map[string]any{"handler": "subroute", "routes": []any{},
		"errors": map[string]any{"routes": []any{map[string]any{"handle": []any{direct}}}}})
	if got := rulesOf(run(t, c)); !slices.Contains(got, "PA05") {
		t.Errorf("a subroute's error routes: %v", got)
	}
	c = clean()
	addRoute(c, map[string]any{"handler": "intercept", "handle_response": []any{
		map[string]any{"routes": []any{map[string]any{"handle": []any{direct}}}}}})
	if got := rulesOf(run(t, c)); !slices.Contains(got, "PA05") {
		t.Errorf("intercept's handle_response: %v", got)
	}
	c = clean()
	publicServer(c)["named_routes"] = map[string]any{"provider": map[string]any{"handle": []any{direct}}}
	addRoute(c, map[string]any{"handler": "passerelle"}, map[string]any{"handler": "invoke", "name": "provider"})
	addRoute(c, map[string]any{"handler": "invoke", "name": "provider"})
	fs := run(t, c)
	if len(fs) != 1 || fs[0].Rule != "PA05" || !strings.Contains(fs[0].Detail, "invoke at apps.http.servers.public.routes[2].handle[0]") {
		t.Errorf("the bypassing invoke is named: %+v", fs)
	}
}

// TestNamedRouteTwoFindings: a named route invoked twice, whose proxy has
// two plain upstreams: one finding per upstream, each once.
func TestNamedRouteTwoFindings(t *testing.T) {
	c := clean()
	p := proxyTo("provider-a.example:80", true)
	p["upstreams"] = append(p["upstreams"].([]any), map[string]any{"dial": "provider-b.example:80"})
	publicServer(c)["named_routes"] = map[string]any{"provider": map[string]any{"handle": []any{p}}}
	addRoute(c, map[string]any{"handler": "passerelle"}, map[string]any{"handler": "invoke", "name": "provider"})
	addRoute(c, map[string]any{"handler": "passerelle"}, map[string]any{"handler": "invoke", "name": "provider"})
	fs := run(t, c)
	if len(fs) != 2 || fs[0].Detail == fs[1].Detail {
		t.Fatalf("findings %+v", fs)
	}
}

// TestErrorRoutesKeepInternal: error pages on a metrics listener of a
// private network do not make it public (PA11, as TestPA11InternalNetwork).
func TestErrorRoutesKeepInternal(t *testing.T) {
	c := clean()
	internal := obj(c, "apps", "http", "servers", "internal")
	internal["listen"] = []any{"10.0.3.7:9090"}
	internal["errors"] = map[string]any{"routes": []any{map[string]any{"handle": []any{
		map[string]any{"handler": "rewrite", "uri": "/error.html"}, map[string]any{"handler": "file_server", "root": "/srv/errors"}}}}}
	if got := rulesOf(run(t, c)); slices.Contains(got, "PA11") {
		t.Fatalf("PA11 for error pages: %v", got)
	}
}

// TestInvokeWalkBounded: named routes invoking the next one twice, twenty
// deep, would be 2^20 walks; the walk stops near maxHandlers.
func TestInvokeWalkBounded(t *testing.T) {
	named := map[string]any{}
	for i := range 20 {
		next := map[string]any{"handler": "invoke", "name": fmt.Sprintf("r%d", i+1)}
		named[fmt.Sprintf("r%d", i)] = map[string]any{"handle": []any{next, next}}
	}
	c := clean()
	publicServer(c)["named_routes"] = named
	addRoute(c, map[string]any{"handler": "invoke", "name": "r0"})
	root := &cfg{root: c}
	root.index()
	if n := len(root.handlers); n > maxHandlers+64 {
		t.Fatalf("%d handlers walked", n)
	}
}

// publicServer is the clean configuration's public server.
func publicServer(c map[string]any) map[string]any {
	return obj(c, "apps", "http", "servers", "public")
}

// TestListenPorts: listen addresses as Caddy writes them, ranges included,
// and onlyOn as Caddy's "no listener uses another port".
func TestListenPorts(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		lo, hi int
		ok     bool
	}{
		{":443", 443, 443, true}, {"127.0.0.1:9090", 9090, 9090, true}, {"tcp/[::1]:80", 80, 80, true},
		{":443-444", 443, 444, true}, {"unix//run/passerelle/admin.sock", 0, 0, false}, {"localhost", 0, 0, false},
	} {
		lo, hi, ok := listenPorts(tc.addr)
		if lo != tc.lo || hi != tc.hi || ok != tc.ok {
			t.Errorf("%s: %d-%d %v", tc.addr, lo, hi, ok)
		}
	}
	if !onlyOn([]string{":443-444"}, 443) || onlyOn([]string{":443", ":8443"}, 443) || onlyOn(nil, 443) || !onlyOn([]string{":80", "127.0.0.1:80"}, 80) {
		t.Error("onlyOn")
	}
}

// TestPasserelleUnderMatcher: `passerelle /v3/*` then `reverse_proxy
// provider` runs the proxy on every other path without passerelle (PA05),
// and the proxy is a provider all the same (PA03, PA19). Under the same
// matcher as passerelle, the proxy runs after it only.
func TestPasserelleUnderMatcher(t *testing.T) {
	v3 := []any{map[string]any{"path": []any{"/v3/*"}}}
	gate := map[string]any{"match": v3, "handle": []any{map[string]any{"handler": "passerelle"}}}
	cases := []struct {
		name  string
		proxy map[string]any
		rules []string
	}{
		{"the proxy on every path", map[string]any{"handle": []any{proxyTo("provider.example:443", false)}}, []string{"PA05"}},
		{"a plain provider on every path", map[string]any{"handle": []any{proxyTo("provider.example:80", true)}}, []string{"PA03", "PA05"}},
		{"the proxy under the same matcher", map[string]any{"match": v3, "handle": []any{proxyTo("provider.example:443", false)}}, nil},
	}
	for _, tc := range cases {
		c := clean()
		obj(c, "apps", "http", "servers", "public", "routes", 0, "handle", 0)["routes"] = []any{gate, tc.proxy}
		got := rulesOf(run(t, c))
		slices.Sort(got)
		if !slices.Equal(got, tc.rules) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.rules)
		}
	}
}
