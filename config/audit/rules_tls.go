package audit

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// checkTLSPolicy (PA08): inbound TLS follows the outbound policy
// (SECURITY.md E03, E04): no protocol below TLS 1.2, and TLS 1.2 suites
// limited to ECDHE with AES-GCM or ChaCha20-Poly1305 (no CBC, no static
// RSA key exchange, no 3DES or RC4). A policy without cipher_suites gets
// Caddy's defaults, which are exactly those.
func checkTLSPolicy(c *cfg) []Finding {
	var out []Finding
	for _, name := range slices.Sorted(maps.Keys(c.servers)) {
		pols, _ := c.servers[name]["tls_connection_policies"].([]any)
		for i, p := range pols {
			path := fmt.Sprintf("apps.http.servers.%s.tls_connection_policies[%d]", name, i)
			if v := str(p, "protocol_min"); v == "tls1.0" || v == "tls1.1" {
				out = append(out, find("PA08", path+".protocol_min", v))
			}
			for _, suite := range strs(p, "cipher_suites") {
				if !strongSuite.MatchString(suite) {
					out = append(out, find("PA08", path+".cipher_suites", suite))
				}
			}
		}
	}
	return out
}

// strongSuite matches the TLS 1.2 suites SECURITY.md E03 allows, as Caddy
// names them (Go's names), and the TLS 1.3 ones, which Caddy accepts in
// the list (and Go always enables).
var strongSuite = regexp.MustCompile(`^(TLS_ECDHE_(ECDSA|RSA)_WITH_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305(_SHA256)?)|TLS_AES_128_GCM_SHA256|TLS_AES_256_GCM_SHA384|TLS_CHACHA20_POLY1305_SHA256)$`)

// checkAPIRedirect (PA21, SECURITY.md E04): the plain-HTTP port redirects
// no API call. Caddy's automatic HTTPS answers plain-HTTP requests for the
// names it serves over HTTPS with a 308 to https://: a client configured
// with http:// then sends its token in clear on every call and never
// notices, since the redirect makes the call work. Without the redirect it
// fails at once and gets fixed.
//
// The rule flags every server for which Caddy sets up redirects, when the
// configuration serves the API (a passerelle handler anywhere): Caddy's
// redirects are not per site (a server with TLS and no name, or whose
// names are all skipped, gets a catch-all redirect that answers every
// name on the HTTP port), and whether an http:// site of the operator's
// runs before them depends on its matchers, on the routes after it and on
// where Caddy inserts its own (before or after the catch-all routes,
// depending on the certificates). The fix is global and certain:
// auto_https disable_redirects.
func checkAPIRedirect(c *cfg) []Finding {
	if !slices.ContainsFunc(c.handlers, func(h handler) bool { return h.name() == "passerelle" && !h.errorRoute }) {
		return nil
	}
	var out []Finding
	for _, name := range slices.Sorted(maps.Keys(c.servers)) {
		if names, ok := c.autoRedirects(name); ok {
			out = append(out, find("PA21", "apps.http.servers."+name,
				names+": plain-HTTP calls get a 308 to https:// (automatic HTTPS), and this configuration serves the API"))
		}
	}
	return out
}

// autoRedirects reports whether Caddy's automatic HTTPS sets up HTTP->HTTPS
// redirects for a server (caddyhttp/autohttps.go), and for which names
// ("every name" for a catch-all).
func (c *cfg) autoRedirects(server string) (string, bool) {
	srv := c.servers[server]
	listen := strs(srv, "listen")
	httpPort, httpsPort := c.port("http_port", 80), c.port("https_port", 443)
	if dig(srv, "automatic_https", "disable") == true || dig(srv, "automatic_https", "disable_redirects") == true || onlyOn(listen, httpPort) {
		return "", false
	}
	// The names of the server's routes' host matchers, but those skipped.
	skip := strs(srv, "automatic_https", "skip")
	routes, _ := srv["routes"].([]any)
	var names []string
	for _, r := range routes {
		for _, h := range routeHosts(r) {
			if !slices.Contains(skip, h) && !slices.Contains(names, h) {
				names = append(names, h)
			}
		}
	}
	if len(names) > 0 {
		slices.Sort(names)
		return strings.Join(names, " "), true
	}
	// No name: redirects for every name when the server has TLS (a
	// policy, or Caddy adds one to a server on the HTTPS port only).
	pols, _ := srv["tls_connection_policies"].([]any)
	if len(pols) > 0 || onlyOn(listen, httpsPort) {
		return "every name", true
	}
	return "", false
}

// port returns the http app's setting key (http_port, https_port), or its
// default.
func (c *cfg) port(key string, def int) int {
	if p, ok := dig(c.root, "apps", "http", key).(float64); ok {
		return int(p)
	}
	return def
}

// routeHosts returns the names of a route's host matchers.
func routeHosts(route any) []string {
	var out []string
	sets, _ := dig(route, "match").([]any)
	for _, set := range sets {
		out = append(out, strs(set, "host")...)
	}
	return out
}
