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
