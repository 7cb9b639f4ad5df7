package audit

import (
	"maps"
	"net"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
)

// plainOTLP reports whether the OTLP exporter of Caddy's tracing handler
// (go.opentelemetry.io/contrib/exporters/autoexport) sends spans in clear to
// a collector off loopback: an http:// endpoint, or *_INSECURE=true. The
// traces-specific variables win over the general ones, as in the exporter.
// Without an endpoint the exporter sends to localhost.
func plainOTLP(getenv func(string) string) bool {
	pick := func(names ...string) string {
		for _, n := range names {
			if v := strings.TrimSpace(getenv(n)); v != "" {
				return v
			}
		}
		return ""
	}
	endpoint := pick("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
	if endpoint == "" {
		return false
	}
	host := endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		if u.Scheme == "http" {
			return !loopbackHost(u.Hostname())
		}
		host = u.Hostname()
	}
	insecure := strings.EqualFold(pick("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "OTEL_EXPORTER_OTLP_INSECURE"), "true")
	return insecure && !loopbackHost(host)
}

// probeHandlers may share an internal listener with the metrics (a
// subroute's own handlers are checked one by one).
var probeHandlers = []string{"metrics", "passerelle_health", "static_response", "subroute"}

// internalNetworkOnly reports whether a server is an internal listener on
// a private network: bound only to loopback or to explicit private
// addresses (RFC 1918, RFC 4193), and serving probes and metrics only —
// no API route, so not the one a load balancer forwards the public to
// (e.g. a container's address on a telemetry network, that a Prometheus in
// another container scrapes).
func (c *cfg) internalNetworkOnly(server string) bool {
	for _, l := range strs(c.servers[server], "listen") {
		if loopbackHost(l) {
			continue
		}
		host, port := listenHost(l)
		if ip := net.ParseIP(host); !port || ip == nil || !ip.IsPrivate() {
			return false
		}
	}
	for _, h := range c.handlers {
		// Error routes answer the failures of the routes: they serve no
		// route of their own (an error page, a rewrite).
		if h.server == server && !h.errorRoute && !slices.Contains(probeHandlers, h.name()) {
			return false
		}
	}
	return true
}

// exposed returns the servers the public reaches, each with how: "" for
// one on a public listener (not an internal network's,
// internalNetworkOnly), or the path of a reverse_proxy of a server the
// public reaches that dials one of its listeners (reaches): what an
// internal listener serves is public all the same through it.
func (c *cfg) exposed() map[string]string {
	names := slices.Sorted(maps.Keys(c.servers))
	out := map[string]string{}
	for _, name := range names {
		if public(c.servers[name]) && !c.internalNetworkOnly(name) {
			out[name] = ""
		}
	}
	for grown := true; grown; {
		grown = false
		for _, h := range c.named("reverse_proxy") {
			if _, ok := out[h.server]; !ok {
				continue
			}
			for _, d := range dials(h.obj) {
				for _, name := range names {
					_, done := out[name]
					if !done && slices.ContainsFunc(strs(c.servers[name], "listen"), func(l string) bool { return reaches(d, l) }) {
						out[name], grown = h.path, true
					}
				}
			}
		}
	}
	return out
}

// reaches reports whether a reverse_proxy's dial address reaches a listen
// address of the same Caddy: the same unix socket, or a port the listener
// covers on its own address, or on loopback for a loopback one (localhost
// may be 127.0.0.1 or ::1). A listener on every interface is public
// already.
func reaches(dial, listen string) bool {
	listen, _, _ = strings.Cut(listen, "|") // a unix socket's mode
	d := dialKey(dial)
	if strings.HasPrefix(d, "unix") {
		return d == dialKey(listen)
	}
	dhost, dport, err := net.SplitHostPort(d)
	port, perr := strconv.Atoi(dport)
	if err != nil || perr != nil || !onPort(listen, port) {
		return false
	}
	_, addr, found := strings.Cut(listen, "/")
	if !found {
		addr = listen
	}
	lhost, _ := listenHost(addr)
	lhost = canonicalHost(lhost)
	return dhost == lhost || loopbackHost(dhost) && loopbackHost(lhost)
}

// checkCallerTraceContext (PA27, SECURITY.md G07): Caddy's tracing handler
// extracts the caller's trace context with the propagators OTEL_PROPAGATORS
// names (tracecontext and baggage by default). The caller's traceparent
// then parents the request's trace, its trace id goes into the audit
// records, its sampled flag forces sampling under a parentbased sampler
// (tracing cost on demand), and its tracestate travels on. "none" drops it.
func checkCallerTraceContext(c *cfg) []Finding {
	tr := c.named("tracing")
	if len(tr) == 0 || c.opts.Getenv == nil {
		return nil
	}
	// As OpenTelemetry's autoprop reads it: each name exactly, no spaces
	// trimmed (" none" is unknown, and the default propagators apply).
	if slices.Contains(strings.Split(c.opts.Getenv("OTEL_PROPAGATORS"), ","), "none") {
		return nil
	}
	return []Finding{find("PA27", tr[0].path, "the caller's traceparent is taken (OTEL_PROPAGATORS is not none)")}
}

// dialKey returns a reverse_proxy dial address as Caddy dials it, so that
// two spellings of one upstream compare equal: the network tcp, tcp4 or
// tcp6 (or none) dropped, the host in lower case without its trailing dot
// (a name in the DNS), an IP address in its canonical form (an
// IPv4-mapped IPv6 one as IPv4), the port as the number it reads as (0443,
// 443-443). A dial with a placeholder, or that Caddy would refuse, is
// left as it is; a unix socket is its cleaned path.
func dialKey(dial string) string {
	if strings.Contains(dial, "{") {
		return dial
	}
	network, addr, found := strings.Cut(dial, "/")
	if !found {
		network, addr = "tcp", dial
	}
	switch network = strings.ToLower(strings.TrimSpace(network)); network {
	case "tcp", "tcp4", "tcp6":
	case "unix", "unixgram", "unixpacket":
		return network + "/" + path.Clean(addr)
	default:
		return dial
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return dial
	}
	first, last, isRange := strings.Cut(port, "-")
	n, err := strconv.ParseUint(first, 10, 16)
	if err != nil {
		return dial
	}
	if m, err := strconv.ParseUint(last, 10, 16); isRange && (err != nil || m != n) {
		return dial
	}
	return net.JoinHostPort(canonicalHost(host), strconv.FormatUint(n, 10))
}

// canonicalHost is a host as it names one machine: a name in lower case
// without its trailing dot, an IP address in its canonical form (an
// IPv4-mapped IPv6 one as IPv4).
func canonicalHost(host string) string {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().String()
	}
	return host
}
