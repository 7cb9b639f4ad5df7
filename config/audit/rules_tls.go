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
// names them (Go's names).
var strongSuite = regexp.MustCompile(`^TLS_ECDHE_(ECDSA|RSA)_WITH_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305(_SHA256)?)$`)

// checkAPIRedirect (PA21, SECURITY.md E04): the plain-HTTP port redirects
// no API call. Caddy's automatic HTTPS answers every plain-HTTP request
// for a name it serves over HTTPS with a 308 to https://: a client
// configured with http:// then sends its token in clear on every call and
// never notices, since the redirect makes the call work. Without the
// redirect it fails at once (nothing listens, or an error answers) and
// gets fixed.
//
// A server's redirects are on unless automatic HTTPS or its redirects are
// disabled, or the server listens only on the HTTP port (Caddy gives it no
// automatic HTTPS). Caddy puts them after the routes of the HTTP port's
// server that match a host, so an explicit http:// site for the name that
// answers without redirecting (respond, or error) takes precedence.
func checkAPIRedirect(c *cfg) []Finding {
	httpPort, httpsPort := c.port("http_port", 80), c.port("https_port", 443)
	var out []Finding
	for _, name := range slices.Sorted(maps.Keys(c.servers)) {
		srv := c.servers[name]
		listen := strs(srv, "listen")
		if dig(srv, "automatic_https", "disable") == true || dig(srv, "automatic_https", "disable_redirects") == true ||
			!slices.ContainsFunc(listen, func(l string) bool { return !strings.HasSuffix(l, httpPort) }) {
			continue
		}
		// Caddy gives a server listening on the HTTPS port only a TLS policy.
		tlsOn := srv["tls_connection_policies"] != nil ||
			!slices.ContainsFunc(listen, func(l string) bool { return !strings.HasSuffix(l, httpsPort) })
		skip := strs(srv, "automatic_https", "skip")
		for _, host := range c.apiHosts(name) {
			if host == "" && !tlsOn || slices.Contains(skip, host) {
				continue // no name and no TLS: no automatic HTTPS
			}
			if c.answersPlainHTTP(httpPort, host) {
				continue
			}
			shown := host
			if shown == "" {
				shown = "every name"
			}
			out = append(out, find("PA21", "apps.http.servers."+name, shown+": plain-HTTP calls get a 308 to https:// (automatic HTTPS)"))
		}
	}
	return out
}

// port returns ":N", N the http app's setting key or its default.
func (c *cfg) port(key string, def int) string {
	if p, ok := dig(c.root, "apps", "http", key).(float64); ok {
		def = int(p)
	}
	return fmt.Sprintf(":%d", def)
}

// apiHosts returns the names (host matchers of the top-level routes) under
// which a server runs the passerelle handler, sorted; "" stands for a
// route without a host matcher.
func (c *cfg) apiHosts(server string) []string {
	routes, _ := c.servers[server]["routes"].([]any)
	prefix := "apps.http.servers." + server + ".routes["
	hosts := map[string]bool{}
	for _, h := range c.handlers {
		if h.server != server || h.errorRoute || h.name() != "passerelle" || !strings.HasPrefix(h.path, prefix) {
			continue
		}
		var i int
		if _, err := fmt.Sscanf(h.path[len(prefix):], "%d]", &i); err != nil || i >= len(routes) {
			continue
		}
		names := routeHosts(routes[i])
		if len(names) == 0 {
			names = []string{""}
		}
		for _, n := range names {
			hosts[n] = true
		}
	}
	return slices.Sorted(maps.Keys(hosts))
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

// answersPlainHTTP reports whether a server on the HTTP port has a route
// for host that answers without redirecting: Caddy's redirects then never
// run for that name. A site without a name ("") has a catch-all redirect,
// which Caddy puts before the user's catch-all routes.
func (c *cfg) answersPlainHTTP(httpPort, host string) bool {
	if host == "" {
		return false
	}
	for _, name := range slices.Sorted(maps.Keys(c.servers)) {
		srv := c.servers[name]
		if !slices.ContainsFunc(strs(srv, "listen"), func(l string) bool { return strings.HasSuffix(l, httpPort) }) {
			continue
		}
		routes, _ := srv["routes"].([]any)
		for i, r := range routes {
			hosts := routeHosts(r)
			if slices.Contains(hosts, host) {
				return !c.redirects(fmt.Sprintf("apps.http.servers.%s.routes[%d]", name, i))
			}
		}
	}
	return false
}

// redirects reports whether a route (its path) holds a static response
// with a 3xx status or a Location header.
func (c *cfg) redirects(route string) bool {
	return slices.ContainsFunc(c.handlers, func(h handler) bool {
		if !strings.HasPrefix(h.path, route+".") || h.name() != "static_response" {
			return false
		}
		status := fmt.Sprint(dig(h.obj, "status_code"))
		return strings.HasPrefix(status, "3") || dig(h.obj, "headers", "Location") != nil
	})
}
