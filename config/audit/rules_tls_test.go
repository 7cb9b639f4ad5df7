package audit

import (
	"slices"
	"testing"
)

// plainSite is an http:// site of the HTTP port for api.mairie.example
// answering with handle, as the Caddyfile adapter writes it.
func plainSite(handle ...any) map[string]any {
	return map[string]any{
		"listen": []any{":80"},
		"routes": []any{map[string]any{
			"match":  []any{map[string]any{"host": []any{"api.mairie.example"}}},
			"handle": []any{map[string]any{"handler": "subroute", "routes": []any{map[string]any{"handle": handle}}}},
		}},
	}
}

// TestAPIRedirect (SECURITY.md E04): PA21 flags every server for which
// Caddy's automatic HTTPS redirects plain-HTTP calls, when the
// configuration serves the API; only disabling the redirects (or
// automatic HTTPS) clears it.
// req: E04
func TestAPIRedirect(t *testing.T) {
	refuse := map[string]any{"handler": "static_response", "status_code": "400", "body": `{"errors":[]}`}
	servers := func(c map[string]any) map[string]any { return obj(c, "apps", "http", "servers") }
	for _, tc := range []struct {
		name    string
		change  func(c map[string]any)
		flagged string // the server flagged, "" for none
	}{
		{"redirects disabled (the clean configuration)", func(map[string]any) {}, ""},
		{"automatic HTTPS on", func(c map[string]any) { delete(publicServer(c), "automatic_https") }, "public"},
		{"automatic HTTPS off", func(c map[string]any) { publicServer(c)["automatic_https"] = map[string]any{"disable": true} }, ""},
		// Whether Caddy's redirects run after it depends on its matchers,
		// the routes after it and the certificates: not trusted.
		{"an http:// site for the name that refuses", func(c map[string]any) {
			delete(publicServer(c), "automatic_https")
			servers(c)["plain"] = plainSite(refuse)
		}, "public"},
		// The API reached through a named route (invoke).
		{"the API in a named route", func(c map[string]any) {
			delete(publicServer(c), "automatic_https")
			api := obj(c, "apps", "http", "servers", "public", "routes", 0, "handle", 0, "routes", 0)
			publicServer(c)["named_routes"] = map[string]any{"api": api}
			obj(c, "apps", "http", "servers", "public", "routes", 0, "handle", 0)["routes"] = []any{
				map[string]any{"handle": []any{map[string]any{"handler": "invoke", "name": "api"}}}}
		}, "public"},
		// Its only name skipped, a server on the HTTPS port still gets TLS,
		// and a catch-all redirect that answers every name.
		{"a name Caddy skips, on the HTTPS port", func(c map[string]any) {
			publicServer(c)["automatic_https"] = map[string]any{"skip": []any{"api.mairie.example"}}
		}, "public"},
		{"a name Caddy skips, no TLS", func(c map[string]any) {
			publicServer(c)["automatic_https"] = map[string]any{"skip": []any{"api.mairie.example"}}
			publicServer(c)["listen"] = []any{":8443"}
		}, ""},
		{"TLS for every name", func(c map[string]any) {
			delete(publicServer(c), "automatic_https")
			delete(obj(c, "apps", "http", "servers", "public", "routes", 0), "match")
			publicServer(c)["listen"] = []any{":8443"}
			publicServer(c)["tls_connection_policies"] = []any{map[string]any{}}
		}, "public"},
		// A range covering the HTTPS port counts as on it (Caddy adds TLS).
		{"no name, a range covering the HTTPS port", func(c map[string]any) {
			delete(publicServer(c), "automatic_https")
			delete(obj(c, "apps", "http", "servers", "public", "routes", 0), "match")
			publicServer(c)["listen"] = []any{":443-444"}
		}, "public"},
		{"no name and no TLS", func(c map[string]any) {
			delete(publicServer(c), "automatic_https")
			delete(obj(c, "apps", "http", "servers", "public", "routes", 0), "match")
			publicServer(c)["listen"] = []any{":8443"}
		}, ""},
		// Caddy's catch-all redirect answers every name on the HTTP port.
		{"another site with redirects", func(c map[string]any) {
			servers(c)["www"] = map[string]any{"listen": []any{":8443"}, "routes": []any{map[string]any{
				"match":  []any{map[string]any{"host": []any{"www.mairie.example"}}},
				"handle": []any{map[string]any{"handler": "file_server"}}}}}
		}, "www"},
		{"the HTTP port only: no automatic HTTPS", func(c map[string]any) {
			delete(publicServer(c), "automatic_https")
			publicServer(c)["listen"] = []any{":80"}
		}, ""},
		{"no passerelle handler", func(c map[string]any) {
			delete(publicServer(c), "automatic_https")
			obj(c, "apps", "http", "servers", "public", "routes", 0, "handle", 0)["routes"] = []any{
				map[string]any{"handle": []any{map[string]any{"handler": "file_server"}}}}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clean()
			tc.change(c)
			var found []string
			for _, f := range run(t, c) {
				if f.Rule == "PA21" {
					found = append(found, f.Path)
				}
			}
			want := []string{}
			if tc.flagged != "" {
				want = append(want, "apps.http.servers."+tc.flagged)
			}
			if !slices.Equal(found, want) {
				t.Fatalf("PA21 at %v, want %v", found, want)
			}
		})
	}
}

// TestPlainHTTPPort: PA07 flags a public listener on the HTTP port even
// when its server has TLS policies (Caddy serves plain HTTP there).
func TestPlainHTTPPort(t *testing.T) {
	c := clean()
	publicServer(c)["listen"] = []any{":80", ":443"}
	publicServer(c)["tls_connection_policies"] = []any{map[string]any{}}
	if !slices.Contains(rulesOf(run(t, c)), "PA07") {
		t.Fatal(":80 beside :443, with TLS policies: not flagged")
	}
	publicServer(c)["listen"] = []any{"127.0.0.1:80", ":443"}
	if slices.Contains(rulesOf(run(t, c)), "PA07") {
		t.Fatal("loopback :80 flagged")
	}
	// An empty list of policies: Caddy serves no TLS, even on :443.
	publicServer(c)["listen"] = []any{":443"}
	publicServer(c)["tls_connection_policies"] = []any{}
	if !slices.Contains(rulesOf(run(t, c)), "PA07") {
		t.Fatal("tls_connection_policies []: not flagged")
	}
}

// TestTLSSuites: PA08 accepts the TLS 1.2 suites of SECURITY.md E03 as
// Caddy names them, and flags every other one.
func TestTLSSuites(t *testing.T) {
	for _, s := range []string{
		"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
		"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
		"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
		"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
		"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
	} {
		if !strongSuite.MatchString(s) {
			t.Errorf("%s refused", s)
		}
	}
	for _, s := range []string{
		"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
		"TLS_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_256_CBC_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
		"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_ECDHE_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_RC4_128_SHA",
		"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 ", "",
	} {
		if strongSuite.MatchString(s) {
			t.Errorf("%q accepted", s)
		}
	}
	c := clean()
	publicServer(c)["tls_connection_policies"] = []any{map[string]any{"protocol_min": "tls1.2",
		"cipher_suites": []any{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"}}}
	if slices.Contains(rulesOf(run(t, c)), "PA08") {
		t.Fatal("strong suites flagged")
	}
}
