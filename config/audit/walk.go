package audit

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
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
	// route chain (enclosing subroutes included); those of a route with
	// matchers, which may run before it or not, marked (conditional).
	before []string
	// via names the invokes that run it, when it is in a named route.
	via string
	// errorRoute: it is in error routes (handle_errors).
	errorRoute bool
}

func (h handler) name() string { s, _ := h.obj["handler"].(string); return s }

// after reports whether the handler name runs before h on every request
// that reaches h.
func (h handler) after(name string) bool { return slices.Contains(h.before, name) }

// mayAfter reports whether the handler name runs before h on some of the
// requests that reach h: `passerelle /v3/*` then `reverse_proxy` runs the
// proxy after passerelle on /v3/* only; the proxy is a provider's.
func (h handler) mayAfter(name string) bool {
	return slices.ContainsFunc(h.before, func(b string) bool { return b == name || strings.HasSuffix(b, "\x00"+name) })
}

// conditional marks a handler's name in a chain: it ran before under the
// matchers key (JSON), or under several when key is "" (never the key of
// one route).
func conditional(key, name string) string { return "?" + key + "\x00" + name }

// matchKey is a route's matchers as JSON; ok is false without matchers.
func matchKey(route map[string]any) (key string, ok bool) {
	m, ok := route["match"]
	b, _ := json.Marshal(m)
	return string(b), ok
}

// responders answer a request without calling the next handler.
var responders = []string{"reverse_proxy", "static_response", "file_server", "error", "metrics",
	"passerelle_health", "passerelle_jwks", "passerelle_datapass", "passerelle_front"}

// responds reports whether a name of a chain (marked or not) answers.
func responds(b string) bool {
	if strings.HasPrefix(b, "?") {
		_, b, _ = strings.Cut(b, "\x00")
	}
	return slices.Contains(responders, b)
}

// certain returns chain with the handlers that ran under the matchers key
// unmarked: a route with the same matchers runs only where they ran.
func certain(chain []string, key string) []string {
	out := slices.Clone(chain)
	for i, b := range out {
		if k, name, ok := strings.Cut(strings.TrimPrefix(b, "?"), "\x00"); ok && strings.HasPrefix(b, "?") && k == key && key != "" {
			out[i] = name
		}
	}
	return out
}

// index walks every handler of every server as Caddy chains them: the
// server's routes and error routes (handle_errors), subroutes and their
// error routes, named routes where an invoke runs them (once per
// invocation), the provider of a passerelle_front, and the handle_response
// routes of reverse_proxy and intercept.
func (c *cfg) index() {
	c.servers = map[string]map[string]any{}
	servers, _ := dig(c.root, "apps", "http", "servers").(map[string]any)
	for name, s := range servers {
		srv, ok := s.(map[string]any)
		if !ok {
			continue
		}
		c.servers[name] = srv
		w := walker{c: c, server: name, named: srv["named_routes"], groups: map[string]bool{}}
		base := "apps.http.servers." + name
		routes, _ := srv["routes"].([]any)
		w.routes(base+".routes", routes, nil)
		// handle_errors: the routes run after a handler failed, with
		// none of the main chain's handlers before them.
		w.errorRoutes(base+".errors.routes", srv, nil)
	}
}

// maxHandlers bounds the walk: named routes invoking one another twice at
// each level would be walked an exponential number of times.
const maxHandlers = 1 << 16

// walker lists the handlers of one server.
type walker struct {
	c      *cfg
	server string
	named  any      // the server's named_routes
	stack  []string // the named routes being walked (one may invoke itself)
	via    []string // the paths of the invokes that run them
	errors bool     // walking error routes
	// groups are the route groups met so far: Caddy runs only the first
	// route of a group that matches a request, the group's name holding
	// for the whole request, whatever list the routes are in.
	groups map[string]bool
}

// routes walks a route list, which Caddy compiles into one chain: the
// handlers of a route without matchers come before those of the routes
// after it; those of a route with matchers may (conditional), and do
// before a route with the same matchers, unless a handler in between
// changed what they read (unsettle). A route of a group (group) runs
// only where no earlier route of its group matched: after the group's
// first route, its handlers are conditional under several matchers, and
// after one of the list without matchers, never run. It returns the
// chain after the list: what every request runs, and what some may have
// run.
func (w *walker) routes(path string, routes []any, before []string) []string {
	chain := before
	closed := map[string]bool{} // groups a route without matchers took
	for i, r := range routes {
		route, ok := r.(map[string]any)
		if !ok {
			continue
		}
		group, _ := route["group"].(string)
		if closed[group] {
			continue
		}
		key, matched := matchKey(route)
		if group != "" {
			closed[group] = !matched
			if w.groups[group] {
				key, matched = "", true // may be skipped: never certain
			}
			w.groups[group] = true
		}
		if !matched {
			chain = w.route(fmt.Sprintf("%s[%d]", path, i), route, chain)
			continue
		}
		sure := certain(chain, key)
		after := w.route(fmt.Sprintf("%s[%d]", path, i), route, sure)
		ran := after[len(chain):]
		if route["terminal"] == true || slices.ContainsFunc(ran, responds) {
			continue // the requests it matches end in it
		}
		chain = slices.Clone(chain)
		for j := range chain {
			if after[j] != sure[j] { // unsettled by a handler that changed the request
				chain[j] = after[j]
			}
		}
		for _, name := range ran {
			under := key
			if strings.HasPrefix(name, "?") { // already under other matchers
				_, name, _ = strings.Cut(name, "\x00")
				under = ""
			}
			chain = append(chain, conditional(under, name))
		}
	}
	return chain
}

// route walks one route's handlers and returns the chain after them.
func (w *walker) route(path string, route map[string]any, before []string) []string {
	chain := slices.Clone(before)
	hs, _ := route["handle"].([]any)
	for j, h := range hs {
		if obj, ok := h.(map[string]any); ok {
			chain = w.handler(fmt.Sprintf("%s.handle[%d]", path, j), obj, chain)
		}
	}
	return chain
}

// errorRoutes walks the error routes of a server or a subroute.
func (w *walker) errorRoutes(path string, owner map[string]any, before []string) {
	routes, _ := dig(owner, "errors", "routes").([]any)
	if len(routes) == 0 {
		return
	}
	outer := w.errors
	w.errors = true
	w.routes(path, routes, before)
	w.errors = outer
}

// handler lists one handler with the chain before it, walks the handlers
// it holds, and returns the chain of the handlers after it.
func (w *walker) handler(path string, obj map[string]any, chain []string) []string {
	w.c.handlers = append(w.c.handlers, handler{server: w.server, path: path, obj: obj,
		before: slices.Clone(chain), via: strings.Join(w.via, ", then "), errorRoute: w.errors})
	name, _ := obj["handler"].(string)
	switch name {
	case "":
		return chain
	case "subroute":
		sub, _ := obj["routes"].([]any)
		w.errorRoutes(path+".errors.routes", obj, chain)
		return w.routes(path+".routes", sub, chain)
	case "invoke":
		return w.invoke(path, str(obj, "name"), chain)
	case "passerelle_front":
		// The front's provider is called by the pipeline only, as
		// passerelle's own next handler is.
		if p, ok := obj["provider"].(map[string]any); ok {
			w.handler(path+".provider", p, append(slices.Clone(chain), name, "passerelle"))
		}
	case "reverse_proxy", "intercept":
		responses, _ := obj["handle_response"].([]any)
		for i, hr := range responses {
			sub, _ := dig(hr, "routes").([]any)
			w.routes(fmt.Sprintf("%s.handle_response[%d].routes", path, i), sub, append(slices.Clone(chain), name))
		}
	}
	return unsettle(append(chain, name), changes(obj))
}

// invoke walks a named route where the invoke at path runs it, and
// returns the chain after it: Caddy runs the named route with the rest of
// the invoking route as its next handler.
func (w *walker) invoke(path, name string, chain []string) []string {
	route, ok := dig(w.named, name).(map[string]any)
	if !ok || slices.Contains(w.stack, name) || len(w.c.handlers) > maxHandlers {
		return chain
	}
	w.stack, w.via = append(w.stack, name), append(w.via, path)
	chain = w.route("apps.http.servers."+w.server+".named_routes."+name, route, chain)
	w.stack, w.via = w.stack[:len(w.stack)-1], w.via[:len(w.via)-1]
	return chain
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

// listenHost returns the host of a host:port (a dial or listen address, a
// tcp/ or tcp4/ network prefix allowed), brackets trimmed; port says
// whether addr had a port. Without one, addr itself is the host.
func listenHost(addr string) (host string, port bool) {
	a := strings.TrimPrefix(strings.TrimPrefix(addr, "tcp/"), "tcp4/")
	if h, _, err := net.SplitHostPort(a); err == nil {
		return strings.Trim(h, "[]"), true
	}
	return strings.Trim(a, "[]"), false
}

// listenPorts returns the port range of a listen address (host:port or
// host:lo-hi, a network prefix allowed); ok is false without a port.
func listenPorts(addr string) (lo, hi int, ok bool) {
	a := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(addr, "tcp/"), "tcp4/"), "tcp6/")
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return 0, 0, false
	}
	first, last, isRange := strings.Cut(port, "-")
	lo, err1 := strconv.Atoi(first)
	hi, err2 := lo, error(nil)
	if isRange {
		hi, err2 = strconv.Atoi(last)
	}
	return lo, hi, err1 == nil && err2 == nil
}

// onPort reports whether a listen address covers port.
func onPort(addr string, port int) bool {
	lo, hi, ok := listenPorts(addr)
	return ok && lo <= port && port <= hi
}

// onlyOn reports whether every listen address covers port: Caddy's
// servers whose listeners use no other port (a range counts as using the
// port it covers; a unix socket uses another).
func onlyOn(listen []string, port int) bool {
	return len(listen) > 0 && !slices.ContainsFunc(listen, func(l string) bool { return !onPort(l, port) })
}

// loopbackHost reports whether a host (or host:port, a dial address, a
// listen address) is a loopback one or a unix socket.
func loopbackHost(addr string) bool {
	a := strings.TrimPrefix(strings.TrimPrefix(addr, "tcp/"), "tcp4/")
	if strings.HasPrefix(a, "unix/") || strings.HasPrefix(a, "unix:") {
		return true
	}
	host, _ := listenHost(addr)
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
