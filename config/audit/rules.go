package audit

import (
	"fmt"
	"maps"
	"math/big"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/passerelle-gw/passerelle/config/catalogue"
	"github.com/passerelle-gw/passerelle/config/habilitation"
)

// rule is one check.
type rule struct {
	id       string
	severity Severity
	title    string
	fix      string
	check    func(c *cfg) []Finding
}

// rules, in id order. Ids are stable: ignore files and the dossier name them.
var rules = []rule{
	{"PA01", Critical, "sandbox mode or a sandbox module", "set `mode production` (the default) and remove every passerelle_sandbox_* directive", checkSandbox},
	{"PA02", High, "literal secret", "give the secret as {file./run/credentials/…} or {env.NAME}", checkLiteralSecrets},
	{"PA03", High, "plain HTTP to FranceConnect, a token URL, a provider, Redis or the trace collector off loopback", "use https:// (reverse_proxy: transport http { tls }), Redis `tls`, an https:// OTLP endpoint without OTEL_EXPORTER_OTLP_INSECURE", checkPlainHTTP},
	{"PA04", High, "weak JOSE allow-list or clock skew over 60 s", "allow ES256/RS256 signatures and RSA-OAEP-256/RSA-OAEP/ECDH-ES keys only; skew ≤ 60s", checkJOSE},
	{"PA05", High, "a provider reachable without passerelle before it", "route every reverse_proxy to a provider through the passerelle handler", checkBypass},
	{"PA06", Medium, "habilitations file refused, or scopes the catalogue does not know", "fix the habilitations file (`passerelle` validates it at load)", checkHabilitations},
	{"PA07", High, "public listener without TLS and without trusted_proxies", "serve HTTPS, or, behind a load balancer, set trusted_proxies to its addresses and trusted_proxies_strict", checkPublicPlain},
	{"PA08", High, "TLS below 1.2, or TLS 1.2 suites other than ECDHE with AES-GCM or ChaCha20-Poly1305, accepted", "protocols tls1.2 tls1.3; no ciphers line (Caddy's defaults), or TLS_ECDHE_*_GCM_* and TLS_ECDHE_*_CHACHA20_* only", checkTLSPolicy},
	{"PA09", Critical, "TLS certificate verification disabled", "remove insecure_skip_verify; trust the provider's CA with tls_trust_pool", checkSkipVerify},
	{"PA10", High, "admin API off loopback without mTLS", "admin on localhost or a unix socket (admin unix//run/passerelle/admin.sock)", checkAdmin},
	{"PA11", Medium, "metrics or health probes on a public listener", "serve metrics and passerelle_health on an internal listener (127.0.0.1 or the cluster network)", checkInternalOnPublic},
	{"PA12", Medium, "access log keeping query strings or the X-Api-Key header", "log { format filter { request>uri regexp \\?.* ?redacted; request>headers>X-Api-Key delete } } (identite calls carry civil status in the query; X-Api-Key is an API token)", checkAccessLogQuery},
	{"PA13", High, "credentials, DEBUG or trace logging", "remove log_credentials and trace; log at INFO or above", checkLogLevels},
	{"PA14", Medium, "audit records sharing the access log's sink", "log audit { include passerelle.audit; output file /var/log/passerelle/audit.log } apart from the access log", checkAuditSink},
	{"PA15", Medium, "quotas that do not limit", "rate_limit { habilitation 20/s; client_ip 1000/m; failed_auth 20/m; citizen 30/h } or lower", checkQuotas},
	{"PA16", Medium, "public server without timeouts, or with oversized header limits", "servers { timeouts { read_header 10s; read_body 30s; write 60s; idle 2m } max_header_size 16KB }", checkTimeouts},
	{"PA17", Medium, "retries beyond one, of non-GET requests, or of a provider (passerelle retries it)", "no lb_retries nor lb_try_duration behind passerelle; elsewhere lb_retries 1 at most, retry_match on GET only", checkRetries},
	{"PA18", Critical, "every address trusted as a proxy", "trusted_proxies static <the load balancers' addresses>", checkTrustEveryone},
	{"PA19", Medium, "a provider without a response header timeout", "reverse_proxy … { transport http { dial_timeout 2s; response_header_timeout 10s } }: a hung provider then fails and opens its circuit", checkProviderTimeouts},
	{"PA20", Medium, "an audit trail that does not stop data routes when its sink fails", "log audit { include passerelle.audit; output passerelle_buffered { output file /var/log/passerelle/audit.log } } (on_full refuse, the default)", checkAuditFailClosed},
	{"PA21", High, "API calls over plain HTTP redirected to HTTPS", "auto_https disable_redirects (global option): nothing then listens on the HTTP port but an ACME HTTP challenge while it runs", checkAPIRedirect},
	{"PA22", Medium, "a log file not kept 6 to 12 months by age alone", "log { output file … { roll_interval 24h; roll_keep -1; roll_keep_for 4392h to 8736h } }; size the disk for 12 months; a longer retention needs a justification (ignore line)", checkRetention},
	{"PA23", Medium, "audit records not sealed", "log audit { format passerelle_sealed { key {file./…/audit-seal.key}; key_id <id> } … }: whoever holds the key tells an altered, added or removed record (passerelle audit-verify)", checkAuditSealed},
	{"PA24", Medium, "audit records filtered out before they are sealed", "no level (INFO, the default) and no sampling on the log that includes passerelle.audit", checkAuditUnfiltered},
	{"PA25", Medium, "a log other than the audit trail that stops data routes when its sink fails", "output passerelle_buffered { on_full drop … } on every log but the audit trail", checkOnlyAuditRefuses},
	{"PA26", High, "trusted proxies without strict mode", "servers { trusted_proxies static <the load balancers' addresses>; trusted_proxies_strict }: the client address is then the rightmost untrusted one, not one the caller wrote", checkTrustedProxiesStrict},
	{"PA27", Medium, "traces that take the caller's trace context", "OTEL_PROPAGATORS=none in the gateway's environment: a caller's traceparent then neither parents the request's trace (nor the audit record's trace_id) nor forces its sampling under a parentbased sampler", checkCallerTraceContext},
	{"PA28", High, "a configuration key in another letter case", "write each key as documented, in lower case: Caddy reads \"Mode\" as mode (the last spelling wins), while the other rules and a reviewer read the exact key", checkKeyCase},
	{"PA29", High, "a TLS private key file readable by others or by a group other than the gateway's own", "chmod 600 (or 400), owned by the gateway's user: a provider's client key (tls_client_auth) or a certificate's key (load_files)", checkKeyFileModes},
}

var ruleByID = func() map[string]rule {
	m := map[string]rule{}
	for _, r := range rules {
		m[r.id] = r
	}
	return m
}()

func find(id, path, detail string) Finding { return Finding{Rule: id, Path: path, Detail: detail} }

const pp = "apps.passerelle"

func checkSandbox(c *cfg) []Finding {
	var out []Finding
	if p := dig(c.root, "apps", "passerelle"); p != nil && str(p, "mode") == "sandbox" {
		out = append(out, find("PA01", pp+".mode", "mode sandbox: ephemeral keys, literal secrets and the sandbox's public tokens are accepted"))
	}
	for _, h := range c.handlers {
		if strings.HasPrefix(h.name(), "passerelle_sandbox_") {
			out = append(out, find("PA01", h.path, h.name()))
		}
	}
	return out
}

// secretFields are the settings that must be references, under apps.passerelle.
var secretFields = [][]string{
	{"franceconnect", "client_secret"}, {"cache", "secret"}, {"cache", "redis", "password"}, {"audit", "pseudonym_key"},
	{"datapass", "secret"}, {"datapass", "previous_secret"}, {"datapass", "api", "client_secret"},
}

func checkLiteralSecrets(c *cfg) []Finding {
	var out []Finding
	literal := func(path, v string) {
		if v != "" && !IsReference(v) {
			out = append(out, find("PA02", path, "a literal value"))
		}
	}
	p := dig(c.root, "apps", "passerelle")
	for _, f := range secretFields {
		literal(pp+"."+strings.Join(f, "."), str(p, f...))
	}
	for i, k := range strs(p, "franceconnect", "decryption_keys") {
		literal(fmt.Sprintf("%s.franceconnect.decryption_keys[%d]", pp, i), k)
	}
	ups, _ := dig(p, "upstreams").(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(ups)) {
		literal(pp+".upstreams."+name+".header_value", str(ups[name], "header_value"))
		literal(pp+".upstreams."+name+".oauth2.client_secret", str(ups[name], "oauth2", "client_secret"))
	}
	for _, h := range c.named("passerelle_front") {
		literal(h.path+".secret", str(h.obj, "secret"))
		literal(h.path+".assertion_key", str(h.obj, "assertion_key"))
		literal(h.path+".franceconnect.client_secret", str(h.obj, "franceconnect", "client_secret"))
	}
	return out
}

// plainURL reports an http:// URL off loopback.
func plainURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && p.Scheme == "http" && !loopbackHost(p.Hostname())
}

func checkPlainHTTP(c *cfg) []Finding {
	var out []Finding
	p := dig(c.root, "apps", "passerelle")
	for _, f := range []string{"issuer", "checktoken_url", "jwks_url"} {
		if plainURL(str(p, "franceconnect", f)) {
			out = append(out, find("PA03", pp+".franceconnect."+f, "FranceConnect over plain HTTP"))
		}
	}
	ups, _ := dig(p, "upstreams").(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(ups)) {
		if plainURL(str(ups[name], "oauth2", "token_url")) {
			out = append(out, find("PA03", pp+".upstreams."+name+".oauth2.token_url", "a provider token URL over plain HTTP"))
		}
	}
	if r, ok := dig(p, "cache", "redis").(map[string]any); ok && r["tls"] != true {
		for _, a := range strs(r, "addrs") {
			if !loopbackHost(a) {
				out = append(out, find("PA03", pp+".cache.redis", "Redis off loopback without TLS"))
				break
			}
		}
	}
	for _, h := range c.named("passerelle_front") {
		if plainURL(str(h.obj, "franceconnect", "issuer")) {
			out = append(out, find("PA03", h.path+".franceconnect.issuer", "FranceConnect over plain HTTP"))
		}
		ds, _ := h.obj["datasets"].([]any)
		for i, d := range ds {
			if plainURL(str(d, "remote")) {
				out = append(out, find("PA03", fmt.Sprintf("%s.datasets[%d].remote", h.path, i), "a remote API Particulier over plain HTTP"))
			}
		}
	}
	if plainURL(str(p, "datapass", "api", "url")) || plainURL(str(p, "datapass", "api", "token_url")) {
		out = append(out, find("PA03", pp+".datapass.api", "DataPass's API over plain HTTP"))
	}
	if tr := c.named("tracing"); len(tr) > 0 && c.opts.Getenv != nil && plainOTLP(c.opts.Getenv) {
		out = append(out, find("PA03", tr[0].path, "OTLP traces over plain HTTP (OTEL_EXPORTER_OTLP_*ENDPOINT or *_INSECURE in the environment)"))
	}
	for _, h := range c.named("reverse_proxy") {
		if !h.mayAfter("passerelle") || dig(h.obj, "transport", "tls") != nil {
			continue
		}
		for _, d := range dials(h.obj) {
			if !loopbackHost(d) {
				out = append(out, find("PA03", h.path+".upstreams", "a provider ("+d+") over plain HTTP"))
			}
		}
	}
	return out
}

func dials(proxy map[string]any) []string {
	var out []string
	ups, _ := proxy["upstreams"].([]any)
	for _, u := range ups {
		if d := str(u, "dial"); d != "" {
			out = append(out, d)
		}
	}
	return out
}

func checkJOSE(c *cfg) []Finding {
	var out []Finding
	fc := dig(c.root, "apps", "passerelle", "franceconnect")
	for _, a := range strs(fc, "key_algorithms") {
		if a == "RSA1_5" {
			out = append(out, find("PA04", pp+".franceconnect.key_algorithms", "RSA1_5 (RSA PKCS#1 v1.5, Bleichenbacher)"))
		}
	}
	weakSig := func(path string, algs []string) {
		for _, a := range algs {
			if a == "none" || strings.HasPrefix(strings.ToUpper(a), "HS") {
				out = append(out, find("PA04", path, a+" signatures"))
			}
		}
	}
	weakSig(pp+".franceconnect.signing_algorithms", strs(fc, "signing_algorithms"))
	for _, h := range c.named("passerelle_front") {
		weakSig(h.path+".franceconnect.signing_algs", strs(h.obj, "franceconnect", "signing_algs"))
	}
	if d, ok := duration(dig(fc, "skew")); ok && d > time.Minute {
		out = append(out, find("PA04", pp+".franceconnect.skew", "skew "+d.String()))
	}
	return out
}

// duration reads a caddy.Duration as JSON gives it: nanoseconds, or a string
// as caddy.ParseDuration reads it (time.ParseDuration's units and d for 24
// hours: "1d", "1.5d2h").
func duration(v any) (time.Duration, bool) {
	switch d := v.(type) {
	case float64:
		return time.Duration(d), true
	case string:
		t, err := time.ParseDuration(daysAsHours(d))
		return t, err == nil
	}
	return 0, false
}

// daysAsHours rewrites each <number>d of s as hours, as caddy.ParseDuration
// does; "" when a number of days does not parse.
func daysAsHours(s string) string {
	var b strings.Builder
	start := 0 // where the current number begins
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch >= '0' && ch <= '9' || ch == '.' || ch == '-' || ch == '+':
			continue
		case ch == 'd':
			days, err := strconv.ParseFloat(s[start:i], 64)
			if err != nil {
				return ""
			}
			b.WriteString(strconv.FormatFloat(days*24, 'f', -1, 64) + "h")
		default:
			b.WriteString(s[start : i+1])
		}
		start = i + 1
	}
	b.WriteString(s[start:])
	return b.String()
}

// checkBypass (PA05): a reverse_proxy to a provider (an upstream a proxy
// after passerelle dials, however its address is spelt: dialKey) that
// passerelle does not certainly precede.
func checkBypass(c *cfg) []Finding {
	providers := map[string]bool{}
	for _, h := range c.named("reverse_proxy") {
		if h.mayAfter("passerelle") {
			for _, d := range dials(h.obj) {
				providers[dialKey(d)] = true
			}
		}
	}
	var out []Finding
	for _, h := range c.named("reverse_proxy") {
		if h.after("passerelle") {
			continue
		}
		for _, d := range dials(h.obj) {
			if providers[dialKey(d)] {
				detail := "reverse_proxy to " + d + " without passerelle before it"
				if h.mayAfter("passerelle") {
					detail += " on every request (passerelle runs under matchers the proxy does not have, or before a handler changes what they read)"
				}
				if h.via != "" {
					detail += " (run by the invoke at " + h.via + ")"
				}
				out = append(out, find("PA05", h.path, detail))
			}
		}
	}
	return out
}

func checkHabilitations(c *cfg) []Finding {
	path := str(c.root, "apps", "passerelle", "habilitations")
	if path == "" || c.opts.ReadFile == nil {
		return nil
	}
	data, err := c.opts.ReadFile(path)
	if err != nil {
		return []Finding{find("PA06", pp+".habilitations", "the file cannot be read")}
	}
	reg, err := habilitation.Parse(data)
	if err != nil {
		// The parser's messages name entries and fields, never values.
		return []Finding{find("PA06", pp+".habilitations", err.Error())}
	}
	cat, err := catalogue.Default()
	if err != nil {
		return nil
	}
	var out []Finding
	for _, h := range reg.All() {
		if len(h.Scopes) == 0 {
			out = append(out, find("PA06", pp+".habilitations", "habilitation "+h.ID+": no scope"))
		}
		for _, s := range h.Scopes {
			if !cat.KnowsScope(s) {
				out = append(out, find("PA06", pp+".habilitations", "habilitation "+h.ID+": scope "+s+" unknown to the catalogue"))
			}
		}
		// A habilitation's own quota replaces the default one (PA15).
		if r := h.RateLimit; !r.IsZero() && float64(r.Requests)/r.Per.Seconds() > maxQuota {
			out = append(out, find("PA15", pp+".habilitations", "habilitation "+h.ID+": rate_limit faster than "+strconv.Itoa(maxQuota)+"/s"))
		}
	}
	return out
}

// public reports whether a server listens off loopback.
func public(srv map[string]any) bool {
	for _, l := range strs(srv, "listen") {
		if !loopbackHost(l) {
			return true
		}
	}
	return false
}

// checkPublicPlain (PA07): a public listener serves plain HTTP when its
// server has no TLS (no connection policy, and automatic HTTPS does not
// serve the HTTPS port), or when it is on the HTTP port: Caddy never serves
// TLS there, whatever the server's policies.
func checkPublicPlain(c *cfg) []Finding {
	var out []Finding
	httpPort, httpsPort := c.port("http_port", 80), c.port("https_port", 443)
	for _, name := range slices.Sorted(maps.Keys(c.servers)) {
		srv := c.servers[name]
		if !public(srv) || srv["trusted_proxies"] != nil {
			continue
		}
		listen := strs(srv, "listen")
		// An empty list of policies is no TLS: automatic HTTPS adds one only
		// where there is none at all.
		pols, set := srv["tls_connection_policies"].([]any)
		plain := set && len(pols) == 0 || !set && (dig(srv, "automatic_https", "disable") == true ||
			!slices.ContainsFunc(listen, func(l string) bool { return onPort(l, httpsPort) }))
		plain = plain || slices.ContainsFunc(listen, func(l string) bool { return !loopbackHost(l) && onPort(l, httpPort) })
		if plain {
			out = append(out, find("PA07", "apps.http.servers."+name+".listen", strings.Join(listen, " ")))
		}
	}
	return out
}

func checkSkipVerify(c *cfg) []Finding {
	var out []Finding
	walkJSON(c.root, "", func(path, key string, v any) {
		if key == "insecure_skip_verify" && v == true {
			out = append(out, find("PA09", path, ""))
		}
	})
	return out
}

// checkKeyFileModes (PA29, SECURITY.md H01): the private keys Caddy's own
// modules read from files — a provider's client certificate key
// (reverse_proxy transport tls client_certificate_key_file) and the keys of
// certificates the TLS app loads — are private to the gateway's user, as
// production mode requires of Passerelle's own secret files.
func checkKeyFileModes(c *cfg) []Finding {
	if c.opts.Stat == nil {
		return nil
	}
	var out []Finding
	walkJSON(c.root, "", func(path, key string, v any) {
		file, _ := v.(string)
		if file == "" || strings.Contains(file, "{") ||
			key != "client_certificate_key_file" && !(key == "key" && strings.Contains(path, "load_files")) {
			return
		}
		if info, err := c.opts.Stat(file); err == nil && !PrivateFile(info) {
			out = append(out, find("PA29", path, fmt.Sprintf("mode %#o", info.Mode().Perm())))
		}
	})
	return out
}

// join is a finding's path: key below path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// walkJSON calls fn for every member of every object, depth first.
func walkJSON(v any, path string, fn func(path, key string, v any)) {
	switch t := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(t)) {
			p := join(path, k)
			fn(p, k, t[k])
			walkJSON(t[k], p, fn)
		}
	case []any:
		for i, e := range t {
			walkJSON(e, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	}
}

// checkAdmin (PA10): the local admin API listens on admin.listen, or
// CADDY_ADMIN when that is unset, whether or not a remote (mTLS) admin is
// configured beside it: off loopback, whoever reaches it reads and loads
// the configuration.
func checkAdmin(c *cfg) []Finding {
	admin, _ := c.root["admin"].(map[string]any)
	if admin["disabled"] == true {
		return nil
	}
	l, path := str(admin, "listen"), "admin.listen"
	if l == "" && c.opts.Getenv != nil {
		l, path = c.opts.Getenv("CADDY_ADMIN"), "admin.listen (CADDY_ADMIN)"
	}
	if l != "" && !loopbackHost(l) {
		return []Finding{find("PA10", path, l)}
	}
	return nil
}

// checkInternalOnPublic (PA11): metrics and probes are served on no
// server the public reaches (exposed): neither on a public listener, nor
// on an internal one a reverse_proxy of a public server dials.
func checkInternalOnPublic(c *cfg) []Finding {
	var out []Finding
	exposed := c.exposed()
	for _, h := range c.handlers {
		via, ok := exposed[h.server]
		if !ok || h.name() != "metrics" && h.name() != "passerelle_health" {
			continue
		}
		detail := h.name() + " on " + strings.Join(strs(c.servers[h.server], "listen"), " ")
		if via != "" {
			detail += ", reached from a public listener through the reverse_proxy at " + via
		}
		out = append(out, find("PA11", h.path, detail))
	}
	return out
}

// checkTrustEveryone (PA18): trusted_proxies ranges that, together, cover
// every IPv4 or every IPv6 address, however spelt (0.0.0.0/0, 0::0/0, two
// halves /1): any caller then chooses its address in X-Forwarded-For.
func checkTrustEveryone(c *cfg) []Finding {
	var out []Finding
	for _, name := range slices.Sorted(maps.Keys(c.servers)) {
		ranges := strs(c.servers[name], "trusted_proxies", "ranges")
		for _, family := range []string{"IPv4", "IPv6"} {
			if coversAll(ranges, family == "IPv6") {
				out = append(out, find("PA18", "apps.http.servers."+name+".trusted_proxies", "every "+family+" address: "+strings.Join(ranges, " ")))
			}
		}
	}
	return out
}

// coversAll reports whether ranges, as Caddy reads them (a CIDR, or an
// address alone), cover every address of a family: the sizes of those not
// within another add up to the family's.
func coversAll(ranges []string, ipv6 bool) bool {
	var prefixes []netip.Prefix
	for _, r := range ranges {
		p, err := netip.ParsePrefix(r)
		if a, aerr := netip.ParseAddr(r); aerr == nil {
			p, err = netip.PrefixFrom(a, a.BitLen()), nil
		}
		if err == nil && p.Addr().Is6() == ipv6 {
			prefixes = append(prefixes, p.Masked())
		}
	}
	bits := 32
	if ipv6 {
		bits = 128
	}
	total := new(big.Int)
	for i, p := range prefixes {
		within := false
		for j, q := range prefixes {
			// q holds p (the first of equal ones counts)
			within = within || j != i && q.Bits() <= p.Bits() && q.Contains(p.Addr()) && (q != p || j < i)
		}
		if !within {
			total.Add(total, new(big.Int).Lsh(big.NewInt(1), uint(bits-p.Bits())))
		}
	}
	return total.Cmp(new(big.Int).Lsh(big.NewInt(1), uint(bits))) >= 0
}

// checkTrustedProxiesStrict (PA26, SECURITY.md D04): a server that trusts
// proxies reads the client address from the right of X-Forwarded-For
// (trusted_proxies_strict), skipping the trusted proxies. Otherwise Caddy
// takes its leftmost valid entry, which the caller writes itself (a load
// balancer appends the address it saw): each request could pick the
// address its client_ip and failed_auth quotas count against.
func checkTrustedProxiesStrict(c *cfg) []Finding {
	var out []Finding
	for _, name := range slices.Sorted(maps.Keys(c.servers)) {
		srv := c.servers[name]
		strict, _ := srv["trusted_proxies_strict"].(float64)
		if _, trusts := srv["trusted_proxies"]; trusts && strict == 0 {
			out = append(out, find("PA26", "apps.http.servers."+name+".trusted_proxies_strict",
				"not set: the client address is X-Forwarded-For's leftmost entry, which the caller chooses"))
		}
	}
	return out
}
