package audit

import (
	"fmt"
	"net"
	"slices"
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

// index walks every handler of every server, as Caddy runs them: the
// server's routes and its error routes (handle_errors), subroutes, the named
// routes where a route invokes them, the provider of a passerelle_front and
// reverse_proxy's handle_response routes. A handler reached through two
// invocations of one named route is listed once per invocation.
func (c *cfg) index() {
	c.servers = map[string]map[string]any{}
	servers, _ := dig(c.root, "apps", "http", "servers").(map[string]any)
	for name, s := range servers {
		srv, ok := s.(map[string]any)
		if !ok {
			continue
		}
		c.servers[name] = srv
		w := walker{c: c, server: name, named: srv["named_routes"]}
		base := "apps.http.servers." + name
		routes, _ := srv["routes"].([]any)
		w.routes(base+".routes", routes, nil)
		// handle_errors: the routes run after a handler failed, with
		// none of the main chain's handlers before them.
		errRoutes, _ := dig(srv, "errors", "routes").([]any)
		w.routes(base+".errors.routes", errRoutes, nil)
	}
}

// walker lists the handlers of one server.
type walker struct {
	c      *cfg
	server string
	named  any      // the server's named_routes
	stack  []string // the named routes being walked (one may invoke itself)
}

func (w *walker) routes(path string, routes []any, before []string) {
	for i, r := range routes {
		if route, ok := r.(map[string]any); ok {
			w.route(fmt.Sprintf("%s[%d]", path, i), route, before)
		}
	}
}

func (w *walker) route(path string, route map[string]any, before []string) {
	chain := slices.Clone(before)
	hs, _ := route["handle"].([]any)
	for j, h := range hs {
		if obj, ok := h.(map[string]any); ok {
			chain = w.handler(fmt.Sprintf("%s.handle[%d]", path, j), obj, chain)
		}
	}
}

// handler lists one handler with the chain before it, walks the handlers
// it holds, and returns the chain of the handlers after it.
func (w *walker) handler(path string, obj map[string]any, chain []string) []string {
	w.c.handlers = append(w.c.handlers, handler{server: w.server, path: path, obj: obj, before: slices.Clone(chain)})
	name, _ := obj["handler"].(string)
	switch name {
	case "":
		return chain
	case "subroute":
		sub, _ := obj["routes"].([]any)
		w.routes(path+".routes", sub, chain)
		return chain
	case "invoke":
		w.invoke(str(obj, "name"), chain)
	case "passerelle_front":
		// The front's provider is called by the pipeline only, as
		// passerelle's own next handler is.
		if p, ok := obj["provider"].(map[string]any); ok {
			w.handler(path+".provider", p, append(slices.Clone(chain), name, "passerelle"))
		}
	case "reverse_proxy":
		responses, _ := obj["handle_response"].([]any)
		for i, hr := range responses {
			sub, _ := dig(hr, "routes").([]any)
			w.routes(fmt.Sprintf("%s.handle_response[%d].routes", path, i), sub, append(slices.Clone(chain), name))
		}
	}
	return append(chain, name)
}

// invoke walks a named route where a route invokes it.
func (w *walker) invoke(name string, chain []string) {
	route, ok := dig(w.named, name).(map[string]any)
	if !ok || slices.Contains(w.stack, name) {
		return
	}
	w.stack = append(w.stack, name)
	w.route("apps.http.servers."+w.server+".named_routes."+name, route, chain)
	w.stack = w.stack[:len(w.stack)-1]
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
