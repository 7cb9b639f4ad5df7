package audit

import (
	"fmt"
	"net"
	"strings"
)

// cfg is a decoded configuration with what the rules look up.
type cfg struct {
	root map[string]any
	opts Options
	// handlers lists every HTTP handler, in route order, with its server
	// and the handlers before it on its route chain.
	handlers []handler
	servers  map[string]map[string]any
}

// handler is one HTTP handler of a route.
type handler struct {
	server string
	path   string
	obj    map[string]any
	// before are the names of the handlers that run before it in its
	// route chain (enclosing subroutes included).
	before []string
}

func (h handler) name() string { s, _ := h.obj["handler"].(string); return s }

func (h handler) after(name string) bool {
	for _, b := range h.before {
		if b == name {
			return true
		}
	}
	return false
}

// index walks apps.http.servers.*.routes, subroutes included.
func (c *cfg) index() {
	c.servers = map[string]map[string]any{}
	servers, _ := dig(c.root, "apps", "http", "servers").(map[string]any)
	for name, s := range servers {
		srv, ok := s.(map[string]any)
		if !ok {
			continue
		}
		c.servers[name] = srv
		routes, _ := srv["routes"].([]any)
		c.walkRoutes(name, "apps.http.servers."+name+".routes", routes, nil)
	}
}

func (c *cfg) walkRoutes(server, path string, routes []any, before []string) {
	for i, r := range routes {
		route, ok := r.(map[string]any)
		if !ok {
			continue
		}
		chain := append([]string(nil), before...)
		hs, _ := route["handle"].([]any)
		for j, h := range hs {
			obj, ok := h.(map[string]any)
			if !ok {
				continue
			}
			hp := fmt.Sprintf("%s[%d].handle[%d]", path, i, j)
			c.handlers = append(c.handlers, handler{server: server, path: hp, obj: obj, before: append([]string(nil), chain...)})
			if sub, ok := obj["routes"].([]any); ok && obj["handler"] == "subroute" {
				c.walkRoutes(server, hp+".routes", sub, chain)
			}
			if name, _ := obj["handler"].(string); name != "" && name != "subroute" {
				chain = append(chain, name)
			}
		}
	}
}

// named returns the handlers of one module name.
func (c *cfg) named(name string) []handler {
	var out []handler
	for _, h := range c.handlers {
		if h.name() == name {
			out = append(out, h)
		}
	}
	return out
}

// dig follows keys through nested objects; nil when a key is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any, keys ...string) string { s, _ := dig(v, keys...).(string); return s }

func strs(v any, keys ...string) []string {
	var out []string
	arr, _ := dig(v, keys...).([]any)
	for _, a := range arr {
		if s, ok := a.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// IsReference reports whether a secret is exactly one runtime reference,
// {env.NAME} or {file.path} (Caddy placeholders resolved at load), and
// nothing else: the gateway's own rule for secrets (caddyplugin).
func IsReference(v string) bool {
	if !strings.HasPrefix(v, "{env.") && !strings.HasPrefix(v, "{file.") {
		return false
	}
	return strings.HasSuffix(v, "}") && strings.Count(v, "{") == 1 && strings.Count(v, "}") == 1
}

// loopbackHost reports whether a host (or host:port, a dial address, a
// listen address) is a loopback one or a unix socket.
func loopbackHost(addr string) bool {
	a := strings.TrimPrefix(strings.TrimPrefix(addr, "tcp/"), "tcp4/")
	if strings.HasPrefix(a, "unix/") || strings.HasPrefix(a, "unix:") {
		return true
	}
	host := a
	if h, _, err := net.SplitHostPort(a); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
