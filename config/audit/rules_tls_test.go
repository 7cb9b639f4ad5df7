package audit

import (
	"slices"
	"testing"
)

// plainSite is an http:// site of the HTTP port for api.mairie.example,
// as the Caddyfile adapter writes it, answering with handle.
func plainSite(listen string, handle ...any) map[string]any {
	return map[string]any{
		"listen": []any{listen},
		"routes": []any{map[string]any{
			"match":  []any{map[string]any{"host": []any{"api.mairie.example"}}},
			"handle": []any{map[string]any{"handler": "subroute", "routes": []any{map[string]any{"handle": handle}}}},
		}},
		"automatic_https": map[string]any{"skip": []any{"api.mairie.example"}},
	}
}

// TestAPIRedirect (SECURITY.md E04): PA21 flags the API names whose
// plain-HTTP calls Caddy's automatic HTTPS would redirect, and only those.
// req: E04
func TestAPIRedirect(t *testing.T) {
	refuse := map[string]any{"handler": "static_response", "status_code": "400", "body": `{"errors":[]}`}
	redirect := map[string]any{"handler": "static_response", "status_code": 308.0,
		"headers": map[string]any{"Location": []any{"https://{http.request.host}{http.request.uri}"}}}
	for _, tc := range []struct {
		name    string
		change  func(c map[string]any)
		flagged bool
	}{
		{"redirects disabled (the clean configuration)", func(map[string]any) {}, false},
		{"automatic HTTPS on", func(c map[string]any) { delete(publicServer(c), "automatic_https") }, true},
		{"automatic HTTPS off", func(c map[string]any) { publicServer(c)["automatic_https"] = map[string]any{"disable": true} }, false},
		{"an http:// site for the name that refuses", func(c map[string]any) {
			delete(publicServer(c), "automatic_https")
			obj(c, "apps", "http", "servers")["plain"] = plainSite(":80", refuse)
		}, false},
		{"an http:// site for the name that redirects itself", func(c map[string]any) {
			delete(publicServer(c), "automatic_https")
			obj(c, "apps", "http", "servers")["plain"] = plainSite(":80", redirect)
		}, true},
		{"an http:// site for the name, but not on the HTTP port", func(c map[string]any) {
			delete(publicServer(c), "automatic_https")
			obj(c, "apps", "http", "servers")["plain"] = plainSite(":8080", refuse)
		}, true},
		{"an http:// site on http_port 8080", func(c map[string]any) {
			delete(publicServer(c), "automatic_https")
			obj(c, "apps", "http")["http_port"] = 8080.0
			obj(c, "apps", "http", "servers")["plain"] = plainSite(":8080", refuse)
		}, false},
		{"a name Caddy skips", func(c map[string]any) {
			publicServer(c)["automatic_https"] = map[string]any{"skip": []any{"api.mairie.example"}}
		}, false},
		{"TLS for every name, an http:// catch-all that refuses", func(c map[string]any) {
			delete(publicServer(c), "automatic_https")
			delete(obj(c, "apps", "http", "servers", "public", "routes", 0), "match")
			publicServer(c)["tls_connection_policies"] = []any{map[string]any{}}
			obj(c, "apps", "http", "servers")["plain"] = map[string]any{"listen": []any{":80"},
				"routes": []any{map[string]any{"handle": []any{refuse}}}}
		}, true},
		{"no name, on the HTTPS port: TLS for every name", func(c map[string]any) {
			delete(publicServer(c), "automatic_https")
			delete(obj(c, "apps", "http", "servers", "public", "routes", 0), "match")
		}, true},
		{"no name and no TLS: no automatic HTTPS", func(c map[string]any) {
			delete(publicServer(c), "automatic_https")
			delete(obj(c, "apps", "http", "servers", "public", "routes", 0), "match")
			publicServer(c)["listen"] = []any{":8443"}
		}, false},
		{"a name without the passerelle handler", func(c map[string]any) {
			delete(publicServer(c), "automatic_https")
			obj(c, "apps", "http", "servers", "public", "routes", 0, "handle", 0)["routes"] = []any{
				map[string]any{"handle": []any{map[string]any{"handler": "file_server"}}}}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clean()
			tc.change(c)
			var found []Finding
			for _, f := range run(t, c) {
				if f.Rule == "PA21" {
					found = append(found, f)
				}
			}
			if tc.flagged != (len(found) > 0) {
				t.Fatalf("PA21 findings %+v, want flagged %v", found, tc.flagged)
			}
			for _, f := range found {
				if f.Path != "apps.http.servers.public" {
					t.Errorf("finding at %s", f.Path)
				}
			}
		})
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
